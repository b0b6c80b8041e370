//! Verification and rebuild of one object's shards: every shard of a segment that is bad,
//! missing, or on a node that is out is rebuilt from k verified ones; rebuilt shards go back to
//! their node (in place) or to the node chosen to replace an out one.

use crate::codec::shard::Verified;
use crate::codec::stripe::Shape;
use crate::ids::NodeId;
use crate::meta::records::ObjectMeta;
use crate::ops::FarmError;
use crate::ops::states::NodeState;
use crate::store::ShardStore;
use std::collections::BTreeMap;
use tokio::task::JoinSet;

/// Shards a repair of one object looked at and wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Shards that verified.
    pub verified: u64,
    /// Shards rebuilt and written.
    pub rebuilt: u64,
    /// Stripes that could not be rebuilt (fewer than k verified shards reachable now).
    pub unrecoverable: u64,
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, o: Counts) {
        self.verified += o.verified;
        self.rebuilt += o.rebuilt;
        self.unrecoverable += o.unrecoverable;
    }
}

/// What to do with one segment: `moves` are positions to rebuild onto new nodes; with `deep`,
/// every shard on an up node is read and verified, and bad or missing ones rebuilt in place.
#[derive(Debug, Clone, Default)]
pub struct SegmentPlan {
    /// (position, new node).
    pub moves: Vec<(usize, NodeId)>,
    /// Verify every shard.
    pub deep: bool,
}

/// Repairs segment `seg` of `meta` as `plan` says.
pub async fn repair_segment<S: ShardStore + Clone>(
    store: &S,
    meta: &ObjectMeta,
    seg: usize,
    plan: &SegmentPlan,
    states: &BTreeMap<NodeId, NodeState>,
) -> Result<Counts, FarmError> {
    let shape = Shape::new(meta.id, meta.params)?;
    let nodes = meta
        .segments
        .get(seg)
        .ok_or_else(|| FarmError::Corrupt(format!("object {} has no segment {seg}", meta.id)))?;
    let n = meta.params.shards();
    let k = usize::from(meta.params.k);
    let moving: Vec<usize> = plan.moves.iter().map(|(p, _)| *p).collect();
    // Positions whose current node may be read.
    let readable: Vec<usize> = (0..n)
        .filter(|p| !moving.contains(p))
        .filter(|p| {
            nodes
                .get(*p)
                .is_some_and(|node| matches!(states.get(node), Some(NodeState::Up)))
        })
        .collect();
    let mut counts = Counts::default();
    for stripe in meta.segment_stripes(seg) {
        // Deep: read every readable shard. Else: just enough to rebuild.
        let ask: Vec<usize> = if plan.deep {
            readable.clone()
        } else {
            readable.iter().copied().take(k).collect()
        };
        let (mut shards, mut bad) = read(store, &shape, stripe, nodes, &ask).await;
        if !plan.deep && shards.iter().flatten().count() < k {
            let rest: Vec<usize> = readable.iter().copied().skip(k).collect();
            let (more, more_bad) = read(store, &shape, stripe, nodes, &rest).await;
            for (slot, m) in shards.iter_mut().zip(more) {
                if slot.is_none() {
                    *slot = m;
                }
            }
            bad.extend(more_bad);
        }
        counts.verified += shards.iter().flatten().count() as u64;
        let mut want: Vec<(u8, NodeId)> = plan
            .moves
            .iter()
            .map(|(p, node)| (*p as u8, node.clone()))
            .collect();
        if plan.deep || !bad.is_empty() {
            for p in &bad {
                if let Some(node) = nodes.get(*p) {
                    want.push((*p as u8, node.clone()));
                }
            }
        }
        if want.is_empty() {
            continue;
        }
        if shards.iter().flatten().count() < k {
            tracing::warn!(
                "object {} stripe {stripe}: fewer than {k} verified shards reachable",
                meta.id
            );
            counts.unrecoverable += 1;
            continue;
        }
        let positions: Vec<u8> = want.iter().map(|(p, _)| *p).collect();
        let coder = shape.clone();
        let rebuilt =
            tokio::task::spawn_blocking(move || coder.rebuild(stripe, shards, &positions))
                .await
                .map_err(|e| FarmError::Io(std::io::Error::other(e.to_string())))??;
        let mut set = JoinSet::new();
        for ((pos, bytes), (_, node)) in rebuilt.into_iter().zip(want) {
            let store = store.clone();
            let id = shape.shard_id(stripe, pos);
            set.spawn(async move { store.put(&node, &id, bytes).await });
        }
        while let Some(r) = set.join_next().await {
            r.map_err(|e| FarmError::Io(std::io::Error::other(e.to_string())))??;
            counts.rebuilt += 1;
        }
    }
    Ok(counts)
}

/// Reads and verifies the shards at `positions`; returns them by position and the positions
/// whose node answered without a good shard.
async fn read<S: ShardStore + Clone>(
    store: &S,
    shape: &Shape,
    stripe: u64,
    nodes: &[NodeId],
    positions: &[usize],
) -> (Vec<Option<Verified>>, Vec<usize>) {
    let mut shards = vec![None; shape.params().shards()];
    let mut bad = Vec::new();
    let mut set = JoinSet::new();
    for &p in positions {
        let Some(node) = nodes.get(p).cloned() else {
            continue;
        };
        let (store, id) = (store.clone(), shape.shard_id(stripe, p as u8));
        set.spawn(async move { (p, store.get(&node, &id).await) });
    }
    while let Some(Ok((p, got))) = set.join_next().await {
        match got {
            Ok(Some(bytes)) => match shape.verify(stripe, p as u8, &bytes) {
                Ok(v) => {
                    if let Some(slot) = shards.get_mut(p) {
                        *slot = Some(v);
                    }
                }
                Err(e) => {
                    tracing::warn!("scrub: {e}");
                    bad.push(p);
                }
            },
            Ok(None) => bad.push(p),
            Err(_) => {}
        }
    }
    bad.sort_unstable();
    (shards, bad)
}
