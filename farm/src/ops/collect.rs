//! Deleting shards nothing references: the shards of trashed versions, and on a node, every
//! shard that is not where its object's metadata says (a returned node's stale shards, the
//! leftovers of failed puts and of superseded repairs).

use crate::ids::{NodeId, ObjectId, ShardId};
use crate::meta::Meta;
use crate::meta::records::ObjectMeta;
use crate::ops::FarmError;
use crate::ops::states::NodeState;
use crate::store::ShardStore;
use std::collections::BTreeMap;

/// Shard ids asked of a node per page.
const PAGE: usize = 1000;
/// Object decisions remembered while listing a node.
const DECISIONS: usize = 4096;

/// What to do with the shards of one object found on a node.
enum Keep {
    /// A put in progress: keep all.
    All,
    /// Committed: keep those the metadata places on this node.
    Placed(Box<ObjectMeta>),
    /// Nothing references it.
    None,
}

async fn decide(meta: &Meta, id: &ObjectId) -> Result<Keep, FarmError> {
    // Pending first: a commit turns pending into objects/ atomically, so reading in this order
    // never misses both.
    if meta.get_raw(&meta.keys().pending(id)).await?.is_some() {
        return Ok(Keep::All);
    }
    Ok(match meta.object_by_id(id).await? {
        Some(c) => Keep::Placed(Box::new(c.meta)),
        None => Keep::None,
    })
}

/// Deletes every shard on `node` that nothing references. Returns how many.
pub async fn collect_node<S: ShardStore>(
    meta: &Meta,
    store: &S,
    node: &NodeId,
) -> Result<u64, FarmError> {
    let mut deleted = 0;
    let mut cursor = None;
    // Decisions per object, bounded (a node lists its shards in write order, so the shards of
    // one object mostly come together).
    let mut decided: BTreeMap<ObjectId, Keep> = BTreeMap::new();
    loop {
        let (page, next) = store.list(node, cursor, PAGE).await?;
        for id in page {
            if !decided.contains_key(&id.object) {
                if decided.len() >= DECISIONS {
                    decided.clear();
                }
                decided.insert(id.object, decide(meta, &id.object).await?);
            }
            let keep = match decided.get(&id.object) {
                Some(Keep::All) => true,
                Some(Keep::Placed(m)) => {
                    id.stripe < m.stripes()
                        && m.nodes_of(id.stripe)
                            .and_then(|n| n.get(usize::from(id.index)))
                            == Some(node)
                }
                _ => false,
            };
            if !keep {
                store.delete(node, &id).await?;
                deleted += 1;
            }
        }
        match next {
            Some(c) => cursor = Some(c),
            None => return Ok(deleted),
        }
    }
}

/// Deletes the shards of trashed versions from the nodes that are up, then their trash
/// records. Shards on nodes that are not up now are left to [`collect_node`] when they return.
pub async fn empty_trash<S: ShardStore>(
    meta: &Meta,
    store: &S,
    states: &BTreeMap<NodeId, NodeState>,
) -> Result<u64, FarmError> {
    let prefix = meta.keys().table("trash");
    let mut deleted = 0;
    for (suffix, old) in meta.list_json::<ObjectMeta>(&prefix).await? {
        let mut complete = true;
        for (seg, nodes) in old.segments.iter().enumerate() {
            for stripe in old.segment_stripes(seg) {
                for (pos, node) in nodes.iter().enumerate() {
                    if !matches!(states.get(node), Some(NodeState::Up)) {
                        continue;
                    }
                    let id = ShardId {
                        object: old.id,
                        stripe,
                        index: pos as u8,
                    };
                    match store.delete(node, &id).await {
                        Ok(()) => deleted += 1,
                        Err(e) => {
                            tracing::debug!("trash {}: {e}", old.id);
                            complete = false;
                        }
                    }
                }
            }
        }
        if complete {
            meta.delete(&format!("{prefix}{suffix}")).await?;
        }
    }
    Ok(deleted)
}
