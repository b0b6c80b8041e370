//! Bringing the index up to date with data found past its end: the tail scan of the active
//! data file at open, and the re-indexing of one data entry that it, and repair, use. Whole
//! entries with a good CRC are re-indexed (a tombstone deletes its key); the file is cut at
//! the first torn one. Replaying is idempotent.

use std::sync::Arc;

use super::entries::{read_entry_at, read_header};
use super::error::io_err;
use super::keymap::Loc;
use super::namespace::{Active, Namespace};
use super::{FileKind, Mode, OpError, OpenError};
use crate::format::{DataEntryHeader, DataHeader, IndexEntryHeader, data, index};
use crate::storage::append::Appender;
use crate::storage::{OpenMode, StorageFile};

impl Namespace {
    /// Opens the active pair `last` and re-indexes the data past `tail_start`.
    pub(super) fn open_active(&mut self, last: u32, tail_start: u64) -> Result<(), OpenError> {
        let ipath = self.files.path(FileKind::Index, last);
        let index_file = self
            .files
            .get(FileKind::Index, last)
            .map_err(io_err("open index", &ipath))?;
        let dpath = self.files.path(FileKind::Data, last);
        let data_file = match self.files.get(FileKind::Data, last) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let f = self
                    .files
                    .storage
                    .open(&dpath, OpenMode::CreateNew)
                    .map_err(io_err("create data", &dpath))?;
                self.files.put(FileKind::Data, last, f.clone());
                f
            }
            Err(e) => return Err(io_err("open data", &dpath)(e)),
        };
        let dlen = data_file.len().map_err(io_err("stat data", &dpath))?;
        if dlen < data::HEADER_LEN as u64 || DataHeader::decode(&read_header(&*data_file)).is_err()
        {
            if dlen > data::HEADER_LEN as u64 {
                tracing::warn!(path = %dpath.display(), "bad data header rewritten");
            }
            data_file
                .set_len(0)
                .map_err(io_err("truncate data", &dpath))?;
            data_file
                .write_at(&DataHeader { fileid: last }.encode(), 0)
                .map_err(io_err("write data", &dpath))?;
            data_file.sync().map_err(io_err("sync data", &dpath))?;
            self.files
                .storage
                .sync_dir(&self.files.data_dir)
                .map_err(io_err("sync directory", &dpath))?;
        }
        let index_len = index_file.len().map_err(io_err("stat index", &ipath))?;
        let data_len = data_file.len().map_err(io_err("stat data", &dpath))?;
        self.active = Active {
            id: last,
            index: Arc::new(Appender::new(index_file, index_len)),
            data: Arc::new(Appender::new(data_file, data_len)),
            index_size: self
                .index_sizes
                .last()
                .copied()
                .unwrap_or(index::HEADER_LEN as u32),
            data_size: 0,
        };
        self.tail_scan(tail_start)
            .map_err(io_err("recover data tail", &dpath))?;
        Ok(())
    }

    /// Walk the active data file from `start`, re-index whole entries, cut the torn tail.
    fn tail_scan(&mut self, start: u64) -> std::io::Result<()> {
        let data = self.active.data.clone();
        let len = data.len()?;
        let mut pos = start.max(data::HEADER_LEN as u64);
        let mut replayed = 0u64;
        while let Some(e) = read_entry_at(&*data, pos, len, self.mode)? {
            if !e.crc_ok() {
                break;
            }
            let Ok(pos32) = u32::try_from(pos) else { break };
            self.active.data_size = u32::try_from(e.end).unwrap_or(u32::MAX);
            self.replay_data_entry(pos32, &e.hdr, e.key())?;
            self.last_data_off = pos32;
            replayed += 1;
            pos = e.end;
        }
        if pos < len {
            tracing::warn!(
                file = self.active.id,
                from = len,
                to = pos,
                "torn data tail cut"
            );
            data.set_len(pos)?;
        }
        self.active.data_size = u32::try_from(pos).unwrap_or(u32::MAX);
        if replayed > 0 || pos < len {
            if replayed > 0 {
                tracing::info!(
                    file = self.active.id,
                    entries = replayed,
                    "data entries re-indexed"
                );
            }
            data.sync()?;
            self.active.index.sync()?;
            for f in std::mem::take(&mut self.unsynced) {
                f.sync()?;
            }
        }
        Ok(())
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
                        self.record_delete(key, loc.len, loc.file);
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
                        self.record_delete(key, old.length, old.dataid);
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
}
