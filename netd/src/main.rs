//! netd binary: the daemon.

use anyhow::Context;
use clap::Parser;
use netd::cli::Cli;
use netd::engine::Config;
use netd::host::real::RealHost;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    nodeutil::log::init(cli.verbose, cli.log_format);
    if cli.migrate {
        let (from, to) = netd::schema::upgrade(&cli.state).map_err(anyhow::Error::msg)?;
        tracing::info!(state = %cli.state.display(), from, to, "state migrated");
        return Ok(());
    }
    let rt = tokio::runtime::Runtime::new().context("tokio runtime")?;
    rt.block_on(async {
        nodeutil::fs::create_private_dir(&cli.run)
            .with_context(|| format!("{}", cli.run.display()))?;
        let cfg = Config {
            state: cli.state.clone(),
            netns_prefix: cli.netns_prefix.clone(),
            ports: cli.ports.clone(),
        };
        let shutdown = async {
            bus::daemon::shutdown_signal().await;
            tracing::info!("shutting down (namespaces and attachments stay)");
        };
        let opts = netd::handover::Options {
            serve: cli.handover.clone(),
            take_over: cli.take_over.clone(),
        };
        netd::daemon::run(RealHost, cfg, &cli.run, opts, shutdown)
            .await
            .context("netd")
    })
}
