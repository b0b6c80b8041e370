//! Read cache: recently read small values, shared by every namespace of a server.
//!
//! A GET otherwise pays a `pread` per value (a third of a pipelined GET's CPU in the profile,
//! BENCHMARKS.md), although hot values sit in the page cache anyway. Entries are keyed by
//! where a value lies: (namespace epoch, data file, offset). Bytes at a position never change
//! while the epoch stands, because data files are append-only; whatever rewrites or cuts a file
//! (compaction, a failed write cut back) draws a new epoch for its namespace
//! ([`super::files::Files::renew_epoch`]), which makes the old entries unreachable (they age
//! out). Values enter only after their header and CRC were verified, on reads, never on writes,
//! so a write-only load (bulk import) does not fill memory with values nobody asked for.

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

/// Values longer than this are not cached (their `pread` is small next to the copy).
pub const MAX_ITEM: usize = 64 * 1024;
/// Bookkeeping charged per entry on top of its bytes (key, slot, `Bytes` header).
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

impl quick_cache::Weighter<Pos, Bytes> for ByLen {
    fn weight(&self, _: &Pos, v: &Bytes) -> u64 {
        v.len() as u64 + ENTRY_OVERHEAD
    }
}

/// Bounded by bytes; S3-FIFO eviction (quick_cache), so one scan does not flush hot values.
pub struct ReadCache {
    map: quick_cache::sync::Cache<Pos, Bytes, ByLen>,
}

impl ReadCache {
    /// A cache holding at most `bytes` (values plus per-entry bookkeeping); `None` for 0.
    pub fn new(bytes: u64) -> Option<Self> {
        if bytes == 0 {
            return None;
        }
        // Sized for ~200-byte values; the table grows if they are smaller.
        let items = usize::try_from(bytes / 256).unwrap_or(usize::MAX).max(16);
        Some(Self {
            map: quick_cache::sync::Cache::with_weighter(items, bytes, ByLen),
        })
    }

    pub(crate) fn get(&self, epoch: u64, file: u32, off: u32) -> Option<Bytes> {
        self.map.get(&Pos { epoch, file, off })
    }

    /// Keep a copy of exactly `value` (not the read buffer around it), so the weight is what
    /// the entry really holds.
    pub(crate) fn insert(&self, epoch: u64, file: u32, off: u32, value: &[u8]) {
        if value.len() <= MAX_ITEM {
            self.map
                .insert(Pos { epoch, file, off }, Bytes::copy_from_slice(value));
        }
    }

    /// Bytes held now (values plus bookkeeping).
    pub fn weight(&self) -> u64 {
        self.map.weight()
    }
}
