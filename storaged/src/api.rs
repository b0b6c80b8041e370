//! The bus service: `bus::api::storage` methods plus storaged's own `storage.pool.list@1`,
//! each a small handler over the shared [`Storage`].

use crate::node::{ListPools, Storage};
use bus::api::Empty;
use bus::api::health::HealthStatus;
use bus::api::storage::*;
use bus::{RemoteError, Server};
use std::sync::{Arc, Mutex};

/// The storage, shared by handlers and the background loop.
pub type Shared = Arc<tokio::sync::Mutex<Storage>>;

/// Health as last computed by the background loop.
pub type HealthCell = Arc<Mutex<(HealthStatus, Option<String>)>>;

macro_rules! handler {
    ($server:ident, $shared:ident, $method:ty, |$s:ident, $req:ident| $body:expr) => {{
        let sh = $shared.clone();
        $server.handle::<$method, _, _>(move |$req| {
            let sh = sh.clone();
            async move {
                #[allow(unused_mut)]
                let mut $s = sh.lock().await;
                let r: crate::Result<_> = $body;
                r.map_err(RemoteError::from)
            }
        });
    }};
}

/// A bus server with every storaged method registered.
pub fn server(shared: Shared, health: HealthCell) -> Server {
    let mut server = Server::new("storaged");
    handler!(server, shared, ListDisks, |s, _r| Ok(s.list_disks()));
    handler!(server, shared, ListPools, |s, _r| Ok(s.list_pools()));
    handler!(server, shared, GetCapacity, |s, _r| Ok(s.capacity()));
    handler!(server, shared, AllocateZdb, |s, r| s.ns_allocate(r).await);
    handler!(server, shared, GetZdb, |s, r| s.ns_get(&r.name));
    handler!(server, shared, GrowZdb, |s, r| s
        .ns_grow(&r.name, r.size)
        .await);
    handler!(server, shared, PauseZdb, |s, r| s
        .ns_set_paused(&r.name, true)
        .await);
    handler!(server, shared, ResumeZdb, |s, r| s
        .ns_set_paused(&r.name, false)
        .await);
    handler!(server, shared, DeleteZdb, |s, r| s
        .ns_delete(&r.name)
        .await
        .map(|()| Empty {}));
    handler!(server, shared, CreateVolume, |s, r| s.vol_create(r));
    handler!(server, shared, GetVolume, |s, r| s.vol_get(&r.name));
    handler!(server, shared, GrowVolume, |s, r| s
        .vol_grow(&r.name, r.size));
    handler!(server, shared, DeleteVolume, |s, r| s
        .vol_delete(&r.name)
        .map(|()| Empty {}));
    server.health_check(Arc::new(move || {
        health
            .lock()
            .map(|h| h.clone())
            .unwrap_or((HealthStatus::Degraded, Some("health state poisoned".into())))
    }));
    server
}
