//! Where shards go, as pure functions over a snapshot of the farm.
//!
//! Every shard of a segment goes to a different node; shards spread over groups (racks,
//! rooms: whatever the farmer names) as evenly as the farm allows, so losing a group loses as
//! few shards of a stripe as possible. Among equal choices, weighted rendezvous hashing on the
//! object id picks nodes in proportion to their free space, so objects spread over the whole
//! farm even from a snapshot that is a little stale, and the same input always gives the same
//! answer.

use crate::ids::{NodeId, ObjectId};
use std::collections::{BTreeMap, BTreeSet};

/// What placement needs to know of one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The node.
    pub id: NodeId,
    /// Its failure domain; `None`: a group of its own.
    pub group: Option<String>,
    /// Free bytes in its shard namespace.
    pub free: u64,
    /// Up, registered and not being collected: may take new shards.
    pub usable: bool,
}

/// Not enough usable nodes.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{need} nodes with {bytes} bytes free needed, {have} usable")]
pub struct PlacementError {
    /// Nodes needed.
    pub need: usize,
    /// Usable nodes with room (not counting nodes excluded because they hold shards already).
    pub have: usize,
    /// Bytes each needs.
    pub bytes: u64,
}

fn group_of(c: &Candidate) -> String {
    c.group.clone().unwrap_or_else(|| format!("node:{}", c.id))
}

/// Weighted rendezvous score: larger wins; a node with twice the free space wins about twice
/// as often.
fn score(seed: &ObjectId, salt: u64, node: &NodeId, free: u64) -> f64 {
    let mut h = blake3::Hasher::new();
    h.update(&seed.0);
    h.update(&salt.to_le_bytes());
    h.update(node.0.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&h.finalize().as_bytes()[..8]);
    // Uniform in (0, 1).
    let u = ((u64::from_le_bytes(b) >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    (free.max(1) as f64) / -u.ln()
}

/// Chooses `want` nodes, none of them in `taken`, for shards of `bytes` each. Groups already
/// holding shards (`taken`, counted by group) are filled last. `salt` varies the choice between
/// segments of one object.
fn choose(
    nodes: &[Candidate],
    taken: &[NodeId],
    want: usize,
    bytes: u64,
    seed: &ObjectId,
    salt: u64,
) -> Result<Vec<NodeId>, PlacementError> {
    let taken_set: BTreeSet<&NodeId> = taken.iter().collect();
    let mut load: BTreeMap<String, usize> = BTreeMap::new();
    for c in nodes.iter().filter(|c| taken_set.contains(&c.id)) {
        *load.entry(group_of(c)).or_default() += 1;
    }
    let mut free: Vec<&Candidate> = nodes
        .iter()
        .filter(|c| c.usable && c.free >= bytes && !taken_set.contains(&c.id))
        .collect();
    if free.len() < want {
        return Err(PlacementError {
            need: want,
            have: free.len(),
            bytes,
        });
    }
    free.sort_by(|a, b| {
        score(seed, salt, &b.id, b.free)
            .total_cmp(&score(seed, salt, &a.id, a.free))
            .then_with(|| a.id.cmp(&b.id))
    });
    let mut chosen = Vec::with_capacity(want);
    for _ in 0..want {
        // The best-ranked node of the least loaded group.
        let pick = free
            .iter()
            .enumerate()
            .min_by_key(|(rank, c)| (load.get(&group_of(c)).copied().unwrap_or(0), *rank))
            .map(|(i, _)| i);
        let Some(i) = pick else { break };
        let c = free.remove(i);
        *load.entry(group_of(c)).or_default() += 1;
        chosen.push(c.id.clone());
    }
    Ok(chosen)
}

/// Nodes for the `n` shards of a new segment (`salt`: the segment's index), each shard
/// `bytes` at most.
pub fn place(
    nodes: &[Candidate],
    n: usize,
    bytes: u64,
    seed: &ObjectId,
    salt: u64,
) -> Result<Vec<NodeId>, PlacementError> {
    choose(nodes, &[], n, bytes, seed, salt)
}

/// New nodes for the shard positions `lost` of a segment now on `current` (by position): the
/// kept positions stay where they are, the new nodes avoid them and their groups where the farm
/// allows. Returns (position, node) pairs.
pub fn replace(
    nodes: &[Candidate],
    current: &[NodeId],
    lost: &[usize],
    bytes: u64,
    seed: &ObjectId,
    salt: u64,
) -> Result<Vec<(usize, NodeId)>, PlacementError> {
    // Lost positions' nodes stay excluded (they may come back with stale shards), but do not
    // count towards their group's load.
    let kept: Vec<NodeId> = current
        .iter()
        .enumerate()
        .filter(|(i, _)| !lost.contains(i))
        .map(|(_, n)| n.clone())
        .collect();
    let excluded: Vec<Candidate> = nodes
        .iter()
        .filter(|c| current.contains(&c.id) && !kept.contains(&c.id))
        .map(|c| Candidate {
            usable: false,
            ..c.clone()
        })
        .collect();
    let mut view: Vec<Candidate> = nodes
        .iter()
        .filter(|c| !excluded.iter().any(|e| e.id == c.id))
        .cloned()
        .collect();
    view.extend(excluded);
    let picked = choose(&view, &kept, lost.len(), bytes, seed, salt)?;
    Ok(lost.iter().copied().zip(picked).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn farm(groups: &[(&str, usize)]) -> Vec<Candidate> {
        let mut out = vec![];
        for (g, n) in groups {
            for i in 0..*n {
                out.push(Candidate {
                    id: NodeId(format!("{g}-{i}")),
                    group: Some(g.to_string()),
                    free: 1 << 40,
                    usable: true,
                });
            }
        }
        out
    }

    fn groups_of(nodes: &[Candidate], chosen: &[NodeId]) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for id in chosen {
            let c = nodes.iter().find(|c| &c.id == id).expect("known");
            *m.entry(group_of(c)).or_default() += 1;
        }
        m
    }

    #[test]
    fn distinct_nodes_spread_over_groups() {
        let nodes = farm(&[("a", 4), ("b", 4), ("c", 4)]);
        for _ in 0..50 {
            let chosen = place(&nodes, 6, 100, &ObjectId::random(), 0).expect("place");
            let set: BTreeSet<_> = chosen.iter().collect();
            assert_eq!(set.len(), 6);
            assert!(
                groups_of(&nodes, &chosen).values().all(|&n| n == 2),
                "{chosen:?}"
            );
        }
        // Fewer groups than shards: as even as possible.
        let nodes = farm(&[("a", 5), ("b", 2)]);
        let chosen = place(&nodes, 6, 100, &ObjectId::random(), 0).expect("place");
        assert_eq!(groups_of(&nodes, &chosen)["b"], 2);
    }

    #[test]
    fn skips_unusable_and_full_nodes_and_says_when_too_few() {
        let mut nodes = farm(&[("a", 7)]);
        nodes[0].usable = false;
        nodes[1].free = 10;
        let chosen = place(&nodes, 5, 100, &ObjectId::random(), 0).expect("place");
        assert!(!chosen.contains(&nodes[0].id) && !chosen.contains(&nodes[1].id));
        assert_eq!(
            place(&nodes, 6, 100, &ObjectId::random(), 0),
            Err(PlacementError {
                need: 6,
                have: 5,
                bytes: 100
            })
        );
    }

    #[test]
    fn same_input_same_answer_and_spreads_load() {
        let nodes = farm(&[("a", 10)]);
        let seed = ObjectId::random();
        assert_eq!(place(&nodes, 6, 1, &seed, 3), place(&nodes, 6, 1, &seed, 3));
        let mut hits: BTreeMap<NodeId, usize> = BTreeMap::new();
        for _ in 0..2000 {
            for n in place(&nodes, 6, 1, &ObjectId::random(), 0).expect("place") {
                *hits.entry(n).or_default() += 1;
            }
        }
        // 12000 shards over 10 equal nodes: 1200 each, give or take.
        assert!(
            hits.values().all(|&h| (1000..1400).contains(&h)),
            "{hits:?}"
        );
    }

    #[test]
    fn free_space_weights_the_choice() {
        let mut nodes = farm(&[("a", 4)]);
        nodes[0].free = 4 << 40;
        let mut first = 0;
        for _ in 0..2000 {
            let chosen = place(&nodes, 1, 1, &ObjectId::random(), 0).expect("place");
            first += usize::from(chosen[0] == nodes[0].id);
        }
        // Weight 4 of 7: about 1140 of 2000.
        assert!((1000..1300).contains(&first), "{first}");
    }

    #[test]
    fn replace_moves_only_lost_positions_away_from_kept_groups() {
        // Four per group: even when both lost nodes were in one group, two are left there.
        let nodes = farm(&[("a", 4), ("b", 4), ("c", 4)]);
        let seed = ObjectId::random();
        let current = place(&nodes, 6, 1, &seed, 0).expect("place");
        let moved = replace(&nodes, &current, &[1, 4], 1, &seed, 0).expect("replace");
        assert_eq!(
            moved.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            vec![1, 4]
        );
        let mut after = current.clone();
        for (i, n) in &moved {
            assert!(!current.contains(n), "new node {n} already held a shard");
            after[*i] = n.clone();
        }
        assert_eq!(after.iter().collect::<BTreeSet<_>>().len(), 6);
        assert!(
            groups_of(&nodes, &after).values().all(|&n| n == 2),
            "{after:?}"
        );
        // Not enough nodes left outside the segment.
        let small = farm(&[("a", 6)]);
        let current: Vec<NodeId> = small.iter().map(|c| c.id.clone()).collect();
        assert!(replace(&small, &current, &[0], 1, &seed, 0).is_err());
    }
}
