//! Reports: the bus disk list and storaged's own, richer pool list.

use super::Storage;
use crate::disk::ClassSource;
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
    /// Its pid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// TCP port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Unix socket.
    pub socket: PathBuf,
    /// Last start failure.
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
    /// `storage.disk.list`: disks of ours (ready or broken); a broken one has no mountpoint
    /// and says why in `problem`.
    pub fn list_disks(&self) -> DiskList {
        let disks = self
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
    }

    /// `storage.pool.list`: everything, including disks that are not ours.
    pub fn list_pools(&self) -> PoolList {
        let pools = self
            .disks
            .values()
            .map(|d| {
                let rec = d.pool.as_ref().map(|p| &p.record);
                let zdb = if d.zdb.is_some() || d.zdb_error.is_some() {
                    Some(ZdbReport {
                        running: d.zdb.is_some(),
                        pid: d.zdb.as_ref().map(|z| z.pid),
                        port: rec.and_then(|r| r.zdb_port),
                        socket: self.paths.zdb_socket(&d.found.name),
                        error: d.zdb_error.clone(),
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
    }

    /// Health summary: `None` when all is well, else what is wrong.
    pub fn problems(&self) -> Option<String> {
        let mut out = Vec::new();
        for d in self.disks.values() {
            // Health names what needs an operator: not other data left alone, nor a disk
            // gone that never held a pool of ours.
            let report = match &d.status {
                DiskStatus::HasData(_) => false,
                DiskStatus::Missing => d.pool.is_some(),
                _ => true,
            };
            if report && let Some(p) = d.status.problem() {
                out.push(format!("disk {} {p}", d.found.name));
            }
            if let (DiskStatus::Ready, Some(e)) = (&d.status, &d.zdb_error)
                && d.zdb.is_none()
            {
                out.push(format!("zdb on {}: {e}", d.found.name));
            }
        }
        if self.state_path.is_none() {
            out.push("no state volume yet".into());
        }
        (!out.is_empty()).then(|| out.join("; "))
    }
}
