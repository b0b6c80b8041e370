//! Key map snapshot `<index>/<ns>/zdb-keymap.snapshot` (ours, not part of the 0-db format): a
//! user-mode namespace's in-memory index, so that a start can skip replaying the index files.
//!
//! ```text
//! header (68 bytes)                       file record (28 bytes), one per file pair N
//! off size field                          off size field
//!   0  [8] magic "ZDBKMAP2"                 0  u64 length of iN
//!   8  u64 hash seed of the key map         8  u32 CRC-32C of all of iN
//!  16  u32 files (index files named)       12  u64 first entry of iN (its first sequential id)
//!  20  u64 keys                            20  u64 dead bytes of pair N (estimate)
//!  28  u64 next_entry
//!  36  u64 live_bytes                     key record (1 + n + 16 bytes), one per key,
//!  44  u64 index_faults                   in the map's table order
//!  52  u32 last_index_off                 off  size field
//!  56  u32 last_data_off                    0  u8  key length n (1..=255)
//!  60  u64 tail_start (data tail scan)      1  [n] key
//!                                         1+n  u32 file, u32 index offset,
//!                                                u32 data offset, u32 value length
//!
//! trailer: u32 CRC-32C (standard: init and final xor !0) of every byte before it
//! ```
//! Version 1 (`ZDBKMAP1`) kept one dead-byte total in the header; a version 1 file is not
//! used (the index is replayed once and a version 2 snapshot written at the next stop).
//! All integers little endian. A reader trusts the file only if the trailer matches and every
//! index file named is there with exactly that length and CRC (the engine checks that).

use super::{FormatError, Reader};

/// File name in the namespace's index folder.
pub const FILE_NAME: &str = "zdb-keymap.snapshot";
/// First bytes of the file (the version is its last digit).
pub const MAGIC: [u8; 8] = *b"ZDBKMAP2";

const SEED_AT: usize = MAGIC.len();
const FILES_AT: usize = SEED_AT + 8;
const KEYS_AT: usize = FILES_AT + 4;
const NEXT_ENTRY_AT: usize = KEYS_AT + 8;
const LIVE_AT: usize = NEXT_ENTRY_AT + 8;
const FAULTS_AT: usize = LIVE_AT + 8;
const LAST_INDEX_AT: usize = FAULTS_AT + 8;
const LAST_DATA_AT: usize = LAST_INDEX_AT + 4;
const TAIL_START_AT: usize = LAST_DATA_AT + 4;
/// Size of the header.
pub const HEADER_LEN: usize = TAIL_START_AT + 8;
/// Size of one file record.
pub const FILE_RECORD_LEN: usize = 8 + 4 + 8 + 8;
/// Size of a key record's location, after the key.
pub const LOC_LEN: usize = 4 * 4;
/// Smallest key record (a one-byte key).
pub const MIN_KEY_RECORD_LEN: usize = 1 + 1 + LOC_LEN;
/// Size of the trailing checksum.
pub const TRAILER_LEN: usize = 4;

const _: () = assert!(HEADER_LEN == 68);

/// What a snapshot restores besides the keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Header {
    /// Hash seed of the key map (restoring in table order is then sequential).
    pub seed: u64,
    /// Index files named by file records.
    pub files: u32,
    /// Key records.
    pub keys: u64,
    /// Index entries ever appended.
    pub next_entry: u64,
    /// Sum of live value lengths.
    pub live_bytes: u64,
    /// Index entries found inconsistent.
    pub index_faults: u64,
    /// Offset of the last index entry.
    pub last_index_off: u32,
    /// Offset of the last data entry.
    pub last_data_off: u32,
    /// Where the data tail scan of the last data file starts.
    pub tail_start: u64,
}

impl Header {
    /// The header's bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        let mut put = |at: usize, bytes: &[u8]| {
            if let Some(dst) = out.get_mut(at..at + bytes.len()) {
                dst.copy_from_slice(bytes);
            }
        };
        put(0, &MAGIC);
        put(SEED_AT, &self.seed.to_le_bytes());
        put(FILES_AT, &self.files.to_le_bytes());
        put(KEYS_AT, &self.keys.to_le_bytes());
        put(NEXT_ENTRY_AT, &self.next_entry.to_le_bytes());
        put(LIVE_AT, &self.live_bytes.to_le_bytes());
        put(FAULTS_AT, &self.index_faults.to_le_bytes());
        put(LAST_INDEX_AT, &self.last_index_off.to_le_bytes());
        put(LAST_DATA_AT, &self.last_data_off.to_le_bytes());
        put(TAIL_START_AT, &self.tail_start.to_le_bytes());
        out
    }

    /// Parse a header; a wrong magic is [`FormatError::Invalid`].
    pub fn decode(buf: &[u8]) -> Result<Self, FormatError> {
        let mut r = Reader::new(buf, HEADER_LEN)?;
        if r.magic8() != MAGIC {
            return Err(FormatError::Invalid("not a key map snapshot"));
        }
        Ok(Header {
            seed: r.u64(),
            files: r.u32(),
            keys: r.u64(),
            next_entry: r.u64(),
            live_bytes: r.u64(),
            index_faults: r.u64(),
            last_index_off: r.u32(),
            last_data_off: r.u32(),
            tail_start: r.u64(),
        })
    }
}

/// One index file as the snapshot saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileRecord {
    /// Length of the index file.
    pub index_len: u64,
    /// CRC-32C of its whole content.
    pub index_crc: u32,
    /// First entry (sequential id) stored in it.
    pub first_entry: u64,
    /// Dead bytes of the pair (an estimate, as the engine keeps it).
    pub dead_bytes: u64,
}

impl FileRecord {
    /// The record's bytes.
    pub fn encode(&self) -> [u8; FILE_RECORD_LEN] {
        let mut out = [0u8; FILE_RECORD_LEN];
        out[..8].copy_from_slice(&self.index_len.to_le_bytes());
        out[8..12].copy_from_slice(&self.index_crc.to_le_bytes());
        out[12..20].copy_from_slice(&self.first_entry.to_le_bytes());
        out[20..].copy_from_slice(&self.dead_bytes.to_le_bytes());
        out
    }

    /// Parse a record.
    pub fn decode(buf: &[u8]) -> Result<Self, FormatError> {
        let mut r = Reader::new(buf, FILE_RECORD_LEN)?;
        Ok(FileRecord {
            index_len: r.u64(),
            index_crc: r.u32(),
            first_entry: r.u64(),
            dead_bytes: r.u64(),
        })
    }
}

/// Where a key's current version lives, as a key record stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeyLoc {
    /// File pair number.
    pub file: u32,
    /// Offset of the index entry.
    pub idx_off: u32,
    /// Offset of the data entry.
    pub data_off: u32,
    /// Value length.
    pub len: u32,
}

impl KeyLoc {
    /// Append a whole key record (`key` is 1..=255 bytes) to `out`.
    pub fn encode_record(&self, key: &[u8], out: &mut Vec<u8>) {
        out.push(u8::try_from(key.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(key);
        for v in [self.file, self.idx_off, self.data_off, self.len] {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// Parse the location that follows a record's key.
    pub fn decode(buf: &[u8]) -> Result<Self, FormatError> {
        let mut r = Reader::new(buf, LOC_LEN)?;
        Ok(KeyLoc {
            file: r.u32(),
            idx_off: r.u32(),
            data_off: r.u32(),
            len: r.u32(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_at_their_documented_offsets() {
        let h = Header {
            seed: 1,
            files: 2,
            keys: 3,
            next_entry: 4,
            live_bytes: 5,
            index_faults: 7,
            last_index_off: 8,
            last_data_off: 9,
            tail_start: 10,
        };
        let bytes = h.encode();
        assert_eq!(&bytes[..8], b"ZDBKMAP2");
        assert_eq!(bytes[60], 10);
        assert_eq!(Header::decode(&bytes), Ok(h));
        let mut other = bytes;
        other[7] = b'0';
        assert!(Header::decode(&other).is_err());
        assert!(Header::decode(&bytes[..HEADER_LEN - 1]).is_err());
        let f = FileRecord {
            index_len: 29,
            index_crc: 0xdead_beef,
            first_entry: 12,
            dead_bytes: 13,
        };
        assert_eq!(FileRecord::decode(&f.encode()), Ok(f));
        let loc = KeyLoc {
            file: 1,
            idx_off: 29,
            data_off: 28,
            len: 5,
        };
        let mut rec = Vec::new();
        loc.encode_record(b"key", &mut rec);
        assert_eq!(rec.len(), 1 + 3 + LOC_LEN);
        assert_eq!(rec[0], 3);
        assert_eq!(KeyLoc::decode(&rec[4..]), Ok(loc));
    }
}
