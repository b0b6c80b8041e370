//! Space accounting of a namespace: the bytes of live values, and the dead bytes (superseded
//! and deleted entries still on disk) that compaction can reclaim, by file pair. Every write,
//! replay, compaction and reset goes through these methods: the counters have no other
//! writer.
//!
//! Dead bytes are an estimate (a dead entry counts its data entry; index entries and
//! tombstones are left out), good enough to decide when and where compaction pays; compaction
//! itself measures what it reclaims. They are counted against the file pair holding the dead
//! value, so a COMPACT knows whether the active pair (which it must close first) holds any.

use super::namespace::Namespace;

/// Live and dead bytes of one namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Usage {
    /// Sum of live value lengths.
    live_bytes: u64,
    /// Dead bytes by file pair.
    dead: Vec<u64>,
    /// Sum of `dead`.
    dead_total: u64,
    /// Live ids (sequential mode; user mode counts the keys of its map).
    seq_live: u64,
}

impl Usage {
    /// Counters restored from a key map snapshot (user mode).
    pub(super) fn restored(live_bytes: u64, dead: Vec<u64>) -> Self {
        Usage {
            live_bytes,
            dead_total: dead.iter().sum(),
            dead,
            seq_live: 0,
        }
    }

    /// Sum of live value lengths.
    pub(super) fn live_bytes(&self) -> u64 {
        self.live_bytes
    }

    /// Bytes of superseded and deleted entries still on disk.
    pub(super) fn dead_bytes(&self) -> u64 {
        self.dead_total
    }

    /// Dead bytes in file pair `file`.
    pub(super) fn dead_in(&self, file: u32) -> u64 {
        self.dead.get(file as usize).copied().unwrap_or(0)
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

    /// The current version of a key (`key_len`, value of `len` bytes in file pair `file`)
    /// stopped being current (overwritten or deleted): its entry is dead now.
    pub(super) fn superseded(&mut self, key_len: usize, len: u32, file: u32) {
        self.live_bytes -= u64::from(len);
        self.found_dead(key_len, len, file);
    }

    /// A sequential id (value of `len` bytes in data file `file`) was deleted.
    pub(super) fn deleted_id(&mut self, key_len: usize, len: u32, file: u32) {
        self.seq_live -= 1;
        self.superseded(key_len, len, file);
    }

    /// An entry that was already dead when found (flagged deleted in the index at replay),
    /// its value in file pair `file`.
    pub(super) fn found_dead(&mut self, key_len: usize, len: u32, file: u32) {
        let Some(slot) = usize::try_from(file).ok().filter(|&f| f < 1 << 20) else {
            // A reclaimed sequential slot (`RECLAIMED`) or garbage: no file holds its bytes.
            return;
        };
        if self.dead.len() <= slot {
            self.dead.resize(slot + 1, 0);
        }
        let bytes = Namespace::data_entry_len(key_len, len as usize);
        if let Some(d) = self.dead.get_mut(slot) {
            *d += bytes;
        }
        self.dead_total += bytes;
    }

    /// Compaction of file pair `file` removed `bytes` of dead entries from disk (measured:
    /// more than the estimate, as it counts index entries and tombstones too).
    pub(super) fn reclaimed(&mut self, file: u32, bytes: u64) {
        if let Some(d) = self.dead.get_mut(file as usize) {
            let gone = bytes.min(*d);
            *d -= gone;
            self.dead_total -= gone;
        }
    }
}
