//! The read path: GET/CHECK with CRC verification, index walks for SCAN/RSCAN, HISTORY,
//! DATA RAW.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::namespace::Namespace;
use super::{FileKind, Mode, OpError};
use crate::format::{DataEntryHeader, IndexEntryHeader, crc32, data, index};

/// Length of a SCAN cursor (0-db's `index_bkey_t`).
pub const CURSOR_LEN: usize = 17;

/// One SCAN result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanItem {
    /// Key.
    pub key: Vec<u8>,
    /// Value length.
    pub size: u32,
    /// Timestamp.
    pub timestamp: u32,
}

/// A page of SCAN results and the cursor of its last item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanPage {
    /// Cursor to continue from.
    pub cursor: Vec<u8>,
    /// Items.
    pub items: Vec<ScanItem>,
}

impl ScanPage {
    /// Add a live entry; true once the page is full (item count or the 2 ms slice).
    fn take(
        &mut self,
        file: u32,
        off: u32,
        hdr: IndexEntryHeader,
        key: Vec<u8>,
        started: Instant,
    ) -> bool {
        self.cursor = cursor_of(file, off, &hdr);
        self.items.push(ScanItem {
            key,
            size: hdr.length,
            timestamp: hdr.timestamp,
        });
        self.items.len() >= SCAN_MAX_ITEMS || started.elapsed() >= SCAN_SLICE
    }
}

/// One HISTORY answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryItem {
    /// Position of the previous version (8 bytes), if any.
    pub parent: Option<Vec<u8>>,
    /// Timestamp of this version.
    pub timestamp: u32,
    /// Value of this version.
    pub payload: Vec<u8>,
}

/// One DATA RAW answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEntry {
    /// Key.
    pub key: Vec<u8>,
    /// Previous data entry offset.
    pub previous: u32,
    /// Stored CRC.
    pub crc: u32,
    /// Flags.
    pub flags: u8,
    /// Timestamp.
    pub timestamp: u32,
    /// Value.
    pub payload: Vec<u8>,
}

/// Why DATA RAW failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawError {
    /// Offset at or past the end of the file.
    Eof,
    /// Unreadable file, bad header or deleted entry.
    Invalid,
}

/// Result of CHECK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckResult {
    /// No such key.
    Missing,
    /// Value matches its CRC.
    Ok,
    /// Value does not match its CRC.
    Corrupted,
    /// The data could not be read.
    Unreadable,
}

/// How long one SCAN call may walk (0-db: a 2 ms slice).
const SCAN_SLICE: Duration = Duration::from_millis(2);
/// Upper bound of items per SCAN call.
const SCAN_MAX_ITEMS: usize = 10_000;

impl Namespace {
    /// Read one index entry header and key.
    pub(crate) fn read_index_entry(
        &self,
        file: u32,
        off: u32,
    ) -> std::io::Result<(IndexEntryHeader, Vec<u8>)> {
        let h = if file == self.active.id {
            self.active.index.clone()
        } else {
            self.files.get(FileKind::Index, file)?
        };
        let mut buf = [0u8; index::ENTRY_HEADER_LEN + 255];
        let n = h.read_at(&mut buf, u64::from(off))?;
        let got = buf.get(..n).unwrap_or_default();
        let hdr = IndexEntryHeader::decode(got)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        let key = got
            .get(index::ENTRY_HEADER_LEN..hdr.entry_len())
            .ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "short index entry")
            })?;
        Ok((hdr, key.to_vec()))
    }

    /// Hand a verified value to `f` (header matching key and length, value matching its CRC):
    /// lent by the read cache when it holds it, else read from the file, and with `keep` a copy
    /// kept in the cache (not for an overwrite's look at the version it supersedes). A value in
    /// the cache was verified when it was read from the file; it is served even if an offload
    /// hook removed that file since (it is the same value).
    pub(crate) fn with_value<R>(
        &self,
        file: u32,
        off: u32,
        key: &[u8],
        len: u32,
        keep: bool,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<R, OpError> {
        let Some(cache) = &self.read_cache else {
            return self.read_from_file(file, off, key, len).map(|v| f(&v));
        };
        let epoch = self.files.epoch();
        if let Some(v) = cache.get(epoch, file, off, len as usize) {
            return Ok(f(&v));
        }
        let v = self.read_from_file(file, off, key, len)?;
        if keep {
            cache.insert(epoch, file, off, &v);
        }
        Ok(f(&v))
    }

    /// Read and verify a value from its data file, bypassing the read cache (CHECK).
    fn read_from_file(
        &self,
        file: u32,
        off: u32,
        key: &[u8],
        len: u32,
    ) -> Result<Vec<u8>, OpError> {
        let handle = if file == self.active.id {
            self.active.data.clone()
        } else {
            match self.files.get(FileKind::Data, file) {
                Ok(h) => h,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(OpError::MissingData(file));
                }
                Err(_) => return Err(OpError::ReadFailed),
            }
        };
        // Lengths come from disk: never allocate more than a value can be.
        if len as usize > crate::MAX_VALUE {
            return Err(OpError::Corrupted);
        }
        let mut buf = vec![0u8; data::ENTRY_HEADER_LEN + key.len() + len as usize];
        handle
            .read_exact_at(&mut buf, u64::from(off))
            .map_err(|_| OpError::ReadFailed)?;
        let hdr = DataEntryHeader::decode(&buf).map_err(|_| OpError::Corrupted)?;
        let head_len = data::ENTRY_HEADER_LEN + key.len();
        let (head, value) = buf.split_at(head_len);
        if usize::from(hdr.idlength) != key.len()
            || hdr.datalength != len
            || head.get(data::ENTRY_HEADER_LEN..) != Some(key)
            || crc32(value) != hdr.crc
        {
            return Err(OpError::Corrupted);
        }
        // Keep the one allocation: drop the header and key in place.
        buf.drain(..head_len);
        Ok(buf)
    }

    /// Current index position and header of a live key.
    fn current(&self, key: &[u8]) -> Option<(u32, u32, IndexEntryHeader)> {
        match self.mode {
            Mode::User => {
                let loc = self.keys.get(key)?;
                let (hdr, _) = self.read_index_entry(loc.file, loc.idx_off).ok()?;
                Some((loc.file, loc.idx_off, hdr))
            }
            Mode::Seq => self.seq_live_slot(key),
        }
    }

    /// GET: the value, `None` if missing or deleted.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, OpError> {
        self.get_with(key, <[u8]>::to_vec)
    }

    /// GET without a copy: `f` sees the value where it lies (the read cache or the buffer it
    /// was read into); the server encodes the reply from there.
    pub fn get_with<R>(
        &self,
        key: &[u8],
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<Option<R>, OpError> {
        let Some((file, off, len)) = self.value_at(key) else {
            return Ok(None);
        };
        self.with_value(file, off, key, len, true, f).map(Some)
    }

    /// Bring what GETs of these keys will touch (key map, cached values) into the CPU's cache
    /// at once, so that their memory waits overlap: a hint for a pipeline of reads about to
    /// run, with no effect on what they return. User mode only (sequential-mode lookups read
    /// index files).
    pub fn prefetch(&self, keys: &[&[u8]]) {
        if self.mode != Mode::User || keys.len() < 2 {
            return;
        }
        let mut locs = Vec::with_capacity(keys.len());
        self.keys.get_many(keys, &mut locs);
        if let Some(cache) = &self.read_cache {
            let at: Vec<_> = locs
                .iter()
                .flatten()
                .map(|l| (l.file, l.data_off, l.len))
                .collect();
            cache.prefetch(self.files.epoch(), &at);
        }
    }

    /// Data file, offset and length of a live key's value.
    fn value_at(&self, key: &[u8]) -> Option<(u32, u32, u32)> {
        match self.mode {
            Mode::User => self.keys.get(key).map(|l| (l.file, l.data_off, l.len)),
            Mode::Seq => self
                .seq_live_slot(key)
                .map(|(file, _, hdr)| (self.data_file_of(file, &hdr), hdr.offset, hdr.length)),
        }
    }

    /// EXISTS.
    pub fn exists(&self, key: &[u8]) -> bool {
        match self.mode {
            Mode::User => self.keys.get(key).is_some(),
            Mode::Seq => self.seq_live_slot(key).is_some(),
        }
    }

    /// CHECK: verify the stored value against its CRC.
    pub fn check(&self, key: &[u8]) -> CheckResult {
        let Some((file, off, len)) = self.value_at(key) else {
            return CheckResult::Missing;
        };
        match self.read_from_file(file, off, key, len) {
            Ok(_) => CheckResult::Ok,
            Err(OpError::Corrupted) => CheckResult::Corrupted,
            Err(_) => CheckResult::Unreadable,
        }
    }

    /// LENGTH.
    pub fn length(&self, key: &[u8]) -> Option<u32> {
        match self.mode {
            Mode::User => self.keys.get(key).map(|l| l.len),
            Mode::Seq => self.seq_live_slot(key).map(|(_, _, h)| h.length),
        }
    }

    /// KEYTIME.
    pub fn keytime(&self, key: &[u8]) -> Option<u32> {
        self.current(key).map(|(_, _, h)| h.timestamp)
    }

    /// KEYCUR: the 17-byte cursor of a live key.
    pub fn keycur(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.current(key)
            .map(|(file, off, h)| cursor_of(file, off, &h))
    }

    fn is_live(&self, file: u32, off: u32, hdr: &IndexEntryHeader, key: &[u8]) -> bool {
        if hdr.deleted() {
            return false;
        }
        match self.mode {
            Mode::User => self
                .keys
                .get(key)
                .is_some_and(|l| l.file == file && l.idx_off == off),
            Mode::Seq => true,
        }
    }

    /// Resolve a cursor to the index position it names, checking it against the entry there.
    fn resolve_cursor(&self, cur: &[u8]) -> Option<(u32, u32, IndexEntryHeader)> {
        if cur.len() != CURSOR_LEN {
            return None;
        }
        let word = |i: usize| {
            cur.get(i..i + 4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_le_bytes)
        };
        let (idlen, file, length, off, crc) =
            (*cur.first()?, word(1)?, word(5)?, word(9)?, word(13)?);
        if file > self.active.id || off < index::HEADER_LEN as u32 {
            return None;
        }
        let (hdr, _) = self.read_index_entry(file, off).ok()?;
        (hdr.idlength == idlen && hdr.length == length && hdr.crc == crc)
            .then_some((file, off, hdr))
    }

    fn index_size(&self, file: u32) -> u32 {
        self.index_sizes
            .get(file as usize)
            .copied()
            .unwrap_or(index::HEADER_LEN as u32)
    }

    /// SCAN forward in append order, after `cursor` (or from the start).
    /// An empty page means no more data.
    pub fn scan(&self, cursor: Option<&[u8]>) -> Result<ScanPage, BadCursor> {
        let (mut file, mut off) = match cursor {
            None => (0, index::HEADER_LEN as u32),
            Some(c) => {
                let (f, o, h) = self.resolve_cursor(c).ok_or(BadCursor)?;
                (f, o + h.entry_len() as u32)
            }
        };
        let started = Instant::now();
        let mut page = ScanPage {
            cursor: Vec::new(),
            items: Vec::new(),
        };
        while file <= self.active.id {
            while off < self.index_size(file) {
                let Ok((hdr, key)) = self.read_index_entry(file, off) else {
                    break;
                };
                let len = hdr.entry_len() as u32;
                if self.is_live(file, off, &hdr, &key) && page.take(file, off, hdr, key, started) {
                    return Ok(page);
                }
                off += len;
            }
            file += 1;
            off = index::HEADER_LEN as u32;
        }
        Ok(page)
    }

    /// RSCAN: backwards along the `previous` chain, before `cursor` (or from the end).
    pub fn rscan(&self, cursor: Option<&[u8]>) -> Result<ScanPage, BadCursor> {
        let mut pos = match cursor {
            None => self.last_position(),
            Some(c) => {
                let (f, o, h) = self.resolve_cursor(c).ok_or(BadCursor)?;
                self.previous_position(f, o, &h)
            }
        };
        let started = Instant::now();
        let mut page = ScanPage {
            cursor: Vec::new(),
            items: Vec::new(),
        };
        while let Some((file, off)) = pos {
            let Ok((hdr, key)) = self.read_index_entry(file, off) else {
                break;
            };
            pos = self.previous_position(file, off, &hdr);
            if self.is_live(file, off, &hdr, &key) && page.take(file, off, hdr, key, started) {
                return Ok(page);
            }
        }
        Ok(page)
    }

    /// Position of the last index entry, if any.
    fn last_position(&self) -> Option<(u32, u32)> {
        let file = (0..=self.active.id)
            .rev()
            .find(|&f| self.index_size(f) > index::HEADER_LEN as u32)?;
        (file == self.active.id || self.last_index_off >= index::HEADER_LEN as u32)
            .then_some((file, self.last_index_off))
    }

    /// Position of the entry appended before the one at (file, off).
    fn previous_position(&self, file: u32, off: u32, hdr: &IndexEntryHeader) -> Option<(u32, u32)> {
        if off > index::HEADER_LEN as u32 {
            return (hdr.previous >= index::HEADER_LEN as u32 && hdr.previous < off)
                .then_some((file, hdr.previous));
        }
        // First entry of its file: the previous one is in the nearest non-empty older file.
        let prev_file = (0..file)
            .rev()
            .find(|&f| self.index_size(f) > index::HEADER_LEN as u32)?;
        (hdr.previous >= index::HEADER_LEN as u32).then_some((prev_file, hdr.previous))
    }

    /// KSCAN: live keys starting with `prefix`, in hash order (user mode only).
    pub fn kscan(&self, prefix: &[u8]) -> Vec<Vec<u8>> {
        self.keys
            .keys()
            .filter(|k| k.starts_with(prefix))
            .map(<[u8]>::to_vec)
            .collect()
    }

    /// HISTORY: the current version, or the version at `ekey`.
    pub fn history(&self, key: &[u8], ekey: Option<&[u8]>) -> Result<HistoryItem, HistoryError> {
        let (file, hdr) = match ekey {
            None => {
                let (file, _, hdr) = self.current(key).ok_or(HistoryError::KeyNotFound)?;
                (file, hdr)
            }
            Some(e) => {
                let file = e
                    .get(0..4)
                    .and_then(|b| b.try_into().ok())
                    .map(u32::from_le_bytes)
                    .ok_or(HistoryError::BadArgs)?;
                let off = e
                    .get(4..8)
                    .and_then(|b| b.try_into().ok())
                    .map(u32::from_le_bytes)
                    .ok_or(HistoryError::BadArgs)?;
                if file == 0 && off == 0 {
                    return Err(HistoryError::NoMore);
                }
                if file > self.active.id || off < index::HEADER_LEN as u32 {
                    return Err(HistoryError::IndexQuery);
                }
                let (hdr, k) = self
                    .read_index_entry(file, off)
                    .map_err(|_| HistoryError::IndexQuery)?;
                if k != key {
                    return Err(HistoryError::InvalidKey);
                }
                (file, hdr)
            }
        };
        let df = self.data_file_of(file, &hdr);
        let payload = self
            .with_value(df, hdr.offset, key, hdr.length, true, <[u8]>::to_vec)
            .map_err(HistoryError::Read)?;
        let parent = (hdr.parentid != 0 || hdr.parentoff != 0).then(|| {
            let mut p = hdr.parentid.to_le_bytes().to_vec();
            p.extend_from_slice(&hdr.parentoff.to_le_bytes());
            p
        });
        Ok(HistoryItem {
            parent,
            timestamp: hdr.timestamp,
            payload,
        })
    }

    /// DATA RAW: the data entry at (file, offset); tombstones are refused as in 0-db.
    pub fn data_raw(&self, file: u32, off: u64) -> Result<RawEntry, RawError> {
        let entry = self.data_entry(file, off)?;
        if entry.flags & crate::format::FLAG_DELETED != 0 {
            return Err(RawError::Invalid);
        }
        Ok(entry)
    }

    /// The data entry at (file, offset) as written to the file (buffered appends are not
    /// visible yet), tombstones included: what replication streams.
    pub fn data_entry(&self, file: u32, off: u64) -> Result<RawEntry, RawError> {
        let handle = self
            .files
            .get(FileKind::Data, file)
            .map_err(|_| RawError::Invalid)?;
        let len = handle.len().map_err(|_| RawError::Invalid)?;
        if off >= len {
            return Err(RawError::Eof);
        }
        let mut hbuf = [0u8; data::ENTRY_HEADER_LEN];
        handle
            .read_exact_at(&mut hbuf, off)
            .map_err(|_| RawError::Invalid)?;
        let hdr = DataEntryHeader::decode(&hbuf).map_err(|_| RawError::Invalid)?;
        if hdr.idlength == 0
            || off + hdr.entry_len() > len
            || hdr.datalength as usize > crate::MAX_VALUE
        {
            return Err(RawError::Invalid);
        }
        let mut body = vec![0u8; usize::from(hdr.idlength) + hdr.datalength as usize];
        handle
            .read_exact_at(&mut body, off + data::ENTRY_HEADER_LEN as u64)
            .map_err(|_| RawError::Invalid)?;
        let payload = body.split_off(usize::from(hdr.idlength));
        Ok(RawEntry {
            key: body,
            previous: hdr.previous,
            crc: hdr.crc,
            flags: hdr.flags,
            timestamp: hdr.timestamp,
            payload,
        })
    }

    /// Path of data file `id` (for the missing-data hook).
    pub fn data_path(&self, id: u32) -> PathBuf {
        self.files.path(FileKind::Data, id)
    }
}

/// A SCAN cursor that does not name a readable index entry matching its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadCursor;

/// Why HISTORY failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryError {
    /// Missing or deleted key.
    KeyNotFound,
    /// Malformed ekey.
    BadArgs,
    /// ekey all zero.
    NoMore,
    /// ekey points nowhere readable.
    IndexQuery,
    /// ekey points at another key.
    InvalidKey,
    /// The payload could not be read.
    Read(OpError),
}

/// Encode 0-db's 17-byte `index_bkey_t`: idlength, index file id, length, offset, crc.
fn cursor_of(file: u32, off: u32, h: &IndexEntryHeader) -> Vec<u8> {
    let mut c = Vec::with_capacity(CURSOR_LEN);
    c.push(h.idlength);
    c.extend_from_slice(&file.to_le_bytes());
    c.extend_from_slice(&h.length.to_le_bytes());
    c.extend_from_slice(&off.to_le_bytes());
    c.extend_from_slice(&h.crc.to_le_bytes());
    c
}
