//! HISTORY (earlier versions along the parent chain) and DATA RAW / the replication feed
//! (data entries as written).

use super::namespace::Namespace;
use super::{FileKind, OpError};
use crate::format::{DataEntryHeader, data, index};

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

impl Namespace {
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
}
