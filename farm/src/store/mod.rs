//! Where shards live: a [`ShardStore`] puts, gets, deletes and lists shards by id in the farm's
//! shard namespace on a node. The real one, [`zdb::ZdbStore`], talks to zdb; [`mem::MemStore`]
//! is the fake the repair, scrub and collection tests run on (nodes that vanish, shards that
//! rot).

pub mod mem;
pub mod zdb;

use crate::codec::shard::HEADER;
use crate::ids::{NodeId, ShardId};
use bytes::{Bytes, BytesMut};
use std::future::Future;

/// A shard read apart (see [`ShardStore::get_split`]).
#[derive(Debug)]
pub enum Fetched {
    /// Its header, and its payload appended to the buffer given.
    Split([u8; HEADER], BytesMut),
    /// Not there (`None`), or too short to hold a header: whole.
    Whole(Option<Bytes>),
}

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
    /// Stores shard `id` given as its header and payload; a store that can send the two as one
    /// value without joining them overrides this (joined, a copy, by default).
    fn put_split(
        &self,
        node: &NodeId,
        id: &ShardId,
        head: [u8; HEADER],
        payload: Bytes,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let mut data = Vec::with_capacity(HEADER + payload.len());
        data.extend_from_slice(&head);
        data.extend_from_slice(&payload);
        self.put(node, id, data.into())
    }

    /// Reads shard `id` apart: its header, and its payload appended to `body` (a region of a
    /// stripe's buffer, so the payloads of a stripe join without a copy); a store that can
    /// read into `body` directly overrides this (a copy by default).
    fn get_split(
        &self,
        node: &NodeId,
        id: &ShardId,
        mut body: BytesMut,
    ) -> impl Future<Output = Result<Fetched, StoreError>> + Send {
        let got = self.get(node, id);
        async move {
            Ok(match got.await? {
                Some(b) if b.len() >= HEADER => {
                    let (head, payload) = b.split_at(HEADER);
                    let mut h = [0u8; HEADER];
                    h.copy_from_slice(head);
                    body.extend_from_slice(payload);
                    Fetched::Split(h, body)
                }
                other => Fetched::Whole(other),
            })
        }
    }

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
