//! An in-memory [`ShardStore`] with faults to inject: a node can be taken down (every call
//! fails as a timeout would), a shard can be corrupted or removed behind the farm's back.

use crate::ids::{NodeId, ShardId};
use crate::store::{Cursor, ShardStore, StoreError};
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Default)]
struct State {
    shards: BTreeMap<NodeId, BTreeMap<ShardId, Bytes>>,
    down: BTreeSet<NodeId>,
}

/// The fake store; clones share the same nodes.
#[derive(Clone, Default)]
pub struct MemStore {
    state: Arc<Mutex<State>>,
}

impl MemStore {
    /// A store with nodes `nodes`, all up and empty.
    pub fn new(nodes: &[NodeId]) -> Self {
        let s = MemStore::default();
        for n in nodes {
            s.lock().shards.insert(n.clone(), BTreeMap::new());
        }
        s
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds an empty node.
    pub fn add_node(&self, node: &NodeId) {
        self.lock().shards.entry(node.clone()).or_default();
    }

    /// Takes a node down (`true`) or back up with whatever it held (`false`).
    pub fn set_down(&self, node: &NodeId, down: bool) {
        let mut s = self.lock();
        if down {
            s.down.insert(node.clone());
        } else {
            s.down.remove(node);
        }
    }

    /// Flips a byte of a stored shard; false if it is not there.
    pub fn corrupt(&self, node: &NodeId, id: &ShardId, at: usize) -> bool {
        let mut s = self.lock();
        let Some(b) = s.shards.get_mut(node).and_then(|m| m.get_mut(id)) else {
            return false;
        };
        let mut v = b.to_vec();
        let Some(x) = v.get_mut(at) else { return false };
        *x ^= 0x5a;
        *b = Bytes::from(v);
        true
    }

    /// Removes a shard behind the farm's back; false if it was not there.
    pub fn remove(&self, node: &NodeId, id: &ShardId) -> bool {
        self.lock()
            .shards
            .get_mut(node)
            .and_then(|m| m.remove(id))
            .is_some()
    }

    /// Every shard id on a node (whatever its state).
    pub fn ids(&self, node: &NodeId) -> Vec<ShardId> {
        self.lock()
            .shards
            .get(node)
            .map(|m| m.keys().copied().collect())
            .unwrap_or_default()
    }

    /// Shards held per node.
    pub fn counts(&self) -> BTreeMap<NodeId, usize> {
        self.lock()
            .shards
            .iter()
            .map(|(n, m)| (n.clone(), m.len()))
            .collect()
    }

    fn with<T>(
        &self,
        node: &NodeId,
        f: impl FnOnce(&mut BTreeMap<ShardId, Bytes>) -> T,
    ) -> Result<T, StoreError> {
        let mut s = self.lock();
        if s.down.contains(node) {
            return Err(StoreError::Unavailable(node.clone(), "down".into()));
        }
        let m = s
            .shards
            .get_mut(node)
            .ok_or_else(|| StoreError::Unknown(node.clone()))?;
        Ok(f(m))
    }
}

impl ShardStore for MemStore {
    async fn put(&self, node: &NodeId, id: &ShardId, data: Bytes) -> Result<(), StoreError> {
        self.with(node, |m| {
            m.insert(*id, data);
        })
    }

    async fn get(&self, node: &NodeId, id: &ShardId) -> Result<Option<Bytes>, StoreError> {
        self.with(node, |m| m.get(id).cloned())
    }

    async fn delete(&self, node: &NodeId, id: &ShardId) -> Result<(), StoreError> {
        self.with(node, |m| {
            m.remove(id);
        })
    }

    async fn list(
        &self,
        node: &NodeId,
        cursor: Option<Cursor>,
        limit: usize,
    ) -> Result<(Vec<ShardId>, Option<Cursor>), StoreError> {
        let after = cursor.and_then(|c| ShardId::from_key(&c.0));
        let limit = limit.max(1);
        self.with(node, |m| {
            let start = after.map_or(Bound::Unbounded, Bound::Excluded);
            let page: Vec<ShardId> = m
                .range((start, Bound::Unbounded))
                .take(limit)
                .map(|(k, _)| *k)
                .collect();
            let next = if page.len() == limit {
                page.last().map(|l| Cursor(l.key().to_vec()))
            } else {
                None
            };
            (page, next)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::ObjectId;

    #[tokio::test]
    async fn lists_in_pages_and_fails_when_down() {
        let n = NodeId::from("n");
        let s = MemStore::new(std::slice::from_ref(&n));
        let object = ObjectId::random();
        for stripe in 0..5 {
            let id = ShardId {
                object,
                stripe,
                index: 0,
            };
            s.put(&n, &id, Bytes::from_static(b"x")).await.expect("put");
        }
        let (mut all, mut cursor) = (vec![], None);
        loop {
            let (page, next) = s.list(&n, cursor, 2).await.expect("list");
            assert!(page.len() <= 2);
            all.extend(page);
            match next {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(all.len(), 5);
        s.set_down(&n, true);
        assert!(matches!(
            s.list(&n, None, 2).await,
            Err(StoreError::Unavailable(..))
        ));
        let other = NodeId::from("other");
        assert!(matches!(
            s.get(&other, &all[0]).await,
            Err(StoreError::Unknown(_))
        ));
    }
}
