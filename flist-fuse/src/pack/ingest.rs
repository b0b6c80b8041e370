//! The content pipeline. The caller's thread reads files. A file smaller than the packing
//! threshold goes to a spool file (an unlinked temp file beside the output, so memory stays
//! bounded) and is packed with the others at the end, in inode order ([`super::packer`]).
//! A larger file is cut into chunks; a worker thread encodes batches of chunks in parallel
//! (rayon), dedups them and puts the new blocks to the store in batches. Blocks are durable
//! when [`Ingest::finish`] returns.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{SyncSender, sync_channel};
use std::thread::JoinHandle;

use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;

use super::packer::{self, PackError, Packer, Slot};
use super::tree::NodeId;
use crate::chunk;
use crate::codec::flist::encode;
use crate::error::{Error, IoContext, Result};
use crate::format::{BlockRef, Hash, Params};
use crate::store::{Store, StoreError};

const BATCH_BYTES: usize = 16 * 1024 * 1024;
const BATCH_ITEMS: usize = 512;
/// Packs encoded and stored at once (bounds the memory of the final packing).
const PACK_GROUP: usize = 32;

/// Counters of a pack.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Block references (chunks of large files, slices of small ones).
    pub chunks: u64,
    /// Bytes of file content.
    pub plain_bytes: u64,
    /// Distinct blocks.
    pub unique_blocks: u64,
    /// Plain bytes of the distinct blocks.
    pub unique_plain: u64,
    /// Stored (compressed) bytes of the distinct blocks.
    pub unique_stored: u64,
    /// Small files packed together.
    pub packed_files: u64,
    /// Blocks holding them.
    pub packs: u64,
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

/// Small files waiting to be packed: their bytes in an unlinked temp file.
struct Spool {
    file: std::io::BufWriter<File>,
    len: u64,
    files: HashMap<NodeId, (u64, u32)>,
}

/// Feeds file contents to the store.
pub struct Ingest {
    params: Params,
    /// Files below this many bytes are packed (0: none).
    threshold: u32,
    store: Arc<dyn Store>,
    tx: Option<SyncSender<Batch>>,
    worker: Option<JoinHandle<std::result::Result<Out, WorkerError>>>,
    batch: Batch,
    batch_bytes: usize,
    spool: Spool,
    spool_path: PathBuf,
    /// The first bytes of the file being read (re-used: no allocation per file).
    head: Vec<u8>,
    /// The progress bar (hidden unless asked for).
    pub progress: ProgressBar,
}

fn worker(
    store: Arc<dyn Store>,
    params: Params,
    rx: std::sync::mpsc::Receiver<Batch>,
) -> std::result::Result<Out, WorkerError> {
    let mut out = Out {
        refs: HashMap::new(),
        stats: Stats::default(),
    };
    let mut offsets: HashMap<NodeId, u64> = HashMap::new();
    let mut seen: HashSet<Hash> = HashSet::new();
    while let Ok(batch) = rx.recv() {
        let enc: Vec<(NodeId, std::result::Result<_, String>)> = batch
            .into_par_iter()
            .map(|(n, d)| (n, encode(&d, &params)))
            .collect();
        let mut new: Vec<(Hash, Vec<u8>)> = Vec::new();
        for (node, e) in enc {
            let e = e.map_err(WorkerError::Encode)?;
            let off = offsets.entry(node).or_default();
            out.refs.entry(node).or_default().push(BlockRef::whole(
                e.id,
                e.key,
                *off,
                e.plain_len,
                e.stored.len() as u32,
            ));
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
}

/// Read from `r` until `buf` is full or the stream ends; returns the bytes read.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while let Some(rest) = buf.get_mut(n..).filter(|b| !b.is_empty()) {
        match r.read(rest) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

impl Ingest {
    /// Start the store worker; blocks go to `store`, encoded with `params` (whose
    /// `small_files` is the packing threshold). The spool file lives beside `output`.
    pub fn new(
        store: Arc<dyn Store>,
        params: Params,
        progress: bool,
        output: &Path,
    ) -> Result<Self> {
        let (tx, rx) = sync_channel::<Batch>(2);
        let st = store.clone();
        let worker = std::thread::spawn(move || worker(st, params, rx));
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
        let name = output.file_name().unwrap_or_default().to_string_lossy();
        let spool_path = nodeutil::fs::parent_dir(output).join(format!(
            ".{name}.spool-{}-{}",
            std::process::id(),
            nodeutil::random::u64()
        ));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&spool_path)
            .ctx(&spool_path)?;
        // Unlinked at once: nothing is left behind whatever happens next.
        std::fs::remove_file(&spool_path).ctx(&spool_path)?;
        Ok(Ingest {
            threshold: packer::threshold(params.small_files, params.chunk.avg),
            params,
            store,
            tx: Some(tx),
            worker: Some(worker),
            batch: Vec::new(),
            batch_bytes: 0,
            spool: Spool {
                file: std::io::BufWriter::with_capacity(1 << 20, file),
                len: 0,
                files: HashMap::new(),
            },
            spool_path,
            head: Vec::new(),
            progress: pb,
        })
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
    pub fn add_file<R: Read>(&mut self, node: NodeId, mut r: R, path: &Path) -> Result<u64> {
        let mut head = std::mem::take(&mut self.head);
        head.resize(self.threshold as usize, 0);
        let res = self.add_with_head(node, &mut r, path, &mut head);
        self.head = head;
        res
    }

    fn add_with_head<R: Read>(
        &mut self,
        node: NodeId,
        mut r: R,
        path: &Path,
        head: &mut [u8],
    ) -> Result<u64> {
        let n = read_up_to(&mut r, head).ctx(path)?;
        let head = head.get(..n).unwrap_or_default();
        if n < self.threshold as usize {
            // The whole file, below the threshold.
            if n > 0 {
                self.spool.file.write_all(head).ctx(&self.spool_path)?;
                self.spool.files.insert(node, (self.spool.len, n as u32));
                self.spool.len += n as u64;
                self.progress.inc(n as u64);
            }
            return Ok(n as u64);
        }
        let mut size = 0u64;
        let mut broken = false;
        let params = self.params.chunk;
        let res = chunk::for_each_chunk(head.chain(r), &params, |c| {
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
            Some(Ok(Err(e))) => worker_failure(e, path),
            _ => Error::invalid(
                path,
                format!("store worker for {} failed", self.store.url()),
            ),
        }
    }

    /// Wait until every block is durable, packing the small files of `order` (the nodes in
    /// inode order; spooled files not in it were removed from the tree and are dropped).
    /// Returns block lists per node and counters.
    pub fn finish(
        mut self,
        order: &[NodeId],
        path: &Path,
    ) -> Result<(HashMap<NodeId, Vec<BlockRef>>, Stats)> {
        if !self.flush() {
            return Err(self.worker_error(path));
        }
        self.tx = None;
        let mut out = match self.worker.take().map(|w| w.join()) {
            Some(Ok(Ok(out))) => out,
            Some(Ok(Err(e))) => return Err(worker_failure(e, path)),
            _ => return Err(Error::invalid(path, "store worker failed")),
        };
        self.pack_small(order, &mut out, path)?;
        self.progress.finish_and_clear();
        Ok((out.refs, out.stats))
    }

    /// Lay the spooled small files out in packs (inode order), store the packs in groups,
    /// and give each file its slice.
    fn pack_small(&mut self, order: &[NodeId], out: &mut Out, path: &Path) -> Result<()> {
        self.spool.file.flush().ctx(&self.spool_path)?;
        let mut packer = Packer::new(self.params.chunk.avg);
        let mut placed: Vec<(NodeId, Slot)> = Vec::new();
        let mut closed: Vec<Vec<u8>> = Vec::new();
        let mut stored: Vec<packer::Stored> = Vec::new();
        let mut buf = Vec::new();
        for node in order {
            let Some(&(off, len)) = self.spool.files.get(node) else {
                continue;
            };
            buf.resize(len as usize, 0);
            self.spool
                .file
                .get_ref()
                .read_exact_at(&mut buf, off)
                .ctx(&self.spool_path)?;
            let (slot, full) = packer.add(&buf);
            placed.push((*node, slot));
            out.stats.packed_files += 1;
            out.stats.plain_bytes += len as u64;
            if let Some(p) = full {
                closed.push(p);
                if closed.len() >= PACK_GROUP {
                    stored.extend(self.store_group(&mut closed, path)?);
                }
            }
        }
        if let Some(p) = packer.finish() {
            closed.push(p);
        }
        stored.extend(self.store_group(&mut closed, path)?);
        for s in &stored {
            out.stats.packs += 1;
            out.stats.unique_blocks += 1;
            out.stats.unique_plain += s.plain_len as u64;
            out.stats.unique_stored += s.stored_len as u64;
        }
        for (node, slot) in placed {
            let s = stored
                .get(slot.pack)
                .ok_or_else(|| Error::invalid(path, "a pack went missing"))?;
            out.refs.insert(node, vec![s.slice(&slot)]);
            out.stats.chunks += 1;
        }
        Ok(())
    }

    fn store_group(&self, packs: &mut Vec<Vec<u8>>, path: &Path) -> Result<Vec<packer::Stored>> {
        let r = packer::store_packs(packs, &self.params, &self.store).map_err(|e| match e {
            PackError::Encode(m) => Error::invalid(path, m),
            PackError::Store(source) => Error::Store {
                path: path.to_path_buf(),
                source,
            },
        });
        packs.clear();
        r
    }
}

fn worker_failure(e: WorkerError, path: &Path) -> Error {
    match e {
        WorkerError::Store(source) => Error::Store {
            path: path.to_path_buf(),
            source,
        },
        WorkerError::Encode(m) => Error::invalid(path, m),
    }
}
