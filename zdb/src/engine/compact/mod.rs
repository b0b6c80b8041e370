//! Online compaction: rewrite a closed file pair N with only its live entries, reclaiming the
//! space of overwritten and deleted versions, while the namespace keeps serving.
//!
//! Three phases, so the exclusive lock is held only for the swap:
//! 1. plan (shared lock): walk `iN`, list the entries that are still the current version;
//! 2. build (no lock): write `dN.compact` and `iN.compact` holding only those, fsync them;
//! 3. commit (exclusive lock): entries superseded meanwhile are flagged in the new index, a
//!    journal `compact-N` is made durable, both files are renamed over the old pair, the
//!    journal is removed, and the in-memory index is pointed at the new offsets.
//!
//! A crash before the journal exists leaves the old pair (stray `.compact` files are removed
//! at open); a crash after it is rolled forward at open. The result keeps the 0-db layout.
//! HISTORY of a compacted-away version ends (new entries carry no parent), and SCAN or
//! HISTORY cursors into the rewritten file fail with their usual errors.
//!
//! Sequential mode: slots are never dropped or moved (an id's slot is computed from it); only
//! `dN` is rewritten, and the live slots pointing into it, in any index file, get their data
//! offset patched, from a journal that lists every patch so a crash is finished at open.

mod build;
mod commit;
mod plan;
mod settle;

pub(super) use settle::settle_compactions;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::namespace::Namespace;
use super::pairs::Rotation;
use super::{Mode, OpError};
use crate::format::IndexEntryHeader;
use crate::format::compact_journal;
use crate::storage::Storage;

/// What to copy out of pair N.
pub struct CompactPlan {
    pub(super) file: u32,
    pub(super) mode: Mode,
    /// Live entries: old index offset, header, key.
    pub(crate) live: Vec<(u32, IndexEntryHeader, Vec<u8>)>,
    /// Sequential mode: the index file of each live slot (its offset is in `live`); slots
    /// stay where they are and only their data offset is patched.
    pub(crate) slot_files: Vec<u32>,
    /// Sequential mode: dead slots (file, offset) still pointing into this data file.
    pub(crate) dead_slots: Vec<(u32, u32)>,
    pub(super) dead_bytes: u64,
    pub(super) storage: Arc<dyn Storage>,
    pub(super) index_dir: PathBuf,
    pub(super) data_dir: PathBuf,
}

/// The rewritten pair, durable under temporary names.
pub struct CompactBuilt {
    pub(crate) plan: CompactPlan,
    /// New (index offset, data offset) of each live entry, in plan order.
    pub(crate) placed: Vec<(u32, u32)>,
    pub(super) index_len: u32,
}

/// Outcome of compacting one pair.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CompactStats {
    /// Pairs rewritten.
    pub files: u32,
    /// Bytes no longer on disk.
    pub reclaimed: u64,
}

/// Where a rewritten file waits until the swap renames it over `path`.
fn tmp(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(compact_journal::TMP_SUFFIX);
    PathBuf::from(s)
}

/// Path of pair `file`'s journal.
fn journal(index_dir: &Path, file: u32) -> PathBuf {
    index_dir.join(compact_journal::file_name(file))
}

impl Namespace {
    /// Dead bytes in the active pair: what compacting the closed pairs cannot reach.
    pub fn active_dead_bytes(&self) -> u64 {
        self.usage.dead_in(self.active.id)
    }

    /// Close the active pair if it holds dead bytes, at least `min_dead` of them, so that a
    /// compaction can rewrite it (only closed pairs are rewritten; the new active pair starts
    /// empty). The rotation is returned for the server's hooks, as NSJUMP's is. Nothing
    /// happens on a namespace that refuses writes.
    pub fn rotate_for_compaction(&mut self, min_dead: u64) -> Result<Option<Rotation>, OpError> {
        let dead = self.active_dead_bytes();
        if dead == 0 || dead < min_dead || self.poisoned.is_some() {
            return Ok(None);
        }
        self.jump().map(Some)
    }

    /// Closed pairs that may be compacted.
    pub fn compactable_files(&self) -> Vec<u32> {
        (0..self.active.id).collect()
    }
}
