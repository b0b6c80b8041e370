//! The node's services snapshot in its farm's etcd (`services/<node>`): what `node.services@1`
//! answers on the node's own socket, so an operator sees a node's daemons from anywhere the
//! farm's etcd is reachable (`zos services --etcd URLS --node ID`) while the node still serves
//! no network API and takes no command from etcd for it (it only writes this key).
//!
//! Polled every [`POLL`], written when it changed (a state, pid, restart count, readiness or
//! detail; uptimes alone do not count) and at least every [`REFRESH`], under a lease of its
//! own: a node that stops removes it at once, one that dies drops out after the TTL, so a
//! snapshot found is never older than `REFRESH` plus the TTL.

use crate::farm_node::pause;
use bus::api::supervisor::{ListServices, ServiceList};
use farm::ids::NodeId;
use farm::meta::Meta;
use farm::meta::lease::Lease;
use farm::meta::records::now;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How often the node's own socket is asked.
pub const POLL: Duration = Duration::from_secs(2);
/// The longest an unchanged snapshot goes without being written again.
pub const REFRESH: Duration = Duration::from_secs(10);
/// node-init probes each running daemon (1 s bound each) before it answers.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// The value under `services/<node>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedServices {
    /// When the node wrote it (unix seconds, the node's clock).
    pub at: u64,
    /// What `node.services@1` answered then.
    pub list: ServiceList,
}

/// Whether `new` differs from `old` in more than uptimes (pure).
pub fn changed(old: &ServiceList, new: &ServiceList) -> bool {
    let stable = |l: &ServiceList| {
        let mut l = l.clone();
        for s in &mut l.services {
            s.uptime_secs = None;
        }
        l
    };
    stable(old) != stable(new)
}

/// Publishes node `node`'s snapshot, read through `api` (its own socket), until `stop`; then
/// revokes the lease so the snapshot goes with the node.
pub async fn run(
    meta: Meta,
    node: NodeId,
    api: bus::Client,
    ttl: i64,
    mut stop: watch::Receiver<bool>,
) {
    let api = api.call_timeout(CALL_TIMEOUT);
    let key = meta.keys().services(&node);
    let mut lease: Option<Lease> = None;
    let mut last: Option<(ServiceList, Instant)> = None;
    loop {
        let list = match api.call::<ListServices>(&bus::api::Empty {}).await {
            Ok(l) => Some(l),
            Err(e) => {
                tracing::debug!("services snapshot: {e}");
                None
            }
        };
        if lease.as_ref().is_none_or(Lease::lost) {
            last = None;
            lease = match Lease::grant(&meta, ttl).await {
                Ok(l) => Some(l),
                Err(e) => {
                    tracing::warn!("services snapshot: lease: {e}");
                    None
                }
            };
        }
        if let (Some(list), Some(l)) = (list, &lease) {
            let due = last
                .as_ref()
                .is_none_or(|(old, at)| changed(old, &list) || at.elapsed() >= REFRESH);
            if due {
                let rec = PublishedServices { at: now(), list };
                match meta.put_json(&key, &rec, Some(l.id())).await {
                    Ok(()) => last = Some((rec.list, Instant::now())),
                    Err(e) => tracing::warn!("services snapshot: {e}"),
                }
            }
        }
        if pause(POLL, &mut stop).await {
            break;
        }
    }
    if let Some(l) = lease {
        l.revoke().await;
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use bus::api::supervisor::ServiceStatus;

    fn list(uptime: u64, restarts: u32) -> ServiceList {
        ServiceList {
            node_init_version: "0.1.0".into(),
            services: vec![ServiceStatus {
                name: "storaged".into(),
                state: "running".into(),
                pid: Some(7),
                uptime_secs: Some(uptime),
                restarts,
                readiness: "ok".into(),
                version: None,
                detail: None,
                adopted: false,
            }],
        }
    }

    #[test]
    fn uptimes_alone_are_no_change() {
        assert!(!changed(&list(1, 0), &list(9, 0)));
        assert!(changed(&list(1, 0), &list(1, 1)));
    }
}
