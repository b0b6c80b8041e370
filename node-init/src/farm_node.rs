//! A node as a member of a storage farm (`node-init --etcd URLS --farm NAME`), once its API
//! serves. Three tasks, all ending on the node's stop:
//!
//! - the inbox (`farm_inbox`): blueprints and the farm's `store` deployments from etcd, applied
//!   through the node's own engine, results written back;
//! - membership: the node registers (farm_join) advertising the shard namespace the operator
//!   named (`--farm-zdb`), else the one its engine provisioned for the farm's `store`
//!   deployment (so a node joins a farm with nothing given by hand but the farm); its
//!   heartbeat reports the free space of that namespace as zdb's NSINFO counts it (limit minus
//!   data size), refreshed every third of the TTL;
//! - a repair candidate: `farm::ops::repair::Repairer` under the farm's election (one leader
//!   per farm), reaching shards with the namespace password of the verified `store`
//!   deployment. So repair places replacement shards on any node hosting that store while the
//!   owner is offline, within the limits the owner signed.
//!
//! - the services snapshot (`farm_services`): what `zos services` shows, published for
//!   `zos services --etcd` under a lease of its own.
//!
//! etcd being unreachable delays all of it (retried with backoff); it never stops the node.

use crate::farm_inbox::{HostedStore, Inbox};
use crate::farm_join::{FarmJoin, record_with};
use farm::ids::NodeId;
use farm::meta::Meta;
use farm::meta::records::ZdbEndpoint;
use farm::meta::registry::Registration;
use farm::ops::Farm;
use farm::ops::repair::Repairer;
use farm::store::zdb::{ZdbStore, ZdbStoreConfig};
use std::time::Duration;
use tokio::sync::watch;

/// What the node advertises: its shard namespace, the bytes it offers, and the namespace's
/// password (none for one the operator made by hand).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advertised {
    /// The namespace.
    pub endpoint: ZdbEndpoint,
    /// Bytes offered.
    pub capacity: u64,
    /// Its password.
    pub password: Option<bus::api::Secret>,
}

/// What to advertise (pure): the operator's namespace if given, else the first provisioned
/// store (by owner and id), offering at most `--farm-capacity` and at most the store's size.
pub fn advertised(j: &FarmJoin, hosted: &[HostedStore]) -> Option<Advertised> {
    if !j.zdb.is_empty() {
        return Some(Advertised {
            endpoint: ZdbEndpoint {
                address: j.zdb.clone(),
                namespace: j.namespace.clone(),
            },
            capacity: j.capacity,
            password: None,
        });
    }
    let first = hosted
        .iter()
        .min_by(|a, b| (&a.owner, &a.id).cmp(&(&b.owner, &b.id)))?;
    Some(Advertised {
        endpoint: first.endpoint.clone(),
        capacity: j.capacity.min(first.size),
        password: Some(first.password.clone()),
    })
}

/// Free bytes from a namespace's NSINFO (`data_size_bytes`, `data_limits_bytes`; a limit of 0
/// is none) for a node offering `capacity` (pure).
pub fn free_bytes(used: u64, limit: u64, capacity: u64) -> u64 {
    let cap = if limit == 0 {
        capacity
    } else {
        limit.min(capacity)
    };
    cap.saturating_sub(used)
}

fn store_for(meta: &Meta, password: Option<&bus::api::Secret>) -> ZdbStore {
    let cfg = ZdbStoreConfig {
        password: password.map(|p| zdb_client::Secret::new(p.expose())),
        ..ZdbStoreConfig::default()
    };
    ZdbStore::new(cfg, Some(meta.clone()))
}

/// Sleeps `d` unless `stop` comes first; true when stopped. The farm tasks' one wait.
pub(crate) async fn pause(d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    let stopped = tokio::select! {
        () = tokio::time::sleep(d) => false,
        r = stop.wait_for(|s| *s) => r.is_ok(),
    };
    stopped || *stop.borrow()
}

/// Runs the node's farm membership until `stop` (see the module doc). `api` is the node's own
/// API socket client.
pub async fn run(
    j: FarmJoin,
    id: String,
    public_key: String,
    api: bus::Client,
    mut stop: watch::Receiver<bool>,
) {
    let mut delay = Duration::from_secs(1);
    let meta = loop {
        match Meta::connect_with(&j.etcd, &j.access, &j.farm).await {
            Ok(m) => break m,
            Err(e) => tracing::warn!(farm = %j.farm, "farm etcd: {e}; retrying"),
        }
        if pause(delay, &mut stop).await {
            return;
        }
        delay = (delay * 2).min(Duration::from_secs(30));
    };
    let node = NodeId(id.clone());
    let services = tokio::spawn(crate::farm_services::run(
        meta.clone(),
        node.clone(),
        api.clone(),
        j.ttl,
        stop.clone(),
    ));
    let (hosted_tx, hosted) = watch::channel(Vec::new());
    let inbox = Inbox::new(meta.clone(), node, j.farm.clone(), api, hosted_tx);
    let inbox = tokio::spawn(inbox.run(stop.clone()));
    tokio::join!(
        member(&meta, &j, &id, &public_key, hosted.clone(), stop.clone()),
        repair(&meta, &j, hosted, stop),
    );
    let _ = inbox.await;
    let _ = services.await;
}

/// Registration and heartbeat.
async fn member(
    meta: &Meta,
    j: &FarmJoin,
    id: &str,
    public_key: &str,
    mut hosted: watch::Receiver<Vec<HostedStore>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut adv = loop {
        if let Some(a) = advertised(j, &hosted.borrow_and_update()) {
            break a;
        }
        tokio::select! {
            r = hosted.changed() => if r.is_err() { return },
            _ = stop.wait_for(|s| *s) => return,
        }
    };
    let mut delay = Duration::from_secs(1);
    let reg = loop {
        let rec = record_with(j, id, public_key, adv.endpoint.clone(), adv.capacity);
        match Registration::start(meta, rec, adv.capacity, j.ttl).await {
            Ok(r) => break r,
            Err(e) => tracing::warn!(farm = %j.farm, "farm registration failed: {e}; retrying"),
        }
        if pause(delay, &mut stop).await {
            return;
        }
        delay = (delay * 2).min(Duration::from_secs(30));
    };
    tracing::info!(farm = %j.farm, node = %id, namespace = %adv.endpoint.namespace, "registered in the farm");
    let mut store = store_for(meta, adv.password.as_ref());
    let node = NodeId(id.to_string());
    let mut tick = tokio::time::interval(Duration::from_secs(
        u64::try_from(j.ttl / 3).unwrap_or(1).max(1),
    ));
    enum Next {
        Stop,
        Hosted,
        Usage,
    }
    loop {
        // Decide first, act after: nothing borrowed by `select!` lives across an await.
        let next = tokio::select! {
            _ = stop.wait_for(|s| *s) => Next::Stop,
            r = hosted.changed() => if r.is_err() { Next::Stop } else { Next::Hosted },
            _ = tick.tick() => Next::Usage,
        };
        match next {
            Next::Stop => break,
            Next::Hosted => {
                let next = advertised(j, &hosted.borrow_and_update());
                if let Some(next) = next.filter(|n| *n != adv) {
                    let rec = record_with(j, id, public_key, next.endpoint.clone(), next.capacity);
                    match meta.put_json(&meta.keys().node(&rec.id), &rec, None).await {
                        Ok(()) => {
                            tracing::info!(namespace = %next.endpoint.namespace, "farm registration updated");
                            store = store_for(meta, next.password.as_ref());
                            adv = next;
                        }
                        Err(e) => tracing::warn!("farm registration update: {e}"),
                    }
                }
            }
            Next::Usage => {
                let usage = tokio::time::timeout(Duration::from_secs(5), store.usage(&node)).await;
                match usage {
                    Ok(Ok((used, limit))) => reg.set_free(free_bytes(used, limit, adv.capacity)),
                    Ok(Err(e)) => tracing::debug!("shard namespace usage: {e}"),
                    Err(_) => tracing::debug!("shard namespace usage: timed out"),
                }
            }
        }
    }
    reg.stop().await;
}

/// The repair candidate, once the node hosts a store (its password reaches the shards).
async fn repair(
    meta: &Meta,
    j: &FarmJoin,
    mut hosted: watch::Receiver<Vec<HostedStore>>,
    mut stop: watch::Receiver<bool>,
) {
    let Some(cfg) = j.repair.clone() else { return };
    let password = loop {
        if let Some(p) = advertised(j, &hosted.borrow_and_update()).and_then(|a| a.password) {
            break p;
        }
        tokio::select! {
            r = hosted.changed() => if r.is_err() { return },
            _ = stop.wait_for(|s| *s) => return,
        }
    };
    let farm = Farm::new(meta.clone(), store_for(meta, Some(&password)));
    if let Err(e) = farm.store.refresh(meta).await {
        tracing::debug!("repair: registry: {e}");
    }
    tracing::info!(farm = %j.farm, "repair candidate running");
    Repairer::new(&farm, cfg).run(stop).await;
}

#[cfg(test)]
mod test {
    use super::*;

    fn join(zdb: &str) -> FarmJoin {
        FarmJoin {
            etcd: vec![],
            access: Default::default(),
            farm: "f".into(),
            zdb: zdb.into(),
            namespace: "ns".into(),
            group: None,
            capacity: 100,
            disk_classes: vec!["hdd".into()],
            ttl: 10,
            repair: None,
        }
    }

    fn store(owner: &str, size: u64) -> HostedStore {
        HostedStore {
            owner: owner.into(),
            id: "s".into(),
            endpoint: ZdbEndpoint {
                address: format!("{owner}:1"),
                namespace: owner.into(),
            },
            password: bus::api::Secret("pw".into()),
            size,
        }
    }

    #[test]
    fn the_operator_namespace_wins_else_the_first_store_within_both_limits() {
        let by_hand = advertised(&join("h:1"), &[store("a", 50)]).expect("some");
        assert_eq!(by_hand.endpoint.address, "h:1");
        assert_eq!((by_hand.capacity, by_hand.password), (100, None));
        assert_eq!(advertised(&join(""), &[]), None);
        let s = advertised(&join(""), &[store("b", 500), store("a", 50)]).expect("some");
        assert_eq!((s.endpoint.namespace.as_str(), s.capacity), ("a", 50));
        assert!(s.password.is_some());
    }

    #[test]
    fn free_space_from_nsinfo() {
        assert_eq!(free_bytes(30, 50, 100), 20);
        assert_eq!(free_bytes(30, 0, 100), 70);
        assert_eq!(free_bytes(30, 500, 100), 70);
        assert_eq!(free_bytes(300, 50, 100), 0);
    }
}
