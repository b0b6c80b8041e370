//! The block fetcher of a mount: memory LRU -> disk cache -> store, with a bounded pool of
//! worker threads, one fetch per block however many readers wait for it, and four
//! priorities: demand reads, read-ahead of a sequential reader, prefetch lists, and fetching
//! ahead across the files of a folder ([`Priority::Ahead`]).
//!
//! Background work (prefetch lists and fetch-ahead) never takes more than three quarters of
//! the workers, so a demand read always finds one free; the fetch-ahead queue holds at most
//! [`MAX_AHEAD_QUEUED`] blocks (what does not fit is not queued). Memory is bounded by the
//! LRU (`--mem-cache`) and the queues' bounds; disk by the cache's bound.
//!
//! A block is verified against its id and decoded before anyone sees it (by the image's
//! codec, [`load`]); a failure is returned to every waiter and is not remembered, so the
//! next read tries again (a store that comes back serves again).

pub mod load;
pub mod lru;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use super::cache::DiskCache;
use super::log::log;
use crate::codec::BlockCodec;
use crate::format::{BlockRef, Hash};
use crate::store::Store;
use load::Source;
pub use load::{FetchError, Res, Stats};
use lru::Lru;

/// Most blocks waiting in the fetch-ahead queue.
pub const MAX_AHEAD_QUEUED: usize = 1024;

/// Priority of a fetch (lower first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// A reader waits for it.
    Demand = 0,
    /// Ahead of a sequential reader.
    ReadAhead = 1,
    /// From a prefetch list.
    Prefetch = 2,
    /// Another file of a folder being listed or read.
    Ahead = 3,
}

const PRIORITIES: usize = 4;

impl Priority {
    fn background(self) -> bool {
        matches!(self, Priority::Prefetch | Priority::Ahead)
    }
}

struct Slot {
    claimed: AtomicBool,
    done: Mutex<Option<Res>>,
    cv: Condvar,
}

struct Job {
    block: BlockRef,
    slot: Arc<Slot>,
}

struct Queues {
    q: [VecDeque<Job>; PRIORITIES],
    /// Background jobs running now (changed under this lock when claimed).
    background: usize,
    stop: bool,
}

struct Inner {
    src: Source,
    mem: Mutex<Lru>,
    inflight: Mutex<HashMap<Hash, Arc<Slot>>>,
    queues: Mutex<Queues>,
    work: Condvar,
    /// Most background jobs running at once.
    background_max: usize,
    /// Jobs being worked on (fetch + cache write), per priority.
    busy: [AtomicUsize; PRIORITIES],
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
        let workers = workers.max(1);
        let inner = Arc::new(Inner {
            src: Source::new(store, codec, cache),
            mem: Mutex::new(Lru::new(mem_bytes)),
            inflight: Mutex::new(HashMap::new()),
            queues: Mutex::new(Queues {
                q: Default::default(),
                background: 0,
                stop: false,
            }),
            work: Condvar::new(),
            background_max: (workers - workers / 4).max(1),
            busy: Default::default(),
        });
        let mut ws = Vec::new();
        for k in 0..workers {
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
        &self.inner.src.stats
    }

    /// The disk cache, if any.
    pub fn cache(&self) -> Option<&DiskCache> {
        self.inner.src.cache.as_ref()
    }

    /// Whether a block is in memory already.
    pub fn in_memory(&self, id: &Hash) -> bool {
        lock(&self.inner.mem).contains(id)
    }

    fn in_lru(&self, id: &Hash) -> Option<Arc<Vec<u8>>> {
        let d = lock(&self.inner.mem).get(id)?;
        self.inner
            .src
            .stats
            .mem_hits
            .fetch_add(1, Ordering::Relaxed);
        Some(d)
    }

    /// Get a block (waits for it).
    pub fn get(&self, b: &BlockRef) -> Res {
        if let Some(d) = self.in_lru(&b.id) {
            return Ok(d);
        }
        match self.submit(b, Priority::Demand) {
            Some(slot) => wait(&slot),
            None => Err(FetchError::Stopped),
        }
    }

    /// Get several blocks, fetched in parallel; results in order.
    pub fn get_many(&self, bl: &[BlockRef]) -> Vec<Res> {
        let pending: Vec<Result<Arc<Slot>, Res>> = bl
            .iter()
            .map(|b| match self.in_lru(&b.id) {
                Some(d) => Err(Ok(d)),
                None => self
                    .submit(b, Priority::Demand)
                    .ok_or(Err(FetchError::Stopped)),
            })
            .collect();
        pending
            .into_iter()
            .map(|p| match p {
                Err(done) => done,
                Ok(slot) => wait(&slot),
            })
            .collect()
    }

    /// Queue blocks in the background (blocks in memory or in flight are skipped); does not
    /// wait. False when not all could be queued: the fetch-ahead queue was full, or stopped.
    pub fn prefetch<'a>(&self, bl: impl IntoIterator<Item = &'a BlockRef>, prio: Priority) -> bool {
        for b in bl {
            if self.in_memory(&b.id) {
                continue;
            }
            if prio == Priority::Ahead
                && lock(&self.inner.queues).q[Priority::Ahead as usize].len() >= MAX_AHEAD_QUEUED
            {
                return false;
            }
            if self.submit(b, prio).is_none() {
                return false;
            }
        }
        true
    }

    /// Stop taking queued work and wait (at most `limit`) for running jobs to finish their
    /// cache writes.
    pub fn shutdown(&self, limit: Duration) {
        lock(&self.inner.queues).stop = true;
        self.inner.work.notify_all();
        let t0 = std::time::Instant::now();
        while self
            .inner
            .busy
            .iter()
            .any(|b| b.load(Ordering::Acquire) > 0)
            && t0.elapsed() < limit
        {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Number of fetches queued or running at `prio`.
    pub fn pending(&self, prio: Priority) -> usize {
        lock(&self.inner.queues).q[prio as usize].len()
            + self.inner.busy[prio as usize].load(Ordering::Acquire)
    }

    /// The slot of a block: existing (in flight) or new (queued at `prio`); `None` once
    /// stopped.
    fn submit(&self, b: &BlockRef, prio: Priority) -> Option<Arc<Slot>> {
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
            let job = Job {
                block: *b,
                slot: slot.clone(),
            };
            if q.stop {
                drop(q);
                finish(&self.inner, &job, Err(FetchError::Stopped));
                return None;
            }
            q.q[prio as usize].push_back(job);
            drop(q);
            self.inner.work.notify_one();
        }
        Some(slot)
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

/// The next job: demand and read-ahead first, background work while it has room.
fn pick(q: &mut Queues, background_max: usize) -> Option<(Job, Priority)> {
    let prios = [
        Priority::Demand,
        Priority::ReadAhead,
        Priority::Prefetch,
        Priority::Ahead,
    ];
    for p in prios {
        if p.background() && q.background >= background_max {
            break;
        }
        if let Some(j) = q.q[p as usize].pop_front() {
            if p.background() {
                q.background += 1;
            }
            return Some((j, p));
        }
    }
    None
}

fn worker(i: &Inner) {
    loop {
        let (job, prio) = {
            let mut q = lock(&i.queues);
            loop {
                if q.stop {
                    // Fail whatever is still queued so that no reader waits forever.
                    let queued: Vec<Job> = q.q.iter_mut().flat_map(|qq| qq.drain(..)).collect();
                    drop(q);
                    for j in queued {
                        finish(i, &j, Err(FetchError::Stopped));
                    }
                    return;
                }
                if let Some(j) = pick(&mut q, i.background_max) {
                    break j;
                }
                q = i.work.wait(q).unwrap_or_else(|p| p.into_inner());
            }
        };
        if !job.slot.claimed.swap(true, Ordering::AcqRel) {
            run(i, &job, prio);
        }
        if prio.background() {
            lock(&i.queues).background -= 1;
            i.work.notify_one();
        }
    }
}

/// Load one claimed job, answer its waiters, then write the disk cache.
fn run(i: &Inner, job: &Job, prio: Priority) {
    let busy = &i.busy[prio as usize];
    busy.fetch_add(1, Ordering::AcqRel);
    // The fetch lock (if any) is held until the block is in the disk cache.
    let (r, to_cache, _lock) = i.src.load(&job.block);
    if let Ok(d) = &r {
        lock(&i.mem).insert(job.block.id, d.clone());
    }
    finish(i, job, r);
    // Readers are served first; the disk cache is written after.
    if let (Some(c), Some(d)) = (&i.src.cache, to_cache)
        && let Err(e) = c.put(&job.block.id, &d)
    {
        log(&format!("cache write failed (block still served): {e}"));
    }
    busy.fetch_sub(1, Ordering::AcqRel);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn job(k: u8) -> Job {
        Job {
            block: BlockRef::whole([k; 32], [0; 32], 0, 1, 1),
            slot: Arc::new(Slot {
                claimed: AtomicBool::new(false),
                done: Mutex::new(None),
                cv: Condvar::new(),
            }),
        }
    }

    #[test]
    fn demand_first_and_background_within_its_share() {
        let mut q = Queues {
            q: Default::default(),
            background: 0,
            stop: false,
        };
        q.q[Priority::Ahead as usize].push_back(job(1));
        q.q[Priority::Ahead as usize].push_back(job(2));
        q.q[Priority::Prefetch as usize].push_back(job(3));
        q.q[Priority::Demand as usize].push_back(job(4));
        let order = |q: &mut Queues| pick(q, 2).map(|(j, p)| (j.block.id[0], p));
        assert_eq!(order(&mut q), Some((4, Priority::Demand)));
        assert_eq!(order(&mut q), Some((3, Priority::Prefetch)));
        assert_eq!(order(&mut q), Some((1, Priority::Ahead)));
        // Two background jobs run: the third waits even though a worker is free...
        assert_eq!(order(&mut q), None);
        // ...while demand still goes through.
        q.q[Priority::Demand as usize].push_back(job(5));
        assert_eq!(order(&mut q), Some((5, Priority::Demand)));
        q.background -= 1;
        assert_eq!(order(&mut q), Some((2, Priority::Ahead)));
    }
}
