//! The field's existing `.fl` flists (rfs format): read them into our in-memory [`Flist`]
//! so that `mount`, `ls`, `cat`, `unpack` and `verify` serve them unchanged ([`load`]);
//! `flist convert` (the crate's `convert` module) rewrites them into our format.
//!
//! An rfs `.fl` is an SQLite database:
//!
//! ```text
//! inode(ino, parent, name, size, uid, gid, mode, rdev, ctime, mtime)   root: parent 0
//! extra(ino, data)                 symlink targets
//! block(ino, id, key)              a file's blocks in file order (rowid order)
//! tag(key, value)                  free-form tags (not needed to serve)
//! route(start, end, url)           stores by the first byte of the block id
//! ```
//!
//! Content is cut in fixed 512 KiB blocks, stored as [`crate::codec::rfs`] describes. Such
//! images carry [`params`] (hash BLAKE2b, compression snappy: never written to an flist
//! file), which select the rfs codec.
//!
//! What rfs itself gets wrong when serving (gid reported as uid, nlink 0, fifos and devices
//! invisible, every error ENOENT, non-UTF-8 names) does not apply here: the metadata goes
//! through our model and our filesystem. Names are served as the bytes the `.fl` holds.
//!
//! A malformed `.fl` (missing tables or columns, bad routes, block rows that do not match
//! the file sizes, unreachable or duplicate entries, absurd values) is a typed error naming
//! the file, never a panic.

pub mod load;

use std::path::Path;

use crate::chunk::ChunkParams;
use crate::codec::{COMPRESSION_SNAPPY, HASH_BLAKE2B};
use crate::error::{Error, IoContext, Result};
use crate::format::{self, Flist, Params};

pub use load::route_spec;

/// First bytes of an SQLite database (an rfs `.fl`).
pub const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";
/// rfs block size.
pub const BLOCK_SIZE: u32 = 512 * 1024;

/// The block parameters of an rfs flist.
pub fn params() -> Params {
    Params {
        chunk: ChunkParams::fixed(BLOCK_SIZE),
        hash: HASH_BLAKE2B,
        compression: COMPRESSION_SNAPPY,
        level: 0,
        encrypted: true,
        small_files: 0,
    }
}

/// Whether a file is an rfs `.fl` (an SQLite database).
pub fn is_rfs(path: &Path) -> Result<bool> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).ctx(path)?;
    let mut head = [0u8; 16];
    let mut n = 0;
    while let Some(rest) = head.get_mut(n..).filter(|r| !r.is_empty()) {
        let k = f.read(rest).ctx(path)?;
        if k == 0 {
            break;
        }
        n += k;
    }
    Ok(n == head.len() && &head == SQLITE_MAGIC)
}

/// Read an flist of either format: ours, or an rfs `.fl`.
pub fn read_any(path: &Path) -> Result<Flist> {
    if is_rfs(path)? {
        read_file(path)
    } else {
        format::read_file(path)
    }
}

/// Read an flist of our format, saying so clearly when it is an rfs `.fl` (for the commands
/// that rewrite our format: `sign`, `embed-prefetch`).
pub fn read_ours(path: &Path) -> Result<Flist> {
    if is_rfs(path)? {
        return Err(Error::invalid(
            path,
            "an rfs .fl, not an flist: this command needs our format (see `flist convert`)",
        ));
    }
    format::read_file(path)
}

/// Read an rfs `.fl` into our model.
pub fn read_file(path: &Path) -> Result<Flist> {
    let bytes = std::fs::read(path).ctx(path)?;
    if !bytes.starts_with(SQLITE_MAGIC) {
        return Err(Error::corrupt(path, "not an rfs .fl (no SQLite header)"));
    }
    let conn = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| Error::corrupt(path, format!("rfs .fl: cannot open as SQLite: {e}")))?;
    let mut fl = load::load(&conn).map_err(|m| Error::corrupt(path, format!("rfs .fl: {m}")))?;
    fl.identity = *blake3::hash(&bytes).as_bytes();
    Ok(fl)
}
