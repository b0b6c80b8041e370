//! The node's storage: every disk storaged knows, its pool and its zdb server, and the
//! operations on them, one file per operation. Callers serialize access (one `Storage` behind a
//! mutex); policy decisions come from [`crate::policy`] over [`Storage::views`].

mod capacity;
mod ns_alloc;
mod ns_delete;
mod ns_update;
mod report;
mod scan;
mod state_volume;
mod supervise;
mod vol_create;
mod vol_delete;
mod vol_grow;

pub use report::{DiskStatus, ListPools, PoolList, PoolReport, ZdbReport};

use crate::config::{Config, Paths};
use crate::disk::Found;
use crate::policy::PoolView;
use crate::pool::Pool;
use crate::system::System;
use crate::zdbs::ZdbProc;
use crate::{Error, Result};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// One disk and what storaged made of it.
#[derive(Debug)]
pub struct DiskEntry {
    /// As found by the last scan.
    pub found: Found,
    /// Its state.
    pub status: DiskStatus,
    /// Its pool, once adopted (kept after a failure, for reporting).
    pub pool: Option<Pool>,
    /// Its zdb server, when it hosts one.
    pub zdb: Option<ZdbProc>,
    /// Last zdb start failure.
    pub zdb_error: Option<String>,
    /// Earliest next zdb start attempt.
    pub zdb_retry: Option<Instant>,
}

impl DiskEntry {
    fn ready_pool(&self) -> Option<&Pool> {
        match self.status {
            DiskStatus::Ready => self.pool.as_ref(),
            _ => None,
        }
    }
}

/// Events storaged publishes (a bus publisher in the daemon, nothing in tests).
pub trait Events: Send + Sync {
    /// Publishes `data` on `topic`.
    fn publish(&self, topic: &str, data: serde_json::Value);
}

impl Events for bus::Publisher {
    fn publish(&self, topic: &str, data: serde_json::Value) {
        bus::Publisher::publish(self, topic, &data);
    }
}

/// The node's storage.
pub struct Storage {
    sys: Arc<dyn System>,
    cfg: Config,
    paths: Paths,
    zdb_binary: PathBuf,
    disks: BTreeMap<String, DiskEntry>,
    events: Option<Arc<dyn Events>>,
    state_path: Option<PathBuf>,
    config_file: Option<(PathBuf, Option<std::time::SystemTime>)>,
}

impl Storage {
    /// A storage with nothing scanned yet; call [`Storage::refresh`] next.
    pub fn new(sys: Arc<dyn System>, cfg: Config, paths: Paths) -> Storage {
        let zdb_binary = cfg.zdb.binary.clone().unwrap_or_else(default_zdb_binary);
        Storage {
            sys,
            cfg,
            paths,
            zdb_binary,
            disks: BTreeMap::new(),
            events: None,
            state_path: None,
            config_file: None,
        }
    }

    /// Re-reads the disk list and class overrides from `file` whenever it changes, so
    /// file-backed disks can be added and removed while running.
    pub fn watch_config(&mut self, file: PathBuf) {
        let mtime = std::fs::metadata(&file).and_then(|m| m.modified()).ok();
        self.config_file = Some((file, mtime));
    }

    /// Sets where events go.
    pub fn set_events(&mut self, events: Arc<dyn Events>) {
        self.events = Some(events);
    }

    /// Paths in use.
    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    /// The config.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    fn publish<T: serde::Serialize>(&self, topic: &str, data: &T) {
        if let (Some(e), Ok(v)) = (&self.events, serde_json::to_value(data)) {
            e.publish(topic, v);
        }
    }

    /// What the policy sees: every pool of ours (ready or not).
    pub fn views(&self) -> Vec<PoolView> {
        self.disks
            .values()
            .filter_map(|d| {
                let p = d.pool.as_ref()?;
                Some(PoolView {
                    disk: d.found.name.clone(),
                    class: p.record.class,
                    size: p.record.size,
                    reserved: p.record.reserved(),
                    healthy: d.status == DiskStatus::Ready,
                    zdb_up: d.zdb.is_some(),
                })
            })
            .collect()
    }

    /// The disk holding namespace `name`.
    fn ns_disk(&self, name: &str) -> Option<&str> {
        self.disks
            .iter()
            .find(|(_, d)| {
                d.pool
                    .as_ref()
                    .is_some_and(|p| p.record.namespaces.contains_key(name))
            })
            .map(|(k, _)| k.as_str())
    }

    /// The disk holding volume `name`.
    fn volume_disk(&self, name: &str) -> Option<&str> {
        self.disks
            .iter()
            .find(|(_, d)| {
                d.pool
                    .as_ref()
                    .is_some_and(|p| p.record.volumes.contains_key(name))
            })
            .map(|(k, _)| k.as_str())
    }

    fn entry_mut(&mut self, disk: &str) -> Result<&mut DiskEntry> {
        self.disks
            .get_mut(disk)
            .ok_or_else(|| Error::Unavailable(format!("disk {disk} is gone")))
    }

    /// Stops every zdb server (for tests and `--stop-zdb-on-exit`; normally they outlive us).
    pub async fn stop_zdbs(&mut self) {
        let sys = self.sys.clone();
        for d in self.disks.values_mut() {
            if let Some(z) = d.zdb.take() {
                z.stop(sys.as_ref()).await;
            }
        }
    }
}

fn default_zdb_binary() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("zdb")))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("zdb"))
}
