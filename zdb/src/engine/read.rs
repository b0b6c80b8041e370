//! The read path: GET, MGET, EXISTS, CHECK (with CRC verification), LENGTH, KEYTIME, KEYCUR.

use std::path::PathBuf;
use std::sync::Arc;

use super::namespace::Namespace;
use super::scan::cursor_of;
use super::{FileKind, Mode, OpError};
use crate::format::{DataEntryHeader, IndexEntryHeader, crc32, data, index};
use crate::storage::StorageFile;

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
        let handle = self.data_handle(file)?;
        let read = read_verified(&*handle, off, key, len, false)?;
        read.ok_or(OpError::ReadFailed)
    }

    /// Handle of data file `file` for reading values: `MissingData` if it is gone (offloaded).
    pub(super) fn data_handle(&self, file: u32) -> Result<Arc<dyn StorageFile>, OpError> {
        if file == self.active.id {
            return Ok(self.active.data.clone());
        }
        match self.files.get(FileKind::Data, file) {
            Ok(h) => Ok(h),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(OpError::MissingData(file)),
            Err(_) => Err(OpError::ReadFailed),
        }
    }

    /// Current index position and header of a live key.
    pub(super) fn current(&self, key: &[u8]) -> Option<(u32, u32, IndexEntryHeader)> {
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
    pub(super) fn value_at(&self, key: &[u8]) -> Option<(u32, u32, u32)> {
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

    /// Path of data file `id` (for the missing-data hook).
    pub fn data_path(&self, id: u32) -> PathBuf {
        self.files.path(FileKind::Data, id)
    }
}

/// Read the value of the data entry at `off` and verify it (header matching key and length,
/// value matching its CRC). With `nowait`, `Ok(None)` when the bytes are not in memory and the
/// read would wait for the disk.
pub(super) fn read_verified(
    handle: &dyn StorageFile,
    off: u32,
    key: &[u8],
    len: u32,
    nowait: bool,
) -> Result<Option<Vec<u8>>, OpError> {
    // Lengths come from disk: never allocate more than a value can be.
    if len as usize > crate::MAX_VALUE {
        return Err(OpError::Corrupted);
    }
    let mut buf = vec![0u8; data::ENTRY_HEADER_LEN + key.len() + len as usize];
    let read = if nowait {
        handle.read_exact_at_nowait(&mut buf, u64::from(off))
    } else {
        handle.read_exact_at(&mut buf, u64::from(off)).map(Some)
    };
    if read.map_err(|_| OpError::ReadFailed)?.is_none() {
        return Ok(None);
    }
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
    Ok(Some(buf))
}
