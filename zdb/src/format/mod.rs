//! Every file zdb writes, byte for byte: the 0-db v2 layout (all integers little-endian,
//! packed), and zdb's own files beside it, each module with its layout in its top comment.
//!
//! ```text
//! 0-db v2
//! <index-root>/<ns>/zdb-namespace        descriptor (descriptor.rs)
//! <index-root>/<ns>/iN                   29-byte header + index entries (index.rs)
//! <data-root>/<ns>/dN                    28-byte header + data entries (data.rs)
//! zdb only (the C 0-db ignores them)
//! <index-root>/<ns>/zdb-keymap.snapshot  key map snapshot (keymap_snapshot.rs)
//! <index-root>/<ns>/compact-N            compaction journal (compact_journal.rs)
//! <index-root>/<ns>/.replica             follower position (replica_position.rs)
//! ```
//! Index file N and data file N always rotate together. Checksums are CRC-32C (Castagnoli)
//! with initial value 0 and no final xor, as the C 0-db computes them.

pub mod compact_journal;
pub mod data;
pub mod descriptor;
pub mod index;
pub mod keymap_snapshot;
pub mod replica_position;

pub use data::{DataEntryHeader, DataHeader};
pub use descriptor::Descriptor;
pub use index::{IndexEntryHeader, IndexHeader};

/// Flag bit on index and data entries: the entry is deleted (or, for an index entry, superseded).
pub const FLAG_DELETED: u8 = 1;
/// Flag bit on data entries written by compaction tools.
pub const FLAG_TRUNCATED: u8 = 2;

/// Errors found while decoding on-disk structures.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FormatError {
    /// Fewer bytes than the structure needs.
    #[error("short read: need {need} bytes, have {have}")]
    Short {
        /// Bytes required.
        need: usize,
        /// Bytes available.
        have: usize,
    },
    /// The magic bytes at the start of a file are wrong.
    #[error("bad magic {found:?}, expected {expected:?}")]
    BadMagic {
        /// The magic found.
        found: [u8; 4],
        /// The magic expected.
        expected: [u8; 4],
    },
    /// A version this build does not know.
    #[error("unsupported version {0}")]
    Version(u32),
    /// A field holds an impossible value.
    #[error("invalid field: {0}")]
    Invalid(&'static str),
}

/// CRC-32C as 0-db computes it: init 0, no final xor.
///
/// The `crc32c` crate computes the standard variant (init and xorout 0xFFFFFFFF); inverting its
/// input and output state gives the raw register update that 0-db uses.
pub fn crc32(data: &[u8]) -> u32 {
    !crc32c::crc32c_append(u32::MAX, data)
}

/// Continue a 0-db CRC over more bytes.
pub fn crc32_append(crc: u32, data: &[u8]) -> u32 {
    !crc32c::crc32c_append(!crc, data)
}

/// Little-endian field reader over a byte slice, used by every decoder here.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], need: usize) -> Result<Self, FormatError> {
        if buf.len() < need {
            return Err(FormatError::Short {
                need,
                have: buf.len(),
            });
        }
        Ok(Self { buf, pos: 0 })
    }

    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        // Callers check the total length in `new`, so the range is always inside the buffer.
        if let Some(src) = self.buf.get(self.pos..self.pos + N) {
            out.copy_from_slice(src);
        }
        self.pos += N;
        out
    }

    pub(crate) fn u8(&mut self) -> u8 {
        self.take::<1>()[0]
    }
    pub(crate) fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take())
    }
    pub(crate) fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take())
    }
    pub(crate) fn magic(&mut self) -> [u8; 4] {
        self.take()
    }
    pub(crate) fn magic8(&mut self) -> [u8; 8] {
        self.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_0db_variant() {
        // Init 0 / no xorout: the empty input gives 0, unlike standard CRC-32C.
        assert_eq!(crc32(b""), 0);
        assert_eq!(
            crc32_append(crc32(b"hello "), b"world"),
            crc32(b"hello world")
        );
        assert_ne!(crc32(b"a"), crc32c::crc32c(b"a"));
    }
}
