//! The farm as placement sees it, from the registry.

use crate::ids::NodeId;
use crate::meta::registry::NodeView;
use crate::ops::states::{NodeState, state_of_view};
use crate::placement::Candidate;
use std::collections::BTreeMap;

/// Nodes and their states at one moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Every registered node.
    pub nodes: Vec<NodeView>,
}

impl Snapshot {
    /// Placement candidates: up nodes with their heartbeat's free space.
    pub fn candidates(&self) -> Vec<Candidate> {
        self.nodes
            .iter()
            .map(|v| Candidate {
                id: v.record.id.clone(),
                group: v.record.group.clone(),
                free: v.alive.as_ref().map_or(0, |a| a.free),
                usable: state_of_view(v).usable(),
            })
            .collect()
    }

    /// State of every node.
    pub fn states(&self) -> BTreeMap<NodeId, NodeState> {
        self.nodes
            .iter()
            .map(|v| (v.record.id.clone(), state_of_view(v)))
            .collect()
    }
}
