//! The seam between the engine and the daemons that make workloads real: one
//! [`WorkloadHandler`] per workload type, plus the capacity source used before accepting.

use bus::api::node::Workload;
use bus::api::storage::Capacity;
use serde_json::Value;
use std::future::Future;
use std::pin::Pin;

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A handler failure; the engine records it and retries with backoff. Never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HandlerError(pub String);

impl From<bus::BusError> for HandlerError {
    fn from(e: bus::BusError) -> Self {
        HandlerError(e.to_string())
    }
}

/// Names a workload on the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadCtx {
    /// Owner key (hex).
    pub owner: String,
    /// Deployment id.
    pub deployment: String,
    /// Workload name.
    pub name: String,
}

impl WorkloadCtx {
    /// Node-wide unique name: `<first 16 hex of owner>-<deployment>-<workload>`. Unambiguous:
    /// the owner part has a fixed length and workload names have no `-`.
    pub fn global_name(&self) -> String {
        let short = self.owner.get(..16).unwrap_or(&self.owner);
        format!("{short}-{}-{}", self.deployment, self.name)
    }
}

/// Makes one type of workload real. Both methods must be idempotent: the engine calls `apply`
/// again after every restart and after any failure, and `remove` until it succeeds.
pub trait WorkloadHandler: Send + Sync {
    /// Creates or converges the workload to `wl`; returns its outputs (no secrets).
    fn apply<'a>(
        &'a self,
        ctx: &'a WorkloadCtx,
        wl: &'a Workload,
    ) -> BoxFuture<'a, Result<Value, HandlerError>>;
    /// Removes it; absent is success.
    fn remove<'a>(
        &'a self,
        ctx: &'a WorkloadCtx,
        wl: &'a Workload,
    ) -> BoxFuture<'a, Result<(), HandlerError>>;
    /// Outputs that change without an apply (a network's peers: handshakes, bytes), shown by
    /// `get` in place of the recorded ones; `None` keeps those. Must answer quickly.
    fn status<'a>(&'a self, _ctx: &'a WorkloadCtx) -> BoxFuture<'a, Option<Value>> {
        Box::pin(async { None })
    }
    /// What runs now, for the periodic drift check (`drift.rs`), given the recorded outputs:
    /// live output fields, drift (why), or unknown. Must answer within a few seconds; a
    /// daemon that does not answer is `Unknown`, not drift.
    fn observe<'a>(
        &'a self,
        _ctx: &'a WorkloadCtx,
        _recorded: &'a Value,
    ) -> BoxFuture<'a, super::Observed> {
        Box::pin(async { super::Observed::Unknown })
    }
}

/// Reports free capacity (storaged and computed in production).
pub trait CapacitySource: Send + Sync {
    /// Current storage capacity.
    fn capacity(&self) -> BoxFuture<'_, Result<Capacity, HandlerError>>;
    /// Memory still free for containers.
    fn memory_free(&self) -> BoxFuture<'_, Result<u64, HandlerError>>;
}
