//! The write path: SET and DEL in user and sequential mode.
//!
//! Order of a user-mode overwrite: append the data entry, append the new index entry (whose
//! parent points at the old one), then flag the old index entry deleted in place. A crash
//! after any step leaves either the old or the new version readable, never neither.

use std::sync::Arc;

use super::keymap::Loc;
use super::namespace::Namespace;
use super::{FileKind, Mode, OpError};
use crate::format::{DataEntryHeader, FLAG_DELETED, IndexEntryHeader, crc32, data, index};
use crate::storage::StorageFile;

/// Values this large are written from where they are, straight to the data file (not copied
/// into the append buffer).
const LARGE_VALUE: usize = 64 << 10;

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

impl Namespace {
    /// A SET that found its value already there. With group commit, the write that put it
    /// there may still wait for its fsync: this SET then waits for it too, or it would tell its
    /// client the value is stored when a power cut could still lose it.
    fn unchanged(&mut self) -> SetOutcome {
        if self.cfg.sync && self.cfg.group_commit {
            self.commit_token = Some(self.durability.latest());
        }
        SetOutcome::Unchanged
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
        let large = value.len() >= LARGE_VALUE;
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

    pub(super) fn flag_deleted(&mut self, file: u32, idx_off: u32) -> Result<(), OpError> {
        let off = u64::from(idx_off) + index::FLAGS_OFFSET as u64;
        // Read the current flags so other bits survive.
        let mut flags = [0u8; 1];
        if let Ok(h) = self.handle(FileKind::Index, file) {
            let _ = h.read_exact_at(&mut flags, off);
        }
        self.write_index_in_place(file, off, &[flags[0] | FLAG_DELETED])
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
        if self.sync_due()
            && let Err(e) = self.sync_now()
        {
            self.poison(FileKind::Data, &e);
            return Err(OpError::DataWrite);
        }
        Ok(())
    }

    /// Whether a write must fsync once done: `--sync` without group commit, or `--synctime`
    /// since the last fsync.
    fn sync_due(&self) -> bool {
        (self.cfg.sync && !self.cfg.group_commit)
            || self
                .cfg
                .synctime
                .is_some_and(|t| self.last_sync.elapsed() >= t)
    }

    /// Whether a SET or DEL of a `value_len`-byte value under a `key_len`-byte key is known to
    /// touch the disk before it returns (so the server runs it on a blocking thread): it
    /// rotates the files (the closed pair is fsynced), it must fsync, its value goes straight
    /// to the file, or it fills the append buffer, which then writes itself out.
    pub fn write_may_block(&self, key_len: usize, value_len: usize) -> bool {
        let entry = Self::data_entry_len(key_len, value_len);
        self.rotation_due(entry)
            || value_len >= LARGE_VALUE
            || self.sync_due()
            || self.active.data.buffered() as u64 + entry >= crate::storage::append::LIMIT as u64
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
    pub(super) fn record_user_set(&mut self, key: &[u8], loc: Loc, old: Option<Loc>) {
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
            self.usage.superseded(key.len(), old.len, old.file);
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
        let Some((file, off, old)) = self.seq_live_slot(key) else {
            // 0-db checks the size limit before the key: a full namespace is full for any key
            // (clients map that error to ENOSPC).
            self.check_maxsize(value.len(), 0)?;
            return Err(OpError::SeqUpdateOnly);
        };
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

    pub(super) fn append_seq_slot(
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
    #[expect(
        clippy::too_many_arguments,
        reason = "one slot update: its position, the version it replaces and the new one"
    )]
    pub(super) fn seq_update_slot(
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
        self.usage.superseded(key.len(), old.length, old.dataid);
        Ok(())
    }

    /// DEL: tombstone in the data file, then flag the index entry.
    /// A rotation that happened first waits in [`Namespace::take_rotation`].
    pub fn del(&mut self, key: &[u8], ts: u32) -> Result<(), OpError> {
        self.check_writable()?;
        // Index slot, value length, data file holding the value.
        let (file, idx_off, len, data_file) = match self.mode {
            Mode::User => {
                let loc = self.keys.get(key).ok_or(OpError::KeyNotFound)?;
                (loc.file, loc.idx_off, loc.len, loc.file)
            }
            Mode::Seq => {
                let (f, o, h) = self.seq_live_slot(key).ok_or(OpError::KeyNotFound)?;
                (f, o, h.length, h.dataid)
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
        self.record_delete(key, len, data_file);
        self.after_write()
    }

    /// A key whose value (`len` bytes in data file `file`) was deleted.
    pub(super) fn record_delete(&mut self, key: &[u8], len: u32, file: u32) {
        match self.mode {
            Mode::User => {
                self.keys.remove(key);
                self.usage.superseded(key.len(), len, file);
            }
            Mode::Seq => self.usage.deleted_id(key.len(), len, file),
        }
    }
}
