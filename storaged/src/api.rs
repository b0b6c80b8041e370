//! The bus service: `bus::api::storage` methods plus storaged's own `storage.pool.list@1`,
//! each a small handler over the shared [`Storage`]. Reads answer from memory at once;
//! changes wait only for the pool they touch.

use crate::node::{ListPools, Storage};
use bus::api::Empty;
use bus::api::health::HealthStatus;
use bus::api::storage::*;
use bus::{RemoteError, Server};
use std::sync::Arc;

macro_rules! handler {
    ($server:ident, $storage:ident, $method:ty, |$s:ident, $req:ident| $body:expr) => {{
        let st = $storage.clone();
        $server.handle::<$method, _, _>(move |$req| {
            let $s = st.clone();
            async move {
                let r: crate::Result<_> = $body;
                r.map_err(RemoteError::from)
            }
        });
    }};
}

/// A bus server with every storaged method registered.
pub fn server(storage: Storage) -> Server {
    let mut server = Server::new("storaged");
    handler!(server, storage, ListDisks, |s, _r| Ok(s.list_disks()));
    handler!(server, storage, ListPools, |s, _r| Ok(s.list_pools()));
    handler!(server, storage, GetCapacity, |s, _r| Ok(s.capacity()));
    handler!(server, storage, AllocateZdb, |s, r| s.ns_allocate(r).await);
    handler!(server, storage, GetZdb, |s, r| s.ns_get(&r.name));
    handler!(server, storage, GrowZdb, |s, r| s
        .ns_grow(&r.name, r.size)
        .await);
    handler!(server, storage, PauseZdb, |s, r| s
        .ns_set_paused(&r.name, true)
        .await);
    handler!(server, storage, ResumeZdb, |s, r| s
        .ns_set_paused(&r.name, false)
        .await);
    handler!(server, storage, DeleteZdb, |s, r| s
        .ns_delete(&r.name)
        .await
        .map(|()| Empty {}));
    handler!(server, storage, bus::api::upgrade::UpgradeZdb, |s, r| s
        .zdb_upgrade(&r.binary)
        .await);
    handler!(server, storage, CreateVolume, |s, r| s.vol_create(r).await);
    handler!(server, storage, GetVolume, |s, r| s.vol_get(&r.name));
    handler!(server, storage, GrowVolume, |s, r| s
        .vol_grow(&r.name, r.size)
        .await);
    handler!(server, storage, DeleteVolume, |s, r| s
        .vol_delete(&r.name)
        .await
        .map(|()| Empty {}));
    server.health_check(Arc::new(move || match storage.health() {
        None => (
            HealthStatus::Starting,
            Some("first disk scan running".into()),
        ),
        Some(None) => (HealthStatus::Ok, None),
        Some(Some(problems)) => (HealthStatus::Degraded, Some(problems)),
    }));
    server
}
