//! Index files `iN`.
//!
//! ```text
//! header (29 bytes)            entry (34 bytes + key)
//! off size field               off size field
//!   0  [4] magic "IDX0"          0  u8  idlength
//!   4  u32 version (4)           1  u32 offset of the entry in the data file
//!   8  u64 created (0)           5  u32 value length
//!  16  u64 opened (0)            9  u32 previous: offset of the previous index entry
//!  24  u32 fileid               13  u8  flags (1 = deleted or superseded)
//!  28  u8  mode (0 user, 1 seq) 14  u32 dataid: data file holding the value
//!                               18  u32 timestamp (unix seconds)
//!                               22  u32 CRC-32C of the value
//!                               26  u32 parentid: index file of the previous version
//!                               30  u32 parentoff: offset of the previous version
//!                               34  key bytes
//! ```
//! Index entries carry no checksum of their own; recovery checks them against the data
//! entry they point to. In sequential mode every key is 8 bytes, so entries are 42 bytes and
//! an id's slot is computed, never looked up.

use super::{FormatError, Reader};

const MAGIC: [u8; 4] = *b"IDX0";
const VERSION: u32 = 4;
/// Size of the file header.
pub const HEADER_LEN: usize = 4 + 4 + 8 + 8 + 4 + 1;
/// Size of an entry header, before the key.
pub const ENTRY_HEADER_LEN: usize = 1 + 4 + 4 + 4 + 1 + 4 + 4 + 4 + 4 + 4;
/// Offset of the flags byte inside an entry (the only field rewritten in place).
pub const FLAGS_OFFSET: usize = 13;
/// Key length in sequential mode (u64 little-endian ids).
pub const SEQ_KEY_LEN: usize = 8;
/// Size of one sequential-mode entry.
pub const SEQ_ENTRY_LEN: usize = ENTRY_HEADER_LEN + SEQ_KEY_LEN;

/// Index file header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexHeader {
    /// File number N of `iN`.
    pub fileid: u32,
    /// 0 = user keys, 1 = sequential.
    pub mode: u8,
}

impl IndexHeader {
    /// Exact on-disk bytes (created and opened stay 0 so replicas compare byte for byte).
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0..4].copy_from_slice(&MAGIC);
        out[4..8].copy_from_slice(&VERSION.to_le_bytes());
        out[24..28].copy_from_slice(&self.fileid.to_le_bytes());
        out[28] = self.mode;
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
        let fileid = r.u32();
        let mode = r.u8();
        if mode > 1 {
            return Err(FormatError::Invalid("index mode"));
        }
        Ok(Self { fileid, mode })
    }
}

/// Fixed part of an index entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IndexEntryHeader {
    /// Key length.
    pub idlength: u8,
    /// Offset of the data entry in data file `dataid`.
    pub offset: u32,
    /// Value length.
    pub length: u32,
    /// Offset of the index entry appended before this one.
    pub previous: u32,
    /// Flags (`FLAG_DELETED`).
    pub flags: u8,
    /// Data file id.
    pub dataid: u32,
    /// Unix timestamp of the write.
    pub timestamp: u32,
    /// CRC-32C of the value.
    pub crc: u32,
    /// Index file of the previous version of this key.
    pub parentid: u32,
    /// Offset of the previous version of this key.
    pub parentoff: u32,
}

impl IndexEntryHeader {
    /// Append the header and `key` to `out`.
    pub fn encode_into(&self, key: &[u8], out: &mut Vec<u8>) {
        out.push(self.idlength);
        out.extend_from_slice(&self.offset.to_le_bytes());
        out.extend_from_slice(&self.length.to_le_bytes());
        out.extend_from_slice(&self.previous.to_le_bytes());
        out.push(self.flags);
        out.extend_from_slice(&self.dataid.to_le_bytes());
        out.extend_from_slice(&self.timestamp.to_le_bytes());
        out.extend_from_slice(&self.crc.to_le_bytes());
        out.extend_from_slice(&self.parentid.to_le_bytes());
        out.extend_from_slice(&self.parentoff.to_le_bytes());
        out.extend_from_slice(key);
    }

    /// Parse the fixed part.
    pub fn decode(buf: &[u8]) -> Result<Self, FormatError> {
        let mut r = Reader::new(buf, ENTRY_HEADER_LEN)?;
        Ok(Self {
            idlength: r.u8(),
            offset: r.u32(),
            length: r.u32(),
            previous: r.u32(),
            flags: r.u8(),
            dataid: r.u32(),
            timestamp: r.u32(),
            crc: r.u32(),
            parentid: r.u32(),
            parentoff: r.u32(),
        })
    }

    /// Whole entry size including the key.
    pub fn entry_len(&self) -> usize {
        ENTRY_HEADER_LEN + usize::from(self.idlength)
    }

    /// True when flagged deleted or superseded.
    pub fn deleted(&self) -> bool {
        self.flags & super::FLAG_DELETED != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_match_reference() {
        assert_eq!(HEADER_LEN, 29);
        assert_eq!(ENTRY_HEADER_LEN, 34);
        assert_eq!(SEQ_ENTRY_LEN, 42);
    }

    #[test]
    fn entry_round_trip() {
        let h = IndexEntryHeader {
            idlength: 3,
            offset: 28,
            length: 5,
            previous: 29,
            flags: 1,
            dataid: 2,
            timestamp: 7,
            crc: 0xdead_beef,
            parentid: 1,
            parentoff: 99,
        };
        let mut out = Vec::new();
        h.encode_into(b"abc", &mut out);
        assert_eq!(out.len(), h.entry_len());
        assert_eq!(out[FLAGS_OFFSET], 1);
        assert_eq!(IndexEntryHeader::decode(&out), Ok(h));
        let hdr = IndexHeader { fileid: 9, mode: 1 };
        assert_eq!(IndexHeader::decode(&hdr.encode()), Ok(hdr));
    }
}
