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
    /// Bound of the block cache (`2G`, `512M`, ...).
    #[arg(long, default_value = "2G", value_parser = size)]
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
    /// Log format: auto (colour on a terminal), plain, color, json (default: `ZOS_LOG_FORMAT`).
    #[arg(long, global = true)]
    pub log_format: Option<nodeutil::log::LogFormat>,
    /// What to do; none runs the daemon.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Checks a size string, kept as written (`flist` reads it with the same rules).
fn size(s: &str) -> Result<String, String> {
    nodeutil::size::parse_size(s)
        .map(|_| s.to_string())
        .map_err(|e| e.to_string())
}

/// Operator commands (and the shim).
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List containers.
    List,
    /// Show one container.
    Get {
        /// Container name.
        name: String,
    },
    /// Print a container's output; with --follow, keep printing until it ends.
    Logs {
        /// Container name.
        name: String,
        /// Keep printing until the container ends.
        #[arg(long, short)]
        follow: bool,
    },
    /// Stop a container (SIGTERM, then SIGKILL after its grace period).
    Stop {
        /// Container name.
        name: String,
    },
    /// Start a stopped container again.
    Start {
        /// Container name.
        name: String,
    },
    /// Stop and remove a container.
    Delete {
        /// Container name.
        name: String,
    },
    /// Internal: the per-container shim.
    #[command(hide = true)]
    Shim {
        /// The container's state folder.
        dir: PathBuf,
    },
}

/// Runs an operator command against the daemon.
pub async fn run_command(
    cmd: Command,
    socket: PathBuf,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let c = bus::Client::new(socket);
    match cmd {
        Command::List => show(&c.call::<ListContainers>(&Empty {}).await?),
        Command::Get { name } => show(&c.call::<GetContainer>(&Name { name }).await?),
        Command::Stop { name } => show(&c.call::<StopContainer>(&Name { name }).await?),
        Command::Start { name } => show(&c.call::<StartContainer>(&Name { name }).await?),
        Command::Delete { name } => {
            c.call::<DeleteContainer>(&Name { name }).await?;
        }
        Command::Logs { name, follow } => {
            copy_logs(&c, &name, follow, &mut std::io::stdout()).await?
        }
        Command::Shim { .. } => return Err("the shim is not an operator command".into()),
    }
    Ok(())
}

fn show<T: serde::Serialize>(v: &T) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}
