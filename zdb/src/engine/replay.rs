//! Index replay at open: every index file into the key map and counters, cutting what a crash
//! left torn.
//!
//! Recovery rules (0-db itself has none):
//! - Index entries are parsed until one does not fit the file or has an impossible key length;
//!   in the last index file, entries are then checked from the end against the data entry
//!   they point to (key, length, CRC of the value) and every failing trailing entry is cut.
//! - The last data file is then walked from the end of the last indexed entry (`recover.rs`).

use super::entries::{Entries, Parsed, read_all};
use super::error::io_err;
use super::keymap::Loc;
use super::namespace::Namespace;
use super::{FileKind, Mode, OpenError, RunMode};
use crate::format::{DataEntryHeader, IndexEntryHeader, IndexHeader, data, index};

impl Namespace {
    /// Replays every index file into the key map and counters; returns where the data tail
    /// scan of the last data file starts.
    pub(super) fn replay_index(&mut self, count: u32) -> Result<u64, OpenError> {
        let last = count - 1;
        // Highest data end referenced by the index inside data file `last`: where the tail
        // scan starts.
        let mut tail_start = data::HEADER_LEN as u64;
        // Size the key table once, from the first file's entry density, instead of rehashing
        // every time it doubles (a third of the load time for millions of keys).
        let total_index_bytes: u64 = (0..count)
            .filter_map(|i| self.files.get(FileKind::Index, i).ok()?.len().ok())
            .sum();
        let mut reserved = false;
        for id in 0..count {
            let path = self.files.path(FileKind::Index, id);
            let file = self
                .files
                .get(FileKind::Index, id)
                .map_err(io_err("open index", &path))?;
            let buf = read_all(&*file).map_err(io_err("read index", &path))?;
            let header = IndexHeader::decode(&buf);
            let mode = match header {
                Ok(h) => Mode::from_byte(h.mode),
                Err(_) if id == last => self.mode,
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "unreadable index header, file skipped");
                    self.stats.index_faults += 1;
                    self.index_sizes.push(index::HEADER_LEN as u32);
                    self.seq_first.push(self.next_entry);
                    continue;
                }
            };
            if id == 0 {
                match (self.cfg.run_mode, mode) {
                    (RunMode::User, Mode::Seq) | (RunMode::Seq, Mode::User) => {
                        return Err(OpenError::ModeMismatch { path });
                    }
                    _ => self.mode = mode,
                }
            }
            if header.is_err() {
                // Torn creation of the last index file: write its header again.
                let hdr = IndexHeader {
                    fileid: id,
                    mode: self.mode.as_byte(),
                };
                file.set_len(0).map_err(io_err("truncate index", &path))?;
                file.write_at(&hdr.encode(), 0)
                    .map_err(io_err("write index", &path))?;
                file.sync().map_err(io_err("sync index", &path))?;
            }
            // A file whose header was torn holds no entries.
            let image: &[u8] = if header.is_ok() { &buf } else { &[] };
            if !reserved && self.mode == Mode::User && image.len() > index::HEADER_LEN {
                let here = Entries::new(image, self.mode).count() as u64;
                let estimate = here * total_index_bytes / image.len() as u64;
                self.keys.reserve(usize::try_from(estimate).unwrap_or(0));
                reserved = true;
            }
            self.seq_first.push(self.next_entry);
            let mut entries = Entries::new(image, self.mode);
            let end = if id == last {
                let mut list: Vec<Parsed> = entries.by_ref().collect();
                let mut end = entries.end;
                // Cut trailing entries whose data is not whole.
                while let Some(e) = list.last() {
                    if self.entry_matches_data(id, e, e.key(&buf)) {
                        break;
                    }
                    tracing::warn!(path = %path.display(), offset = e.off, "index entry without valid data cut");
                    end = e.off as usize;
                    list.pop();
                }
                if end.max(index::HEADER_LEN) < buf.len() {
                    tracing::warn!(path = %path.display(), from = buf.len(), to = end, "torn index tail cut");
                    file.set_len(end.max(index::HEADER_LEN) as u64)
                        .map_err(io_err("truncate index", &path))?;
                    file.sync().map_err(io_err("sync index", &path))?;
                }
                for e in &list {
                    self.apply_loaded(id, last, e, &buf, &mut tail_start);
                }
                end.max(index::HEADER_LEN)
            } else {
                for e in entries.by_ref() {
                    self.apply_loaded(id, last, &e, &buf, &mut tail_start);
                }
                if entries.end < buf.len() {
                    tracing::warn!(path = %path.display(), offset = entries.end, "index file has unreadable entries past this offset");
                    self.stats.index_faults += 1;
                }
                entries.end
            };
            self.index_sizes
                .push(u32::try_from(end).unwrap_or(u32::MAX));
        }

        self.keys.shrink_if_sparse();
        Ok(tail_start)
    }

    /// Apply one entry read at open, tracking where the data tail scan must start.
    fn apply_loaded(&mut self, id: u32, last: u32, e: &Parsed, buf: &[u8], tail_start: &mut u64) {
        if self.data_file_of(id, &e.hdr) == last {
            let e_end = u64::from(e.hdr.offset)
                + Self::data_entry_len(usize::from(e.hdr.idlength), e.hdr.length as usize);
            if e_end > *tail_start {
                *tail_start = e_end;
                self.last_data_off = e.hdr.offset;
            }
        }
        self.apply_index_entry(id, e.off, &e.hdr, e.key(buf));
    }

    /// Account one index entry read at open.
    fn apply_index_entry(&mut self, file: u32, off: u32, hdr: &IndexEntryHeader, key: &[u8]) {
        self.next_entry += 1;
        self.last_index_off = off;
        match self.mode {
            Mode::Seq => {
                if hdr.deleted() {
                    self.usage.found_dead(key.len(), hdr.length, hdr.dataid);
                } else {
                    self.usage.stored_id(hdr.length);
                }
            }
            Mode::User => {
                // 0-db replays a deleted entry as an insert followed by a delete.
                let old = if hdr.deleted() {
                    self.usage.found_dead(key.len(), hdr.length, file);
                    self.keys.remove(key)
                } else {
                    let loc = Loc {
                        file,
                        idx_off: off,
                        data_off: hdr.offset,
                        len: hdr.length,
                    };
                    self.usage.stored(hdr.length);
                    let Ok(old) = self.keys.insert(key, loc) else {
                        self.stats.index_faults += 1;
                        tracing::error!("in-memory key arena full: key not indexed");
                        return;
                    };
                    old
                };
                if let Some(old) = old {
                    self.usage.superseded(key.len(), old.len, old.file);
                }
            }
        }
    }

    /// Does this index entry point at a whole data entry with the same key, length and CRC?
    pub(super) fn entry_matches_data(&self, file: u32, e: &Parsed, key: &[u8]) -> bool {
        // A dead sequential slot whose value compaction reclaimed is whole by definition.
        if self.mode == Mode::Seq && e.hdr.deleted() && e.hdr.dataid == super::RECLAIMED {
            return true;
        }
        let df = self.data_file_of(file, &e.hdr);
        let Ok(data) = self.files.get(FileKind::Data, df) else {
            return false;
        };
        let mut buf = vec![0u8; data::ENTRY_HEADER_LEN + key.len() + e.hdr.length as usize];
        if data
            .read_exact_at(&mut buf, u64::from(e.hdr.offset))
            .is_err()
        {
            return false;
        }
        let Ok(dh) = DataEntryHeader::decode(&buf) else {
            return false;
        };
        let key_end = data::ENTRY_HEADER_LEN + key.len();
        dh.idlength == e.hdr.idlength
            && dh.datalength == e.hdr.length
            && dh.crc == e.hdr.crc
            && buf.get(data::ENTRY_HEADER_LEN..key_end) == Some(key)
            && crate::format::crc32(buf.get(key_end..).unwrap_or_default()) == dh.crc
    }
}
