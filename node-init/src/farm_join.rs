//! Joining a storage farm (`node-init --etcd URLS --farm NAME`): the node registers itself in
//! the farm's etcd (id, public key, capacity, disk classes, its shard zdb endpoint, optional
//! group) and keeps a heartbeat under a lease while it runs; on a clean stop the heartbeat goes
//! at once (down now, not after the TTL). etcd being unreachable at start delays the
//! registration (retried with backoff), it never stops the node.

use farm::ids::NodeId;
use farm::meta::Meta;
use farm::meta::records::{NodeRecord, ZdbEndpoint, now};
use farm::meta::registry::Registration;
use std::time::Duration;
use tokio::sync::watch;

/// What the node tells the farm about itself.
#[derive(Debug, Clone)]
pub struct FarmJoin {
    /// The farm's etcd client URLs.
    pub etcd: Vec<String>,
    /// The farm's name.
    pub farm: String,
    /// `host:port` of the zdb holding the node's shard namespace.
    pub zdb: String,
    /// The shard namespace.
    pub namespace: String,
    /// Failure domain (rack, room), if the farm has them.
    pub group: Option<String>,
    /// Bytes the node offers the farm.
    pub capacity: u64,
    /// Disk classes (`hdd`, `ssd`).
    pub disk_classes: Vec<String>,
    /// Heartbeat lease TTL in seconds.
    pub ttl: i64,
}

/// The registration record of node `id` with public key `public_key` (pure).
pub fn record(j: &FarmJoin, id: &str, public_key: &str) -> NodeRecord {
    NodeRecord {
        id: NodeId(id.to_string()),
        public_key: public_key.to_string(),
        group: j.group.clone(),
        capacity: j.capacity,
        disk_classes: j.disk_classes.clone(),
        zdb: vec![ZdbEndpoint {
            address: j.zdb.clone(),
            namespace: j.namespace.clone(),
        }],
        registered: now(),
    }
}

/// Registers once (connect, record, heartbeat lease).
pub async fn register(
    j: &FarmJoin,
    id: &str,
    public_key: &str,
) -> Result<Registration, farm::meta::MetaError> {
    let meta = Meta::connect(&j.etcd, &j.farm).await?;
    Registration::start(&meta, record(j, id, public_key), j.capacity, j.ttl).await
}

/// Registers (retrying every 1..30 s until it works or `stop`), heartbeats until `stop` turns
/// true, then removes the heartbeat.
pub async fn run(j: FarmJoin, id: String, public_key: String, mut stop: watch::Receiver<bool>) {
    let mut delay = Duration::from_secs(1);
    let reg = loop {
        match register(&j, &id, &public_key).await {
            Ok(r) => {
                tracing::info!(farm = %j.farm, node = %id, "registered in the farm");
                break r;
            }
            Err(e) => tracing::warn!(farm = %j.farm, "farm registration failed: {e}; retrying"),
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        delay = (delay * 2).min(Duration::from_secs(30));
    };
    let _ = stop.wait_for(|s| *s).await;
    reg.stop().await;
}
