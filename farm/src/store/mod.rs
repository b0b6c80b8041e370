//! Where shards live: a [`ShardStore`] puts, gets, deletes and lists shards by id in the farm's
//! shard namespace on a node. The real one talks to zdb; [`mem::MemStore`] is the fake the
//! repair, scrub and collection tests run on (nodes that vanish, shards that rot).

pub mod mem;

use crate::ids::{NodeId, ShardId};
use bytes::Bytes;
use std::future::Future;

/// A store call failed.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum StoreError {
    /// The node did not answer (down, unreachable, timed out).
    #[error("node {0} unavailable: {1}")]
    Unavailable(NodeId, String),
    /// The node answered with an error (full, refused).
    #[error("node {0}: {1}")]
    Refused(NodeId, String),
    /// The node is not known to the store.
    #[error("node {0} is not registered")]
    Unknown(NodeId),
}

/// Shards in namespaces on nodes.
pub trait ShardStore: Send + Sync + 'static {
    /// Stores shard `id` on `node` (overwriting: a rebuilt shard replaces a corrupted one).
    fn put(
        &self,
        node: &NodeId,
        id: &ShardId,
        data: Bytes,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Reads shard `id` from `node`; `None` if it is not there.
    fn get(
        &self,
        node: &NodeId,
        id: &ShardId,
    ) -> impl Future<Output = Result<Option<Bytes>, StoreError>> + Send;
    /// Deletes shard `id` from `node` (absent is fine).
    fn delete(
        &self,
        node: &NodeId,
        id: &ShardId,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Up to `limit` shard ids on `node` after `after`, in key order (a page of a scan).
    fn list(
        &self,
        node: &NodeId,
        after: Option<ShardId>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<ShardId>, StoreError>> + Send;
}
