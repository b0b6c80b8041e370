//! The values the farm keeps in etcd, as JSON (operators read them with `etcdctl get`).
//! Sizes are kept small on purpose: see farm/README.md for the per-object budget.

use crate::codec::Params;
use crate::ids::{NodeId, ObjectId};
use serde::{Deserialize, Serialize};

/// A zdb namespace on a node where the farm keeps shards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZdbEndpoint {
    /// `host:port` of the zdb server.
    pub address: String,
    /// The shard namespace.
    pub namespace: String,
    /// The store it belongs to (`<owner>/<deployment>/<workload>` of a `store` deployment);
    /// none for a namespace an operator named by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
}

/// What a node registers (persistent: it outlives the node's lease, so a node that is gone is
/// still known and can be declared down, then out).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// node-init's node id.
    pub id: NodeId,
    /// Its ed25519 public key (hex), which signs its results.
    pub public_key: String,
    /// Failure domain (a rack, a room); shards of a stripe spread over groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Bytes of storage the node offers the farm.
    pub capacity: u64,
    /// Disk classes present (`hdd`, `ssd`).
    pub disk_classes: Vec<String>,
    /// Where its shard namespaces are.
    pub zdb: Vec<ZdbEndpoint>,
    /// Unix seconds of the last registration.
    pub registered: u64,
}

impl NodeRecord {
    /// Its namespace for store `store` (`None`: the one named by hand), if it hosts one.
    pub fn endpoint(&self, store: Option<&str>) -> Option<&ZdbEndpoint> {
        self.zdb.iter().find(|e| e.store.as_deref() == store)
    }

    /// Whether it takes part in store `store`: it has a namespace for it. A node that stops
    /// hosting a store leaves it, and the store's repair rebuilds what it held elsewhere.
    pub fn serves(&self, store: Option<&str>) -> bool {
        self.endpoint(store).is_some()
    }
}

/// The heartbeat of a node, under its lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AliveRecord {
    /// Free bytes for shards, as of `at` (of the namespace named by hand, if any).
    pub free: u64,
    /// Free bytes of each store's namespace, by store.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub stores: std::collections::BTreeMap<String, u64>,
    /// Unix seconds of the last update.
    pub at: u64,
}

/// A node's state as the repair leader recorded it. No record: up as far as anyone knew.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStateRecord {
    /// Unix seconds since its heartbeat is missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub down_since: Option<u64>,
    /// Unix seconds it was declared out: its shards are rebuilt elsewhere and, if it returns,
    /// collected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out_since: Option<u64>,
}

/// One committed object version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectMeta {
    /// The version's id (names its shards and derives its key).
    pub id: ObjectId,
    /// The name it was put under.
    pub name: String,
    /// Plain size in bytes.
    pub size: u64,
    /// Encoding.
    pub params: Params,
    /// Unix seconds of the put.
    pub created: u64,
    /// Stripes per segment: every stripe of a segment has its shards on the same nodes.
    pub segment: u32,
    /// Per segment, the node of each shard position (k + m entries).
    pub segments: Vec<Vec<NodeId>>,
}

impl ObjectMeta {
    /// Number of stripes.
    pub fn stripes(&self) -> u64 {
        self.params.stripes(self.size)
    }

    /// The stripes of segment `s`.
    pub fn segment_stripes(&self, s: usize) -> std::ops::Range<u64> {
        let per = u64::from(self.segment.max(1));
        let start = (s as u64).saturating_mul(per);
        start.min(self.stripes())..start.saturating_add(per).min(self.stripes())
    }

    /// The nodes of the segment holding stripe `stripe`.
    pub fn nodes_of(&self, stripe: u64) -> Option<&[NodeId]> {
        let s = stripe / u64::from(self.segment.max(1));
        self.segments
            .get(usize::try_from(s).ok()?)
            .map(Vec::as_slice)
    }

    /// Checks that the record is consistent (shape, one node list of k + m per segment, enough
    /// segments for the size): a record that fails this is reported, never decoded.
    pub fn check(&self) -> Result<(), String> {
        self.params.validate().map_err(|e| e.to_string())?;
        let per = u64::from(self.segment.max(1));
        let want = self.stripes().div_ceil(per);
        if self.segment == 0 || self.segments.len() as u64 != want {
            return Err(format!(
                "object {}: {} segments for {} stripes",
                self.id,
                self.segments.len(),
                self.stripes()
            ));
        }
        if self
            .segments
            .iter()
            .any(|s| s.len() != self.params.shards())
        {
            return Err(format!("object {}: a segment lacks nodes", self.id));
        }
        Ok(())
    }
}

/// A put in progress (under the writer's lease): its shards are not garbage yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// The name being written.
    pub name: String,
    /// Unix seconds the put started.
    pub started: u64,
}

/// What the repair loop did lately (`zos store status`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// Who ran it (the leader's name).
    pub leader: String,
    /// Completed passes over all objects.
    pub passes: u64,
    /// Unix seconds the current pass started.
    pub pass_started: u64,
    /// Objects visited in the current pass.
    pub objects: u64,
    /// Shards verified since the loop started.
    pub verified: u64,
    /// Shards rebuilt since the loop started.
    pub rebuilt: u64,
    /// Stale or trashed shards deleted since the loop started.
    pub collected: u64,
    /// Unix seconds of the last completed pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_pass: Option<u64>,
}

/// Unix seconds now.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(segments: usize) -> ObjectMeta {
        let node = NodeId("0123456789abcdef0123456789abcdef".into());
        ObjectMeta {
            id: ObjectId::random(),
            name: "photos/2026/img-00001.jpg".into(),
            size: 3_456_789,
            params: Params::default(),
            created: 1_780_000_000,
            segment: 256,
            segments: vec![vec![node; 6]; segments],
        }
    }

    /// The sizes farm/README.md states: one small object's record, and the largest record
    /// (4096 segments) against etcd's 1.5 MiB request limit.
    #[test]
    fn record_sizes_match_the_budget() {
        let small = serde_json::to_vec(&object(1)).expect("json").len();
        assert!((350..=450).contains(&small), "{small}");
        let largest = serde_json::to_vec(&object(crate::ops::MAX_SEGMENTS))
            .expect("json")
            .len();
        assert!(largest < 1_000_000, "{largest}");
    }

    #[test]
    fn segments_cover_the_stripes() {
        let mut m = object(1);
        m.params.stripe = 10;
        m.size = 95;
        m.segment = 4;
        m.segments = vec![m.segments[0].clone(); 3];
        assert!(m.check().is_ok());
        assert_eq!(m.segment_stripes(2), 8..10);
        assert!(m.nodes_of(9).is_some());
        assert!(m.nodes_of(12).is_none());
        m.segments.pop();
        assert!(m.check().is_err());
        m.segment = 0;
        assert!(m.check().is_err());
    }
}
