//! The block fetcher of a mount: memory LRU -> disk cache -> store, with a bounded pool of
//! worker threads, one fetch per block however many readers wait for it, and three
//! priorities (demand reads, read-ahead, prefetch lists).
//!
//! A block is verified against its id and decoded before anyone sees it (by the image's
//! [`BlockCodec`]); a failure is returned to every waiter and is not remembered,
//! so the next read tries again (a store that comes back serves again).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use super::cache::{BlockLock, DiskCache, Lookup};
use super::log::log;
use crate::codec::BlockCodec;
use crate::format::{BlockRef, Hash, hex};
use crate::store::{Store, StoreError};

/// Why a block could not be had. Every variant reads as EIO through the mount.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchError {
    /// The store could not be reached or answered with an error.
    #[error("block {id}: store unavailable: {msg}")]
    Unavailable {
        /// The block id (hex).
        id: String,
        /// The store's answer.
        msg: String,
    },
    /// The store does not hold the block.
    #[error("block {id}: missing from the store: {msg}")]
    Missing {
        /// The block id (hex).
        id: String,
        /// The store's answer.
        msg: String,
    },
    /// The store's bytes do not match the id, or do not decode.
    #[error("block {id}: rejected: {msg}")]
    Corrupt {
        /// The block id (hex).
        id: String,
        /// What did not check.
        msg: String,
    },
    /// The fetcher is shutting down.
    #[error("fetcher stopped")]
    Stopped,
}

/// Priority of a fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// A reader waits for it.
    Demand = 0,
    /// Ahead of a sequential reader.
    ReadAhead = 1,
    /// From a prefetch list.
    Prefetch = 2,
}

type Res = Result<Arc<Vec<u8>>, FetchError>;

struct Slot {
    claimed: AtomicBool,
    done: Mutex<Option<Res>>,
    cv: Condvar,
}

struct Job {
    block: BlockRef,
    slot: Arc<Slot>,
}

/// Memory LRU of decoded blocks, bounded in bytes (`order` maps last use -> id).
struct Lru {
    map: HashMap<Hash, (Arc<Vec<u8>>, u64)>,
    order: BTreeMap<u64, Hash>,
    tick: u64,
    bytes: u64,
    max: u64,
}

impl Lru {
    fn get(&mut self, id: &Hash) -> Option<Arc<Vec<u8>>> {
        self.tick += 1;
        let t = self.tick;
        let (d, u) = self.map.get_mut(id)?;
        self.order.remove(u);
        self.order.insert(t, *id);
        *u = t;
        Some(d.clone())
    }
    fn insert(&mut self, id: Hash, d: Arc<Vec<u8>>) {
        self.tick += 1;
        let n = d.len() as u64;
        if let Some((old, u)) = self.map.insert(id, (d, self.tick)) {
            self.bytes -= old.len() as u64;
            self.order.remove(&u);
        }
        self.order.insert(self.tick, id);
        self.bytes += n;
        while self.bytes > self.max && self.map.len() > 1 {
            let Some((_, victim)) = self.order.pop_first() else {
                break;
            };
            if let Some((d, _)) = self.map.remove(&victim) {
                self.bytes -= d.len() as u64;
            }
        }
    }
}

/// Counters (for logs and tests).
#[derive(Debug, Default)]
pub struct Stats {
    /// Blocks served from the memory LRU.
    pub mem_hits: AtomicU64,
    /// Blocks served from the disk cache.
    pub disk_hits: AtomicU64,
    /// Blocks fetched from the store.
    pub store_fetches: AtomicU64,
    /// Stored bytes fetched.
    pub store_bytes: AtomicU64,
    /// Fetches that failed.
    pub errors: AtomicU64,
    /// Cache files that failed their check.
    pub corrupt_cache: AtomicU64,
}

struct Queues {
    q: [VecDeque<Job>; 3],
    stop: bool,
}

struct Inner {
    store: Arc<dyn Store>,
    codec: Arc<dyn BlockCodec>,
    cache: Option<DiskCache>,
    mem: Mutex<Lru>,
    inflight: Mutex<HashMap<Hash, Arc<Slot>>>,
    queues: Mutex<Queues>,
    work: Condvar,
    store_down: AtomicBool,
    /// Jobs being worked on (fetch + cache write).
    busy: AtomicUsize,
    stats: Stats,
}

/// Shared handle to the fetcher; dropping the last [`Fetcher`] stops the workers.
pub struct Fetcher {
    inner: Arc<Inner>,
    workers: Vec<std::thread::JoinHandle<()>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Fetcher {
    /// Start `workers` fetch threads. `mem_bytes` bounds the memory LRU.
    pub fn new(
        store: Arc<dyn Store>,
        codec: Arc<dyn BlockCodec>,
        cache: Option<DiskCache>,
        workers: usize,
        mem_bytes: u64,
    ) -> std::io::Result<Self> {
        let inner = Arc::new(Inner {
            store,
            codec,
            cache,
            mem: Mutex::new(Lru {
                map: HashMap::new(),
                order: BTreeMap::new(),
                tick: 0,
                bytes: 0,
                max: mem_bytes,
            }),
            inflight: Mutex::new(HashMap::new()),
            queues: Mutex::new(Queues {
                q: [VecDeque::new(), VecDeque::new(), VecDeque::new()],
                stop: false,
            }),
            work: Condvar::new(),
            store_down: AtomicBool::new(false),
            busy: AtomicUsize::new(0),
            stats: Stats::default(),
        });
        let mut ws = Vec::new();
        for k in 0..workers.max(1) {
            let i = inner.clone();
            ws.push(
                std::thread::Builder::new()
                    .name(format!("fetch-{k}"))
                    .spawn(move || worker(&i))?,
            );
        }
        Ok(Fetcher { inner, workers: ws })
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.inner.stats
    }

    /// The disk cache, if any.
    pub fn cache(&self) -> Option<&DiskCache> {
        self.inner.cache.as_ref()
    }

    /// Whether a block is in memory already.
    pub fn in_memory(&self, id: &Hash) -> bool {
        lock(&self.inner.mem).map.contains_key(id)
    }

    /// Get a block (waits for it).
    pub fn get(&self, b: &BlockRef) -> Res {
        if let Some(d) = lock(&self.inner.mem).get(&b.id) {
            self.inner.stats.mem_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(d);
        }
        let slot = self.submit(b, Priority::Demand);
        wait(&slot)
    }

    /// Get several blocks, fetched in parallel; results in order.
    pub fn get_many(&self, bl: &[BlockRef]) -> Vec<Res> {
        let mut pending = Vec::with_capacity(bl.len());
        for b in bl {
            if let Some(d) = lock(&self.inner.mem).get(&b.id) {
                self.inner.stats.mem_hits.fetch_add(1, Ordering::Relaxed);
                pending.push(Err(Ok(d)));
            } else {
                pending.push(Ok(self.submit(b, Priority::Demand)));
            }
        }
        pending
            .into_iter()
            .map(|p| match p {
                Err(done) => done,
                Ok(slot) => wait(&slot),
            })
            .collect()
    }

    /// Queue blocks in the background (read-ahead or prefetch); does not wait.
    pub fn prefetch<'a>(&self, bl: impl IntoIterator<Item = &'a BlockRef>, prio: Priority) {
        for b in bl {
            if lock(&self.inner.mem).map.contains_key(&b.id) {
                continue;
            }
            let _ = self.submit(b, prio);
        }
    }

    /// Stop taking queued work and wait (at most `limit`) for running jobs to finish their
    /// cache writes.
    pub fn shutdown(&self, limit: Duration) {
        {
            let mut q = lock(&self.inner.queues);
            q.stop = true;
        }
        self.inner.work.notify_all();
        let t0 = std::time::Instant::now();
        while self.inner.busy.load(Ordering::Acquire) > 0 && t0.elapsed() < limit {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Number of fetches queued or running.
    pub fn pending(&self) -> usize {
        lock(&self.inner.inflight).len()
    }

    /// The slot of a block: existing (in flight) or new (queued at `prio`).
    fn submit(&self, b: &BlockRef, prio: Priority) -> Arc<Slot> {
        let (slot, new) = {
            let mut inf = lock(&self.inner.inflight);
            match inf.get(&b.id) {
                Some(s) => (s.clone(), false),
                None => {
                    let s = Arc::new(Slot {
                        claimed: AtomicBool::new(false),
                        done: Mutex::new(None),
                        cv: Condvar::new(),
                    });
                    inf.insert(b.id, s.clone());
                    (s, true)
                }
            }
        };
        // A demand for a block queued at a lower priority queues it again in front; the
        // first worker to claim the slot does the work, the other copy is skipped.
        if new || (prio == Priority::Demand && !slot.claimed.load(Ordering::Acquire)) {
            let mut q = lock(&self.inner.queues);
            q.q[prio as usize].push_back(Job {
                block: *b,
                slot: slot.clone(),
            });
            drop(q);
            self.inner.work.notify_one();
        }
        slot
    }
}

impl Drop for Fetcher {
    fn drop(&mut self) {
        lock(&self.inner.queues).stop = true;
        self.inner.work.notify_all();
        // Not joined: a worker may be inside a slow store request; it exits after it.
        self.workers.clear();
    }
}

fn wait(slot: &Slot) -> Res {
    let mut g = lock(&slot.done);
    loop {
        if let Some(r) = g.as_ref() {
            return r.clone();
        }
        g = slot.cv.wait(g).unwrap_or_else(|p| p.into_inner());
    }
}

fn worker(i: &Inner) {
    loop {
        let job = {
            let mut q = lock(&i.queues);
            loop {
                if q.stop {
                    // Fail whatever is still queued so that no reader waits forever.
                    for qq in q.q.iter_mut() {
                        for j in qq.drain(..) {
                            finish(i, &j, Err(FetchError::Stopped));
                        }
                    }
                    return;
                }
                if let Some(j) = q.q.iter_mut().find_map(|qq| qq.pop_front()) {
                    break j;
                }
                q = i.work.wait(q).unwrap_or_else(|p| p.into_inner());
            }
        };
        if job.slot.claimed.swap(true, Ordering::AcqRel) {
            continue;
        }
        i.busy.fetch_add(1, Ordering::AcqRel);
        // The fetch lock (if any) is held until the block is in the disk cache.
        let (r, to_cache, _lock) = load(i, &job.block);
        if let Ok(d) = &r {
            lock(&i.mem).insert(job.block.id, d.clone());
        }
        finish(i, &job, r);
        // Readers are served first; the disk cache is written after.
        if let (Some(c), Some(d)) = (&i.cache, to_cache)
            && let Err(e) = c.put(&job.block.id, &d)
        {
            log(&format!("cache write failed (block still served): {e}"));
        }
        i.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

fn finish(i: &Inner, job: &Job, r: Res) {
    {
        let mut inf = lock(&i.inflight);
        if inf
            .get(&job.block.id)
            .is_some_and(|s| Arc::ptr_eq(s, &job.slot))
        {
            inf.remove(&job.block.id);
        }
    }
    let mut g = lock(&job.slot.done);
    if g.is_none() {
        *g = Some(r);
    }
    drop(g);
    job.slot.cv.notify_all();
}

fn from_cache(i: &Inner, b: &BlockRef) -> Option<Arc<Vec<u8>>> {
    let c = i.cache.as_ref()?;
    match c.get(&b.id, b.plain_len) {
        Lookup::Hit(d) => {
            i.stats.disk_hits.fetch_add(1, Ordering::Relaxed);
            Some(Arc::new(d))
        }
        Lookup::Miss => None,
        Lookup::Corrupt(m) => {
            i.stats.corrupt_cache.fetch_add(1, Ordering::Relaxed);
            log(&format!("cache file rejected, refetching: {m}"));
            None
        }
    }
}

/// Disk cache, else (under the cross-process lock) the store. Returns the block, what is
/// to be written to the disk cache, and the fetch lock to hold until then.
fn load(i: &Inner, b: &BlockRef) -> (Res, Option<Arc<Vec<u8>>>, Option<BlockLock>) {
    if let Some(d) = from_cache(i, b) {
        return (Ok(d), None, None);
    }
    let lk = match i.cache.as_ref().map(|c| c.lock_block(&b.id)).transpose() {
        Ok(l) => l,
        Err(e) => {
            log(&format!("cache lock: {e}"));
            None
        }
    };
    // Another process may have fetched it while we waited for the lock.
    if lk.is_some()
        && let Some(d) = from_cache(i, b)
    {
        return (Ok(d), None, None);
    }
    match fetch_store(i, b) {
        Ok(d) => (Ok(d.clone()), Some(d), lk),
        Err(e) => (Err(e), None, None),
    }
}

/// Fetch from the store, verify and decode.
fn fetch_store(i: &Inner, b: &BlockRef) -> Res {
    let id = hex(&b.id);
    let stored = match get_with_retry(i, b) {
        Ok(s) => s,
        Err(e) => {
            i.stats.errors.fetch_add(1, Ordering::Relaxed);
            let fe = match &e {
                StoreError::NotFound { .. } => FetchError::Missing {
                    id,
                    msg: e.to_string(),
                },
                StoreError::Mismatch | StoreError::Decode(_) => FetchError::Corrupt {
                    id,
                    msg: e.to_string(),
                },
                _ => FetchError::Unavailable {
                    id,
                    msg: e.to_string(),
                },
            };
            if !i.store_down.swap(true, Ordering::AcqRel) {
                log(&format!(
                    "store {} failing ({fe}); reads of blocks not cached fail with EIO until it answers again",
                    i.store.url()
                ));
            }
            return Err(fe);
        }
    };
    i.stats.store_fetches.fetch_add(1, Ordering::Relaxed);
    i.stats
        .store_bytes
        .fetch_add(stored.len() as u64, Ordering::Relaxed);
    let plain = match i.codec.decode(&stored, b) {
        Ok(p) => p,
        Err(e) => {
            i.stats.errors.fetch_add(1, Ordering::Relaxed);
            let fe = FetchError::Corrupt {
                id,
                msg: format!("{e} (from {})", i.store.url()),
            };
            log(&format!("{fe}; refusing it (EIO)"));
            return Err(fe);
        }
    };
    if i.store_down.swap(false, Ordering::AcqRel) {
        log(&format!("store {} answers again", i.store.url()));
    }
    Ok(Arc::new(plain))
}

/// One retry after a short pause for transient errors (not for a missing block).
fn get_with_retry(i: &Inner, b: &BlockRef) -> Result<Vec<u8>, StoreError> {
    match i.store.get(&b.id) {
        Err(StoreError::Io { .. }) => {
            std::thread::sleep(Duration::from_millis(50));
            i.store.get(&b.id)
        }
        r => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lru_is_bounded_and_keeps_recent() {
        let mut l = Lru {
            map: HashMap::new(),
            order: BTreeMap::new(),
            tick: 0,
            bytes: 0,
            max: 30,
        };
        for k in 0..3u8 {
            l.insert([k; 32], Arc::new(vec![k; 10]));
        }
        assert!(l.get(&[0; 32]).is_some());
        l.insert([9; 32], Arc::new(vec![9; 10]));
        assert_eq!(l.bytes, 30);
        assert!(l.get(&[1; 32]).is_none(), "least recently used goes first");
        assert!(l.get(&[0; 32]).is_some() && l.get(&[9; 32]).is_some());
        assert_eq!(l.map.len(), l.order.len());
    }
}
