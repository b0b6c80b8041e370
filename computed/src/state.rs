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
//! rename (`nodeutil::fs`), mode 0600 (the spec holds store credentials), so a crash leaves the
//! old or the new one, never half of one.

use crate::error::{Error, IoContext, Result};
use bus::api::compute::{Container, ContainerSpec, ContainerState};
use rustix::fs::FlockOperation;
use serde::de::DeserializeOwned;
use std::fs;
use std::path::{Path, PathBuf};

/// The folder of one container.
#[derive(Debug, Clone)]
pub struct Dir(pub PathBuf);

impl Dir {
    /// `<root>/containers/<name>`; `name` must have passed
    /// [`crate::engine::validate::name`] (no `/`, no `..`).
    pub fn new(root: &Path, name: &str) -> Dir {
        Dir(root.join("containers").join(name))
    }
    /// Path of a file in it.
    pub fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
    /// The spec.
    pub fn spec(&self) -> Result<ContainerSpec> {
        read_json(&self.file("spec.json"))?.ok_or_else(|| Error::NotFound(self.name()))
    }
    /// Replaces the spec.
    pub fn set_spec(&self, spec: &ContainerSpec) -> Result<()> {
        Ok(nodeutil::fs::write_json(&self.file("spec.json"), spec)?)
    }
    /// The status (`None` before the first write).
    pub fn status(&self) -> Result<Option<Container>> {
        read_json(&self.file("status.json"))
    }
    /// Replaces the status.
    pub fn set_status(&self, c: &Container) -> Result<()> {
        Ok(nodeutil::fs::write_json(&self.file("status.json"), c)?)
    }
    /// Whether a stop was asked.
    pub fn stop_requested(&self) -> bool {
        self.file("stop").exists()
    }
    /// Whether a shim holds the lock now.
    pub fn shim_alive(&self) -> bool {
        let Ok(f) = fs::OpenOptions::new()
            .read(true)
            .open(self.file("shim.lock"))
        else {
            return false;
        };
        rustix::fs::flock(&f, FlockOperation::NonBlockingLockShared).is_err()
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
    fn name(&self) -> String {
        self.0
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

/// Reads a JSON file; `None` when it does not exist.
fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    nodeutil::fs::read_json(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::InvalidData => Error::Invalid(e.to_string()),
        _ => Error::Io {
            path: path.to_path_buf(),
            source: std::sync::Arc::new(e),
        },
    })
}

/// The status a new container starts with.
pub fn initial_status(spec: &ContainerSpec, identity: &str, netns: &str) -> Container {
    Container {
        name: spec.name.clone(),
        state: ContainerState::Creating,
        pid: None,
        exit_code: None,
        signal: None,
        oom_killed: false,
        restarts: 0,
        started_at: None,
        finished_at: None,
        message: String::new(),
        identity: identity.to_string(),
        netns: netns.to_string(),
        timings: Default::default(),
    }
}

/// Unix time in seconds.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
