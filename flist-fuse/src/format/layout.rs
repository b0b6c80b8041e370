//! Byte-level constants of the file: magic, version, record sizes, trailer tags.

/// File magic.
pub const MAGIC: [u8; 8] = *b"FLIST\0\r\n";
/// The format version this code writes.
pub const VERSION: u32 = 2;
/// The oldest format version this code reads (1: no packed small files, 80-byte blocks).
pub const OLDEST_VERSION: u32 = 1;
/// Bytes of the file header.
pub const HEADER_LEN: usize = 64;
/// Bytes of the body's fixed header (parameters and table sizes).
pub const BODY_HEADER_LEN: usize = 80;
/// Bytes of one inode record.
pub const INODE_LEN: usize = 72;
/// Bytes of one directory entry record.
pub const DIRENT_LEN: usize = 16;
/// Bytes of one block record.
pub const BLOCK_LEN: usize = 88;
/// Bytes of one block record in format version 1 (no slice fields).
pub const BLOCK_LEN_V1: usize = 80;
/// Bytes of one extended attribute record.
pub const XATTR_LEN: usize = 16;

/// Trailer record: a signature.
pub const TAG_SIGNATURE: u16 = 1;
/// Trailer record: a store route.
pub const TAG_ROUTE: u16 = 2;
/// Trailer record: inodes to prefetch.
pub const TAG_PREFETCH: u16 = 3;
/// Trailer record: blocks to prefetch.
pub const TAG_PREFETCH_BLOCKS: u16 = 4;
