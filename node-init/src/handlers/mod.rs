//! Production workload handlers: they ask storaged, computed and netd over the bus. One file per
//! workload type, each a [`TypedHandler`] over its parsed spec; [`Typed`] turns one into the
//! engine's [`WorkloadHandler`] (parse, type check, boxing), written once here.

mod container;
mod network;
mod store;
mod volume;
mod zdb;

pub use container::{ContainerHandler, compute_spec};
pub use network::{NetworkHandler, attach_only, netd_spec, network_id};
pub use store::StoreHandler;
pub use volume::VolumeHandler;
pub use zdb::ZdbHandler;

use crate::blueprint::WorkloadSpec;
use crate::engine::{
    BoxFuture, CapacitySource, HandlerError, Observed, WorkloadCtx, WorkloadHandler,
};
use bus::api::Empty;
use bus::api::compute::GetComputeCapacity;
use bus::api::node::Workload;
use bus::api::storage::{Capacity, GetCapacity};
use serde_json::Value;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

/// Capacity from storaged (disks) and computed (memory).
pub struct NodeCapacity {
    /// storaged.
    pub storaged: bus::Client,
    /// computed.
    pub computed: bus::Client,
}

impl CapacitySource for NodeCapacity {
    fn capacity(&self) -> BoxFuture<'_, Result<Capacity, HandlerError>> {
        Box::pin(async move { Ok(self.storaged.call::<GetCapacity>(&Empty {}).await?) })
    }
    fn memory_free(&self) -> BoxFuture<'_, Result<u64, HandlerError>> {
        Box::pin(async move {
            Ok(self
                .computed
                .call::<GetComputeCapacity>(&Empty {})
                .await?
                .memory_free())
        })
    }
}

/// The handler of one workload type, over its parsed spec. Both operations must be idempotent
/// (see [`WorkloadHandler`]).
pub trait TypedHandler: Send + Sync + 'static {
    /// The workload type (`zdb`, `volume`, ...).
    const KIND: &'static str;
    /// Its parsed data.
    type Spec: Send;
    /// The spec, when `spec` is of this type.
    fn spec(spec: WorkloadSpec) -> Option<Self::Spec>;
    /// Creates or converges the workload; returns its outputs (no secrets).
    fn apply(
        &self,
        ctx: &WorkloadCtx,
        wl: &Workload,
        spec: Self::Spec,
    ) -> impl Future<Output = Result<Value, HandlerError>> + Send;
    /// Removes it; absent is success.
    fn remove(&self, ctx: &WorkloadCtx) -> impl Future<Output = Result<(), HandlerError>> + Send;
    /// Live outputs for `get` (see [`WorkloadHandler::status`]); none by default.
    fn status(&self, _ctx: &WorkloadCtx) -> impl Future<Output = Option<Value>> + Send {
        async { None }
    }
    /// What runs now (see [`WorkloadHandler::observe`]); unknown by default.
    fn observe(
        &self,
        _ctx: &WorkloadCtx,
        _recorded: &Value,
    ) -> impl Future<Output = Observed> + Send {
        async { Observed::Unknown }
    }
}

/// A [`TypedHandler`] as the engine sees it.
pub struct Typed<H>(pub H);

impl<H: TypedHandler> WorkloadHandler for Typed<H> {
    fn apply<'a>(
        &'a self,
        ctx: &'a WorkloadCtx,
        wl: &'a Workload,
    ) -> BoxFuture<'a, Result<Value, HandlerError>> {
        Box::pin(async move {
            let parsed = WorkloadSpec::parse(wl).map_err(|e| HandlerError(e.to_string()))?;
            let spec = H::spec(parsed).ok_or_else(|| {
                HandlerError(format!("workload {} is not a {}", wl.name, H::KIND))
            })?;
            self.0.apply(ctx, wl, spec).await
        })
    }

    fn remove<'a>(
        &'a self,
        ctx: &'a WorkloadCtx,
        _wl: &'a Workload,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(self.0.remove(ctx))
    }

    fn status<'a>(&'a self, ctx: &'a WorkloadCtx) -> BoxFuture<'a, Option<Value>> {
        Box::pin(self.0.status(ctx))
    }

    fn observe<'a>(&'a self, ctx: &'a WorkloadCtx, recorded: &'a Value) -> BoxFuture<'a, Observed> {
        Box::pin(self.0.observe(ctx, recorded))
    }
}

fn typed<H: TypedHandler>(h: H) -> (String, Arc<dyn WorkloadHandler>) {
    (H::KIND.to_string(), Arc::new(Typed(h)))
}

/// The daemons the handlers ask.
pub struct Daemons {
    /// storaged.
    pub storaged: bus::Client,
    /// computed.
    pub computed: bus::Client,
    /// netd.
    pub netd: bus::Client,
}

/// The handlers of every known workload type, backed by storaged, computed and netd.
pub fn node_handlers(d: &Daemons) -> HashMap<String, Arc<dyn WorkloadHandler>> {
    HashMap::from([
        typed(ZdbHandler(d.storaged.clone())),
        typed(VolumeHandler(d.storaged.clone())),
        typed(ContainerHandler {
            storaged: d.storaged.clone(),
            computed: d.computed.clone(),
            netd: d.netd.clone(),
        }),
        typed(NetworkHandler(d.netd.clone())),
        typed(StoreHandler(d.storaged.clone())),
    ])
}
