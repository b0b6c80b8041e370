//! The operator CLI (clap derive): with no subcommand, the daemon; otherwise one function per
//! subcommand, talking to the daemon over the bus (except `bench`, which runs locally).

use crate::bench;
use crate::node::ListPools;
use bus::api::storage::*;
use bus::api::{Empty, Secret};
use clap::{Args, Parser, Subcommand, ValueEnum};
use nodeutil::size::parse_size;
use serde::Serialize;
use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

/// storaged: disks, btrfs pools, volumes and zdb namespaces of the node.
#[derive(Debug, Parser)]
#[command(name = "storaged", version, about)]
pub struct Cli {
    /// Node config (JSON); needed to run the daemon.
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// State root: pools are mounted under ROOT/pools.
    #[arg(long, global = true, default_value = "/var/lib/storaged")]
    pub root: PathBuf,
    /// Run folder (sockets); default ROOT/run.
    #[arg(long, global = true)]
    pub run: Option<PathBuf>,
    /// Log more.
    #[arg(long, short, global = true)]
    pub verbose: bool,
    /// Log format: auto (colour on a terminal), plain, color or json; default from
    /// ZOS_LOG_FORMAT, else auto.
    #[arg(long, global = true, value_name = "FORMAT")]
    pub log_format: Option<nodeutil::log::LogFormat>,
    /// Subcommand; none runs the daemon.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List disks (storage.disk.list).
    Disks,
    /// List disks with pool state, zdb servers, namespaces and volumes.
    Pools,
    /// Capacity per disk class.
    Capacity,
    /// zdb namespaces.
    #[command(subcommand)]
    Ns(NsCommand),
    /// Volumes.
    #[command(subcommand)]
    Volume(VolumeCommand),
    /// Measure a disk or a file on it; prints one JSON object.
    Bench(BenchArgs),
}

/// Namespace mode.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Mode {
    /// User keys.
    User,
    /// Sequential keys.
    Seq,
}

/// `ns` subcommands.
#[derive(Debug, Subcommand)]
pub enum NsCommand {
    /// Allocate (or converge) a namespace. The password is read from stdin, never argv.
    Alloc {
        /// Name.
        name: String,
        /// Size (bytes, or with K/M/G/T suffix).
        #[arg(long, value_parser = parse_size)]
        size: u64,
        /// Mode.
        #[arg(long, value_enum, default_value = "user")]
        mode: Mode,
        /// Read the namespace password from stdin (first line).
        #[arg(long)]
        password_stdin: bool,
        /// Readable without the password.
        #[arg(long)]
        public: bool,
    },
    /// Show a namespace.
    Get {
        /// Name.
        name: String,
    },
    /// Grow a namespace.
    Grow {
        /// Name.
        name: String,
        /// New size.
        #[arg(long, value_parser = parse_size)]
        size: u64,
    },
    /// Freeze a namespace.
    Pause {
        /// Name.
        name: String,
    },
    /// Unfreeze a namespace.
    Resume {
        /// Name.
        name: String,
    },
    /// Delete a namespace and its data.
    Delete {
        /// Name.
        name: String,
    },
}

/// `volume` subcommands.
#[derive(Debug, Subcommand)]
pub enum VolumeCommand {
    /// Create (or converge) a volume.
    Create {
        /// Name.
        name: String,
        /// Quota.
        #[arg(long, value_parser = parse_size)]
        size: u64,
    },
    /// Show a volume.
    Get {
        /// Name.
        name: String,
    },
    /// Grow a volume.
    Grow {
        /// Name.
        name: String,
        /// New quota.
        #[arg(long, value_parser = parse_size)]
        size: u64,
    },
    /// Delete a volume and its data.
    Delete {
        /// Name.
        name: String,
    },
}

/// `bench` arguments.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// File, folder (a temp file is used) or block device.
    pub path: PathBuf,
    /// File size.
    #[arg(long, value_parser = parse_size, default_value = "256M")]
    pub size: u64,
    /// Seconds per job.
    #[arg(long, default_value_t = 3.0)]
    pub runtime: f64,
    /// Allow overwriting a block device.
    #[arg(long)]
    pub destructive: bool,
    /// Run only these jobs (comma separated).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub only: Vec<bench::Job>,
}

/// A CLI failure.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The bus call failed.
    #[error(transparent)]
    Bus(#[from] bus::BusError),
    /// The benchmark failed.
    #[error(transparent)]
    Bench(#[from] bench::BenchError),
    /// Reading stdin failed.
    #[error("reading the password from stdin: {0}")]
    Stdin(std::io::Error),
}

fn print<T: Serialize>(v: &T) {
    match serde_json::to_string_pretty(v) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("cannot print reply: {e}"),
    }
}

fn read_password() -> Result<Secret, CliError> {
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .map_err(CliError::Stdin)?;
    Ok(Secret(s.lines().next().unwrap_or_default().to_string()))
}

/// Runs one client subcommand against the daemon at `socket`.
pub async fn run_command(cmd: Command, socket: PathBuf) -> Result<(), CliError> {
    let c = bus::Client::new(socket);
    match cmd {
        Command::Disks => print(&c.call::<ListDisks>(&Empty {}).await?),
        Command::Pools => print(&c.call::<ListPools>(&Empty {}).await?),
        Command::Capacity => print(&c.call::<GetCapacity>(&Empty {}).await?),
        Command::Ns(ns) => ns_command(&c, ns).await?,
        Command::Volume(v) => volume_command(&c, v).await?,
        Command::Bench(b) => {
            let opts = bench::Options {
                size: b.size,
                runtime: Duration::from_secs_f64(b.runtime.max(0.1)),
                destructive: b.destructive,
                only: b.only,
            };
            let report = tokio::task::spawn_blocking(move || bench::run(&b.path, &opts))
                .await
                .map_err(|e| CliError::Stdin(std::io::Error::other(e)))??;
            print(&report);
        }
    }
    Ok(())
}

async fn ns_command(c: &bus::Client, cmd: NsCommand) -> Result<(), CliError> {
    let reply = match cmd {
        NsCommand::Alloc {
            name,
            size,
            mode,
            password_stdin,
            public,
        } => {
            let password = if password_stdin {
                Some(read_password()?)
            } else {
                None
            };
            let mode = match mode {
                Mode::User => ZdbMode::User,
                Mode::Seq => ZdbMode::Seq,
            };
            c.call::<AllocateZdb>(&ZdbAllocate {
                name,
                size,
                mode,
                password,
                public,
            })
            .await?
        }
        NsCommand::Get { name } => c.call::<GetZdb>(&Name { name }).await?,
        NsCommand::Grow { name, size } => c.call::<GrowZdb>(&Resize { name, size }).await?,
        NsCommand::Pause { name } => c.call::<PauseZdb>(&Name { name }).await?,
        NsCommand::Resume { name } => c.call::<ResumeZdb>(&Name { name }).await?,
        NsCommand::Delete { name } => {
            c.call::<DeleteZdb>(&Name { name }).await?;
            return Ok(());
        }
    };
    print(&reply);
    Ok(())
}

async fn volume_command(c: &bus::Client, cmd: VolumeCommand) -> Result<(), CliError> {
    let reply = match cmd {
        VolumeCommand::Create { name, size } => {
            c.call::<CreateVolume>(&VolumeCreate { name, size }).await?
        }
        VolumeCommand::Get { name } => c.call::<GetVolume>(&Name { name }).await?,
        VolumeCommand::Grow { name, size } => c.call::<GrowVolume>(&Resize { name, size }).await?,
        VolumeCommand::Delete { name } => {
            c.call::<DeleteVolume>(&Name { name }).await?;
            return Ok(());
        }
    };
    print(&reply);
    Ok(())
}

#[cfg(test)]
mod test {
    use super::*;

    fn size_flag(s: &str) -> Result<u64, String> {
        let cli = Cli::try_parse_from(["storaged", "volume", "create", "v", "--size", s])
            .map_err(|e| e.to_string())?;
        match cli.command {
            Some(Command::Volume(VolumeCommand::Create { size, .. })) => Ok(size),
            other => Err(format!("parsed as {other:?}")),
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(size_flag("300M"), Ok(300 << 20));
        assert_eq!(size_flag("12"), Ok(12));
        assert_eq!(size_flag("1k"), Ok(1024));
        assert!(size_flag("x").is_err());
        assert!(size_flag("5Q").is_err());
    }
}
