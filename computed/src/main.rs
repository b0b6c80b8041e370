//! computed binary: the daemon, an operator command, or a container's shim.

use anyhow::Context;
use clap::Parser;
use computed::cli::{Cli, Command, run_command};
use computed::engine::{Config, REPLY_WAIT};
use computed::system::{Linux, Tools};
use std::sync::Arc;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    nodeutil::log::init(cli.verbose, cli.log_format);
    // The shim must stay single-threaded: libcontainer forks it. No runtime is built for it.
    if let Some(Command::Shim { dir }) = &cli.command {
        std::process::exit(computed::shim::run(dir));
    }
    let rt = tokio::runtime::Runtime::new().context("tokio runtime")?;
    rt.block_on(async_main(cli))
}

async fn async_main(cli: Cli) -> anyhow::Result<()> {
    let socket = bus::service_socket(&cli.run, computed::api::SERVICE);
    if let Some(cmd) = cli.command {
        if let Err(e) = run_command(cmd, socket).await {
            eprintln!("computed: {e}");
            std::process::exit(1);
        }
        return Ok(());
    }
    let exe = std::env::current_exe().context("current executable")?;
    let flist_bin = cli.flist_bin.clone().unwrap_or_else(|| {
        exe.parent()
            .map(|d| d.join("flist"))
            .filter(|p| p.exists())
            .unwrap_or_else(|| "flist".into())
    });
    let sys = Linux {
        tools: Tools {
            flist_bin,
            flist_state: cli.root.join("flist"),
            cache: cli.cache.clone().unwrap_or_else(|| cli.root.join("cache")),
            cache_size: cli.cache_size.clone(),
        },
    };
    let cfg = Config {
        root: cli.root.clone(),
        cgroup_parent: cli.cgroup_parent.clone(),
        netns_prefix: cli.netns_prefix.clone(),
        memory_system: cli.system_memory_mib << 20,
        shim_exe: exe,
        reply_wait: REPLY_WAIT,
    };
    std::fs::create_dir_all(&cli.run).with_context(|| format!("{}", cli.run.display()))?;
    let shutdown = async {
        bus::daemon::shutdown_signal().await;
        tracing::info!("shutting down (containers keep running)");
    };
    computed::daemon::run(cfg, Arc::new(sys), &cli.run, shutdown)
        .await
        .context("computed")
}
