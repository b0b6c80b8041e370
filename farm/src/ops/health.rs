//! How redundant an object is now, from where its shards are placed and the states of those
//! nodes (pure; `zos store status NAME`). A position counts as available when its node is up:
//! a down node's shards are read around, an out node's are being rebuilt elsewhere. Shard
//! contents are not read here: rot is found by reads and the scrub, which rebuild in place.

use crate::ids::NodeId;
use crate::meta::records::ObjectMeta;
use crate::ops::states::NodeState;
use std::collections::BTreeMap;

/// One shard position of a segment: its node and that node's state (`None`: not registered).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// Where the shard is.
    pub node: NodeId,
    /// The node's state now.
    pub state: Option<NodeState>,
}

impl Position {
    /// Whether the shard can be read now.
    pub fn available(&self) -> bool {
        self.state == Some(NodeState::Up)
    }
}

/// An object's placement and how many more shards per stripe it may lose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// Parity shards per stripe: full redundancy.
    pub m: u8,
    /// Per segment, its positions.
    pub segments: Vec<Vec<Position>>,
    /// Shards any stripe may still lose and read back (the worst segment's available shards
    /// minus k); negative: some stripe cannot be read until nodes return.
    pub redundancy: i64,
}

impl Health {
    /// Every position of every segment is on an up node.
    pub fn full(&self) -> bool {
        self.redundancy >= i64::from(self.m)
    }

    /// One line: `redundancy: R of M (full|degraded|unreadable now)`.
    pub fn summary(&self) -> String {
        let word = if self.full() {
            "full"
        } else if self.redundancy >= 0 {
            "degraded"
        } else {
            "unreadable now"
        };
        format!("redundancy: {} of {} ({word})", self.redundancy, self.m)
    }
}

/// The health of `obj` given every node's state.
pub fn health(obj: &ObjectMeta, states: &BTreeMap<NodeId, NodeState>) -> Health {
    let k = i64::from(obj.params.k);
    let segments: Vec<Vec<Position>> = obj
        .segments
        .iter()
        .map(|nodes| {
            nodes
                .iter()
                .map(|n| Position {
                    node: n.clone(),
                    state: states.get(n).copied(),
                })
                .collect()
        })
        .collect();
    let worst = segments
        .iter()
        .map(|s| s.iter().filter(|p| p.available()).count() as i64)
        .min()
        .unwrap_or(k + i64::from(obj.params.m));
    Health {
        m: obj.params.m,
        segments,
        redundancy: worst - k,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Params;
    use crate::ids::ObjectId;

    fn obj(segments: &[&[&str]]) -> ObjectMeta {
        ObjectMeta {
            id: ObjectId::random(),
            name: "o".into(),
            size: 1,
            params: Params {
                k: 2,
                m: 2,
                ..Params::default()
            },
            created: 0,
            segment: 1,
            segments: segments
                .iter()
                .map(|s| s.iter().map(|n| NodeId((*n).into())).collect())
                .collect(),
        }
    }

    #[test]
    fn the_worst_segment_decides() {
        let mut states: BTreeMap<NodeId, NodeState> = ["a", "b", "c", "d", "e"]
            .iter()
            .map(|n| (NodeId((*n).into()), NodeState::Up))
            .collect();
        let o = obj(&[&["a", "b", "c", "d"], &["b", "c", "d", "e"]]);
        let h = health(&o, &states);
        assert!(h.full());
        assert_eq!(h.summary(), "redundancy: 2 of 2 (full)");
        states.insert(NodeId("e".into()), NodeState::Down { since: 1 });
        let h = health(&o, &states);
        assert_eq!(h.redundancy, 1);
        assert_eq!(h.summary(), "redundancy: 1 of 2 (degraded)");
        assert_eq!(h.segments[1][3].state, Some(NodeState::Down { since: 1 }));
        states.insert(NodeId("d".into()), NodeState::Out { since: 1 });
        states.insert(NodeId("c".into()), NodeState::Returned);
        assert_eq!(
            health(&o, &states).summary(),
            "redundancy: -1 of 2 (unreadable now)"
        );
        // A node nobody registered holds nothing readable.
        states.remove(&NodeId("a".into()));
        assert!(!health(&o, &states).segments[0][0].available());
    }
}
