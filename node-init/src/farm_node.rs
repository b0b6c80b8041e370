//! A node as a member of a storage farm (`node-init --etcd URLS --farm NAME`), once its API
//! serves. Three tasks, all ending on the node's stop:
//!
//! - the inbox (`farm_inbox`): blueprints and the farm's `store` deployments from etcd, applied
//!   through the node's own engine, results written back;
//! - membership: the node registers (farm_join) advertising the shard namespace the operator
//!   named (`--farm-zdb`), else every one its engine provisioned for the farm's `store`
//!   deployments, each labelled with its store (so a node joins a farm with nothing given by
//!   hand but the farm, and several owners share the farm's nodes); its heartbeat reports the
//!   free space of each namespace as zdb's NSINFO counts it (limit minus data size), refreshed
//!   every third of the TTL;
//! - repair candidates: one `farm::ops::repair::Repairer` per hosted store, under that
//!   store's election (one leader per store), reaching shards with the namespace password of
//!   the verified `store` deployment. So repair places replacement shards on any node hosting
//!   that store while the owner is offline, within the limits the owner signed.
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
use farm::meta::registry::{Free, Registration};
use farm::ops::Farm;
use farm::ops::repair::{RepairConfig, Repairer};
use farm::store::zdb::{ZdbStore, ZdbStoreConfig};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::watch;

/// One namespace the node advertises: where it is (and its store), the bytes it offers, and
/// its password (none for one the operator made by hand).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advertised {
    /// The namespace.
    pub endpoint: ZdbEndpoint,
    /// Bytes offered.
    pub capacity: u64,
    /// Its password.
    pub password: Option<bus::api::Secret>,
}

/// What to advertise (pure): the operator's namespace if given, else every provisioned store
/// (in store order), each offering at most `--farm-capacity` and at most the store's size.
pub fn advertised(j: &FarmJoin, hosted: &[HostedStore]) -> Vec<Advertised> {
    if !j.zdb.is_empty() {
        return vec![Advertised {
            endpoint: ZdbEndpoint {
                address: j.zdb.clone(),
                namespace: j.namespace.clone(),
                store: None,
            },
            capacity: j.capacity,
            password: None,
        }];
    }
    let mut all: Vec<Advertised> = hosted
        .iter()
        .map(|h| Advertised {
            endpoint: h.endpoint.clone(),
            capacity: j.capacity.min(h.size),
            password: Some(h.password.clone()),
        })
        .collect();
    all.sort_by(|a, b| a.endpoint.store.cmp(&b.endpoint.store));
    all
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

/// A farm client for the store `a` belongs to, with its password: one per advertised
/// namespace (its usage) and per repair candidate.
fn farm_for(meta: &Meta, a: &Advertised) -> Option<Farm<ZdbStore>> {
    let store = a.endpoint.store.clone();
    let meta = match meta.scoped(store.as_deref()) {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!("farm store {store:?}: {e}");
            return None;
        }
    };
    let cfg = ZdbStoreConfig {
        store,
        password: a
            .password
            .as_ref()
            .map(|p| zdb_client::Secret::new(p.expose())),
        ..ZdbStoreConfig::default()
    };
    let shards = ZdbStore::new(cfg, Some(meta.clone()));
    Some(Farm::new(meta, shards))
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
        let a = advertised(j, &hosted.borrow_and_update());
        if !a.is_empty() {
            break a;
        }
        tokio::select! {
            r = hosted.changed() => if r.is_err() { return },
            _ = stop.wait_for(|s| *s) => return,
        }
    };
    let mut delay = Duration::from_secs(1);
    let reg = loop {
        let rec = record_with(j, id, public_key, endpoints(&adv), j.capacity);
        match Registration::start_reporting(meta, rec, offered(&adv), j.ttl).await {
            Ok(r) => break r,
            Err(e) => tracing::warn!(farm = %j.farm, "farm registration failed: {e}; retrying"),
        }
        if pause(delay, &mut stop).await {
            return;
        }
        delay = (delay * 2).min(Duration::from_secs(30));
    };
    tracing::info!(farm = %j.farm, node = %id, namespaces = adv.len(), "registered in the farm");
    let mut usage = usage_clients(meta, &adv);
    // What the heartbeat reports; a namespace whose usage cannot be read keeps its last value.
    let mut free = offered(&adv);
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
                // A store revoked everywhere leaves an empty list: written too, so the
                // store's repair rebuilds what this node held elsewhere.
                let next = advertised(j, &hosted.borrow_and_update());
                if next != adv {
                    let rec = record_with(j, id, public_key, endpoints(&next), j.capacity);
                    match meta.put_json(&meta.keys().node(&rec.id), &rec, None).await {
                        Ok(()) => {
                            tracing::info!(namespaces = next.len(), "farm registration updated");
                            usage = usage_clients(meta, &next);
                            let mut fresh = offered(&next);
                            for (s, f) in &free.stores {
                                if let Some(v) = fresh.stores.get_mut(s) {
                                    *v = *f;
                                }
                            }
                            free = fresh;
                            adv = next;
                        }
                        Err(e) => tracing::warn!("farm registration update: {e}"),
                    }
                }
            }
            Next::Usage => {
                for (a, farm) in adv.iter().zip(&usage) {
                    let Some(farm) = farm else { continue };
                    let used =
                        tokio::time::timeout(Duration::from_secs(5), farm.store.usage(&node));
                    let f = match used.await {
                        Ok(Ok((used, limit))) => free_bytes(used, limit, a.capacity),
                        Ok(Err(e)) => {
                            tracing::debug!(namespace = %a.endpoint.namespace, "shard namespace usage: {e}");
                            continue;
                        }
                        Err(_) => {
                            tracing::debug!(namespace = %a.endpoint.namespace, "shard namespace usage: timed out");
                            continue;
                        }
                    };
                    match &a.endpoint.store {
                        None => free.free = f,
                        Some(s) => {
                            free.stores.insert(s.clone(), f);
                        }
                    }
                }
                reg.set_free(free.clone());
            }
        }
    }
    reg.stop().await;
}

fn endpoints(adv: &[Advertised]) -> Vec<ZdbEndpoint> {
    adv.iter().map(|a| a.endpoint.clone()).collect()
}

/// What a heartbeat reports before any usage is known: each namespace's whole offer.
fn offered(adv: &[Advertised]) -> Free {
    let mut free = Free::default();
    for a in adv {
        match &a.endpoint.store {
            None => free.free = a.capacity,
            Some(s) => {
                free.stores.insert(s.clone(), a.capacity);
            }
        }
    }
    free
}

fn usage_clients(meta: &Meta, adv: &[Advertised]) -> Vec<Option<Farm<ZdbStore>>> {
    adv.iter().map(|a| farm_for(meta, a)).collect()
}

/// The repair candidates: one per hosted store (each its own election; its namespace
/// password reaches the shards), started and stopped as stores come and go.
async fn repair(
    meta: &Meta,
    j: &FarmJoin,
    mut hosted: watch::Receiver<Vec<HostedStore>>,
    mut stop: watch::Receiver<bool>,
) {
    let Some(cfg) = j.repair.clone() else { return };
    let mut running: BTreeMap<String, Candidate> = BTreeMap::new();
    loop {
        let want: BTreeMap<String, Advertised> = advertised(j, &hosted.borrow_and_update())
            .into_iter()
            .filter(|a| a.password.is_some())
            .filter_map(|a| Some((a.endpoint.store.clone()?, a)))
            .collect();
        let gone: Vec<String> = running
            .iter()
            .filter(|(s, c)| want.get(*s) != Some(&c.advertised))
            .map(|(s, _)| s.clone())
            .collect();
        for s in gone {
            if let Some(c) = running.remove(&s) {
                c.stop().await;
            }
        }
        for (s, a) in want {
            if running.contains_key(&s) {
                continue;
            }
            if let Some(farm) = farm_for(meta, &a) {
                tracing::info!(farm = %j.farm, store = %s, "repair candidate running");
                running.insert(s, Candidate::start(farm, a, cfg.clone()));
            }
        }
        tokio::select! {
            r = hosted.changed() => if r.is_err() { break },
            _ = stop.wait_for(|s| *s) => break,
        }
    }
    for (_, c) in running {
        c.stop().await;
    }
}

/// One store's repair candidate.
struct Candidate {
    advertised: Advertised,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Candidate {
    fn start(farm: Farm<ZdbStore>, advertised: Advertised, cfg: RepairConfig) -> Self {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            if let Err(e) = farm.store.refresh(&farm.meta).await {
                tracing::debug!("repair: registry: {e}");
            }
            Repairer::new(&farm, cfg).run(stopped).await;
        });
        Candidate {
            advertised,
            stop,
            task,
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
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
            workload: "w".into(),
            endpoint: ZdbEndpoint {
                address: format!("{owner}:1"),
                namespace: owner.into(),
                store: Some(crate::farm_inbox::store_name(owner, "s", "w")),
            },
            password: bus::api::Secret("pw".into()),
            size,
        }
    }

    #[test]
    fn the_operator_namespace_wins_else_every_store_within_both_limits() {
        let by_hand = advertised(&join("h:1"), &[store("a", 50)]);
        assert_eq!(by_hand.len(), 1);
        assert_eq!(
            (
                by_hand[0].endpoint.address.as_str(),
                &by_hand[0].endpoint.store
            ),
            ("h:1", &None)
        );
        assert_eq!((by_hand[0].capacity, &by_hand[0].password), (100, &None));
        assert_eq!(advertised(&join(""), &[]), vec![]);
        let all = advertised(&join(""), &[store("b", 500), store("a", 50)]);
        let seen: Vec<(&str, Option<&str>, u64)> = all
            .iter()
            .map(|a| {
                let e = &a.endpoint;
                (e.namespace.as_str(), e.store.as_deref(), a.capacity)
            })
            .collect();
        assert_eq!(seen, [("a", Some("a/s/w"), 50), ("b", Some("b/s/w"), 100)]);
        assert!(all.iter().all(|a| a.password.is_some()));
        let free = offered(&all);
        assert_eq!(free.stores.get("a/s/w"), Some(&50));
        assert_eq!(offered(&by_hand).free, 100);
    }

    #[test]
    fn free_space_from_nsinfo() {
        assert_eq!(free_bytes(30, 50, 100), 20);
        assert_eq!(free_bytes(30, 0, 100), 70);
        assert_eq!(free_bytes(30, 500, 100), 70);
        assert_eq!(free_bytes(300, 50, 100), 0);
    }
}
