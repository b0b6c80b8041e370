//! Nodes in the farm's registry. A node writes its record (persistent) and a heartbeat under a
//! lease; a background task keeps the lease alive and, if it was lost anyway (a partition
//! longer than the TTL), registers again with a new one. What the repair leader concluded
//! about each node (down since, out) lives beside them.

use crate::ids::NodeId;
use crate::meta::lease::Lease;
use crate::meta::records::{AliveRecord, NodeRecord, NodeStateRecord, now};
use crate::meta::{Meta, MetaError};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The free space a heartbeat reports: of the namespace named by hand, and per store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Free {
    /// Of the namespace named by hand (or the node's capacity).
    pub free: u64,
    /// Of each store's namespace.
    pub stores: BTreeMap<String, u64>,
}

impl Free {
    fn record(&self) -> AliveRecord {
        AliveRecord {
            free: self.free,
            stores: self.stores.clone(),
            at: now(),
        }
    }
}

type Shared = Arc<Mutex<Free>>;

fn read(f: &Shared) -> Free {
    f.lock().unwrap_or_else(PoisonError::into_inner).clone()
}

/// A node's registration; its heartbeat runs until [`Registration::stop`] or drop.
pub struct Registration {
    free: Shared,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl Registration {
    /// Registers `record` with a heartbeat lease of `ttl` seconds, reporting `free` bytes.
    pub async fn start(
        meta: &Meta,
        record: NodeRecord,
        free: u64,
        ttl: i64,
    ) -> Result<Self, MetaError> {
        let free = Free {
            free,
            ..Free::default()
        };
        Self::start_reporting(meta, record, free, ttl).await
    }

    /// [`Self::start`] reporting the free space of each store's namespace as well.
    pub async fn start_reporting(
        meta: &Meta,
        record: NodeRecord,
        free: Free,
        ttl: i64,
    ) -> Result<Self, MetaError> {
        meta.put_json(&meta.keys().node(&record.id), &record, None)
            .await?;
        let lease = announce(meta, &record.id, &free, ttl).await?;
        let free = Arc::new(Mutex::new(free));
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(heartbeat(
            meta.clone(),
            record.id,
            ttl,
            lease,
            free.clone(),
            stopped,
        ));
        Ok(Registration {
            free,
            stop,
            task: Some(task),
        })
    }

    /// Updates the free space reported at the next heartbeat refresh (stores not listed are
    /// dropped), in one step: a refresh never sees half of it.
    pub fn set_free(&self, free: Free) {
        *self.free.lock().unwrap_or_else(PoisonError::into_inner) = free;
    }

    /// Stops heartbeating and removes the heartbeat at once (a clean shutdown: the node is
    /// down now, not after its TTL).
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for Registration {
    /// Without [`Registration::stop`] the heartbeat is left to expire, as after a crash.
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}

async fn announce(meta: &Meta, id: &NodeId, free: &Free, ttl: i64) -> Result<Lease, MetaError> {
    let lease = Lease::grant(meta, ttl).await?;
    meta.put_json(&meta.keys().alive(id), &free.record(), Some(lease.id()))
        .await?;
    Ok(lease)
}

/// Refreshes the heartbeat record every few TTLs (for the free space) and registers again if
/// the lease was lost.
async fn heartbeat(
    meta: Meta,
    id: NodeId,
    ttl: i64,
    mut lease: Lease,
    free: Shared,
    mut stopped: watch::Receiver<bool>,
) {
    let tick = Duration::from_millis(u64::try_from(ttl).unwrap_or(1).max(1) * 1000 / 3);
    let mut last_free = read(&free);
    loop {
        tokio::select! {
            _ = stopped.changed() => {
                lease.revoke().await;
                return;
            }
            () = tokio::time::sleep(tick) => {}
        }
        let f = read(&free);
        if lease.lost() {
            tracing::warn!("node {id}: heartbeat lease lost, registering again");
            match announce(&meta, &id, &f, ttl).await {
                Ok(l) => lease = l,
                Err(e) => tracing::warn!("node {id}: register again: {e}"),
            }
        } else if f != last_free
            && meta
                .put_json(&meta.keys().alive(&id), &f.record(), Some(lease.id()))
                .await
                .is_ok()
        {
            last_free = f;
        }
    }
}

/// One node as the registry shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeView {
    /// What it registered.
    pub record: NodeRecord,
    /// Its heartbeat, if its lease is alive.
    pub alive: Option<AliveRecord>,
    /// What the repair leader recorded about it, and that record's mod revision (0: none).
    pub state: NodeStateRecord,
    /// Mod revision of the state record, for compare-and-swap (0: no record).
    pub state_revision: i64,
}

impl Meta {
    /// Every registered node that takes part in this store ([`NodeRecord::serves`]), with its
    /// heartbeat (whose `free` is then that of the store's namespace) and the state this
    /// store's repair leader recorded.
    pub async fn nodes(&self) -> Result<Vec<NodeView>, MetaError> {
        let k = self.keys();
        let store = k.store();
        let records: Vec<(String, NodeRecord)> = self.list_json(&k.farm_table("nodes")).await?;
        let alive: BTreeMap<String, AliveRecord> = self
            .list_json(&k.farm_table("alive"))
            .await?
            .into_iter()
            .collect();
        let mut states: BTreeMap<String, (NodeStateRecord, i64)> = BTreeMap::new();
        let prefix = k.table("state");
        for (suffix, value, rev) in self.list_raw(&prefix).await? {
            let s = crate::meta::client::parse(&format!("{prefix}{suffix}"), &value)?;
            states.insert(suffix, (s, rev));
        }
        Ok(records
            .into_iter()
            .filter(|(_, record)| record.serves(store))
            .map(|(suffix, record)| {
                let (state, state_revision) = states.remove(&suffix).unwrap_or_default();
                let alive = alive.get(&suffix).map(|a| match store {
                    None => a.clone(),
                    // Not reported yet (a store just provisioned): full until it is.
                    Some(s) => AliveRecord {
                        free: a.stores.get(s).copied().unwrap_or(0),
                        ..a.clone()
                    },
                });
                NodeView {
                    alive,
                    record,
                    state,
                    state_revision,
                }
            })
            .collect())
    }

    /// Records a node's state if its record is still at `revision` (0: absent). Returns
    /// whether it was applied.
    pub async fn set_node_state(
        &self,
        id: &NodeId,
        state: &NodeStateRecord,
        revision: i64,
        fence: Option<&[u8]>,
    ) -> Result<bool, MetaError> {
        use etcd_client::{Txn, TxnOp};
        let key = self.keys().state(id);
        let op = if *state == NodeStateRecord::default() {
            TxnOp::delete(key.as_str(), None)
        } else {
            TxnOp::put(key.as_str(), crate::meta::client::to_json(state), None)
        };
        let txn = Txn::new()
            .when(crate::meta::client::cas(&key, revision, fence))
            .and_then(vec![op]);
        Ok(self.txn("set node state", txn).await?.succeeded())
    }
}
