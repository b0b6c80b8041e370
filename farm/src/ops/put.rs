//! Put: the input is read on a blocking thread and encoded a few stripes at a time, one per
//! core (order kept), at most [`AHEAD`] encoded stripes wait for the network, and each
//! stripe's k + m shards are written to their nodes in parallel; the metadata is committed in one transaction after every shard is
//! stored. A put that fails leaves shards that nothing references: its pending record goes
//! with its lease and the collector deletes them.

use crate::codec::seal::{ObjectKey, StoreKey};
use crate::codec::stream::StripeReader;
use crate::codec::stripe::{Shape, StripeCodec};
use crate::ids::{NodeId, ObjectId};
use crate::meta::records::{ObjectMeta, now};
use crate::ops::snapshot::Snapshot;
use crate::ops::{Farm, FarmError, MAX_SEGMENTS};
use crate::placement;
use crate::store::ShardStore;
use bytes::Bytes;
use std::collections::VecDeque;
use std::io::Read;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};

/// Encoded stripes queued or being written at once (memory: about 1.5 stripes each).
const AHEAD: usize = 2;

enum Encoded {
    Stripe(u64, Vec<Bytes>),
    Done(u64),
}

/// A committed put.
#[derive(Debug, Clone)]
pub struct PutReport {
    /// The new version's metadata.
    pub meta: ObjectMeta,
    /// The version it replaced, now in the trash.
    pub replaced: Option<ObjectId>,
}

impl<S: ShardStore + Clone> Farm<S> {
    /// Stores everything `input` yields as object `name`, encrypted under `key`.
    pub async fn put<R: Read + Send + 'static>(
        &self,
        name: &str,
        input: R,
        key: &StoreKey,
    ) -> Result<PutReport, FarmError> {
        let params = self.params;
        params.validate()?;
        let id = ObjectId::random();
        let shape = Shape::new(id, params)?;
        let codec = StripeCodec::new(shape, ObjectKey::derive(key, id));
        let snapshot = Snapshot {
            nodes: self.meta.nodes().await?,
        };
        let candidates = snapshot.candidates();
        // Fail before writing anything when the farm is too small.
        let shard_bytes = u64::from(params.stripe) / u64::from(params.k) + 1024;
        placement::place(&candidates, params.shards(), shard_bytes, &id, 0)?;
        let pending = self.meta.begin_put(name, id).await?;
        let result = self
            .write_stripes(codec, input, &candidates, shard_bytes)
            .await;
        let (size, segments) = match result {
            Ok(v) if !pending.lost() => v,
            Ok(_) => {
                self.meta.abandon_put(pending).await;
                return Err(FarmError::Meta(crate::meta::MetaError::Conflict(format!(
                    "put of {name}: pending record expired"
                ))));
            }
            Err(e) => {
                self.meta.abandon_put(pending).await;
                return Err(e);
            }
        };
        let meta = ObjectMeta {
            id,
            name: name.to_string(),
            size,
            params,
            created: now(),
            segment: self.segment,
            segments,
        };
        let replaced = self.meta.commit_put(pending, &meta).await?;
        Ok(PutReport { meta, replaced })
    }

    async fn write_stripes<R: Read + Send + 'static>(
        &self,
        codec: StripeCodec,
        input: R,
        candidates: &[placement::Candidate],
        shard_bytes: u64,
    ) -> Result<(u64, Vec<Vec<NodeId>>), FarmError> {
        let codec = Arc::new(codec);
        let stripe_size = codec.shape().params().stripe as usize;
        let (tx, mut rx) = mpsc::channel::<Result<Encoded, FarmError>>(1);
        let encoder = {
            let codec = codec.clone();
            tokio::task::spawn_blocking(move || {
                let mut reader = StripeReader::new(input, stripe_size);
                let width = encoders();
                loop {
                    // Up to `width` stripes read, encoded side by side, sent in order.
                    let mut batch = Vec::with_capacity(width);
                    let mut end = None;
                    while batch.len() < width && end.is_none() {
                        match reader.next_stripe() {
                            Ok(Some((i, plain))) => batch.push((i, plain.to_vec())),
                            Ok(None) => end = Some(Ok(Encoded::Done(reader.total()))),
                            Err(e) => end = Some(Err(FarmError::Io(e))),
                        }
                    }
                    let encoded = encode_batch(&codec, batch);
                    for msg in encoded.into_iter().chain(end) {
                        let last = !matches!(msg, Ok(Encoded::Stripe(..)));
                        if tx.blocking_send(msg).is_err() || last {
                            return;
                        }
                    }
                }
            })
        };
        let object = codec.shape().shard_id(0, 0).object;
        let n = codec.shape().params().shards();
        let mut segments: Vec<Vec<NodeId>> = Vec::new();
        let mut inflight: VecDeque<JoinHandle<Result<(), FarmError>>> = VecDeque::new();
        let outcome = loop {
            let Some(msg) = rx.recv().await else {
                break Err(FarmError::Io(std::io::Error::other("encoder stopped")));
            };
            let (stripe, shards) = match msg {
                Ok(Encoded::Stripe(i, s)) => (i, s),
                Ok(Encoded::Done(size)) => break Ok(size),
                Err(e) => break Err(e),
            };
            let seg = usize::try_from(stripe / u64::from(self.segment)).unwrap_or(usize::MAX);
            if seg >= segments.len() {
                if seg >= MAX_SEGMENTS {
                    break Err(FarmError::TooLarge(self.segment));
                }
                match placement::place(candidates, n, shard_bytes, &object, seg as u64) {
                    Ok(nodes) => segments.push(nodes),
                    Err(e) => break Err(e.into()),
                }
            }
            let nodes = segments.get(seg).cloned().unwrap_or_default();
            let store = self.store.clone();
            inflight.push_back(tokio::spawn(async move {
                let mut set = JoinSet::new();
                for (i, (shard, node)) in shards.into_iter().zip(nodes).enumerate() {
                    let store = store.clone();
                    let id = crate::ids::ShardId {
                        object,
                        stripe,
                        index: i as u8,
                    };
                    set.spawn(async move { store.put(&node, &id, shard).await });
                }
                while let Some(r) = set.join_next().await {
                    r.map_err(|e| std::io::Error::other(e.to_string()))??;
                }
                Ok(())
            }));
            if inflight.len() >= AHEAD
                && let Some(h) = inflight.pop_front()
                && let Err(e) = join(h).await
            {
                break Err(e);
            }
        };
        drop(rx);
        let mut outcome = outcome;
        for h in inflight {
            let r = join(h).await;
            if outcome.is_ok()
                && let Err(e) = r
            {
                outcome = Err(e);
            }
        }
        let _ = encoder.await;
        outcome.map(|size| (size, segments))
    }
}

/// Stripes encoded at once: one per core, at most 4 (memory: a plain and an encoded stripe
/// each).
fn encoders() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().clamp(1, 4))
}

/// Encodes `batch` on one thread per stripe (scoped: they end before this returns), in order.
fn encode_batch(
    codec: &StripeCodec,
    batch: Vec<(u64, Vec<u8>)>,
) -> Vec<Result<Encoded, FarmError>> {
    std::thread::scope(|s| {
        let handles: Vec<_> = batch
            .into_iter()
            .map(|(i, plain)| {
                s.spawn(move || {
                    codec
                        .encode(i, &plain)
                        .map(|shards| Encoded::Stripe(i, shards))
                        .map_err(FarmError::from)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(FarmError::Io(std::io::Error::other("encoder panicked")))
                })
            })
            .collect()
    })
}

async fn join(h: JoinHandle<Result<(), FarmError>>) -> Result<(), FarmError> {
    h.await
        .map_err(|e| FarmError::Io(std::io::Error::other(e.to_string())))?
}
