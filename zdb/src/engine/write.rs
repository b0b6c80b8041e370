//! The write path: SET, DEL, rotation, FLUSH, and the re-indexing used by recovery.
//!
//! Order of a user-mode overwrite: append the data entry, append the new index entry (whose
//! parent points at the old one), then flag the old index entry deleted in place. A crash
//! after any step leaves either the old or the new version readable, never neither.

use std::path::PathBuf;

use super::keymap::Loc;
use super::namespace::{Active, Namespace};
use super::{FileKind, Mode, OpError};
use crate::format::{
    DataEntryHeader, DataHeader, FLAG_DELETED, IndexEntryHeader, IndexHeader, crc32, data, index,
};
use std::sync::Arc;

use crate::storage::append::Appender;
use crate::storage::{OpenMode, StorageFile};

/// Outcome of a SET. Payload-free on purpose: with [`OpError`] it makes an 8-byte result that
/// comes back in a register. A larger one went through memory, written by the callee in
/// pieces narrower than the caller's reads, which then cannot be forwarded and wait for every
/// older store to reach the cache, a cold key map line among them (3-8% of a pipelined SET's
/// CPU).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOutcome {
    /// Written under the key the client sent, which is the reply.
    Stored,
    /// Written as a new sequential entry; the reply is its id, [`Namespace::appended_id`].
    Appended,
    /// Byte-identical to the current value: nothing written.
    Unchanged,
}

/// A rotation to a new file pair, reported so the server can run the hooks.
#[derive(Debug, Clone)]
pub struct Rotation {
    /// Previous index file.
    pub old_index: PathBuf,
    /// New index file.
    pub new_index: PathBuf,
    /// Previous data file.
    pub old_data: PathBuf,
    /// New data file.
    pub new_data: PathBuf,
    /// Index files modified in place (dirty list) at the time of the jump.
    pub dirty: Vec<u32>,
}

impl Namespace {
    /// Create file pair `id` (index first, so a crash never leaves data without its index)
    /// and make it active.
    pub(crate) fn create_pair(&mut self, id: u32) -> Result<(), (PathBuf, std::io::Error)> {
        let storage = self.files.storage.clone();
        let ipath = self.files.path(FileKind::Index, id);
        let dpath = self.files.path(FileKind::Data, id);
        let index = storage
            .open(&ipath, OpenMode::Truncate)
            .map_err(|e| (ipath.clone(), e))?;
        let hdr = IndexHeader {
            fileid: id,
            mode: self.mode.as_byte(),
        };
        index
            .write_at(&hdr.encode(), 0)
            .map_err(|e| (ipath.clone(), e))?;
        index.sync().map_err(|e| (ipath.clone(), e))?;
        let data = storage
            .open(&dpath, OpenMode::Truncate)
            .map_err(|e| (dpath.clone(), e))?;
        data.write_at(&DataHeader { fileid: id }.encode(), 0)
            .map_err(|e| (dpath.clone(), e))?;
        // Preallocation is an optimisation; a filesystem without fallocate still works.
        let _ = data.preallocate(u64::from(self.cfg.datasize));
        data.sync().map_err(|e| (dpath.clone(), e))?;
        storage
            .sync_dir(&self.files.index_dir)
            .map_err(|e| (ipath.clone(), e))?;
        storage
            .sync_dir(&self.files.data_dir)
            .map_err(|e| (dpath.clone(), e))?;
        self.files.put(FileKind::Index, id, index.clone());
        self.files.put(FileKind::Data, id, data.clone());
        self.active = Active {
            id,
            index: Arc::new(Appender::new(index, index::HEADER_LEN as u64)),
            data: Arc::new(Appender::new(data, data::HEADER_LEN as u64)),
            index_size: index::HEADER_LEN as u32,
            data_size: data::HEADER_LEN as u32,
        };
        if self.index_sizes.len() <= id as usize {
            self.index_sizes.push(index::HEADER_LEN as u32);
            self.seq_first.push(self.next_entry);
        }
        Ok(())
    }

    /// Switch to a new file pair (NSJUMP, or a full data file).
    pub fn jump(&mut self) -> Result<Rotation, OpError> {
        self.check_writable()?;
        let old_index = self.files.path(FileKind::Index, self.active.id);
        let old_data = self.files.path(FileKind::Data, self.active.id);
        // Closed files are always made durable, whatever the sync policy.
        if let Err(e) = self.sync_now() {
            self.poison(FileKind::Data, &e);
            return Err(OpError::DataWrite);
        }
        let next = self.active.id + 1;
        if let Err((_, e)) = self.create_pair(next) {
            self.poison(FileKind::Index, &e);
            return Err(OpError::IndexWrite);
        }
        Ok(Rotation {
            old_index,
            new_index: self.files.path(FileKind::Index, next),
            old_data,
            new_data: self.files.path(FileKind::Data, next),
            dirty: self.dirty(),
        })
    }

    /// Rotate first if this entry would push the data file past `--datasize`; the rotation
    /// waits in [`Namespace::take_rotation`] for the server's hooks.
    fn rotate_if_full(&mut self, entry_len: u64) -> Result<(), OpError> {
        let used = u64::from(self.active.data_size);
        if (used > data::HEADER_LEN as u64 && used + entry_len > u64::from(self.cfg.datasize))
            || used + entry_len > u64::from(u32::MAX)
        {
            self.rotation = Some(self.jump()?);
        }
        Ok(())
    }

    /// A SET that found its value already there. With group commit, the write that put it
    /// there may still wait for its fsync: this SET then waits for it too, or it would tell its
    /// client the value is stored when a power cut could still lose it.
    fn unchanged(&mut self) -> SetOutcome {
        if self.cfg.sync && self.cfg.group_commit {
            self.commit_token = Some(self.durability.latest());
        }
        SetOutcome::Unchanged
    }

    /// The rotation the last SET or DEL made before writing, if any (once).
    pub fn take_rotation(&mut self) -> Option<Rotation> {
        self.rotation.take()
    }

    /// The id a sequential-mode SET answered [`SetOutcome::Appended`] with.
    pub fn appended_id(&self) -> [u8; index::SEQ_KEY_LEN] {
        self.next_entry.wrapping_sub(1).to_le_bytes()
    }

    /// Append a data entry whose value has CRC `crc` (0 for tombstones; the caller computes it
    /// once for data and index); on failure cut it back and poison.
    fn append_data(
        &mut self,
        key: &[u8],
        value: &[u8],
        crc: u32,
        flags: u8,
        ts: u32,
    ) -> Result<u32, OpError> {
        let hdr = DataEntryHeader {
            idlength: key.len() as u8,
            datalength: value.len() as u32,
            previous: self.last_data_off,
            crc,
            flags,
            timestamp: ts,
        };
        // Large values are written from where they are, after their header, not copied.
        let large = value.len() >= 64 << 10;
        let inline: &[u8] = if large { &[] } else { value };
        let mut buf = Vec::with_capacity(data::ENTRY_HEADER_LEN + key.len() + inline.len());
        hdr.encode_into(key, inline, &mut buf);
        let off = self.active.data_size;
        // The appender cuts the file back itself if a flush fails.
        let written = if large {
            self.active.data.append_parts(&buf, value, u64::from(off))
        } else {
            self.active.data.write_at(&buf, u64::from(off))
        };
        if let Err(e) = written {
            self.poison(FileKind::Data, &e);
            return Err(OpError::DataWrite);
        }
        self.active.data_size = off + (buf.len() + value.len() - inline.len()) as u32;
        self.last_data_off = off;
        Ok(off)
    }

    /// Append an index entry to the active index file; on failure cut it back and poison.
    pub(crate) fn append_index(
        &mut self,
        hdr: &IndexEntryHeader,
        key: &[u8],
    ) -> Result<u32, OpError> {
        let mut buf = Vec::with_capacity(index::ENTRY_HEADER_LEN + key.len());
        hdr.encode_into(key, &mut buf);
        let off = self.active.index_size;
        if let Err(e) = self.active.index.write_at(&buf, u64::from(off)) {
            self.poison(FileKind::Index, &e);
            return Err(OpError::IndexWrite);
        }
        self.active.index_size = off + buf.len() as u32;
        if let Some(size) = self.index_sizes.get_mut(self.active.id as usize) {
            *size = self.active.index_size;
        }
        self.last_index_off = off;
        self.next_entry += 1;
        Ok(off)
    }

    /// Rewrite bytes of an existing index entry in place (flag or sequential slot).
    fn write_index_in_place(&mut self, file: u32, off: u64, bytes: &[u8]) -> Result<(), OpError> {
        // An in-place write that goes straight to a file (an older entry, or one already
        // flushed) must not land before the appends it belongs with: flag the old version
        // deleted only once the new version's data and index entry are in the files, or a
        // crash in between would lose both versions.
        // With `--sync` the new version must even be durable first: the kernel may write the
        // flag's page back before our fsync of the appends.
        let in_buffer = file == self.active.id && self.active.index.holds(off, bytes.len());
        if !in_buffer {
            self.flush_pending()?;
            if self.cfg.sync
                && let Err(e) = self.sync_now()
            {
                self.poison(FileKind::Data, &e);
                return Err(OpError::DataWrite);
            }
        }
        let res = self.handle(FileKind::Index, file).and_then(|h| {
            h.write_at(bytes, off)?;
            if file != self.active.id {
                self.unsynced.push(h);
            }
            Ok(())
        });
        if let Err(e) = res {
            self.poison(FileKind::Index, &e);
            return Err(OpError::IndexWrite);
        }
        self.dirty.insert(file);
        Ok(())
    }

    fn flag_deleted(&mut self, file: u32, idx_off: u32) -> Result<(), OpError> {
        let off = u64::from(idx_off) + index::FLAGS_OFFSET as u64;
        // Read the current flags so other bits survive.
        let mut flags = [0u8; 1];
        if let Ok(h) = self.handle(FileKind::Index, file) {
            let _ = h.read_exact_at(&mut flags, off);
        }
        self.write_index_in_place(file, off, &[flags[0] | FLAG_DELETED])
    }

    /// fsync everything written so far.
    pub fn sync_now(&mut self) -> std::io::Result<()> {
        self.active.data.sync()?;
        self.active.index.sync()?;
        for f in std::mem::take(&mut self.unsynced) {
            f.sync()?;
        }
        self.last_sync = std::time::Instant::now();
        Ok(())
    }

    /// Apply the sync policy after a write: `--sync` always, `--synctime` when due.
    fn after_write(&mut self) -> Result<(), OpError> {
        if self.cfg.sync && self.cfg.group_commit {
            let files: [Arc<dyn StorageFile>; 2] =
                [self.active.data.clone(), self.active.index.clone()];
            let unsynced = std::mem::take(&mut self.unsynced);
            self.commit_token = Some(self.durability.note(files.into_iter().chain(unsynced)));
            return Ok(());
        }
        let due = self.cfg.sync
            || self
                .cfg
                .synctime
                .is_some_and(|t| self.last_sync.elapsed() >= t);
        if due && let Err(e) = self.sync_now() {
            self.poison(FileKind::Data, &e);
            return Err(OpError::DataWrite);
        }
        Ok(())
    }

    /// Overwriting the current version (at `file`/`off`, `len` bytes): `Ok(true)` when the value
    /// is byte-identical (0-db answers nil and writes nothing), else refused in worm mode.
    fn overwrite_is_noop(
        &self,
        file: u32,
        off: u32,
        key: &[u8],
        len: u32,
        value: &[u8],
    ) -> Result<bool, OpError> {
        if len as usize == value.len()
            && self
                .with_value(file, off, key, len, false, |old| old == value)
                .unwrap_or(false)
        {
            return Ok(true);
        }
        if self.desc.worm && !self.replaying {
            return Err(OpError::Worm);
        }
        Ok(false)
    }

    fn check_maxsize(&self, new_len: usize, old_len: u32) -> Result<(), OpError> {
        let max = self.maxsize();
        if max > 0
            && !self.replaying
            && self.usage.live_bytes() + new_len as u64 > max + u64::from(old_len)
        {
            return Err(OpError::NoSpace);
        }
        Ok(())
    }

    /// SET in user mode, or in sequential mode (empty key = new id, 8-byte key = update).
    /// A rotation that happened first waits in [`Namespace::take_rotation`].
    pub fn set(&mut self, key: &[u8], value: &[u8], ts: u32) -> Result<SetOutcome, OpError> {
        self.check_writable()?;
        match self.mode {
            Mode::User => self.set_user(key, value, ts),
            Mode::Seq => self.set_seq(key, value, ts),
        }
    }

    fn set_user(&mut self, key: &[u8], value: &[u8], ts: u32) -> Result<SetOutcome, OpError> {
        let old = self.keys.get_for_insert(key);
        if let Some(loc) = old
            && self.overwrite_is_noop(loc.file, loc.data_off, key, loc.len, value)?
        {
            return Ok(self.unchanged());
        }
        self.check_maxsize(value.len(), old.map_or(0, |l| l.len))?;
        if old.is_none() && !self.keys.has_room(key.len()) {
            return Err(OpError::IndexWrite);
        }
        self.rotate_if_full(Self::data_entry_len(key.len(), value.len()))?;
        let crc = crc32(value);
        let data_off = self.append_data(key, value, crc, 0, ts)?;
        let hdr = IndexEntryHeader {
            idlength: key.len() as u8,
            offset: data_off,
            length: value.len() as u32,
            previous: self.last_index_off,
            flags: 0,
            dataid: self.active.id,
            timestamp: ts,
            crc,
            parentid: old.map_or(0, |l| l.file),
            parentoff: old.map_or(0, |l| l.idx_off),
        };
        let idx_off = self.append_index(&hdr, key)?;
        if let Some(old) = old {
            self.flag_deleted(old.file, old.idx_off)?;
        }
        self.record_user_set(
            key,
            Loc {
                file: self.active.id,
                idx_off,
                data_off,
                len: hdr.length,
            },
            old,
        );
        self.after_write()?;
        Ok(SetOutcome::Stored)
    }

    /// `old` is what the key map held for `key` when the caller looked it up under the same
    /// `&mut self`, so a new key needs no second lookup.
    fn record_user_set(&mut self, key: &[u8], loc: Loc, old: Option<Loc>) {
        let indexed = match old {
            None => self.keys.insert_new(key, loc),
            Some(_) => self.keys.insert(key, loc).map(drop),
        };
        // Room was checked before the write (`set_user`); a full arena here only happens while
        // replaying at open, where the key is then served after the next restart with more room.
        if indexed.is_err() {
            self.stats.index_faults += 1;
            tracing::error!("in-memory key arena full: key not indexed");
            return;
        }
        self.usage.stored(loc.len);
        if let Some(old) = old {
            self.usage.superseded(key.len(), old.len);
        }
    }

    fn set_seq(&mut self, key: &[u8], value: &[u8], ts: u32) -> Result<SetOutcome, OpError> {
        if key.is_empty() {
            self.check_maxsize(value.len(), 0)?;
            self.rotate_if_full(Self::data_entry_len(index::SEQ_KEY_LEN, value.len()))?;
            let id = self.next_entry.to_le_bytes();
            let crc = crc32(value);
            let data_off = self.append_data(&id, value, crc, 0, ts)?;
            self.append_seq_slot(&id, data_off, value.len() as u32, crc, ts)?;
            self.after_write()?;
            return Ok(SetOutcome::Appended);
        }
        let (file, off, old) = self.seq_live_slot(key).ok_or(OpError::SeqUpdateOnly)?;
        let old_file = self.data_file_of(file, &old);
        if self.overwrite_is_noop(old_file, old.offset, key, old.length, value)? {
            return Ok(self.unchanged());
        }
        self.check_maxsize(value.len(), old.length)?;
        self.rotate_if_full(Self::data_entry_len(index::SEQ_KEY_LEN, value.len()))?;
        let crc = crc32(value);
        let data_off = self.append_data(key, value, crc, 0, ts)?;
        self.seq_update_slot(key, file, off, old, data_off, value.len() as u32, crc, ts)?;
        self.after_write()?;
        Ok(SetOutcome::Stored)
    }

    /// The live slot of an 8-byte sequential id.
    pub(crate) fn seq_live_slot(&self, key: &[u8]) -> Option<(u32, u32, IndexEntryHeader)> {
        let id = u64::from_le_bytes(key.try_into().ok()?);
        let (file, off) = self.seq_slot(id)?;
        let (hdr, _) = self.read_index_entry(file, off).ok()?;
        (!hdr.deleted()).then_some((file, off, hdr))
    }

    fn append_seq_slot(
        &mut self,
        id: &[u8],
        data_off: u32,
        len: u32,
        crc: u32,
        ts: u32,
    ) -> Result<(), OpError> {
        let hdr = IndexEntryHeader {
            idlength: index::SEQ_KEY_LEN as u8,
            offset: data_off,
            length: len,
            previous: self.last_index_off,
            flags: 0,
            dataid: self.active.id,
            timestamp: ts,
            crc,
            parentid: 0,
            parentoff: 0,
        };
        self.append_index(&hdr, id)?;
        self.usage.stored_id(len);
        Ok(())
    }

    /// 0-db's sequential update: copy the old slot to the end of the index (flagged deleted,
    /// consuming an id), then overwrite the slot with the new version pointing at the copy.
    #[allow(clippy::too_many_arguments)]
    fn seq_update_slot(
        &mut self,
        key: &[u8],
        file: u32,
        off: u32,
        old: IndexEntryHeader,
        data_off: u32,
        len: u32,
        crc: u32,
        ts: u32,
    ) -> Result<(), OpError> {
        let copy = IndexEntryHeader {
            flags: old.flags | FLAG_DELETED,
            previous: self.last_index_off,
            ..old
        };
        let copy_file = self.active.id;
        let copy_off = self.append_index(&copy, key)?;
        let new = IndexEntryHeader {
            idlength: index::SEQ_KEY_LEN as u8,
            offset: data_off,
            length: len,
            previous: old.previous,
            flags: 0,
            dataid: self.active.id,
            timestamp: ts,
            crc,
            parentid: copy_file,
            parentoff: copy_off,
        };
        let mut buf = Vec::with_capacity(index::SEQ_ENTRY_LEN);
        new.encode_into(key, &mut buf);
        self.write_index_in_place(file, u64::from(off), &buf)?;
        self.usage.stored(len);
        self.usage.superseded(key.len(), old.length);
        Ok(())
    }

    /// DEL: tombstone in the data file, then flag the index entry.
    /// A rotation that happened first waits in [`Namespace::take_rotation`].
    pub fn del(&mut self, key: &[u8], ts: u32) -> Result<(), OpError> {
        self.check_writable()?;
        let (file, idx_off, len) = match self.mode {
            Mode::User => {
                let loc = self.keys.get(key).ok_or(OpError::KeyNotFound)?;
                (loc.file, loc.idx_off, loc.len)
            }
            Mode::Seq => {
                let (f, o, h) = self.seq_live_slot(key).ok_or(OpError::KeyNotFound)?;
                (f, o, h.length)
            }
        };
        if self.desc.worm && !self.replaying {
            return Err(OpError::WormDelete);
        }
        self.rotate_if_full(Self::data_entry_len(key.len(), 0))?;
        self.append_data(key, &[], 0, FLAG_DELETED, ts)
            .map_err(|_| OpError::DeleteData)?;
        self.flag_deleted(file, idx_off)
            .map_err(|_| OpError::DeleteIndex)?;
        self.record_delete(key, len);
        self.after_write()
    }

    fn record_delete(&mut self, key: &[u8], len: u32) {
        match self.mode {
            Mode::User => {
                self.keys.remove(key);
                self.usage.superseded(key.len(), len);
            }
            Mode::Seq => self.usage.deleted_id(key.len(), len),
        }
    }

    /// Recovery: bring the index up to date with one whole data entry found past its end.
    pub(crate) fn replay_data_entry(
        &mut self,
        pos: u32,
        h: &DataEntryHeader,
        key: &[u8],
    ) -> std::io::Result<()> {
        let to_io = |e: OpError| std::io::Error::other(e.to_string());
        match self.mode {
            Mode::User => {
                let old = self.keys.get(key);
                if h.deleted() {
                    if let Some(loc) = old {
                        self.flag_deleted(loc.file, loc.idx_off).map_err(to_io)?;
                        self.record_delete(key, loc.len);
                    }
                    return Ok(());
                }
                let hdr = IndexEntryHeader {
                    idlength: h.idlength,
                    offset: pos,
                    length: h.datalength,
                    previous: self.last_index_off,
                    flags: 0,
                    dataid: self.active.id,
                    timestamp: h.timestamp,
                    crc: h.crc,
                    parentid: old.map_or(0, |l| l.file),
                    parentoff: old.map_or(0, |l| l.idx_off),
                };
                let idx_off = self.append_index(&hdr, key).map_err(to_io)?;
                if let Some(old) = old {
                    self.flag_deleted(old.file, old.idx_off).map_err(to_io)?;
                }
                self.record_user_set(
                    key,
                    Loc {
                        file: self.active.id,
                        idx_off,
                        data_off: pos,
                        len: h.datalength,
                    },
                    old,
                );
            }
            Mode::Seq => {
                let id = key.try_into().map(u64::from_le_bytes).unwrap_or(u64::MAX);
                if h.deleted() {
                    if let Some((f, o, old)) = self.seq_live_slot(key) {
                        self.flag_deleted(f, o).map_err(to_io)?;
                        self.record_delete(key, old.length);
                    }
                } else if id == self.next_entry {
                    self.append_seq_slot(key, pos, h.datalength, h.crc, h.timestamp)
                        .map_err(to_io)?;
                } else if let Some((f, o, old)) = self.seq_live_slot(key) {
                    if !(old.dataid == self.active.id && old.offset == pos) {
                        self.seq_update_slot(key, f, o, old, pos, h.datalength, h.crc, h.timestamp)
                            .map_err(to_io)?;
                    }
                } else {
                    self.stats.data_faults += 1;
                    tracing::warn!(
                        id,
                        offset = pos,
                        "data entry for an id with no slot skipped"
                    );
                }
            }
        }
        Ok(())
    }

    /// FLUSH: delete every file pair and start empty (0-db v2 deletes nothing; we do).
    pub fn flush(&mut self) -> Result<(), OpError> {
        self.check_writable()?;
        let storage = self.files.storage.clone();
        self.files.forget_all();
        let mut result = Ok(());
        for kind in [FileKind::Index, FileKind::Data] {
            let dir = self.files.dir(kind).to_path_buf();
            let prefix = if kind == FileKind::Index { 'i' } else { 'd' };
            for name in storage.list_dir(&dir).unwrap_or_default() {
                let n = name.to_string_lossy();
                let numbered = n.strip_prefix(prefix).is_some_and(|rest| {
                    !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit())
                });
                if numbered && let Err(e) = storage.remove_file(&dir.join(&name)) {
                    result = Err(e);
                }
            }
            if let Err(e) = storage.sync_dir(&dir) {
                result = Err(e);
            }
        }
        if let Err(e) = result {
            self.poison(FileKind::Data, &e);
            return Err(OpError::DataWrite);
        }
        self.keys.clear();
        self.seq_first.clear();
        self.index_sizes.clear();
        self.dirty.clear();
        self.unsynced.clear();
        self.next_entry = 0;
        self.usage = Default::default();
        self.last_index_off = 0;
        self.last_data_off = 0;
        if let Err((_, e)) = self.create_pair(0) {
            self.poison(FileKind::Index, &e);
            return Err(OpError::IndexWrite);
        }
        Ok(())
    }

    /// Change the mode of a fresh namespace (mixed mode only): rewrite the header of `i0`.
    pub fn set_mode(&mut self, mode: Mode) -> std::io::Result<()> {
        let hdr = IndexHeader {
            fileid: self.active.id,
            mode: mode.as_byte(),
        };
        self.active.index.write_at(&hdr.encode(), 0)?;
        self.active.index.sync()?;
        self.mode = mode;
        Ok(())
    }
}

impl Namespace {
    /// Follower: apply one data entry streamed from the leader (SET or tombstone), with the
    /// leader's timestamp. The leader already applied worm and maxsize; sequential ids come
    /// out the same because the leader's operations are replayed in order.
    pub fn apply_replicated(
        &mut self,
        key: &[u8],
        value: &[u8],
        deleted: bool,
        ts: u32,
    ) -> Result<Option<Rotation>, OpError> {
        self.replaying = true;
        let result = self.apply_replicated_inner(key, value, deleted, ts);
        self.replaying = false;
        let rotation = self.take_rotation();
        result.map(|()| rotation)
    }

    fn apply_replicated_inner(
        &mut self,
        key: &[u8],
        value: &[u8],
        deleted: bool,
        ts: u32,
    ) -> Result<(), OpError> {
        if deleted {
            return match self.del(key, ts) {
                Err(OpError::KeyNotFound) => Ok(()),
                other => other,
            };
        }
        let key = match self.mode {
            Mode::Seq => {
                let id = key
                    .try_into()
                    .map(u64::from_le_bytes)
                    .map_err(|_| OpError::SeqUpdateOnly)?;
                if id == self.next_entry {
                    &[][..]
                } else if id > self.next_entry {
                    return Err(OpError::SeqUpdateOnly);
                } else {
                    key
                }
            }
            Mode::User => key,
        };
        match self.set(key, value, ts) {
            // Already applied before a restart of either side.
            Ok(_) | Err(OpError::SeqUpdateOnly) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
