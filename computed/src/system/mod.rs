//! Every kernel or outside side effect the engine causes (flist downloads, the overlay mount
//! through `flist container`, network namespaces through `ip`, shim processes and their
//! liveness, the machine's memory and CPUs) goes through [`System`], with a Linux
//! implementation ([`Linux`]) and a recording fake ([`Fake`]), so the engine's policy and
//! sequencing are tested without root. The shim's runtime work (libcontainer: namespaces,
//! cgroups, process spawn and kill) happens in the shim process, not here.

mod fake;
mod linux;
mod process;

pub use fake::{Call, Fake};
pub use linux::{Linux, Tools};
pub use process::tail;

use crate::error::Result;
use std::path::{Path, PathBuf};

/// Where netns files live (`ip netns` convention), so `ip -n NAME` and the network daemon find
/// them.
pub const NETNS_DIR: &str = "/run/netns";

/// Path of the network namespace `name`.
pub fn netns_path(name: &str) -> std::path::PathBuf {
    Path::new(NETNS_DIR).join(name)
}

/// Side effects of the engine. Methods block (the engine runs them on operation threads, never
/// under a lock); each has a deadline, so a hung helper fails the operation instead of holding
/// the container forever.
pub trait System: Send + Sync + 'static {
    /// Fetches `url` (http or https) into the new file `to`, at most `max` bytes.
    fn download(&self, url: &str, to: &Path, max: u64) -> Result<()>;
    /// Stacks an overlay (upper and work folders in `rw`) on the shared read-only mount of
    /// `flist` at `target`, fetching blocks from `stores` (URLs that may hold credentials).
    fn rootfs_mount(&self, flist: &Path, stores: &[String], rw: &Path, target: &Path)
    -> Result<()>;
    /// Removes the overlay at `target` (the shared mount goes with its last user). Not mounted
    /// and not counted is fine.
    fn rootfs_unmount(&self, target: &Path) -> Result<()>;
    /// Whether an overlay is mounted at `target`.
    fn is_overlay(&self, target: &Path) -> bool;
    /// Whether the container root at `target` is mounted and readable: an overlay whose flist
    /// mount still answers (a dead flist daemon leaves the mount in place, failing reads).
    fn rootfs_ok(&self, target: &Path) -> bool {
        self.is_overlay(target)
    }
    /// Hands every shared flist mount over to the `flist` binary `binary`, live; it becomes
    /// the one new mounts use when every mount took it. Returns the binary used before and
    /// each mount's outcome.
    fn rootfs_upgrade(
        &self,
        binary: &Path,
    ) -> Result<(PathBuf, Vec<bus::api::upgrade::FlistMountHandover>)> {
        let _ = binary;
        Err(crate::Error::Invalid(
            "this system cannot upgrade flist mounts".into(),
        ))
    }
    /// Creates the network namespace `name` with only loopback, up. An existing one is kept.
    fn netns_create(&self, name: &str) -> Result<()>;
    /// Deletes the network namespace `name`; absent is fine.
    fn netns_delete(&self, name: &str) -> Result<()>;
    /// Starts `exe shim DIR` detached (own process group, output to `DIR/shim.log`).
    fn spawn_shim(&self, exe: &Path, dir: &Path) -> Result<()>;
    /// Whether a shim holds the lock of the container in `dir`.
    fn shim_alive(&self, dir: &Path) -> bool;
    /// Physical memory in bytes.
    fn memory_total(&self) -> u64;
    /// Logical CPUs.
    fn cpus(&self) -> u32;
}
