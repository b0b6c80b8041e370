//! The content pipeline: the caller's thread reads and chunks files; a worker thread
//! encodes batches of chunks in parallel (rayon), dedups them and puts the new blocks to
//! the store in batches. Blocks are durable when `finish` returns.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{SyncSender, sync_channel};
use std::thread::JoinHandle;

use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;

use super::tree::NodeId;
use crate::chunk;
use crate::codec::flist as blocks;
use crate::error::{Error, Result};
use crate::format::{BlockRef, Hash, Params};
use crate::store::{Store, StoreError};

const BATCH_BYTES: usize = 16 * 1024 * 1024;
const BATCH_ITEMS: usize = 512;

/// Counters of a pack.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Chunks cut (block references).
    pub chunks: u64,
    /// Bytes of file content.
    pub plain_bytes: u64,
    /// Distinct blocks.
    pub unique_blocks: u64,
    /// Plain bytes of the distinct blocks.
    pub unique_plain: u64,
    /// Stored (compressed) bytes of the distinct blocks.
    pub unique_stored: u64,
}

type Batch = Vec<(NodeId, Vec<u8>)>;

enum WorkerError {
    Encode(String),
    Store(StoreError),
}

struct Out {
    refs: HashMap<NodeId, Vec<BlockRef>>,
    stats: Stats,
}

/// Feeds file contents to the store.
pub struct Ingest {
    params: Params,
    tx: Option<SyncSender<Batch>>,
    worker: Option<JoinHandle<std::result::Result<Out, WorkerError>>>,
    batch: Batch,
    batch_bytes: usize,
    /// The progress bar (hidden unless asked for).
    pub progress: ProgressBar,
    store_url: String,
}

impl Ingest {
    /// Start the store worker; blocks go to `store`, encoded with `params`.
    pub fn new(store: Arc<dyn Store>, params: Params, progress: bool) -> Self {
        let (tx, rx) = sync_channel::<Batch>(2);
        let store_url = store.url();
        let worker = std::thread::spawn(move || {
            let mut out = Out {
                refs: HashMap::new(),
                stats: Stats::default(),
            };
            let mut offsets: HashMap<NodeId, u64> = HashMap::new();
            let mut seen: HashSet<Hash> = HashSet::new();
            while let Ok(batch) = rx.recv() {
                let enc: Vec<(NodeId, std::result::Result<blocks::Encoded, String>)> = batch
                    .into_par_iter()
                    .map(|(n, d)| (n, blocks::encode(&d, &params)))
                    .collect();
                let mut new: Vec<(Hash, Vec<u8>)> = Vec::new();
                for (node, e) in enc {
                    let e = e.map_err(WorkerError::Encode)?;
                    let off = offsets.entry(node).or_default();
                    out.refs.entry(node).or_default().push(BlockRef {
                        id: e.id,
                        key: e.key,
                        file_offset: *off,
                        plain_len: e.plain_len,
                        stored_len: e.stored.len() as u32,
                    });
                    *off += e.plain_len as u64;
                    out.stats.chunks += 1;
                    out.stats.plain_bytes += e.plain_len as u64;
                    if seen.insert(e.id) {
                        out.stats.unique_blocks += 1;
                        out.stats.unique_plain += e.plain_len as u64;
                        out.stats.unique_stored += e.stored.len() as u64;
                        new.push((e.id, e.stored));
                    }
                }
                store.put_batch(&new).map_err(WorkerError::Store)?;
            }
            Ok(out)
        });
        let pb = if progress {
            let pb = ProgressBar::new_spinner();
            if let Ok(s) = ProgressStyle::with_template(
                "{spinner} {elapsed} {bytes} packed ({bytes_per_sec}) {msg}",
            ) {
                pb.set_style(s);
            }
            pb
        } else {
            ProgressBar::hidden()
        };
        Ingest {
            params,
            tx: Some(tx),
            worker: Some(worker),
            batch: Vec::new(),
            batch_bytes: 0,
            progress: pb,
            store_url,
        }
    }

    fn flush(&mut self) -> bool {
        if self.batch.is_empty() {
            return true;
        }
        let b = std::mem::take(&mut self.batch);
        self.batch_bytes = 0;
        match &self.tx {
            Some(tx) => tx.send(b).is_ok(),
            None => false,
        }
    }

    /// Read a file's content to its end; returns its size. `path` names it in errors.
    pub fn add_file<R: Read>(&mut self, node: NodeId, r: R, path: &Path) -> Result<u64> {
        let mut size = 0u64;
        let mut broken = false;
        let params = self.params.chunk;
        let res = chunk::for_each_chunk(r, &params, |c| {
            size += c.len() as u64;
            self.progress.inc(c.len() as u64);
            self.batch_bytes += c.len();
            self.batch.push((node, c));
            if (self.batch_bytes >= BATCH_BYTES || self.batch.len() >= BATCH_ITEMS) && !self.flush()
            {
                broken = true;
                return Err(std::io::Error::other("store worker stopped"));
            }
            Ok(())
        });
        if broken {
            return Err(self.worker_error(path));
        }
        res.map_err(|e| Error::io(path, e))?;
        Ok(size)
    }

    fn worker_error(&mut self, path: &Path) -> Error {
        self.tx = None;
        match self.worker.take().map(|w| w.join()) {
            Some(Ok(Err(WorkerError::Store(e)))) => Error::Store {
                path: path.to_path_buf(),
                source: e,
            },
            Some(Ok(Err(WorkerError::Encode(m)))) => Error::invalid(path, m),
            _ => Error::invalid(path, format!("store worker for {} failed", self.store_url)),
        }
    }

    /// Wait until every block is durable; returns block lists per node and counters.
    pub fn finish(mut self, path: &Path) -> Result<(HashMap<NodeId, Vec<BlockRef>>, Stats)> {
        if !self.flush() {
            return Err(self.worker_error(path));
        }
        self.tx = None;
        self.progress.finish_and_clear();
        match self.worker.take().map(|w| w.join()) {
            Some(Ok(Ok(out))) => Ok((out.refs, out.stats)),
            Some(Ok(Err(WorkerError::Store(e)))) => Err(Error::Store {
                path: path.to_path_buf(),
                source: e,
            }),
            Some(Ok(Err(WorkerError::Encode(m)))) => Err(Error::invalid(path, m)),
            _ => Err(Error::invalid(path, "store worker failed")),
        }
    }
}
