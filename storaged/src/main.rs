//! storaged binary: parse flags, set up logging, run the daemon or one CLI command.

use anyhow::Context;
use clap::Parser;
use std::sync::Arc;
use storaged::cli::{Cli, run_command};
use storaged::config::{Config, Paths};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    nodeutil::log::init(cli.verbose, cli.log_format);
    let paths = Paths::new(cli.root.clone(), cli.run.clone());
    if let Some(cmd) = cli.command {
        if let Err(e) = run_command(cmd, paths.socket()).await {
            eprintln!("storaged: {e}");
            std::process::exit(1);
        }
        return Ok(());
    }
    let file = cli.config.context("--config is needed to run the daemon")?;
    let cfg = Config::load(&file).map_err(anyhow::Error::msg)?;
    std::fs::create_dir_all(&paths.root)
        .with_context(|| format!("creating {}", paths.root.display()))?;
    let shutdown = async {
        bus::daemon::shutdown_signal().await;
        tracing::info!("shutting down (zdb servers keep running)");
    };
    storaged::daemon::run(
        cfg,
        Some(file),
        paths,
        Arc::new(storaged::system::Linux),
        shutdown,
    )
    .await
    .context("storaged")
}
