//! `node-init`: the node daemon. `node-init --dev DIR` runs a whole node on a laptop.

use anyhow::Context;
use clap::Parser;
use node_init::daemon::{Config, default_bin, run};
use node_init::engine::Backoff;
use std::path::PathBuf;
use std::time::Duration;

#[path = "node-init/join.rs"]
mod join;

#[derive(Parser)]
#[command(
    name = "node-init",
    about = "Node identity, blueprint engine and node API"
)]
struct Cli {
    /// Dev node in DIR: file-backed disks, starts storaged (needs root: loop devices, mounts)
    #[arg(long, value_name = "DIR", conflicts_with = "node")]
    dev: Option<PathBuf>,
    /// Node folder (production)
    #[arg(long, env = "ZOS_NODE", value_name = "DIR")]
    node: Option<PathBuf>,
    /// Also start storaged and computed as children (implied by --dev)
    #[arg(long)]
    start_storaged: bool,
    /// storaged binary (default: next to node-init, else from PATH)
    #[arg(long)]
    storaged_bin: Option<PathBuf>,
    /// computed binary (default: next to node-init, else from PATH)
    #[arg(long)]
    computed_bin: Option<PathBuf>,
    /// Seconds to wait for storaged to become healthy
    #[arg(long, default_value_t = 120)]
    storaged_timeout: u64,
    /// First retry delay for failed workloads, in milliseconds
    #[arg(long, default_value_t = 1000)]
    retry_base_ms: u64,
    #[command(flatten)]
    farm: join::JoinArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    bus::daemon::init_logging(false);
    let cli = Cli::parse();
    let (node_dir, dev) = match (cli.dev, cli.node) {
        (Some(d), _) => (d, true),
        (None, Some(n)) => (n, false),
        (None, None) => anyhow::bail!("give --dev DIR for a dev node, or --node DIR (or ZOS_NODE)"),
    };
    let node_dir = std::path::absolute(&node_dir).context("node folder")?;
    let cfg = Config {
        node_dir: node_dir.clone(),
        start_storaged: dev || cli.start_storaged,
        dev,
        storaged_bin: cli.storaged_bin.unwrap_or_else(|| default_bin("storaged")),
        start_computed: dev || cli.start_storaged,
        computed_bin: cli.computed_bin.unwrap_or_else(|| default_bin("computed")),
        storaged_timeout: Duration::from_secs(cli.storaged_timeout),
        backoff: Backoff {
            base: Duration::from_millis(cli.retry_base_ms),
            ..Backoff::default()
        },
    };
    let farm = cli.farm.config()?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let shutdown = async move {
        bus::daemon::shutdown_signal().await;
        let _ = stop.send(true);
    };
    let mut joined = None;
    let res = run(cfg, shutdown, |id, socket| {
        println!(
            "node ready: id {id}, api {}, export ZOS_NODE={}",
            socket.display(),
            node_dir.display()
        );
        joined = farm.map(|f| tokio::spawn(join::run(f, socket.to_path_buf(), stopped)));
    })
    .await
    .with_context(|| format!("node {}", node_dir.display()));
    if let Some(j) = joined {
        let _ = tokio::time::timeout(Duration::from_secs(5), j).await;
    }
    res
}

#[cfg(test)]
mod tests {
    /// clap checks the flag definitions only when parsing: check them here, not in use.
    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
