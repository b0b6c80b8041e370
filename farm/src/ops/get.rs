//! Get: stripes are fetched and decoded in order, a few ahead of the writer. Each stripe asks
//! the nodes of its k data shards first (no decoding when they all verify) and the parity
//! shards only for what failed; a shard that fails its checksum or is missing on a node that
//! answered is reported as damage, so the repair loop scrubs the object soon. Nothing is
//! returned that failed verification or the decryption tag.

use crate::codec::seal::{ObjectKey, StoreKey};
use crate::codec::shard::Verified;
use crate::codec::stripe::{Shape, StripeCodec};
use crate::ids::NodeId;
use crate::meta::Meta;
use crate::meta::records::ObjectMeta;
use crate::ops::{Farm, FarmError};
use crate::store::ShardStore;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::task::{JoinHandle, JoinSet};

/// Stripes fetched ahead of the one being written out.
const AHEAD: usize = 2;

/// Starts fetching and decoding one stripe.
type FetchStripe = dyn Fn(u64) -> JoinHandle<Result<Vec<u8>, FarmError>> + Send + Sync;

/// Reads one object stripe by stripe.
pub struct ObjectReader {
    meta: ObjectMeta,
    next: u64,
    queue: VecDeque<JoinHandle<Result<Vec<u8>, FarmError>>>,
    fetch: Arc<FetchStripe>,
}

impl ObjectReader {
    /// The object's metadata.
    pub fn meta(&self) -> &ObjectMeta {
        &self.meta
    }

    /// The next stripe's plain bytes, or `None` after the last.
    pub async fn next_stripe(&mut self) -> Result<Option<Vec<u8>>, FarmError> {
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
        let fetch = move |stripe: u64| {
            let (store, codec, m, farm_meta, reported) = (
                store.clone(),
                codec.clone(),
                m.clone(),
                farm_meta.clone(),
                reported.clone(),
            );
            tokio::spawn(async move {
                let nodes = m
                    .nodes_of(stripe)
                    .ok_or_else(|| FarmError::Corrupt(format!("no nodes for stripe {stripe}")))?
                    .to_vec();
                let (shards, damaged) = fetch_stripe(&store, codec.shape(), stripe, &nodes).await;
                if damaged && !reported.swap(true, Ordering::Relaxed) {
                    report_damage(&farm_meta, &m).await;
                }
                let plain_len = m.params.stripe_len(m.size, stripe);
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
