//! Production workload handlers: they ask storaged over the bus. One file per workload type.

mod volume;
mod zdb;

pub use volume::VolumeHandler;
pub use zdb::ZdbHandler;

use crate::engine::{BoxFuture, CapacitySource, HandlerError, WorkloadHandler};
use bus::api::Empty;
use bus::api::storage::{Capacity, GetCapacity};
use std::collections::HashMap;
use std::sync::Arc;

/// Capacity from storaged.
pub struct StorageCapacity(pub bus::Client);

impl CapacitySource for StorageCapacity {
    fn capacity(&self) -> BoxFuture<'_, Result<Capacity, HandlerError>> {
        Box::pin(async move { Ok(self.0.call::<GetCapacity>(&Empty {}).await?) })
    }
}

/// The handlers of every known workload type, all backed by `storaged`.
pub fn storage_handlers(storaged: &bus::Client) -> HashMap<String, Arc<dyn WorkloadHandler>> {
    let mut h: HashMap<String, Arc<dyn WorkloadHandler>> = HashMap::new();
    h.insert("zdb".into(), Arc::new(ZdbHandler(storaged.clone())));
    h.insert("volume".into(), Arc::new(VolumeHandler(storaged.clone())));
    h
}

fn parse_err(e: crate::blueprint::BlueprintError) -> HandlerError {
    HandlerError(e.to_string())
}
