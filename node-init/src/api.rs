//! node-init's bus methods: one small handler each, errors mapped by the engine.

use crate::engine::Engine;
use crate::identity::NodeIdentity;
use bus::api::node::{Delete, Deploy, Get, GetIdentity, Identity, List};
use std::sync::Arc;

/// Registers the node API on `server`.
pub fn register(server: &mut bus::Server, engine: &Engine, identity: &Arc<NodeIdentity>) {
    let e = engine.clone();
    server.handle::<Deploy, _, _>(move |req| {
        let e = e.clone();
        async move {
            e.deploy(req.deployment)
                .await
                .map_err(|err| err.to_remote())
        }
    });
    let e = engine.clone();
    server.handle::<Get, _, _>(move |req| {
        let e = e.clone();
        async move {
            e.get(&req.id, req.owner.as_deref())
                .await
                .map_err(|err| err.to_remote())
        }
    });
    let e = engine.clone();
    server.handle::<List, _, _>(move |req| {
        let e = e.clone();
        async move { e.list(&req).await.map_err(|err| err.to_remote()) }
    });
    let e = engine.clone();
    server.handle::<Delete, _, _>(move |req| {
        let e = e.clone();
        async move { e.delete(req).await.map_err(|err| err.to_remote()) }
    });
    let id = identity.clone();
    server.handle::<GetIdentity, _, _>(move |_| {
        let id = id.clone();
        async move {
            Ok(Identity {
                node_id: id.node_id(),
                public_key: id.public_hex(),
            })
        }
    });
}
