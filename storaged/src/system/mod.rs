//! Every kernel side effect storaged causes (loop devices, mkfs, mounts, btrfs quotas, file
//! attributes, signals) goes through [`System`], with a Linux implementation ([`Linux`]) and a
//! recording fake ([`Fake`]) for unit tests of policy and state handling.

mod fake;
mod linux;

pub use fake::{Call, Fake};
pub use linux::Linux;
pub use nodeutil::mounts::{MountEntry, parse_mountinfo};

use std::path::{Path, PathBuf};

/// A failed system operation.
#[derive(Debug, thiserror::Error)]
pub enum SysError {
    /// The command could not be started.
    #[error("{op}: cannot run {program}: {source}")]
    Spawn {
        /// Operation.
        op: &'static str,
        /// Program.
        program: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The command ran and failed.
    #[error("{op} {target}: {message}")]
    Failed {
        /// Operation.
        op: &'static str,
        /// Object operated on.
        target: String,
        /// Its stderr or exit status.
        message: String,
    },
    /// A direct I/O call failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// Operation.
        op: &'static str,
        /// Path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

/// Kernel side effects. Every method is synchronous and idempotent where noted.
pub trait System: Send + Sync + 'static {
    /// The loop device `image` is attached to, if any.
    fn loop_find(&self, image: &Path) -> Result<Option<PathBuf>, SysError>;
    /// Attaches `image` to a free loop device (direct I/O off) and returns it.
    fn loop_attach(&self, image: &Path) -> Result<PathBuf, SysError>;
    /// Detaches a loop device.
    fn loop_detach(&self, dev: &Path) -> Result<(), SysError>;
    /// Formats `dev` as btrfs with `label`. Callers check the device is blank first.
    fn mkfs_btrfs(&self, dev: &Path, label: &str) -> Result<(), SysError>;
    /// Mounts btrfs `dev` at `target` (created if missing).
    fn mount_btrfs(&self, dev: &Path, target: &Path) -> Result<(), SysError>;
    /// Unmounts `target`.
    fn umount(&self, target: &Path) -> Result<(), SysError>;
    /// Current mounts.
    fn mounts(&self) -> Result<Vec<MountEntry>, SysError>;
    /// Enables btrfs quotas on the filesystem mounted at `mnt` (idempotent).
    fn quota_enable(&self, mnt: &Path) -> Result<(), SysError>;
    /// Creates a btrfs subvolume at `path`.
    fn subvolume_create(&self, path: &Path) -> Result<(), SysError>;
    /// Deletes the btrfs subvolume at `path`.
    fn subvolume_delete(&self, path: &Path) -> Result<(), SysError>;
    /// Sets the referenced-bytes limit of the subvolume at `path`.
    fn qgroup_limit(&self, path: &Path, bytes: u64) -> Result<(), SysError>;
    /// Marks a directory NOCOW (`chattr +C`): files created in it later inherit it.
    fn set_nocow(&self, path: &Path) -> Result<(), SysError>;
    /// Sends `signal` (e.g. `TERM`, `KILL`) to process `pid`.
    fn kill(&self, pid: u32, signal: &str) -> Result<(), SysError>;
}
