//! Get: stripes are fetched and decoded in order, a few ahead of the writer. Each stripe asks
//! the nodes of its k data shards first, read straight into one stripe buffer (no decoding and
//! no copy when they all verify); if any fails, the stripe is read again the general way,
//! asking parity shards for what failed; a shard that fails its checksum or is missing on a
//! node that answered is reported as damage, so the repair loop scrubs the object soon.
//! Nothing is returned that failed verification or the decryption tag.

use crate::codec::seal::{ObjectKey, StoreKey};
use crate::codec::shard::Verified;
use crate::codec::stripe::{Shape, StripeCodec};
use crate::ids::NodeId;
use crate::meta::Meta;
use crate::meta::records::ObjectMeta;
use crate::ops::{Farm, FarmError};
use crate::store::{Fetched, ShardStore};
use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::task::{JoinHandle, JoinSet};

/// Stripes fetched ahead of the one being written out.
const AHEAD: usize = 2;

/// Starts fetching and decoding one stripe.
type FetchStripe = dyn Fn(u64) -> JoinHandle<Result<Bytes, FarmError>> + Send + Sync;

/// Reads one object stripe by stripe.
pub struct ObjectReader {
    meta: ObjectMeta,
    next: u64,
    queue: VecDeque<JoinHandle<Result<Bytes, FarmError>>>,
    fetch: Arc<FetchStripe>,
}

impl ObjectReader {
    /// The object's metadata.
    pub fn meta(&self) -> &ObjectMeta {
        &self.meta
    }

    /// The next stripe's plain bytes, or `None` after the last.
    pub async fn next_stripe(&mut self) -> Result<Option<Bytes>, FarmError> {
        while self.queue.len() < AHEAD && self.next < self.meta.stripes() {
            self.queue.push_back((self.fetch)(self.next));
            self.next += 1;
        }
        match self.queue.pop_front() {
            None => Ok(None),
            Some(h) => h
                .await
                .map_err(|e| FarmError::Io(std::io::Error::other(e.to_string())))?
                .map(Some),
        }
    }
}

impl Drop for ObjectReader {
    fn drop(&mut self) {
        for h in &self.queue {
            h.abort();
        }
    }
}

impl<S: ShardStore + Clone> Farm<S> {
    /// Opens the current version of `name` for reading with `key`.
    pub async fn open(&self, name: &str, key: &StoreKey) -> Result<ObjectReader, FarmError> {
        let current = self
            .meta
            .object(name)
            .await?
            .ok_or_else(|| FarmError::NotFound(name.to_string()))?;
        let meta = current.meta;
        meta.check().map_err(FarmError::Corrupt)?;
        let shape = Shape::new(meta.id, meta.params)?;
        let codec = Arc::new(StripeCodec::new(shape, ObjectKey::derive(key, meta.id)));
        let (store, m, farm_meta) = (
            self.store.clone(),
            Arc::new(meta.clone()),
            self.meta.clone(),
        );
        let reported = Arc::new(AtomicBool::new(false));
        let quick = Arc::new(AtomicBool::new(true));
        let fetch = move |stripe: u64| {
            let (store, codec, m, farm_meta, reported, quick) = (
                store.clone(),
                codec.clone(),
                m.clone(),
                farm_meta.clone(),
                reported.clone(),
                quick.clone(),
            );
            tokio::spawn(async move {
                let nodes = m
                    .nodes_of(stripe)
                    .ok_or_else(|| FarmError::Corrupt(format!("no nodes for stripe {stripe}")))?
                    .to_vec();
                let plain_len = m.params.stripe_len(m.size, stripe);
                if quick.load(Ordering::Relaxed) {
                    if let Some(plain) = read_quick(&store, &codec, stripe, &nodes, plain_len).await
                    {
                        return Ok(plain);
                    }
                    // A node down or a shard bad: the rest of this read goes the general way.
                    quick.store(false, Ordering::Relaxed);
                }
                let (shards, damaged) = fetch_stripe(&store, codec.shape(), stripe, &nodes).await;
                if damaged && !reported.swap(true, Ordering::Relaxed) {
                    report_damage(&farm_meta, &m).await;
                }
                let plain =
                    tokio::task::spawn_blocking(move || codec.decode(stripe, plain_len, shards))
                        .await
                        .map_err(|e| FarmError::Io(std::io::Error::other(e.to_string())))??;
                Ok(plain)
            })
        };
        Ok(ObjectReader {
            meta,
            next: 0,
            queue: VecDeque::new(),
            fetch: Arc::new(fetch),
        })
    }

    /// Reads the whole of `name` into `out`; returns the bytes written.
    pub async fn get<W: std::io::Write>(
        &self,
        name: &str,
        key: &StoreKey,
        out: &mut W,
    ) -> Result<u64, FarmError> {
        let mut reader = self.open(name, key).await?;
        let mut total = 0u64;
        while let Some(stripe) = reader.next_stripe().await? {
            out.write_all(&stripe)?;
            total += stripe.len() as u64;
        }
        out.flush()?;
        Ok(total)
    }
}

/// The quick path of a healthy read: the k data shards are read in parallel, each payload
/// straight from its socket into its region of one stripe buffer, then verified, joined
/// (without a copy) and decrypted in place. `None` when any of them is missing, fails or the
/// tag does not hold: the caller then reads the general way ([`fetch_stripe`]: parity,
/// damage reports), so nothing unverified is ever returned either way.
async fn read_quick<S: ShardStore + Clone>(
    store: &S,
    codec: &Arc<StripeCodec>,
    stripe: u64,
    nodes: &[NodeId],
    plain_len: usize,
) -> Option<Bytes> {
    let k = usize::from(codec.shape().params().k);
    let len = codec.expected_shard_len(plain_len);
    let mut rest = BytesMut::with_capacity(len * k);
    let mut set = JoinSet::new();
    for i in 0..k {
        let body = if i + 1 < k {
            let tail = rest.split_off(len);
            std::mem::replace(&mut rest, tail)
        } else {
            std::mem::take(&mut rest)
        };
        let (store, node, id) = (
            store.clone(),
            nodes.get(i)?.clone(),
            codec.shape().shard_id(stripe, i as u8),
        );
        set.spawn(async move { (i, store.get_split(&node, &id, body).await) });
    }
    let mut parts: Vec<Option<_>> = (0..k).map(|_| None).collect();
    while let Some(r) = set.join_next().await {
        match r.ok()? {
            (i, Ok(Fetched::Split(head, body))) => *parts.get_mut(i)? = Some((head, body)),
            _ => return None,
        }
    }
    let parts = parts.into_iter().collect::<Option<Vec<_>>>()?;
    let codec = codec.clone();
    tokio::task::spawn_blocking(move || codec.decode_parts(stripe, plain_len, parts))
        .await
        .ok()?
        .ok()
}

/// Fetches verified shards of one stripe: the data positions first, then parity positions
/// for each that failed, until k verified or none left. Returns them by position and whether
/// a node that answered lacked a shard or held a bad one.
pub async fn fetch_stripe<S: ShardStore + Clone>(
    store: &S,
    shape: &Shape,
    stripe: u64,
    nodes: &[NodeId],
) -> (Vec<Option<Verified>>, bool) {
    let k = usize::from(shape.params().k);
    let n = shape.params().shards();
    let mut shards: Vec<Option<Verified>> = vec![None; n];
    let mut damaged = false;
    let mut next = 0usize;
    let mut want = k;
    while want > 0 && next < n {
        let batch: Vec<usize> = (next..n).take(want).collect();
        next += batch.len();
        let mut set = JoinSet::new();
        for i in batch {
            let (store, node, id) = (
                store.clone(),
                nodes.get(i).cloned(),
                shape.shard_id(stripe, i as u8),
            );
            set.spawn(async move {
                let got = match node {
                    Some(node) => store.get(&node, &id).await,
                    None => Ok(None),
                };
                (i, got)
            });
        }
        while let Some(Ok((i, got))) = set.join_next().await {
            match got {
                Ok(Some(bytes)) => match shape.verify(stripe, i as u8, &bytes) {
                    Ok(v) => {
                        if let Some(slot) = shards.get_mut(i) {
                            *slot = Some(v);
                            want -= 1;
                        }
                    }
                    Err(e) => {
                        tracing::warn!("{e}");
                        damaged = true;
                    }
                },
                Ok(None) => damaged = true,
                // Node state is the registry's business: not damage.
                Err(_) => {}
            }
        }
    }
    (shards, damaged)
}

/// Asks the repair loop to scrub `meta` first (best effort: the periodic scrub finds it too).
pub async fn report_damage(meta: &Meta, obj: &ObjectMeta) {
    if let Err(e) = meta
        .put_json(&meta.keys().damage(&obj.id), &obj.name, None)
        .await
    {
        tracing::warn!("reporting damage of {}: {e}", obj.name);
    }
}
