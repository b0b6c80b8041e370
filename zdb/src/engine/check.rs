//! NSCHECK and `zdb check`: walk every index entry and every data entry, verify CRCs and that
//! each index entry agrees with the data header it points to, and report precisely.
//!
//! The walk goes in steps of a bounded number of entries ([`Namespace::check_step`]), so the
//! server holds the namespace lock for one step at a time and writers get in between; a
//! check running beside writes reports what it saw. Files rewritten between two steps
//! (compaction, FLUSH, a failed write cut back: the read cache's epoch changes) restart it.

use std::fmt::Write;

use super::namespace::Namespace;
use super::{FileKind, Mode};
use crate::format::{DataEntryHeader, IndexEntryHeader, crc32, data, index};

/// At most this many problems are described one by one.
const MAX_LISTED: usize = 100;

/// What a check found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CheckReport {
    /// Index entries read.
    pub index_entries: u64,
    /// Of which live (current version of a key).
    pub live: u64,
    /// Data entries read.
    pub data_entries: u64,
    /// Problems found (all counted, the first 100 described).
    pub problems: u64,
    /// Descriptions: `iN@offset: ...` / `dN@offset: ...`.
    pub details: Vec<String>,
}

impl CheckReport {
    fn problem(&mut self, msg: String) {
        self.problems += 1;
        if self.details.len() < MAX_LISTED {
            self.details.push(msg);
        }
    }

    /// True when nothing is wrong.
    pub fn clean(&self) -> bool {
        self.problems == 0
    }

    /// Human-readable report, one `key: value` per line then the problems.
    pub fn render(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(t, "index_entries: {}", self.index_entries);
        let _ = writeln!(t, "live_entries: {}", self.live);
        let _ = writeln!(t, "data_entries: {}", self.data_entries);
        let _ = writeln!(t, "problems: {}", self.problems);
        for d in &self.details {
            let _ = writeln!(t, "{d}");
        }
        if self.problems as usize > self.details.len() {
            let _ = writeln!(
                t,
                "... {} more",
                self.problems as usize - self.details.len()
            );
        }
        t
    }
}

/// Where a check stands between two steps.
#[derive(Debug, Clone, Default)]
pub struct CheckCursor {
    /// File pair being checked.
    file: u32,
    /// Its data file (after its index file).
    data: bool,
    /// Next offset in that file (0: from its first entry).
    off: u64,
    /// The files' epoch when the last step ended.
    epoch: Option<u64>,
    /// Times the check started over because files were rewritten between steps.
    pub restarts: u32,
}

impl Namespace {
    /// Verify every entry of every file pair, in one go.
    pub fn check_all(&self) -> CheckReport {
        let mut cursor = CheckCursor::default();
        let mut r = CheckReport::default();
        while !self.check_step(&mut cursor, &mut r, usize::MAX) {}
        r
    }

    /// Verify at most `budget` more entries from `cursor`, adding to `r`; true once every file
    /// pair is done. If the files were rewritten since the last step, the report and the
    /// cursor start over (`cursor.restarts` counts it).
    pub fn check_step(&self, cursor: &mut CheckCursor, r: &mut CheckReport, budget: usize) -> bool {
        let epoch = self.files.epoch();
        if cursor.epoch.is_some_and(|e| e != epoch) {
            *r = CheckReport::default();
            *cursor = CheckCursor {
                restarts: cursor.restarts + 1,
                ..CheckCursor::default()
            };
        }
        cursor.epoch = Some(epoch);
        let mut budget = budget;
        while cursor.file <= self.active.id {
            let (file, from) = (cursor.file, cursor.off);
            let stopped = if cursor.data {
                self.check_data_file(file, from, &mut budget, r)
            } else {
                self.check_index_file(file, from, &mut budget, r)
            };
            if let Some(off) = stopped {
                cursor.off = off;
                return false;
            }
            if cursor.data {
                cursor.file += 1;
            }
            cursor.data = !cursor.data;
            cursor.off = 0;
        }
        true
    }

    /// Check index file `file` from offset `from` (0: its start) while `budget` lasts;
    /// `Some(offset)` to go on from when it ran out, `None` when the file is done.
    fn check_index_file(
        &self,
        file: u32,
        from: u64,
        budget: &mut usize,
        r: &mut CheckReport,
    ) -> Option<u64> {
        let size = self.index_sizes.get(file as usize).copied().unwrap_or(0);
        let mut off = u32::try_from(from)
            .unwrap_or(u32::MAX)
            .max(index::HEADER_LEN as u32);
        while off < size {
            if *budget == 0 {
                return Some(u64::from(off));
            }
            *budget -= 1;
            let (hdr, key) = match self.read_index_entry(file, off) {
                Ok(e) => e,
                Err(e) => {
                    r.problem(format!("i{file}@{off}: unreadable index entry: {e}"));
                    return None;
                }
            };
            r.index_entries += 1;
            if self.is_live(file, off, &hdr, &key) {
                r.live += 1;
            }
            let reclaimed =
                hdr.deleted() && self.mode == Mode::Seq && hdr.dataid == super::RECLAIMED;
            if let Some(why) = self
                .index_disagrees(file, &hdr, &key)
                .filter(|_| !reclaimed)
            {
                r.problem(format!("i{file}@{off}: key {}: {why}", hex::encode(&key)));
            }
            off += hdr.entry_len() as u32;
        }
        None
    }

    /// Compare an index entry with the data entry it points to; `None` if they agree.
    fn index_disagrees(&self, file: u32, hdr: &IndexEntryHeader, key: &[u8]) -> Option<String> {
        let df = self.data_file_of(file, hdr);
        let handle = match self.handle(FileKind::Data, df) {
            Ok(h) => h,
            Err(e) => return Some(format!("data file d{df} unreadable: {e}")),
        };
        if hdr.length as usize > crate::MAX_VALUE {
            return Some(format!("impossible length {}", hdr.length));
        }
        let mut buf = vec![0u8; data::ENTRY_HEADER_LEN + key.len() + hdr.length as usize];
        if let Err(e) = handle.read_exact_at(&mut buf, u64::from(hdr.offset)) {
            return Some(format!("data d{df}@{} unreadable: {e}", hdr.offset));
        }
        let Ok(dh) = DataEntryHeader::decode(&buf) else {
            return Some("bad data header".into());
        };
        let key_end = data::ENTRY_HEADER_LEN + key.len();
        if usize::from(dh.idlength) != key.len() {
            return Some(format!(
                "key length {} in index, {} in data d{df}@{}",
                key.len(),
                dh.idlength,
                hdr.offset
            ));
        }
        if buf.get(data::ENTRY_HEADER_LEN..key_end) != Some(key) {
            return Some(format!("key differs from data d{df}@{}", hdr.offset));
        }
        if dh.datalength != hdr.length {
            return Some(format!(
                "length {} in index, {} in data d{df}@{}",
                hdr.length, dh.datalength, hdr.offset
            ));
        }
        if dh.crc != hdr.crc {
            return Some(format!(
                "crc {:08x} in index, {:08x} in data d{df}@{}",
                hdr.crc, dh.crc, hdr.offset
            ));
        }
        let value = buf.get(key_end..).unwrap_or_default();
        if crc32(value) != dh.crc {
            return Some(format!(
                "value does not match its crc in data d{df}@{}",
                hdr.offset
            ));
        }
        if dh.timestamp != hdr.timestamp {
            return Some(format!(
                "timestamp {} in index, {} in data d{df}@{}",
                hdr.timestamp, dh.timestamp, hdr.offset
            ));
        }
        None
    }

    /// Check data file `file` from offset `from` (0: its start) while `budget` lasts, as
    /// [`Namespace::check_index_file`] does.
    fn check_data_file(
        &self,
        file: u32,
        from: u64,
        budget: &mut usize,
        r: &mut CheckReport,
    ) -> Option<u64> {
        let handle = match self.handle(FileKind::Data, file) {
            Ok(h) => h,
            Err(e) => {
                r.problem(format!("d{file}: unreadable: {e}"));
                return None;
            }
        };
        let len = if file == self.active.id {
            u64::from(self.active.data_size)
        } else {
            handle.len().unwrap_or(0)
        };
        let mut pos = from.max(data::HEADER_LEN as u64);
        while pos < len {
            if *budget == 0 {
                return Some(pos);
            }
            *budget -= 1;
            let mut hbuf = [0u8; data::ENTRY_HEADER_LEN];
            if handle.read_exact_at(&mut hbuf, pos).is_err() {
                r.problem(format!("d{file}@{pos}: torn entry header at end of file"));
                return None;
            }
            let Ok(h) = DataEntryHeader::decode(&hbuf) else {
                return None;
            };
            let end = pos + h.entry_len();
            if h.idlength == 0 || end > len || h.datalength as usize > crate::MAX_VALUE {
                r.problem(format!(
                    "d{file}@{pos}: impossible entry header (key length {}, length {})",
                    h.idlength, h.datalength
                ));
                return None;
            }
            let mut body = vec![0u8; usize::from(h.idlength) + h.datalength as usize];
            if handle
                .read_exact_at(&mut body, pos + data::ENTRY_HEADER_LEN as u64)
                .is_err()
            {
                r.problem(format!("d{file}@{pos}: unreadable entry"));
                return None;
            }
            r.data_entries += 1;
            let value = body.get(usize::from(h.idlength)..).unwrap_or_default();
            if !h.deleted() && crc32(value) != h.crc {
                r.problem(format!(
                    "d{file}@{pos}: key {}: value does not match its crc",
                    hex::encode(body.get(..usize::from(h.idlength)).unwrap_or_default())
                ));
            }
            pos = end;
        }
        None
    }
}
