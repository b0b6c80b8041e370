//! Joining a storage farm (`node-init --etcd URLS --farm NAME`): what the node registers in
//! the farm's etcd (id, public key, capacity, disk classes, its shard zdb endpoint, optional
//! group). `farm_node` registers it under a heartbeat lease while the node runs; on a clean
//! stop the heartbeat goes at once (down now, not after the TTL).

use farm::ids::NodeId;
use farm::meta::records::{NodeRecord, ZdbEndpoint, now};

/// What the node tells the farm about itself.
#[derive(Debug, Clone)]
pub struct FarmJoin {
    /// The farm's etcd client URLs.
    pub etcd: Vec<String>,
    /// TLS and user for them.
    pub access: farm::meta::EtcdAccess,
    /// The farm's name.
    pub farm: String,
    /// `host:port` of the zdb holding the node's shard namespace, when the operator made it
    /// by hand (empty: the namespace of a `store` deployment, `node_init::farm_node`).
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
    /// Run a repair candidate (`None`: never lead the farm's repair).
    pub repair: Option<farm::ops::repair::RepairConfig>,
}

/// The registration record of node `id` with public key `public_key` (pure).
pub fn record(j: &FarmJoin, id: &str, public_key: &str) -> NodeRecord {
    record_with(
        j,
        id,
        public_key,
        vec![ZdbEndpoint {
            address: j.zdb.clone(),
            namespace: j.namespace.clone(),
            store: None,
        }],
        j.capacity,
    )
}

/// The registration record of node `id` advertising `endpoints` with `capacity` bytes (pure).
pub fn record_with(
    j: &FarmJoin,
    id: &str,
    public_key: &str,
    endpoints: Vec<ZdbEndpoint>,
    capacity: u64,
) -> NodeRecord {
    NodeRecord {
        id: NodeId(id.to_string()),
        public_key: public_key.to_string(),
        group: j.group.clone(),
        capacity,
        disk_classes: j.disk_classes.clone(),
        zdb: endpoints,
        registered: now(),
    }
}
