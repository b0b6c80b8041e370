//! The flist file format: the in-memory model ([`model`]), its byte layout ([`encode`],
//! [`decode`]) and the structural checks a decoded image passes before anyone indexes it
//! ([`validate`]). The byte diagram is in FORMAT.md and in the doc comment below.
//!
//! All integers are little-endian. The file is:
//!
//! ```text
//! offset  size  field
//! 0       8     magic  b"FLIST\0\r\n"
//! 8       4     format version (u32) = 2 (1 is still read, see below)
//! 12      4     flags (u32) = 0, anything else is rejected
//! 16      8     body_len (u64)
//! 24      8     trailer_len (u64)
//! 32      32    identity = blake3(body)
//! 64      B     body (canonical metadata; the identity is its hash)
//! 64+B    T     trailer (signatures, store routes, prefetch list; outside the hash)
//! 64+B+T  32    blake3(trailer)      -- detects a truncated or corrupt trailer
//! ```
//!
//! Body (fixed-size tables, so a mount can index them directly):
//!
//! ```text
//! 0   u8 chunking (1 fixed, 2 fastcdc-2020)  u8 hash (1 blake3)
//! 2   u8 compression (1 zstd)                u8 encryption (0 none, 1 convergent chacha20poly1305)
//! 4   i32 compression level
//! 8   u32 chunk min, u32 chunk avg, u32 chunk max (fixed: all three = block size)
//! 20  u32 small_files (files below this size are packed; 0 none), u64 reserved = 0
//! 32  u64 n_inodes, n_dirents, n_blocks, n_xattrs, names_len, data_len
//! 80  inodes  [n_inodes  x 72]: mode u32, uid u32, gid u32, nlink u32, size u64, rdev u64,
//!                               mtime_sec i64, mtime_nsec u32, xattr_count u32, xattr_first u32,
//!                               parent u32, first u64, count u64
//!         first/count: dir -> dirent range; regular -> block range; symlink -> data blob range
//!     dirents [n_dirents x 16]: name_off u32, name_len u32, ino u32, reserved u32
//!         the dirents of one directory are contiguous and sorted by name bytes (binary search)
//!     blocks  [n_blocks  x 88]: id [32], key [32] (zero unless encrypted), file_offset u64,
//!                               plain_len u32, stored_len u32, off u32, len u32
//!         the file's bytes file_offset..+len are plain[off..off+len] of the decoded block:
//!         a whole block (off 0, len plain_len), or a small file's slice of a shared one
//!     xattrs  [n_xattrs  x 16]: name_off u32, name_len u32 (names blob), val_off u32, val_len u32 (data blob)
//!     names blob, data blob
//! ```
//!
//! Small files (below `small_files` bytes, never above the block size) are packed in inode
//! order, several to a block, so a folder's files share a few blocks; identical small files
//! share one slice. Larger files have blocks of their own, shared by every file that holds
//! the same bytes (dedup).
//!
//! Version 1 differs in two places only: the u32 at body offset 20 is reserved (no packing)
//! and block records are 80 bytes (no off/len: every reference is a whole block).
//!
//! Inode 0 is the root directory. Inodes are numbered breadth-first in name order, so
//! packing the same tree twice yields the same body and the same identity.
//!
//! Trailer: a sequence of records `tag u16, len u32, value[len]`; unknown tags are skipped.
//! Tag 1 signature: ed25519 public key [32] + signature [64] over
//! `b"flist-signature-v1\0" || identity`. Tag 2 store route (UTF-8, `[RANGE=]URL`).
//! Tag 3 prefetch list (u32 inode numbers). Tag 4 prefetch blocks (u32 indices into the block
//! table, in the order a recorded run first touched them; see `flist embed-prefetch`).

pub mod decode;
pub mod encode;
pub mod layout;
pub mod model;
pub mod validate;

pub use decode::{decode, read_file};
pub use encode::{encode_body, encode_file, encode_file_version, encode_trailer};
pub use layout::*;
pub use model::*;
pub use validate::valid_name;

/// Lower-case hex of bytes (the `hex` crate's encoding, for byte slices: ids, keys).
pub fn hex(bytes: &[u8]) -> String {
    nodeutil::hex::encode(bytes)
}
