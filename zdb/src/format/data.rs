//! Data files `dN`.
//!
//! ```text
//! header (28 bytes)            entry (18 bytes + key + value)
//! off size field               off size field
//!   0  [4] magic "DAT0"          0  u8  idlength
//!   4  u32 version (3)           1  u32 datalength
//!   8  u64 created (0)           5  u32 previous data entry offset
//!  16  u64 opened (0)            9  u32 CRC-32C of the value (0 for tombstones)
//!  24  u32 fileid               13  u8  flags: 1 deleted (tombstone), 2 truncated
//!                               14  u32 timestamp
//!                               18  key, then datalength bytes of value
//! ```
//! The data file is the source of truth: every value carries its CRC, so a torn tail is found
//! by walking entries until one fails its bounds or checksum.

use super::{FormatError, Reader};

const MAGIC: [u8; 4] = *b"DAT0";
const VERSION: u32 = 3;
/// Size of the file header.
pub const HEADER_LEN: usize = 4 + 4 + 8 + 8 + 4;
/// Size of an entry header, before key and value.
pub const ENTRY_HEADER_LEN: usize = 1 + 4 + 4 + 4 + 1 + 4;

/// Data file header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataHeader {
    /// File number N of `dN`.
    pub fileid: u32,
}

impl DataHeader {
    /// Exact on-disk bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0..4].copy_from_slice(&MAGIC);
        out[4..8].copy_from_slice(&VERSION.to_le_bytes());
        out[24..28].copy_from_slice(&self.fileid.to_le_bytes());
        out
    }

    /// Parse and check magic and version.
    pub fn decode(buf: &[u8]) -> Result<Self, FormatError> {
        let mut r = Reader::new(buf, HEADER_LEN)?;
        let magic = r.magic();
        if magic != MAGIC {
            return Err(FormatError::BadMagic {
                found: magic,
                expected: MAGIC,
            });
        }
        let version = r.u32();
        if version != VERSION {
            return Err(FormatError::Version(version));
        }
        let _created = r.u64();
        let _opened = r.u64();
        Ok(Self { fileid: r.u32() })
    }
}

/// Fixed part of a data entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DataEntryHeader {
    /// Key length.
    pub idlength: u8,
    /// Value length.
    pub datalength: u32,
    /// Offset of the previous data entry.
    pub previous: u32,
    /// CRC-32C of the value.
    pub crc: u32,
    /// Flags (`FLAG_DELETED` for tombstones).
    pub flags: u8,
    /// Unix timestamp of the write.
    pub timestamp: u32,
}

impl DataEntryHeader {
    /// Append header, key and value to `out`.
    pub fn encode_into(&self, key: &[u8], value: &[u8], out: &mut Vec<u8>) {
        out.push(self.idlength);
        out.extend_from_slice(&self.datalength.to_le_bytes());
        out.extend_from_slice(&self.previous.to_le_bytes());
        out.extend_from_slice(&self.crc.to_le_bytes());
        out.push(self.flags);
        out.extend_from_slice(&self.timestamp.to_le_bytes());
        out.extend_from_slice(key);
        out.extend_from_slice(value);
    }

    /// Parse the fixed part.
    pub fn decode(buf: &[u8]) -> Result<Self, FormatError> {
        let mut r = Reader::new(buf, ENTRY_HEADER_LEN)?;
        Ok(Self {
            idlength: r.u8(),
            datalength: r.u32(),
            previous: r.u32(),
            crc: r.u32(),
            flags: r.u8(),
            timestamp: r.u32(),
        })
    }

    /// Whole entry size including key and value.
    pub fn entry_len(&self) -> u64 {
        ENTRY_HEADER_LEN as u64 + u64::from(self.idlength) + u64::from(self.datalength)
    }

    /// True for tombstones.
    pub fn deleted(&self) -> bool {
        self.flags & super::FLAG_DELETED != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_match_reference() {
        assert_eq!(HEADER_LEN, 28);
        assert_eq!(ENTRY_HEADER_LEN, 18);
    }

    #[test]
    fn entry_round_trip() {
        let h = DataEntryHeader {
            idlength: 1,
            datalength: 2,
            previous: 28,
            crc: super::super::crc32(b"vv"),
            flags: 0,
            timestamp: 5,
        };
        let mut out = Vec::new();
        h.encode_into(b"k", b"vv", &mut out);
        assert_eq!(out.len() as u64, h.entry_len());
        assert_eq!(DataEntryHeader::decode(&out), Ok(h));
        let hdr = DataHeader { fileid: 3 };
        assert_eq!(DataHeader::decode(&hdr.encode()), Ok(hdr));
    }
}
