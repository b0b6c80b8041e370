//! Command line: the daemon's flags, the hidden `shim` entry, and operator commands that call
//! the daemon over the bus.

use bus::api::Empty;
use bus::api::compute::*;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// computed: containers booted from flists.
#[derive(Debug, Parser)]
#[command(name = "computed")]
pub struct Cli {
    /// State folder.
    #[arg(long, global = true, default_value = "/var/lib/computed")]
    pub root: PathBuf,
    /// Folder of the bus sockets.
    #[arg(long, global = true, default_value = "/run/zos")]
    pub run: PathBuf,
    /// `flist` binary (default: next to this one, else from PATH).
    #[arg(long)]
    pub flist_bin: Option<PathBuf>,
    /// Block cache shared by all flist mounts (default ROOT/cache).
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// Bound of the block cache.
    #[arg(long, default_value = "2G")]
    pub cache_size: String,
    /// Parent cgroup of the containers.
    #[arg(long, default_value = "computed")]
    pub cgroup_parent: String,
    /// Prefix of the containers' network namespace names.
    #[arg(long, default_value = "c-")]
    pub netns_prefix: String,
    /// Memory kept for the node itself, in MiB.
    #[arg(long, default_value_t = 1024)]
    pub system_memory_mib: u64,
    /// More logging.
    #[arg(long, short, global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Operator commands (and the shim).
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List containers.
    List,
    /// Show one container.
    Get { name: String },
    /// Print a container's output; with --follow, keep printing until it ends.
    Logs {
        name: String,
        #[arg(long, short)]
        follow: bool,
    },
    /// Stop a container (SIGTERM, then SIGKILL after its grace period).
    Stop { name: String },
    /// Start a stopped container again.
    Start { name: String },
    /// Stop and remove a container.
    Delete { name: String },
    /// Internal: the per-container shim.
    #[command(hide = true)]
    Shim { dir: PathBuf },
}

/// Runs an operator command against the daemon.
pub async fn run_command(cmd: Command, socket: PathBuf) -> anyhow::Result<()> {
    let c = bus::Client::new(socket);
    match cmd {
        Command::List => show(&c.call::<ListContainers>(&Empty {}).await?),
        Command::Get { name } => show(&c.call::<GetContainer>(&Name { name }).await?),
        Command::Stop { name } => show(&c.call::<StopContainer>(&Name { name }).await?),
        Command::Start { name } => show(&c.call::<StartContainer>(&Name { name }).await?),
        Command::Delete { name } => {
            c.call::<DeleteContainer>(&Name { name }).await?;
        }
        Command::Logs { name, follow } => copy_logs(&c, &name, follow, &mut std::io::stdout())
            .await
            .map_err(|e| anyhow::anyhow!(e))?,
        Command::Shim { .. } => anyhow::bail!("the shim is not an operator command"),
    }
    Ok(())
}

fn show<T: serde::Serialize>(v: &T) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}
