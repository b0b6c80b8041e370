//! The on-disk state of one container, shared by computed and the container's shim.
//!
//! ```text
//! <root>/containers/<name>/spec.json     the request (written by computed before the shim starts)
//! <root>/containers/<name>/status.json   the shim's view: state, pid, exits, restarts (atomic)
//! <root>/containers/<name>/shim.lock     flock held by the live shim (liveness without pid reuse)
//! <root>/containers/<name>/shim.log      the shim's own messages
//! <root>/containers/<name>/stop          present when a stop was asked (survives a shim crash)
//! <root>/containers/<name>/out-<N>.log   captured output, N = absolute offset of its first byte
//! <root>/containers/<name>/bundle/       OCI config.json
//! <root>/containers/<name>/rootfs/       the overlay (merged root)
//! <root>/containers/<name>/runtime/      libcontainer's state
//! ```
//! Files that a restart trusts (`spec.json`, `status.json`) are replaced by temp + fsync +
//! rename, so a crash leaves the old or the new one, never half of one.

use crate::error::{IoContext, Result};
use bus::api::compute::{Container, ContainerSpec};
use rustix::fs::FlockOperation;
use serde::{Serialize, de::DeserializeOwned};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The folder of one container.
#[derive(Debug, Clone)]
pub struct Dir(pub PathBuf);

impl Dir {
    /// `<root>/containers/<name>`.
    pub fn new(root: &Path, name: &str) -> Dir {
        Dir(root.join("containers").join(name))
    }
    /// Path of a file in it.
    pub fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
    /// The spec.
    pub fn spec(&self) -> Result<ContainerSpec> {
        read_json(&self.file("spec.json"))
    }
    /// The status (`None` before the first write).
    pub fn status(&self) -> Result<Option<Container>> {
        let p = self.file("status.json");
        if !p.exists() {
            return Ok(None);
        }
        read_json(&p).map(Some)
    }
    /// Replaces the status.
    pub fn set_status(&self, c: &Container) -> Result<()> {
        write_json(&self.file("status.json"), c)
    }
    /// Whether a shim holds the lock now.
    pub fn shim_alive(&self) -> bool {
        let Ok(f) = fs::OpenOptions::new()
            .read(true)
            .open(self.file("shim.lock"))
        else {
            return false;
        };
        match rustix::fs::flock(&f, FlockOperation::NonBlockingLockShared) {
            Ok(()) => false,
            Err(_) => true,
        }
    }
    /// Takes the shim lock; `None` when another shim holds it.
    pub fn lock_shim(&self) -> Result<Option<fs::File>> {
        let p = self.file("shim.lock");
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .ctx(&p)?;
        match rustix::fs::flock(&f, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(Some(f)),
            Err(_) => Ok(None),
        }
    }
}

/// Reads a JSON file.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = fs::read(path).ctx(path)?;
    serde_json::from_slice(&bytes)
        .map_err(|e| crate::error::Error::Invalid(format!("{}: {e}", path.display())))
}

/// Writes a JSON file by temp + fsync + rename + fsync of the folder.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(value)
        .map_err(|e| crate::error::Error::Invalid(format!("{}: {e}", path.display())))?;
    write_atomic(path, &bytes)
}

/// Replaces `path` with `bytes` atomically and durably.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = path.with_extension("tmp");
    {
        let mut f = fs::File::create(&tmp).ctx(&tmp)?;
        f.write_all(bytes).ctx(&tmp)?;
        f.sync_all().ctx(&tmp)?;
    }
    fs::rename(&tmp, path).ctx(path)?;
    fs::File::open(dir).and_then(|d| d.sync_all()).ctx(dir)
}

/// Unix time in seconds.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
