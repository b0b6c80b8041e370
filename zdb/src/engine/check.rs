//! NSCHECK and `zdb check`: walk every index entry and every data entry, verify CRCs and that
//! each index entry agrees with the data header it points to, and report precisely.

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

impl Namespace {
    /// Verify every entry of every file pair.
    pub fn check_all(&self) -> CheckReport {
        let mut r = CheckReport::default();
        for file in 0..=self.active.id {
            self.check_index_file(file, &mut r);
            self.check_data_file(file, &mut r);
        }
        r
    }

    fn check_index_file(&self, file: u32, r: &mut CheckReport) {
        let size = self.index_sizes.get(file as usize).copied().unwrap_or(0);
        let mut off = index::HEADER_LEN as u32;
        while off < size {
            let (hdr, key) = match self.read_index_entry(file, off) {
                Ok(e) => e,
                Err(e) => {
                    r.problem(format!("i{file}@{off}: unreadable index entry: {e}"));
                    return;
                }
            };
            r.index_entries += 1;
            if !hdr.deleted() && self.is_current(file, off, &key) {
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
    }

    fn is_current(&self, file: u32, off: u32, key: &[u8]) -> bool {
        match self.mode {
            Mode::User => self
                .keys
                .get(key)
                .is_some_and(|l| l.file == file && l.idx_off == off),
            Mode::Seq => true,
        }
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

    fn check_data_file(&self, file: u32, r: &mut CheckReport) {
        let handle = match self.handle(FileKind::Data, file) {
            Ok(h) => h,
            Err(e) => {
                r.problem(format!("d{file}: unreadable: {e}"));
                return;
            }
        };
        let len = if file == self.active.id {
            u64::from(self.active.data_size)
        } else {
            handle.len().unwrap_or(0)
        };
        let mut pos = data::HEADER_LEN as u64;
        while pos < len {
            let mut hbuf = [0u8; data::ENTRY_HEADER_LEN];
            if handle.read_exact_at(&mut hbuf, pos).is_err() {
                r.problem(format!("d{file}@{pos}: torn entry header at end of file"));
                return;
            }
            let Ok(h) = DataEntryHeader::decode(&hbuf) else {
                return;
            };
            let end = pos + h.entry_len();
            if h.idlength == 0 || end > len || h.datalength as usize > crate::MAX_VALUE {
                r.problem(format!(
                    "d{file}@{pos}: impossible entry header (key length {}, length {})",
                    h.idlength, h.datalength
                ));
                return;
            }
            let mut body = vec![0u8; usize::from(h.idlength) + h.datalength as usize];
            if handle
                .read_exact_at(&mut body, pos + data::ENTRY_HEADER_LEN as u64)
                .is_err()
            {
                r.problem(format!("d{file}@{pos}: unreadable entry"));
                return;
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
    }
}
