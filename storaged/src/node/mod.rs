//! The node's storage: every disk storaged knows, its pool and its zdb server, and the
//! operations on them, one file per operation.
//!
//! Concurrency (why no caller ever waits for a disk it does not use):
//! * [`State`] is in memory only, behind a plain mutex held for a few field updates: reads
//!   (lists, gets, capacity, health) take nothing else and answer at once.
//! * Every change to a pool (its record, its volumes, its zdb's namespaces) holds that pool's
//!   own async lock (`pool_op.rs`) around its I/O, so operations on one disk queue behind each
//!   other and never behind another disk.
//! * Blocking work (system commands, record saves, probes) runs on blocking threads with a
//!   deadline; a disk whose step misses its deadline is marked failed and left alone.
//! * New namespaces and volumes, and growth, reserve their bytes in memory at the moment the
//!   policy places them, so concurrent placements never overbook a disk.
//! * The disk scan and the zdb supervision are separate loops (`daemon.rs`): a hung adoption
//!   does not stop a zdb from being restarted elsewhere.

mod capacity;
mod ns_alloc;
mod ns_delete;
mod ns_update;
mod pool_op;
mod report;
mod scan;
mod state_volume;
mod supervise;
#[cfg(test)]
mod test;
mod vol_create;
mod vol_delete;
mod vol_grow;
mod zdb_upgrade;

pub use pool_op::Limits;
pub use report::{DiskStatus, ListPools, PoolList, PoolReport, ZdbReport};

use crate::config::{Config, Paths};
use crate::disk::Found;
use crate::policy::PoolView;
use crate::pool::Pool;
use crate::system::System;
use crate::zdbs::{Watch, ZdbProc, ZdbState};
use crate::{Error, Result};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

/// One disk and what storaged made of it.
#[derive(Debug)]
pub struct DiskEntry {
    /// As found by the last scan.
    pub found: Found,
    /// Its state.
    pub status: DiskStatus,
    /// Its pool, once adopted (kept after a failure, for reporting).
    pub pool: Option<Pool>,
    /// Its zdb server process, while one runs.
    pub zdb: Option<ZdbProc>,
    /// Supervision of its zdb server across runs (state, failures, backoff).
    pub watch: Watch,
    /// What zdb forgets (freezes) was re-applied to the current run and the record agrees
    /// with its namespaces.
    pub reconciled: bool,
    /// A blocking probe or adoption of this disk has not returned yet (it hangs): no other is
    /// started meanwhile, so a dead disk costs one stuck thread, not one per scan.
    busy: Arc<AtomicBool>,
    /// Its server is being handed over to a new binary (`zdb_upgrade.rs`): supervision
    /// leaves it alone (the old process exits on purpose).
    handover: bool,
}

impl DiskEntry {
    fn new(found: Found) -> DiskEntry {
        DiskEntry {
            found,
            status: DiskStatus::Missing,
            pool: None,
            zdb: None,
            watch: Watch::new(Instant::now()),
            reconciled: false,
            busy: Arc::new(AtomicBool::new(false)),
            handover: false,
        }
    }

    fn ready_pool(&self) -> Option<&Pool> {
        match self.status {
            DiskStatus::Ready => self.pool.as_ref(),
            _ => None,
        }
    }

    /// Its server serves and what zdb forgets was re-applied to it.
    fn zdb_up(&self) -> bool {
        self.zdb.is_some() && self.watch.state == ZdbState::Up && self.reconciled
    }
}

/// What kind of object a name belongs to (namespaces and volumes have separate names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    /// A zdb namespace.
    Namespace,
    /// A volume (or the state volume).
    Volume,
}

/// Bytes promised to an operation in flight: a creation (which also claims its name) or a
/// growth, counted by placement until the operation commits or fails.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    disk: String,
    bytes: u64,
    name: Option<(Kind, String)>,
}

/// Everything storaged knows, in memory. Held only for short, non-blocking updates.
pub struct State {
    cfg: Config,
    disks: BTreeMap<String, DiskEntry>,
    pending: BTreeMap<u64, Pending>,
    next_pending: u64,
    state_path: Option<PathBuf>,
    config_file: Option<(PathBuf, Option<SystemTime>)>,
    scanned: bool,
    started: Instant,
}

impl State {
    /// What the policy sees: every pool of ours (ready or not), with bytes promised to
    /// operations in flight counted as reserved.
    pub fn views(&self) -> Vec<PoolView> {
        self.disks
            .values()
            .filter_map(|d| {
                let p = d.pool.as_ref()?;
                let pending: u64 = self
                    .pending
                    .values()
                    .filter(|r| r.disk == d.found.name)
                    .map(|r| r.bytes)
                    .sum();
                Some(PoolView {
                    disk: d.found.name.clone(),
                    class: p.record.class,
                    size: p.record.size,
                    reserved: p.record.reserved().saturating_add(pending),
                    healthy: d.status == DiskStatus::Ready,
                    zdb_up: d.zdb_up(),
                })
            })
            .collect()
    }

    /// The disk holding an object.
    fn disk_of(&self, kind: Kind, name: &str) -> Option<&str> {
        self.disks
            .iter()
            .find(|(_, d)| {
                d.pool.as_ref().is_some_and(|p| match kind {
                    Kind::Namespace => p.record.namespaces.contains_key(name),
                    Kind::Volume => p.record.volumes.contains_key(name),
                })
            })
            .map(|(k, _)| k.as_str())
    }

    /// The disk an object is being created on, while it is.
    fn creating(&self, kind: Kind, name: &str) -> Option<&str> {
        self.pending
            .values()
            .find(|p| {
                p.name
                    .as_ref()
                    .is_some_and(|(k, n)| *k == kind && n == name)
            })
            .map(|p| p.disk.as_str())
    }

    fn entry_mut(&mut self, disk: &str) -> Result<&mut DiskEntry> {
        self.disks
            .get_mut(disk)
            .ok_or_else(|| Error::Unavailable(format!("disk {disk} is gone")))
    }

    /// The pool of `disk`, which must be ready.
    fn ready_pool_mut(&mut self, disk: &str) -> Result<&mut Pool> {
        let d = self.entry_mut(disk)?;
        if d.status != DiskStatus::Ready {
            return Err(Error::Unavailable(format!(
                "disk {disk} is out of service ({})",
                d.status.problem().unwrap_or_default()
            )));
        }
        d.pool
            .as_mut()
            .ok_or_else(|| Error::Unavailable(format!("disk {disk} has no pool")))
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

struct Inner {
    sys: Arc<dyn System>,
    paths: Paths,
    zdb_binary: Mutex<PathBuf>,
    limits: Limits,
    events: Mutex<Option<Arc<dyn Events>>>,
    state: Mutex<State>,
    pool_locks: Mutex<BTreeMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// The node's storage. Cheap to clone: every clone is the same storage.
#[derive(Clone)]
pub struct Storage {
    inner: Arc<Inner>,
}

impl Storage {
    /// A storage with nothing scanned yet; call [`Storage::refresh`] next.
    pub fn new(sys: Arc<dyn System>, cfg: Config, paths: Paths) -> Storage {
        Self::with_limits(sys, cfg, paths, Limits::default())
    }

    /// [`Storage::new`] with other deadlines (tests shorten them).
    pub fn with_limits(sys: Arc<dyn System>, cfg: Config, paths: Paths, limits: Limits) -> Storage {
        // a live upgrade's binary (`zdb_upgrade.rs`) outranks the configured one
        let zdb_binary = zdb_upgrade::upgraded_binary(&paths)
            .or_else(|| cfg.zdb.binary.clone())
            .unwrap_or_else(default_zdb_binary);
        Storage {
            inner: Arc::new(Inner {
                sys,
                paths,
                zdb_binary: Mutex::new(zdb_binary),
                limits,
                events: Mutex::new(None),
                state: Mutex::new(State {
                    cfg,
                    disks: BTreeMap::new(),
                    pending: BTreeMap::new(),
                    next_pending: 0,
                    state_path: None,
                    config_file: None,
                    scanned: false,
                    started: Instant::now(),
                }),
                pool_locks: Mutex::new(BTreeMap::new()),
            }),
        }
    }

    /// Re-reads the disk list and class overrides from `file` whenever it changes, so
    /// file-backed disks can be added and removed while running.
    pub fn watch_config(&self, file: PathBuf) {
        let mtime = std::fs::metadata(&file).and_then(|m| m.modified()).ok();
        self.with_state(|st| st.config_file = Some((file, mtime)));
    }

    /// Sets where events go.
    pub fn set_events(&self, events: Arc<dyn Events>) {
        if let Ok(mut e) = self.inner.events.lock() {
            *e = Some(events);
        }
    }

    /// Paths in use.
    pub fn paths(&self) -> &Paths {
        &self.inner.paths
    }

    /// The config.
    pub fn config(&self) -> Config {
        self.with_state(|st| st.cfg.clone())
    }

    /// What the policy sees now.
    pub fn views(&self) -> Vec<PoolView> {
        self.with_state(|st| st.views())
    }

    /// Runs `f` on the state. Never hold it across an await or a blocking call.
    pub(crate) fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let mut g = self
            .inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut g)
    }

    fn sys(&self) -> Arc<dyn System> {
        self.inner.sys.clone()
    }

    fn publish<T: serde::Serialize>(&self, topic: &str, data: &T) {
        let events = self.inner.events.lock().ok().and_then(|e| e.clone());
        if let (Some(e), Ok(v)) = (events, serde_json::to_value(data)) {
            e.publish(topic, v);
        }
    }

    /// Stops every zdb server (for tests; normally they outlive storaged).
    pub async fn stop_zdbs(&self) {
        let procs: Vec<ZdbProc> =
            self.with_state(|st| st.disks.values_mut().filter_map(|d| d.zdb.take()).collect());
        for z in procs {
            z.stop(self.sys()).await;
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
