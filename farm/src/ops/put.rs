//! Put: the input is read on a blocking thread, each stripe straight into the buffer it is
//! sealed in; every stripe's encoding starts on the blocking pool as soon as it is read (one
//! per core in flight, order kept), at most [`AHEAD`] encoded stripes are being written, and
//! each stripe's k + m shards go to their nodes in parallel; the metadata is committed in one
//! transaction after every shard is stored. A put that fails leaves shards that nothing
//! references: its pending record goes with its lease and the collector deletes them.

use crate::codec::seal::{ObjectKey, StoreKey};
use crate::codec::stream::StripeReader;
use crate::codec::stripe::{Framed, Shape, StripeCodec};
use crate::ids::{NodeId, ObjectId};
use crate::meta::records::{ObjectMeta, now};
use crate::ops::snapshot::Snapshot;
use crate::ops::{Farm, FarmError, MAX_SEGMENTS};
use crate::placement;
use crate::store::ShardStore;
use std::collections::VecDeque;
use std::io::Read;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};

/// Encoded stripes queued or being written at once (memory: about 1.5 stripes each).
const AHEAD: usize = 2;

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
        let (tx, mut rx) = mpsc::channel::<Next>(encoders());
        let reader = spawn_reader(codec.clone(), input, tx);
        let object = codec.shape().shard_id(0, 0).object;
        let n = codec.shape().params().shards();
        let mut segments: Vec<Vec<NodeId>> = Vec::new();
        let mut inflight: VecDeque<JoinHandle<Result<(), FarmError>>> = VecDeque::new();
        let outcome = loop {
            let encoding = match rx.recv().await {
                Some(Next::Stripe(h)) => h,
                Some(Next::Done(size)) => break Ok(size),
                Some(Next::Failed(e)) => break Err(e),
                None => break Err(FarmError::Io(std::io::Error::other("reader stopped"))),
            };
            let (stripe, shards) = match encoding.await {
                Ok(Ok(v)) => v,
                Ok(Err(e)) => break Err(e),
                Err(e) => break Err(FarmError::Io(std::io::Error::other(e.to_string()))),
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
                    set.spawn(async move {
                        store.put_split(&node, &id, shard.head, shard.payload).await
                    });
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
        // Stops the reader (its next send fails); encodings already started end by themselves.
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
        let _ = reader.await;
        outcome.map(|size| (size, segments))
    }
}

/// What the reader hands the writer, in stripe order.
enum Next {
    /// A stripe being encoded on the blocking pool: its index and shards when done.
    Stripe(JoinHandle<Result<(u64, Vec<Framed>), FarmError>>),
    /// The input ended after this many bytes.
    Done(u64),
    /// Reading the input failed.
    Failed(FarmError),
}

/// Reads the input stripe by stripe on a blocking thread and starts each stripe's encoding on
/// the blocking pool as soon as it is read, so reading, encoding (one stripe per core) and the
/// network overlap. The channel's capacity bounds the stripes being encoded and waiting.
fn spawn_reader<R: Read + Send + 'static>(
    codec: Arc<StripeCodec>,
    input: R,
    tx: mpsc::Sender<Next>,
) -> JoinHandle<()> {
    let rt = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let stripe_size = codec.shape().params().stripe as usize;
        let mut reader = StripeReader::new(input, stripe_size, codec.reserve());
        loop {
            let next = match reader.next_stripe() {
                Ok(Some((i, buf))) => {
                    let codec = codec.clone();
                    Next::Stripe(rt.spawn_blocking(move || {
                        let shards = codec.encode_buf(i, buf)?;
                        Ok((i, shards))
                    }))
                }
                Ok(None) => Next::Done(reader.total()),
                Err(e) => Next::Failed(FarmError::Io(e)),
            };
            let last = !matches!(next, Next::Stripe(_));
            if tx.blocking_send(next).is_err() || last {
                return;
            }
        }
    })
}

/// Stripes encoded at once: one per core, at most 4 (memory: a stripe and its parity each).
fn encoders() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().clamp(1, 4))
}

async fn join(h: JoinHandle<Result<(), FarmError>>) -> Result<(), FarmError> {
    h.await
        .map_err(|e| FarmError::Io(std::io::Error::other(e.to_string())))?
}
