//! Space accounting of a namespace: the bytes of live values, and the dead bytes (superseded
//! and deleted entries still on disk) that compaction can reclaim. Every write, replay,
//! compaction and reset goes through these methods: the counters have no other writer.
//!
//! Dead bytes are an estimate (a dead entry counts its data entry; index entries and
//! tombstones are left out), good enough to decide when compaction pays; compaction itself
//! measures what it reclaims.

use super::namespace::Namespace;

/// Live and dead bytes of one namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Usage {
    /// Sum of live value lengths.
    live_bytes: u64,
    /// Bytes of superseded and deleted entries still on disk.
    dead_bytes: u64,
    /// Live ids (sequential mode; user mode counts the keys of its map).
    seq_live: u64,
}

impl Usage {
    /// Counters restored from a key map snapshot (user mode).
    pub(super) fn restored(live_bytes: u64, dead_bytes: u64) -> Self {
        Usage {
            live_bytes,
            dead_bytes,
            seq_live: 0,
        }
    }

    /// Sum of live value lengths.
    pub(super) fn live_bytes(&self) -> u64 {
        self.live_bytes
    }

    /// Bytes of superseded and deleted entries still on disk.
    pub(super) fn dead_bytes(&self) -> u64 {
        self.dead_bytes
    }

    /// Live ids of a sequential namespace.
    pub(super) fn seq_live(&self) -> u64 {
        self.seq_live
    }

    /// A new current version of `len` bytes: a new key, or the new side of an overwrite.
    pub(super) fn stored(&mut self, len: u32) {
        self.live_bytes += u64::from(len);
    }

    /// A new sequential id holding `len` bytes.
    pub(super) fn stored_id(&mut self, len: u32) {
        self.seq_live += 1;
        self.stored(len);
    }

    /// The current version of a key (`key_len`, value of `len` bytes) stopped being current
    /// (overwritten or deleted): its entry is dead now.
    pub(super) fn superseded(&mut self, key_len: usize, len: u32) {
        self.live_bytes -= u64::from(len);
        self.found_dead(key_len, len);
    }

    /// A sequential id (value of `len` bytes) was deleted.
    pub(super) fn deleted_id(&mut self, key_len: usize, len: u32) {
        self.seq_live -= 1;
        self.superseded(key_len, len);
    }

    /// An entry that was already dead when found (flagged deleted in the index at replay).
    pub(super) fn found_dead(&mut self, key_len: usize, len: u32) {
        self.dead_bytes += Namespace::data_entry_len(key_len, len as usize);
    }

    /// Compaction removed `bytes` of dead entries from disk.
    pub(super) fn reclaimed(&mut self, bytes: u64) {
        self.dead_bytes = self.dead_bytes.saturating_sub(bytes);
    }
}
