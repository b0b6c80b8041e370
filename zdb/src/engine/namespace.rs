//! The namespace type and its bookkeeping; operations live in `load.rs`, `write.rs` and
//! `read.rs`.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use super::files::Files;
use super::keymap::KeyMap;
use super::{EngineConfig, FileKind, Mode, OpError};
use crate::format::{Descriptor, data, index};
use crate::storage::append::Appender;
use crate::storage::{Storage, StorageFile, write_atomic};

/// Volatile access restriction (NSSET lock / freeze; not persisted, as in 0-db).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LockState {
    /// Normal.
    #[default]
    Open,
    /// Read-only for everyone.
    Locked,
    /// No reads, no writes.
    Frozen,
}

/// I/O error counters reported by NSINFO.
#[derive(Debug, Clone, Copy, Default)]
pub struct NsStats {
    /// Index read/write errors.
    pub index_io_errors: u64,
    /// Unix time of the last index error.
    pub index_io_error_last: u64,
    /// Index entries found inconsistent.
    pub index_faults: u64,
    /// Data read/write errors.
    pub data_io_errors: u64,
    /// Unix time of the last data error.
    pub data_io_error_last: u64,
    /// Data entries found corrupted.
    pub data_faults: u64,
}

/// The active (highest-numbered) file pair.
pub(super) struct Active {
    pub(super) id: u32,
    /// Buffered: appends reach the file at [`Namespace::flush_pending`].
    pub(super) index: Arc<Appender>,
    /// Buffered like `index`.
    pub(super) data: Arc<Appender>,
    /// Next append offset in `iN`.
    pub(super) index_size: u32,
    /// Next append offset in `dN`.
    pub(super) data_size: u32,
}

/// One namespace: descriptor, in-memory index, files.
pub struct Namespace {
    pub(super) cfg: EngineConfig,
    pub(super) files: Files,
    pub(super) desc: Descriptor,
    pub(super) mode: Mode,
    pub(super) active: Active,
    /// User mode: live keys.
    pub(super) keys: KeyMap,
    /// Sequential mode: first id stored in each index file, by file number.
    pub(super) seq_first: Vec<u64>,
    /// Index entries ever appended (sequential mode: the next id).
    pub(super) next_entry: u64,
    /// A rotation made by the last write, until the server takes it to run the hooks.
    pub(super) rotation: Option<super::Rotation>,
    /// Live and dead bytes (and live ids in sequential mode).
    pub(super) usage: super::usage::Usage,
    /// Offset of the last appended index entry (for the `previous` chain).
    pub(super) last_index_off: u32,
    /// Offset of the last appended data entry (for the `previous` chain).
    pub(super) last_data_off: u32,
    /// Size of every index file, by number (for scans).
    pub(super) index_sizes: Vec<u32>,
    /// Index files modified in place since the last `INDEX DIRTY RESET`.
    pub(super) dirty: BTreeSet<u32>,
    /// Older files written in place and not yet fsynced.
    pub(super) unsynced: Vec<Arc<dyn StorageFile>>,
    /// Set after a failed write or fsync: every later write is refused.
    pub(super) poisoned: Option<String>,
    /// Group commit state (`--sync` in the server).
    pub(super) durability: Arc<super::Durability>,
    /// Applying a replicated entry: worm and maxsize were enforced by the leader.
    pub(super) replaying: bool,
    /// Token of the last write waiting for group commit.
    pub(super) commit_token: Option<u64>,
    pub(super) last_sync: Instant,
    /// Volatile lock / freeze.
    pub lock: LockState,
    /// In-memory maxsize override (`--maxsize` for default).
    pub maxsize_override: Option<u64>,
    /// I/O counters.
    pub stats: NsStats,
    /// The key map came from a snapshot rather than a replay of the index.
    pub(super) from_snapshot: bool,
    /// [`Namespace::change_marker`] when the snapshot on disk was last known to match
    /// (`u64::MAX`: none does). Atomic: the idle snapshot is saved under the shared lock.
    pub(super) snapshot_marker: std::sync::atomic::AtomicU64,
    /// Verified values recently read, shared with the server's other namespaces.
    pub(super) read_cache: Option<Arc<super::ReadCache>>,
}

impl Namespace {
    /// Changes whenever the index does (every write appends to it; compaction and FLUSH
    /// change the file sizes): tells the idle snapshot whether there is anything new to save.
    /// A change it missed only costs a replay at the next start (the snapshot check sees it).
    pub fn change_marker(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (
            self.active.id,
            self.active.index_size,
            &self.index_sizes,
            self.next_entry,
            self.keys.len(),
            self.usage.live_bytes(),
            self.usage.dead_bytes(),
        )
            .hash(&mut h);
        h.finish()
    }

    /// Whether a key map snapshot is worth writing now: a writable user-mode namespace whose
    /// snapshot on disk (if any) no longer holds the current key map.
    pub fn snapshot_wanted(&self) -> bool {
        self.mode == Mode::User
            && self.poisoned.is_none()
            && self
                .snapshot_marker
                .load(std::sync::atomic::Ordering::Relaxed)
                != self.change_marker()
    }

    /// Namespace name.
    pub fn name(&self) -> &[u8] {
        &self.desc.name
    }
    /// Persistent settings.
    pub fn descriptor(&self) -> &Descriptor {
        &self.desc
    }
    /// Key mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }
    /// Live keys.
    pub fn entries(&self) -> u64 {
        match self.mode {
            Mode::User => self.keys.len() as u64,
            Mode::Seq => self.usage.seq_live(),
        }
    }
    /// Sum of live value sizes.
    pub fn data_size_bytes(&self) -> u64 {
        self.usage.live_bytes()
    }
    /// Bytes on disk held by superseded or deleted entries.
    pub fn dead_bytes(&self) -> u64 {
        self.usage.dead_bytes()
    }
    /// NSINFO's `index_size_bytes`, 0-db's figure, which tools read: `sizeof(index_entry_t)`
    /// (64 bytes on x86_64) plus the key per live key in user mode, nothing in sequential mode.
    /// (Our key map takes about half of that: `KeyMap::memory_bytes`.)
    pub fn index_size_bytes(&self) -> u64 {
        const ENTRY: u64 = 64;
        match self.mode {
            Mode::User => ENTRY * self.keys.len() as u64 + self.keys.key_bytes(),
            Mode::Seq => 0,
        }
    }
    /// Index entries ever appended (0-db's `nextentry`).
    pub fn next_entry(&self) -> u64 {
        self.next_entry
    }
    /// Effective size limit (0 = none).
    pub fn maxsize(&self) -> u64 {
        self.maxsize_override.unwrap_or(self.desc.maxsize)
    }
    /// Active file pair number and data append offset.
    pub fn current_position(&self) -> (u32, u32) {
        (self.active.id, self.active.data_size)
    }
    /// Paths of the active index and data files.
    pub fn active_paths(&self) -> (PathBuf, PathBuf) {
        (
            self.files.path(FileKind::Index, self.active.id),
            self.files.path(FileKind::Data, self.active.id),
        )
    }
    /// Index and data directories.
    pub fn dirs(&self) -> (PathBuf, PathBuf) {
        (self.files.index_dir.clone(), self.files.data_dir.clone())
    }
    /// Storage backend.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.files.storage
    }
    /// Index files modified in place since the last reset.
    pub fn dirty(&self) -> Vec<u32> {
        self.dirty.iter().copied().collect()
    }
    /// Forget the dirty list.
    pub fn reset_dirty(&mut self) {
        self.dirty.clear();
    }
    /// Why writes are refused, if they are.
    pub fn poisoned(&self) -> Option<&str> {
        self.poisoned.as_deref()
    }
    /// True while nothing was ever written (mode may still change).
    pub fn is_fresh(&self) -> bool {
        self.active.id == 0 && self.active.index_size as usize == index::HEADER_LEN
    }

    /// Handle of file `id` of `kind`: the buffered one for the active pair.
    pub(super) fn handle(&self, kind: FileKind, id: u32) -> std::io::Result<Arc<dyn StorageFile>> {
        if id == self.active.id {
            return Ok(match kind {
                FileKind::Index => self.active.index.clone(),
                FileKind::Data => self.active.data.clone(),
            });
        }
        self.files.get(kind, id)
    }

    /// Write buffered appends to the files (data first). Called before acknowledging them; on
    /// failure the namespace is poisoned and the appends are gone.
    pub fn flush_pending(&mut self) -> Result<(), OpError> {
        if let Err(e) = self.active.data.flush() {
            self.poison(FileKind::Data, &e);
            return Err(OpError::DataWrite);
        }
        if let Err(e) = self.active.index.flush() {
            self.poison(FileKind::Index, &e);
            return Err(OpError::IndexWrite);
        }
        self.check_writable()
    }

    /// Whether appends wait in memory.
    pub fn has_pending(&self) -> bool {
        self.active.data.has_pending() || self.active.index.has_pending()
    }

    /// Rewrite the descriptor atomically after a settings change.
    pub fn set_descriptor(&mut self, desc: Descriptor) -> std::io::Result<()> {
        let path = self
            .files
            .index_dir
            .join(crate::format::descriptor::FILE_NAME);
        write_atomic(&*self.files.storage, &path, &desc.encode())?;
        self.desc = desc;
        Ok(())
    }

    /// Record an I/O failure and refuse further writes.
    pub(super) fn poison(&mut self, kind: FileKind, err: &std::io::Error) {
        let now = crate::now_secs();
        match kind {
            FileKind::Index => {
                self.stats.index_io_errors += 1;
                self.stats.index_io_error_last = now;
            }
            FileKind::Data => {
                self.stats.data_io_errors += 1;
                self.stats.data_io_error_last = now;
            }
        }
        tracing::error!(
            namespace = %String::from_utf8_lossy(&self.desc.name),
            error = %err,
            "write failed; namespace refuses writes until restart"
        );
        self.poisoned = Some(err.to_string());
        // A failed write was cut back: values read from its buffered bytes must not be served.
        self.files.renew_epoch();
    }

    /// Serve hot values from `cache` instead of reading them again.
    pub fn set_read_cache(&mut self, cache: Option<Arc<super::ReadCache>>) {
        self.read_cache = cache;
    }

    /// Group commit: the token to wait for after the last write (None if nothing to wait for).
    pub fn commit_token(&mut self) -> Option<u64> {
        self.commit_token.take()
    }

    /// Group commit state, to wait on outside the namespace lock.
    pub fn durability(&self) -> Arc<super::Durability> {
        self.durability.clone()
    }

    pub(super) fn check_writable(&self) -> Result<(), OpError> {
        if self.poisoned.is_some() || self.durability.failed() {
            return Err(OpError::Poisoned);
        }
        Ok(())
    }

    /// Data file number holding the value of an index entry found in index file `file`.
    pub(super) fn data_file_of(&self, file: u32, hdr: &index::IndexEntryHeader) -> u32 {
        // 0-db writes dataid = 0 in user mode; there index N always pairs with data N.
        match self.mode {
            Mode::User => file,
            Mode::Seq => hdr.dataid,
        }
    }

    /// Index slot (file, offset) of a sequential id, if it was ever allocated.
    pub(super) fn seq_slot(&self, id: u64) -> Option<(u32, u32)> {
        if id >= self.next_entry {
            return None;
        }
        let file = self
            .seq_first
            .partition_point(|&first| first <= id)
            .checked_sub(1)?;
        let first = *self.seq_first.get(file)?;
        let off = index::HEADER_LEN as u64 + (id - first) * index::SEQ_ENTRY_LEN as u64;
        Some((u32::try_from(file).ok()?, u32::try_from(off).ok()?))
    }

    /// Size a data entry takes on disk.
    pub(super) fn data_entry_len(key_len: usize, value_len: usize) -> u64 {
        (data::ENTRY_HEADER_LEN + key_len + value_len) as u64
    }
}
