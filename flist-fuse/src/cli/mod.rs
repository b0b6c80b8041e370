//! The `flist` command line: one module per subcommand, each with its clap arguments and a
//! `run`. Store URLs may carry passwords: every subcommand that takes `--store` also reads
//! them from stdin with `--stores-stdin` ([`stores`]), so they need not be on a command line.

pub mod args;
pub mod cat;
pub mod container;
pub mod convert;
pub mod embed;
pub mod inspect;
pub mod keygen;
pub mod ls;
pub mod mount;
pub mod pack;
pub mod show;
pub mod sign;
pub mod stat;
pub mod stores;
pub mod unpack;
pub mod verify;

use clap::{Parser, Subcommand};

use crate::error::Result;

/// flist: pack, inspect, verify and unpack flist images.
#[derive(Debug, Parser)]
#[command(name = "flist", version, about)]
pub struct Cli {
    /// The subcommand.
    #[command(subcommand)]
    pub cmd: Cmd,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Pack a directory, tar (plain/gzip/zstd), OCI layout or docker-save archive.
    Pack(pack::PackCmd),
    /// Unpack to a folder (which must not exist or be empty).
    Unpack(unpack::UnpackCmd),
    /// Check the file, its signatures, and that every block is present and matches its id.
    Verify(verify::VerifyCmd),
    /// List a folder (or one entry) inside the flist.
    Ls(ls::LsCmd),
    /// Show the metadata of one entry.
    Stat(stat::StatCmd),
    /// Write a file's content to stdout.
    Cat(cat::CatCmd),
    /// Sign the flist with an ed25519 key (adds to the trailer; the identity is unchanged).
    Sign(sign::SignCmd),
    /// Create an ed25519 key pair: KEY (secret, mode 0600) and KEY.pub.
    Keygen(keygen::KeygenCmd),
    /// Summary: identity, parameters, entry counts, sizes, dedup ratio.
    Inspect(inspect::InspectCmd),
    /// Rewrite an rfs `.fl`, or an flist of format version 1, into the current layout: small
    /// files packed together, larger files with their block boundaries (an rfs block is
    /// fetched once, verified and re-encoded as ours; a version-1 block is reused, copied to
    /// --store if it lacks it). Blocks are read from the source's routes or --from-store.
    Convert(convert::ConvertCmd),
    /// Mount read-only with FUSE, fetching blocks on first touch; serves in the foreground
    /// until unmounted or signalled (SIGTERM/SIGINT unmount cleanly).
    Mount(mount::MountCmd),
    /// Internal: the detached mount daemon, its arguments as JSON on stdin (see `mount --daemon`).
    #[command(name = "mount-daemon", hide = true)]
    MountDaemon,
    /// Take over a running mount (one started with `mount --handover PATH`) with this
    /// binary: nothing is unmounted, readers see no error; the old process exits once it
    /// answered everything it read. Prints the old process's pid once it is gone.
    TakeOver(mount::TakeOverCmd),
    /// Embed a prefetch list recorded by `mount --record` in the flist (no LIST: remove it).
    EmbedPrefetch(embed::EmbedCmd),
    /// Containers: overlayfs (writable upper) on a shared read-only mount.
    Container {
        /// start, stop or upgrade.
        #[command(subcommand)]
        cmd: container::ContainerCmd,
    },
}

/// Run a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Pack(c) => c.run(),
        Cmd::Unpack(c) => c.run(),
        Cmd::Verify(c) => c.run(),
        Cmd::Ls(c) => c.run(),
        Cmd::Stat(c) => c.run(),
        Cmd::Cat(c) => c.run(),
        Cmd::Sign(c) => c.run(),
        Cmd::Keygen(c) => c.run(),
        Cmd::Inspect(c) => c.run(),
        Cmd::Convert(c) => c.run(),
        Cmd::Mount(c) => c.run(),
        Cmd::MountDaemon => mount::run_daemon(),
        Cmd::TakeOver(c) => c.run(),
        Cmd::EmbedPrefetch(c) => c.run(),
        Cmd::Container { cmd } => cmd.run(),
    }
}
