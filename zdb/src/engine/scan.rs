//! SCAN, RSCAN and KSCAN: walks of the index in append order, forward or backward along the
//! `previous` chain, in pages bounded by item count and time; cursors are 0-db's 17-byte keys.

use std::time::{Duration, Instant};

use super::Mode;
use super::namespace::Namespace;
use crate::format::{IndexEntryHeader, index};

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

/// How long one SCAN call may walk (0-db: a 2 ms slice).
const SCAN_SLICE: Duration = Duration::from_millis(2);

/// Upper bound of items per SCAN call.
const SCAN_MAX_ITEMS: usize = 10_000;

/// A SCAN cursor that does not name a readable index entry matching its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadCursor;

/// Encode 0-db's 17-byte `index_bkey_t`: idlength, index file id, length, offset, crc.
pub(super) fn cursor_of(file: u32, off: u32, h: &IndexEntryHeader) -> Vec<u8> {
    let mut c = Vec::with_capacity(CURSOR_LEN);
    c.push(h.idlength);
    c.extend_from_slice(&file.to_le_bytes());
    c.extend_from_slice(&h.length.to_le_bytes());
    c.extend_from_slice(&off.to_le_bytes());
    c.extend_from_slice(&h.crc.to_le_bytes());
    c
}

impl Namespace {
    /// Whether the index entry at (file, off) is the current version of its key.
    pub(super) fn is_live(&self, file: u32, off: u32, hdr: &IndexEntryHeader, key: &[u8]) -> bool {
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
}
