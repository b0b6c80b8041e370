//! Where shards live: a [`ShardStore`] puts, gets, deletes and lists shards by id in the farm's
//! shard namespace on a node. The real one, [`zdb::ZdbStore`], talks to zdb; [`mem::MemStore`]
//! is the fake the repair, scrub and collection tests run on (nodes that vanish, shards that
//! rot).

pub mod mem;
pub mod zdb;

use crate::ids::{NodeId, ShardId};
use bytes::Bytes;
use std::future::Future;

/// Where a listing of a node's shards goes on; opaque to callers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor(pub Vec<u8>);

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
    /// A page of about `limit` shard ids on `node`, from `cursor` (`None`: the start), and
    /// the cursor of the next page (`None`: that was the last). The order is the store's own
    /// (zdb scans in the order entries were written, and never splits one of its own pages);
    /// keys that are not shard ids are skipped.
    fn list(
        &self,
        node: &NodeId,
        cursor: Option<Cursor>,
        limit: usize,
    ) -> impl Future<Output = Result<(Vec<ShardId>, Option<Cursor>), StoreError>> + Send;
}
