//! `node.upgrade@1` and `node.upgrade.rollback@1` on node-init's bus socket.

use super::Upgrader;
use bus::RemoteError;
use bus::api::upgrade::{Rollback, Upgrade, UpgradeFlist};

/// Registers the upgrade methods.
pub fn register(server: &mut bus::Server, up: Upgrader) {
    let u = up.clone();
    server.handle::<Upgrade, _, _>(move |req| {
        let u = u.clone();
        async move {
            if !req.from.is_absolute() {
                return Err(RemoteError::invalid(
                    "--from must be an absolute path (node-init reads it)",
                ));
            }
            let _one = u.lock.lock().await;
            u.upgrade(&req.service, &req.from, req.ready_timeout_secs)
                .await
        }
    });
    let u = up.clone();
    server.handle::<UpgradeFlist, _, _>(move |req| {
        let u = u.clone();
        async move {
            let _one = u.lock.lock().await;
            u.upgrade_flist(&req.url, req.ready_timeout_secs).await
        }
    });
    server.handle::<Rollback, _, _>(move |req| {
        let u = up.clone();
        async move { u.rollback(&req.service, req.ready_timeout_secs).await }
    });
}
