//! `flist mount` (foreground, or `--daemon`) and the hidden `flist mount-daemon` it starts.

use std::path::{Path, PathBuf};

use clap::Args;

use super::args::size_arg;
use super::stores::StoreArgs;
use crate::error::{IoContext, Result};
use crate::mount::args::{
    DEFAULT_FETCH_WORKERS, DEFAULT_FOLDER_AHEAD, DEFAULT_MEM_CACHE, DEFAULT_THREADS,
};
use crate::mount::{self, MountArgs, daemon};

/// Arguments of `flist mount`.
#[derive(Debug, Args)]
pub struct MountCmd {
    /// Block cache folder, shared by all mounts of the node.
    #[arg(long, default_value = crate::mount::DEFAULT_CACHE)]
    pub cache: PathBuf,
    /// Bound of the cache (K/M/G/T suffixes).
    #[arg(long = "cache-size", default_value = "10G")]
    pub cache_size: String,
    /// Store URLs replacing the flist's routes (repeatable, `LO-HI=URL` allowed).
    #[command(flatten)]
    pub stores: StoreArgs,
    /// Write the blocks this run reads to FILE at unmount (a prefetch list).
    #[arg(long)]
    pub record: Option<PathBuf>,
    /// Prefetch the blocks of this list at mount (repeatable; adds to the embedded list).
    #[arg(long)]
    pub prefetch: Vec<PathBuf>,
    /// Parallel store fetches.
    #[arg(long = "fetch-workers", default_value_t = DEFAULT_FETCH_WORKERS)]
    pub fetch_workers: usize,
    /// Threads answering the kernel.
    #[arg(long, default_value_t = DEFAULT_THREADS)]
    pub threads: usize,
    /// Memory cache of decoded blocks (K/M/G suffixes).
    #[arg(long = "mem-cache", default_value = DEFAULT_MEM_CACHE)]
    pub mem_cache: String,
    /// When a folder is listed or one of its files read, fetch its other small files' blocks
    /// in the background, up to SIZE per folder (0: off).
    #[arg(long = "folder-ahead", default_value = DEFAULT_FOLDER_AHEAD)]
    pub folder_ahead: String,
    /// Detach: run the daemon in its own session (log to --log) and return once mounted;
    /// prints its pid. Its arguments (store URLs included) go to it on a pipe, never on its
    /// command line.
    #[arg(long)]
    pub daemon: bool,
    /// Serve a hand-over socket at PATH: `flist take-over PATH` (a new binary) then takes
    /// the running mount over without unmounting it.
    #[arg(long, value_name = "PATH")]
    pub handover: Option<PathBuf>,
    /// Log file of the detached daemon.
    #[arg(long, default_value = "/dev/null")]
    pub log: PathBuf,
    /// The flist (ours or an rfs `.fl`).
    pub flist: PathBuf,
    /// Where to mount it.
    pub mountpoint: PathBuf,
}

/// An absolute form of `p` (the detached daemon's working folder must not matter).
fn abs(p: &Path) -> PathBuf {
    std::fs::canonicalize(p)
        .or_else(|_| std::path::absolute(p))
        .unwrap_or_else(|_| p.to_path_buf())
}

impl MountCmd {
    /// Mount in the foreground, or start the daemon and print its pid.
    pub fn run(self) -> Result<()> {
        let args = MountArgs {
            cache_size: size_arg(&self.cache_size, "--cache-size")?,
            mem_cache: size_arg(&self.mem_cache, "--mem-cache")?,
            folder_ahead: size_arg(&self.folder_ahead, "--folder-ahead")?,
            stores: self.stores.resolve()?,
            flist: self.flist,
            mountpoint: self.mountpoint,
            cache: self.cache,
            record: self.record,
            prefetch: self.prefetch,
            fetch_workers: self.fetch_workers,
            threads: self.threads,
            new_session: false,
            handover: self.handover,
        };
        if !self.daemon {
            return mount::run(&args);
        }
        let args = MountArgs {
            flist: abs(&args.flist),
            mountpoint: abs(&args.mountpoint),
            cache: abs(&args.cache),
            record: args.record.as_deref().map(abs),
            prefetch: args.prefetch.iter().map(|p| abs(p)).collect(),
            handover: args.handover.as_deref().map(abs),
            ..args
        };
        let pid = daemon::spawn(&args, &self.log)?;
        println!("{pid}");
        Ok(())
    }
}

/// `flist mount-daemon`: read the arguments from stdin, then serve.
pub fn run_daemon() -> Result<()> {
    let args = daemon::read_args(std::io::stdin().lock())?;
    // Nothing more comes on stdin; do not hold the parent's pipe open.
    let null = std::fs::File::open("/dev/null").ctx("/dev/null")?;
    rustix::stdio::dup2_stdin(&null).ctx("stdin")?;
    mount::run(&args)
}

/// Arguments of `flist take-over`.
#[derive(Debug, Args)]
pub struct TakeOverCmd {
    /// Detach: serve from a new session (log to --log); return once the old process is
    /// gone, printing the new one's pid.
    #[arg(long)]
    pub daemon: bool,
    /// Log file of the detached process.
    #[arg(long, default_value = "/dev/null")]
    pub log: PathBuf,
    /// Internal: call setsid() first (the detached process).
    #[arg(long = "new-session", hide = true)]
    pub new_session: bool,
    /// The running mount's hand-over socket (its `--handover PATH`).
    pub socket: PathBuf,
}

impl TakeOverCmd {
    /// Take the mount over in the foreground, or detached.
    pub fn run(self) -> Result<()> {
        if self.daemon {
            let pid = daemon::spawn_take_over(&abs(&self.socket), &self.log)?;
            println!("{pid}");
            return Ok(());
        }
        mount::take_over(&self.socket, self.new_session)
    }
}
