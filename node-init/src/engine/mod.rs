//! The blueprint engine: accepts verified deployments durably, then makes them real and keeps
//! them real (reconcile at start, retries with backoff, a periodic drift repair in
//! `drift.rs`), and deletes them on a signed request.
//!
//! Operations are one file each: [`deploy`](Engine::deploy), [`delete`](Engine::delete),
//! [`get`](Engine::get)/[`list`](Engine::list), and the worker in `reconcile.rs`. Decisions about
//! what to do next are pure (`plan.rs`); execution calls the [`WorkloadHandler`]s.

mod delete;
mod deploy;
mod disk;
mod drift;
mod handler;
mod plan;
mod reconcile;
mod store;
mod view;

pub use disk::{DiskState, Probe, classify};
pub use drift::{Action, DriftReport, Observed, decide};
pub use handler::{BoxFuture, CapacitySource, HandlerError, WorkloadCtx, WorkloadHandler};
pub use plan::{Step, next_step};
pub use store::{Change, Record, Store, StoreError, WorkloadEntry};

use crate::blueprint::BlueprintError;
use bus::api::node::DeploymentEvent;
use bus::{ErrorCode, Publisher, RemoteError};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// Engine failures, as callers see them.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The blueprint or request is refused; nothing changed.
    #[error(transparent)]
    Refused(#[from] BlueprintError),
    /// No such deployment.
    #[error("no deployment {0}")]
    NotFound(String),
    /// Several owners have a deployment with this id.
    #[error("several owners have a deployment {0}: give the owner key")]
    Ambiguous(String),
    /// Not enough room.
    #[error("not enough capacity: {0}")]
    NoCapacity(String),
    /// Capacity could not be checked.
    #[error("cannot check capacity: {0}")]
    CapacityUnknown(String),
    /// The store failed.
    #[error("state store: {0}")]
    Store(#[from] StoreError),
    /// A previous write failed; the engine refuses changes until its disk is healthy again.
    #[error(
        "state store failed earlier (disk full or read-only?); changes are refused until the \
         state disk is writable again"
    )]
    Poisoned,
}

impl EngineError {
    /// The error to send over the bus.
    pub fn to_remote(&self) -> RemoteError {
        match self {
            EngineError::Refused(e) => e.to_remote(),
            EngineError::NotFound(_) => RemoteError::not_found(self.to_string()),
            EngineError::Ambiguous(_) => RemoteError::invalid(self.to_string()),
            EngineError::NoCapacity(_) => RemoteError::new(ErrorCode::NoCapacity, self.to_string()),
            EngineError::CapacityUnknown(_) | EngineError::Poisoned => {
                RemoteError::new(ErrorCode::Unavailable, self.to_string())
            }
            EngineError::Store(_) => RemoteError::internal(self.to_string()),
        }
    }
}

/// Timing of retries.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// First delay.
    pub base: Duration,
    /// Longest delay.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_secs(1),
            max: Duration::from_secs(300),
        }
    }
}

impl Backoff {
    /// Delay before retry number `attempt` (1-based): base * 2^(attempt-1), capped.
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempt.saturating_sub(1).min(20))
            .unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }
}

/// (owner, id)
pub(crate) type Key = (String, String);

struct Inner {
    store: Store,
    handlers: HashMap<String, Arc<dyn WorkloadHandler>>,
    capacity: Arc<dyn CapacitySource>,
    events: Publisher,
    backoff: Backoff,
    /// Serializes every read-modify-write of a record.
    lock: tokio::sync::Mutex<()>,
    queue: mpsc::UnboundedSender<Key>,
    pending: Mutex<HashSet<Key>>,
    poisoned: AtomicBool,
    /// The folder of the records (its disk is probed: `disk.rs`).
    state_dir: std::path::PathBuf,
    /// The state disk as last probed.
    disk: Mutex<DiskState>,
}

/// The engine. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl Engine {
    /// Opens the engine on `state_dir` and starts its worker, which first reconciles every
    /// active or deleting deployment. Must be called inside a tokio runtime.
    pub fn start(
        state_dir: &Path,
        handlers: HashMap<String, Arc<dyn WorkloadHandler>>,
        capacity: Arc<dyn CapacitySource>,
        events: Publisher,
        backoff: Backoff,
    ) -> Result<Self, EngineError> {
        let store = Store::open(state_dir)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let engine = Engine {
            inner: Arc::new(Inner {
                store,
                handlers,
                capacity,
                events,
                backoff,
                lock: tokio::sync::Mutex::new(()),
                queue: tx,
                pending: Mutex::new(HashSet::new()),
                poisoned: AtomicBool::new(false),
                state_dir: state_dir.to_path_buf(),
                disk: Mutex::new(DiskState::Ok),
            }),
        };
        let count = engine.reconcile_all()?;
        tracing::info!(deployments = count, "reconciling deployments after start");
        tokio::spawn(reconcile::worker(engine.clone(), rx));
        Ok(engine)
    }

    /// Queues every active or deleting deployment; how many.
    pub(crate) fn reconcile_all(&self) -> Result<usize, EngineError> {
        let mut count = 0;
        for rec in self.inner.store.all()? {
            if rec.state != bus::api::node::DeploymentState::Deleted {
                self.enqueue((rec.owner, rec.id));
                count += 1;
            }
        }
        Ok(count)
    }

    /// True when a state write failed or the state disk is unhealthy (`disk.rs`): changes are
    /// refused, the node is not healthy.
    pub fn is_poisoned(&self) -> bool {
        self.inner.poisoned.load(Ordering::Acquire) || self.disk_state() != DiskState::Ok
    }

    pub(crate) fn enqueue(&self, key: Key) {
        let fresh = self
            .inner
            .pending
            .lock()
            .map(|mut p| p.insert(key.clone()))
            .unwrap_or(true);
        if fresh {
            let _ = self.inner.queue.send(key);
        }
    }

    /// Saves, poisoning the engine on failure.
    pub(crate) fn save(&self, rec: &Record) -> Result<(), EngineError> {
        if self.is_poisoned() {
            return Err(EngineError::Poisoned);
        }
        self.inner.store.save(rec).map_err(|e| {
            tracing::error!(error = %e, "state write failed: refusing further changes");
            self.inner.poisoned.store(true, Ordering::Release);
            EngineError::Store(e)
        })
    }

    pub(crate) fn publish(&self, rec: &Record, workload: Option<&str>, message: &str) {
        let workload_state = workload
            .and_then(|w| rec.workloads.get(w))
            .map(|e| e.result.state);
        let ev = DeploymentEvent {
            owner: rec.owner.clone(),
            id: rec.id.clone(),
            version: rec.version,
            workload: workload.map(str::to_string),
            state: rec.state,
            workload_state,
            message: message.to_string(),
        };
        self.inner.events.publish("node.deployment", &ev);
    }
}

#[cfg(test)]
mod test;
