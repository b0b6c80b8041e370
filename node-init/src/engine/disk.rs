//! The state disk (the folder holding the engine's records): a read-only or full disk is
//! noticed, reported and survived, and the engine recovers by itself once it is writable again.
//!
//! A probe every few seconds (on the blocking pool, so a hung disk holds no async worker)
//! reads the file system's flags and free space and writes, fsyncs and removes a small file;
//! [`classify`] turns that into a [`DiskState`]. While the disk is not `Ok`, or after a record
//! write failed (the engine is poisoned), the engine refuses changes (`unavailable`), node
//! health is `degraded` with the reason, and what runs keeps running: nothing here stops a
//! workload, and `get`/`list` still read the records. When a probe finds the disk healthy
//! again, the poison is cleared and every deployment is reconciled (results written while the
//! disk was gone may have been lost; applies are idempotent). Each change is logged and
//! published as a `node.health` event.

use super::Engine;
use bus::api::health::HealthStatus;
use serde::Serialize;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Below this much free space the disk counts as full (a record is a few KiB; leave room for
/// the temp file of a rename).
pub const MIN_FREE: u64 = 1 << 20;

/// Bound on one probe: past it the disk counts as failing (a hung device).
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// What a probe saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// The file system is mounted read-only.
    pub read_only: bool,
    /// Bytes free for unprivileged writers.
    pub free: u64,
    /// The test write (write, fsync, remove): its error, if any.
    pub write: Result<(), std::io::ErrorKind>,
}

/// The state disk's condition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", content = "detail", rename_all = "snake_case")]
pub enum DiskState {
    /// Writable with room.
    Ok,
    /// Mounted read-only, or writes refused as such.
    ReadOnly,
    /// No room left (bytes free).
    Full(u64),
    /// Writes fail otherwise (why).
    Failing(String),
}

impl DiskState {
    /// The health reason, when not `Ok`.
    pub fn problem(&self, dir: &Path) -> Option<String> {
        let d = dir.display();
        match self {
            DiskState::Ok => None,
            DiskState::ReadOnly => Some(format!("state disk {d} is read-only")),
            DiskState::Full(free) => Some(format!("state disk {d} is full ({free} bytes free)")),
            DiskState::Failing(why) => Some(format!("state disk {d} fails writes: {why}")),
        }
    }
}

/// The disk's condition from a probe: read-only wins, then a full disk, then any other
/// failed write.
pub fn classify(p: &Probe) -> DiskState {
    use std::io::ErrorKind::{QuotaExceeded, ReadOnlyFilesystem, StorageFull};
    match p.write {
        _ if p.read_only => DiskState::ReadOnly,
        Err(ReadOnlyFilesystem) => DiskState::ReadOnly,
        Err(StorageFull | QuotaExceeded) => DiskState::Full(p.free),
        _ if p.free < MIN_FREE => DiskState::Full(p.free),
        Err(kind) => DiskState::Failing(kind.to_string()),
        Ok(()) => DiskState::Ok,
    }
}

/// Probes `dir` (blocking).
pub fn probe(dir: &Path) -> Probe {
    let (read_only, free) = match rustix::fs::statvfs(dir) {
        Ok(s) => (
            s.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY),
            s.f_bavail.saturating_mul(s.f_frsize),
        ),
        Err(_) => (false, u64::MAX),
    };
    Probe {
        read_only,
        free,
        write: test_write(&dir.join(".disk-probe")).map_err(|e| e.kind()),
    }
}

fn test_write(path: &Path) -> std::io::Result<()> {
    let r = (|| {
        let mut f = std::fs::File::create(path)?;
        f.write_all(&[0u8; 512])?;
        f.sync_all()
    })();
    let _ = std::fs::remove_file(path);
    r
}

impl Engine {
    /// The state disk's condition as last probed.
    pub fn disk_state(&self) -> DiskState {
        self.inner
            .disk
            .lock()
            .map(|d| d.clone())
            .unwrap_or(DiskState::Ok)
    }

    /// Node health as far as the engine is concerned: degraded while the state disk is not
    /// healthy or a record write failed.
    pub fn health(&self) -> (HealthStatus, Option<String>) {
        let dir = &self.inner.state_dir;
        if let Some(p) = self.disk_state().problem(dir) {
            return (
                HealthStatus::Degraded,
                Some(format!("{p}: changes refused, workloads kept running")),
            );
        }
        if self.inner.poisoned.load(Ordering::Acquire) {
            return (
                HealthStatus::Degraded,
                Some(
                    "a state write failed; changes refused until the state disk is healthy".into(),
                ),
            );
        }
        (HealthStatus::Ok, None)
    }

    /// Probes the state disk every `every` (see the module doc).
    pub fn watch_disk(&self, every: Duration) {
        let engine = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                engine.check_disk().await;
            }
        });
    }

    /// One probe of the state disk, and what follows from it.
    pub async fn check_disk(&self) -> DiskState {
        let dir = self.inner.state_dir.clone();
        let probed = tokio::time::timeout(
            PROBE_TIMEOUT,
            tokio::task::spawn_blocking(move || probe(&dir)),
        )
        .await;
        let state = match probed {
            Ok(Ok(p)) => classify(&p),
            Ok(Err(e)) => DiskState::Failing(format!("probe: {e}")),
            Err(_) => DiskState::Failing("probe timed out".into()),
        };
        let before = match self.inner.disk.lock() {
            Ok(mut d) => std::mem::replace(&mut *d, state.clone()),
            Err(_) => return state,
        };
        let dir = &self.inner.state_dir;
        if state != before {
            match state.problem(dir) {
                Some(p) => tracing::error!(problem = %p, "state disk unhealthy: refusing changes"),
                None => tracing::info!(dir = %dir.display(), "state disk healthy again"),
            }
            let (status, detail) = self.health();
            self.inner.events.publish(
                "node.health",
                &serde_json::json!({"status": status, "detail": detail, "disk": state}),
            );
        }
        let was_poisoned = self.inner.poisoned.swap(false, Ordering::AcqRel);
        if state != DiskState::Ok && was_poisoned {
            self.inner.poisoned.store(true, Ordering::Release);
        }
        if state == DiskState::Ok && (was_poisoned || before != DiskState::Ok) {
            tracing::info!("state writes possible again: reconciling every deployment");
            if let Err(e) = self.reconcile_all() {
                tracing::warn!(error = %e, "cannot list deployments to reconcile");
            }
        }
        state
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use std::io::ErrorKind;

    fn p(read_only: bool, free: u64, write: Result<(), ErrorKind>) -> Probe {
        Probe {
            read_only,
            free,
            write,
        }
    }

    #[test]
    fn classifies_probes() {
        assert_eq!(classify(&p(false, 1 << 30, Ok(()))), DiskState::Ok);
        assert_eq!(classify(&p(true, 1 << 30, Ok(()))), DiskState::ReadOnly);
        assert_eq!(
            classify(&p(false, 1 << 30, Err(ErrorKind::ReadOnlyFilesystem))),
            DiskState::ReadOnly
        );
        assert_eq!(
            classify(&p(false, 0, Err(ErrorKind::StorageFull))),
            DiskState::Full(0)
        );
        assert_eq!(classify(&p(false, 4096, Ok(()))), DiskState::Full(4096));
        assert_eq!(
            classify(&p(false, 1 << 30, Err(ErrorKind::PermissionDenied))),
            DiskState::Failing(ErrorKind::PermissionDenied.to_string())
        );
    }

    #[test]
    #[expect(clippy::unwrap_used, reason = "tests")]
    fn probes_a_writable_folder() {
        let dir = tempfile::tempdir().unwrap();
        let pr = probe(dir.path());
        assert_eq!(pr.write, Ok(()));
        assert!(!dir.path().join(".disk-probe").exists());
    }
}
