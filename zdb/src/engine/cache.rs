//! Read cache: recently read small values, shared by every namespace of a server.
//!
//! A GET otherwise pays a `pread` per value (a third of a pipelined GET's CPU in the profile,
//! BENCHMARKS.md), although hot values sit in the page cache anyway. Entries are keyed by
//! where a value lies: (namespace epoch, data file, offset). Bytes at a position never change
//! while the epoch stands, because data files are append-only; whatever rewrites or cuts a file
//! (compaction, FLUSH, a failed write cut back) draws a new epoch for its namespace
//! ([`super::files::Files::renew_epoch`]), which makes the old entries unreachable (they age
//! out). Values enter only after their header and CRC were verified, on reads, never on writes,
//! so a write-only load (bulk import) does not fill memory with values nobody asked for.

use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{MappedRwLockReadGuard, RwLock, RwLockReadGuard};

/// Values longer than this are not cached (their `pread` is small next to the copy).
pub const MAX_ITEM: usize = 64 * 1024;
/// Bookkeeping charged per entry on top of its bytes (key, slot, allocation header).
const ENTRY_OVERHEAD: u64 = 64;

static NEXT_EPOCH: AtomicU64 = AtomicU64::new(1);

/// A number no namespace has used in this process.
pub(crate) fn new_epoch() -> u64 {
    NEXT_EPOCH.fetch_add(1, Ordering::Relaxed)
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Pos {
    epoch: u64,
    file: u32,
    off: u32,
}

#[derive(Clone)]
struct ByLen;

impl quick_cache::Weighter<Pos, Box<[u8]>> for ByLen {
    fn weight(&self, _: &Pos, v: &Box<[u8]>) -> u64 {
        v.len() as u64 + ENTRY_OVERHEAD
    }
}

type Shard = RwLock<quick_cache::unsync::Cache<Pos, Box<[u8]>, ByLen>>;

/// Shards (a power of two): readers share a shard's lock, an insert takes one shard only.
const SHARDS: usize = 16;
const _: () = assert!(SHARDS <= 32, "prefetch keeps a 32-bit mask of shards");

fn shard_of(pos: &Pos) -> usize {
    let mix = (pos.epoch ^ (u64::from(pos.file) << 32) ^ u64::from(pos.off))
        .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    // The top bits of the product depend on every input bit.
    (mix >> 60) as usize % SHARDS
}

/// Bounded by bytes; S3-FIFO eviction (quick_cache), so one scan does not flush hot values.
/// A hit lends the value under its shard's read lock rather than handing out a reference-
/// counted copy: the count's cache line was a miss of its own on every GET (6% of the CPU of a
/// pipelined GET).
pub struct ReadCache {
    shards: Box<[Shard]>,
}

impl ReadCache {
    /// A cache holding at most `bytes` (values plus per-entry bookkeeping); `None` for 0.
    pub fn new(bytes: u64) -> Option<Self> {
        if bytes == 0 {
            return None;
        }
        let per_shard = (bytes / SHARDS as u64).max(1);
        // Sized for ~200-byte values; a table grows if they are smaller.
        let items = usize::try_from(per_shard / 256)
            .unwrap_or(usize::MAX)
            .max(16);
        let shards = (0..SHARDS)
            .map(|_| {
                RwLock::new(quick_cache::unsync::Cache::with_weighter(
                    items, per_shard, ByLen,
                ))
            })
            .collect();
        Some(Self { shards })
    }

    fn shard(&self, pos: &Pos) -> &Shard {
        &self.shards[shard_of(pos)]
    }

    /// The value kept for this position if it is `len` bytes long.
    pub(crate) fn get(
        &self,
        epoch: u64,
        file: u32,
        off: u32,
        len: usize,
    ) -> Option<MappedRwLockReadGuard<'_, [u8]>> {
        let pos = Pos { epoch, file, off };
        RwLockReadGuard::try_map(self.shard(&pos).read(), |c| {
            c.get(&pos).filter(|v| v.len() == len).map(|v| &**v)
        })
        .ok()
    }

    /// Hint the values kept for these (data file, offset, length) positions into the CPU's
    /// cache, for reads about to come. The shards involved are locked first, in ascending
    /// order, and the lookups then run back to back: a lock between two lookups would make
    /// each wait for the one before (a locked instruction waits for the loads ahead of it),
    /// and overlapping those waits is the point. Readers that lock in one order cannot
    /// deadlock one another, and writers hold a single shard.
    pub(crate) fn prefetch(&self, epoch: u64, at: &[(u32, u32, u32)]) {
        const BATCH: usize = 64;
        let mut shard_of_item = [0u8; BATCH];
        for at in at.chunks(BATCH) {
            let mut used = 0u32;
            for (s, &(file, off, _)) in shard_of_item.iter_mut().zip(at) {
                let shard = shard_of(&Pos { epoch, file, off });
                used |= 1 << shard;
                *s = shard as u8;
            }
            let mut held: [Option<RwLockReadGuard<'_, _>>; SHARDS] = Default::default();
            for (shard, guard) in held.iter_mut().enumerate() {
                if used & (1 << shard) != 0 {
                    *guard = Some(self.shards[shard].read());
                }
            }
            for (&s, &(file, off, len)) in shard_of_item.iter().zip(at) {
                if let Some(v) = held[usize::from(s)]
                    .as_ref()
                    .and_then(|c| c.get(&Pos { epoch, file, off }))
                    .filter(|v| v.len() == len as usize)
                {
                    super::prefetch::bytes(v);
                }
            }
        }
    }

    /// Keep a copy of exactly `value` (not the read buffer around it), so the weight is what
    /// the entry really holds.
    pub(crate) fn insert(&self, epoch: u64, file: u32, off: u32, value: &[u8]) {
        if value.len() <= MAX_ITEM {
            let pos = Pos { epoch, file, off };
            self.shard(&pos).write().insert(pos, value.into());
        }
    }

    /// Bytes held now (values plus bookkeeping).
    pub fn weight(&self) -> u64 {
        self.shards.iter().map(|s| s.read().weight()).sum()
    }
}
