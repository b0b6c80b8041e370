//! Reports: the bus disk list and storaged's own, richer pool list.

use super::Storage;
use crate::disk::ClassSource;
use crate::zdbs::ZdbState;
use bus::api::storage::{Disk, DiskClass, DiskList};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// State of a disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", content = "detail", rename_all = "snake_case")]
pub enum DiskStatus {
    /// Pool mounted and healthy.
    Ready,
    /// Carries another node's identity: reported, never adopted.
    Foreign(String),
    /// Holds other data (or is in use): left alone.
    HasData(String),
    /// Its pool broke (I/O errors, device shrank or vanished while mounted).
    Failed(String),
    /// No longer present.
    Missing,
    /// Could not be set up (attach, mkfs or mount failed).
    Error(String),
}

impl DiskStatus {
    /// Why a disk is out of service, in words; `None` when it serves.
    pub fn problem(&self) -> Option<String> {
        match self {
            DiskStatus::Ready => None,
            DiskStatus::Failed(why) => Some(format!("failed: {why}")),
            DiskStatus::Missing => Some("missing".into()),
            DiskStatus::Error(why) => Some(format!("error: {why}")),
            DiskStatus::Foreign(node) => Some(format!("belongs to node {node}")),
            DiskStatus::HasData(what) => Some(format!("holds other data: {what}")),
        }
    }
}

/// A zdb server in a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZdbReport {
    /// Running and supervised.
    pub running: bool,
    /// What it does: starting, loading (with zdb's progress), up, down (why).
    #[serde(default, flatten)]
    pub state: ZdbState,
    /// Consecutive runs that failed; the next start waits 1 s doubling per failure (5 min cap).
    #[serde(default)]
    pub failures: u32,
    /// Its pid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// TCP port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Unix socket.
    pub socket: PathBuf,
    /// Why the last run ended or the last start failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One disk with its pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolReport {
    /// Disk name.
    pub name: String,
    /// Block device.
    pub device: PathBuf,
    /// Backing image of a file-backed disk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backing: Option<PathBuf>,
    /// Class, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<DiskClass>,
    /// Where the class came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_source: Option<ClassSource>,
    /// Measured seek latency, microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seek_us: Option<u64>,
    /// Size in bytes.
    pub size: u64,
    /// Reserved bytes.
    pub reserved: u64,
    /// State.
    pub status: DiskStatus,
    /// Mount point of its pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mountpoint: Option<PathBuf>,
    /// Its zdb server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zdb: Option<ZdbReport>,
    /// Namespaces on it.
    pub namespaces: Vec<String>,
    /// Volumes on it.
    pub volumes: Vec<String>,
    /// Whether the node's state volume is on it.
    pub state_volume: bool,
}

/// Reply of `storage.pool.list@1` (storaged's own method).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolList {
    /// All disks.
    pub pools: Vec<PoolReport>,
}

bus::method!(
    /// Disks with pool state, zdb servers, namespaces and volumes (storaged's own method).
    ListPools, "storage.pool.list" @ 1, bus::api::Empty => PoolList
);

impl Storage {
    /// Sets a disk's status, logging and publishing a change.
    pub(super) fn set_status(&self, name: &str, status: DiskStatus) {
        let ev = self.with_state(|st| {
            let d = st.disks.get_mut(name)?;
            if d.status == status {
                return None;
            }
            match &status {
                DiskStatus::Ready => tracing::info!(disk = name, "disk ready"),
                other => tracing::warn!(disk = name, status = ?other, "disk state changed"),
            }
            d.status = status;
            let mut ev = serde_json::json!({"name": name, "device": d.found.device});
            if let (Some(o), Ok(serde_json::Value::Object(s))) =
                (ev.as_object_mut(), serde_json::to_value(&d.status))
            {
                o.extend(s);
            }
            Some(ev)
        });
        if let Some(ev) = ev {
            self.publish("storage.disk", &ev);
        }
    }

    /// `storage.disk.list`: disks of ours (ready or broken); a broken one has no mountpoint
    /// and says why in `problem`.
    pub fn list_disks(&self) -> DiskList {
        self.with_state(|st| {
            let disks = st
                .disks
                .values()
                .filter_map(|d| {
                    let p = d.pool.as_ref()?;
                    Some(Disk {
                        name: d.found.name.clone(),
                        device: d.found.device.clone(),
                        class: p.record.class,
                        size: p.record.size,
                        reserved: p.record.reserved(),
                        mountpoint: d.ready_pool().map(|p| p.mountpoint.clone()),
                        problem: d.status.problem(),
                    })
                })
                .collect();
            DiskList { disks }
        })
    }

    /// `storage.pool.list`: everything, including disks that are not ours.
    pub fn list_pools(&self) -> PoolList {
        let paths = self.paths().clone();
        self.with_state(|st| {
            let pools = st
                .disks
                .values()
                .map(|d| {
                    let rec = d.pool.as_ref().map(|p| &p.record);
                    let down = matches!(d.watch.state, ZdbState::Down(_));
                    let zdb = if d.zdb.is_some() || (down && d.watch.failures > 0) {
                        Some(ZdbReport {
                            running: d.zdb.is_some(),
                            // Up once it serves and its namespaces' state was re-applied.
                            state: match &d.watch.state {
                                ZdbState::Up if !d.reconciled => ZdbState::Starting,
                                s => s.clone(),
                            },
                            failures: d.watch.failures,
                            pid: d.zdb.as_ref().map(|z| z.pid),
                            port: rec.and_then(|r| r.zdb_port),
                            socket: paths.zdb_socket(&d.found.name),
                            error: match &d.watch.state {
                                ZdbState::Down(why) => Some(why.clone()),
                                _ => None,
                            },
                        })
                    } else {
                        None
                    };
                    PoolReport {
                        name: d.found.name.clone(),
                        device: d.found.device.clone(),
                        backing: d.found.backing.clone(),
                        class: rec.map(|r| r.class).or(d.found.class),
                        class_source: rec.map(|r| r.class_source),
                        seek_us: rec.and_then(|r| r.seek_us),
                        size: rec.map(|r| r.size).unwrap_or(d.found.size),
                        reserved: rec.map(|r| r.reserved()).unwrap_or(0),
                        status: d.status.clone(),
                        mountpoint: d.pool.as_ref().map(|p| p.mountpoint.clone()),
                        zdb,
                        namespaces: rec
                            .map(|r| r.namespaces.keys().cloned().collect())
                            .unwrap_or_default(),
                        volumes: rec
                            .map(|r| r.volumes.keys().cloned().collect())
                            .unwrap_or_default(),
                        state_volume: rec.is_some_and(|r| r.state_volume.is_some()),
                    }
                })
                .collect();
            PoolList { pools }
        })
    }

    /// Health: `None` while starting (the first disk scan, then up to [`STARTUP_GRACE`] for
    /// the zdb servers it found to serve, load or fail), else what is wrong (`Some(None)`:
    /// nothing).
    pub fn health(&self) -> Option<Option<String>> {
        self.with_state(|st| {
            let settling = st.started.elapsed() < STARTUP_GRACE && zdbs_settling(st);
            (st.scanned && !settling).then(|| problems(st))
        })
    }

    /// What needs an operator now: `None` when all is well.
    pub fn problems(&self) -> Option<String> {
        self.with_state(|st| problems(st))
    }
}

/// How long storaged reports `starting` while its zdb servers come up.
pub const STARTUP_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// A ready pool's server is about to start, has started or loads, and neither serves
/// (re-applied) nor failed yet.
fn zdbs_settling(st: &super::State) -> bool {
    let views = st.views();
    st.disks.values().any(|d| {
        let wanted = crate::policy::hosts_zdb(&views, &d.found.name)
            || d.pool
                .as_ref()
                .is_some_and(|p| !p.record.namespaces.is_empty());
        d.status == DiskStatus::Ready
            && match (&d.zdb, &d.watch.state) {
                // A fresh zdb answers -LOADING while it replays, even an empty one for a
                // few milliseconds: within the grace that is still starting, not a problem.
                (Some(_), ZdbState::Starting | ZdbState::Loading(_)) => true,
                (Some(_), ZdbState::Up) => !d.reconciled,
                (None, ZdbState::Down(_)) => wanted && d.watch.failures == 0,
                _ => false,
            }
    })
}

/// What needs an operator: `None` when all is well.
fn problems(st: &super::State) -> Option<String> {
    let mut out = Vec::new();
    for d in st.disks.values() {
        // Not other data left alone, nor a disk gone that never held a pool of ours.
        let report = match &d.status {
            DiskStatus::HasData(_) => false,
            DiskStatus::Missing => d.pool.is_some(),
            _ => true,
        };
        if report && let Some(p) = d.status.problem() {
            out.push(format!("disk {} {p}", d.found.name));
        }
        if d.status == DiskStatus::Ready {
            match &d.watch.state {
                ZdbState::Loading(progress) => {
                    out.push(format!("zdb on {} is loading: {progress}", d.found.name))
                }
                ZdbState::Down(why) if d.watch.failures > 0 => {
                    out.push(format!("zdb on {}: {why}", d.found.name))
                }
                _ => {}
            }
        }
    }
    if st.state_path.is_none() {
        out.push("no state volume yet".into());
    }
    (!out.is_empty()).then(|| out.join("; "))
}
