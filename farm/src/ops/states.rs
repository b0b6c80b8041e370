//! Node states, as pure functions of what etcd holds: a node whose heartbeat is gone is
//! *down*; after the grace period it is *out* (its shards are rebuilt elsewhere); a node that
//! heartbeats again while out has *returned* and its stale shards are collected before it takes
//! new ones.

use crate::meta::records::NodeStateRecord;
use crate::meta::registry::NodeView;
use serde::Serialize;

/// What the farm makes of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "state")]
pub enum NodeState {
    /// Heartbeating; holds and takes shards.
    Up,
    /// No heartbeat since `since` (unix seconds); its shards are read around, not rebuilt yet.
    Down {
        /// Unix seconds.
        since: u64,
    },
    /// Declared out at `since`: its shards are rebuilt elsewhere.
    Out {
        /// Unix seconds.
        since: u64,
    },
    /// Heartbeating again after being out: its shards are being collected.
    Returned,
}

impl NodeState {
    /// Whether new shards may go there.
    pub fn usable(&self) -> bool {
        matches!(self, NodeState::Up)
    }

    /// A short word for tables.
    pub fn word(&self) -> &'static str {
        match self {
            NodeState::Up => "up",
            NodeState::Down { .. } => "down",
            NodeState::Out { .. } => "out",
            NodeState::Returned => "returned",
        }
    }
}

/// The state of a node with heartbeat `alive` and recorded state `rec`.
pub fn state_of(alive: bool, rec: &NodeStateRecord) -> NodeState {
    match (alive, rec.down_since, rec.out_since) {
        (true, _, Some(_)) => NodeState::Returned,
        (true, _, None) => NodeState::Up,
        (false, _, Some(since)) => NodeState::Out { since },
        // A heartbeat gone but not yet noticed by the leader counts as down from now.
        (false, since, None) => NodeState::Down {
            since: since.unwrap_or(u64::MAX),
        },
    }
}

/// The state a node's record should move to at `now` with a grace period of `grace` seconds,
/// or `None` when it stays. Collection of a returned node is not decided here: the repair loop
/// clears its record once its stale shards are gone.
pub fn transition(
    alive: bool,
    rec: &NodeStateRecord,
    now: u64,
    grace: u64,
) -> Option<NodeStateRecord> {
    match (alive, rec.down_since, rec.out_since) {
        (true, Some(_), None) => Some(NodeStateRecord::default()),
        (false, None, None) => Some(NodeStateRecord {
            down_since: Some(now),
            out_since: None,
        }),
        (false, Some(since), None) if now >= since.saturating_add(grace) => Some(NodeStateRecord {
            down_since: Some(since),
            out_since: Some(now),
        }),
        _ => None,
    }
}

/// The state of a registry entry.
pub fn state_of_view(v: &NodeView) -> NodeState {
    state_of(v.alive.is_some(), &v.state)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(down: Option<u64>, out: Option<u64>) -> NodeStateRecord {
        NodeStateRecord {
            down_since: down,
            out_since: out,
        }
    }

    #[test]
    fn down_then_out_after_grace() {
        let up = NodeStateRecord::default();
        assert_eq!(transition(true, &up, 100, 10), None);
        let down = transition(false, &up, 100, 10).expect("down");
        assert_eq!(down, rec(Some(100), None));
        assert_eq!(state_of(false, &down), NodeState::Down { since: 100 });
        assert_eq!(transition(false, &down, 109, 10), None);
        let out = transition(false, &down, 110, 10).expect("out");
        assert_eq!(out, rec(Some(100), Some(110)));
        assert_eq!(state_of(false, &out), NodeState::Out { since: 110 });
        assert_eq!(transition(false, &out, 1000, 10), None);
    }

    #[test]
    fn back_within_grace_is_up_back_after_is_returned() {
        let down = rec(Some(100), None);
        assert_eq!(
            transition(true, &down, 105, 10),
            Some(NodeStateRecord::default())
        );
        let out = rec(Some(100), Some(110));
        assert_eq!(state_of(true, &out), NodeState::Returned);
        assert!(!state_of(true, &out).usable());
        assert_eq!(transition(true, &out, 200, 10), None);
        assert!(state_of(true, &NodeStateRecord::default()).usable());
    }
}
