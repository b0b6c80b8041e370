//! Production workload handlers: they ask storaged over the bus. One file per workload type.

mod container;
mod volume;
mod zdb;

pub use container::ContainerHandler;
pub use volume::VolumeHandler;
pub use zdb::ZdbHandler;

use crate::engine::{BoxFuture, CapacitySource, HandlerError, WorkloadHandler};
use bus::api::Empty;
use bus::api::compute::GetComputeCapacity;
use bus::api::storage::{Capacity, GetCapacity};
use std::collections::HashMap;
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

/// The handlers of every known workload type, backed by storaged and computed.
pub fn node_handlers(
    storaged: &bus::Client,
    computed: &bus::Client,
) -> HashMap<String, Arc<dyn WorkloadHandler>> {
    let mut h: HashMap<String, Arc<dyn WorkloadHandler>> = HashMap::new();
    h.insert("zdb".into(), Arc::new(ZdbHandler(storaged.clone())));
    h.insert("volume".into(), Arc::new(VolumeHandler(storaged.clone())));
    h.insert(
        "container".into(),
        Arc::new(ContainerHandler {
            storaged: storaged.clone(),
            computed: computed.clone(),
        }),
    );
    h
}

fn parse_err(e: crate::blueprint::BlueprintError) -> HandlerError {
    HandlerError(e.to_string())
}

/// A workload handed to the handler of another type.
fn not_a(wl: &bus::api::node::Workload, kind: &str) -> HandlerError {
    HandlerError(format!("workload {} is not a {kind}", wl.name))
}
