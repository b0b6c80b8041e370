//! The flist file format, version 1: encode and decode.
//!
//! All integers are little-endian. The file is:
//!
//! ```text
//! offset  size  field
//! 0       8     magic  b"FLIST\0\r\n"
//! 8       4     format version (u32) = 1
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
//! 20  u32 reserved = 0, u64 reserved = 0
//! 32  u64 n_inodes, n_dirents, n_blocks, n_xattrs, names_len, data_len
//! 80  inodes  [n_inodes  x 72]: mode u32, uid u32, gid u32, nlink u32, size u64, rdev u64,
//!                               mtime_sec i64, mtime_nsec u32, xattr_count u32, xattr_first u32,
//!                               parent u32, first u64, count u64
//!         first/count: dir -> dirent range; regular -> block range; symlink -> data blob range
//!     dirents [n_dirents x 16]: name_off u32, name_len u32, ino u32, reserved u32
//!         the dirents of one directory are contiguous and sorted by name bytes (binary search)
//!     blocks  [n_blocks  x 80]: id [32], key [32] (zero unless encrypted), file_offset u64,
//!                               plain_len u32, stored_len u32
//!     xattrs  [n_xattrs  x 16]: name_off u32, name_len u32 (names blob), val_off u32, val_len u32 (data blob)
//!     names blob, data blob
//! ```
//!
//! Inode 0 is the root directory. Inodes are numbered breadth-first in name order, so
//! packing the same tree twice yields the same body and the same identity.
//!
//! Trailer: a sequence of records `tag u16, len u32, value[len]`; unknown tags are skipped.
//! Tag 1 signature: ed25519 public key [32] + signature [64] over
//! `b"flist-signature-v1\0" || identity`. Tag 2 store route (UTF-8, `[RANGE=]URL`).
//! Tag 3 prefetch list (u32 inode numbers). Tag 4 prefetch blocks (u32 indices into the block
//! table, in the order a recorded run first touched them; see `flist embed-prefetch`).

use std::path::Path;

use crate::chunk::{ChunkParams, Chunking};
use crate::error::{Error, Result};

pub const MAGIC: [u8; 8] = *b"FLIST\0\r\n";
pub const VERSION: u32 = 1;
pub const HEADER_LEN: usize = 64;
pub const BODY_HEADER_LEN: usize = 80;
pub const INODE_LEN: usize = 72;
pub const DIRENT_LEN: usize = 16;
pub const BLOCK_LEN: usize = 80;
pub const XATTR_LEN: usize = 16;
pub const ROOT_INO: u32 = 0;

pub const TAG_SIGNATURE: u16 = 1;
pub const TAG_ROUTE: u16 = 2;
pub const TAG_PREFETCH: u16 = 3;
pub const TAG_PREFETCH_BLOCKS: u16 = 4;

pub const S_IFMT: u32 = 0o170000;
pub const S_IFSOCK: u32 = 0o140000;
pub const S_IFLNK: u32 = 0o120000;
pub const S_IFREG: u32 = 0o100000;
pub const S_IFBLK: u32 = 0o060000;
pub const S_IFDIR: u32 = 0o040000;
pub const S_IFCHR: u32 = 0o020000;
pub const S_IFIFO: u32 = 0o010000;

/// A 32-byte blake3 hash (block id or flist identity).
pub type Hash = [u8; 32];

/// Lower-case hex of bytes.
pub fn hex(b: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push(D[(x >> 4) as usize] as char);
        s.push(D[(x & 15) as usize] as char);
    }
    s
}

/// Parse lower/upper-case hex.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let v = |c: u8| -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    };
    s.as_bytes()
        .chunks(2)
        .map(|p| Some(v(p[0])? << 4 | v(p[1])?))
        .collect()
}

/// Block parameters of an flist: how file contents were cut and stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    pub chunk: ChunkParams,
    pub hash: u8,
    pub compression: u8,
    pub level: i32,
    /// Convergent encryption of blocks.
    pub encrypted: bool,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            chunk: ChunkParams::default(),
            hash: 1,
            compression: 1,
            level: 3,
            encrypted: false,
        }
    }
}

/// One inode (see the layout above).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Inode {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u32,
    pub size: u64,
    pub rdev: u64,
    pub mtime_sec: i64,
    pub mtime_nsec: u32,
    pub xattr_count: u32,
    pub xattr_first: u32,
    pub parent: u32,
    pub first: u64,
    pub count: u64,
}

impl Inode {
    pub fn file_type(&self) -> u32 {
        self.mode & S_IFMT
    }
    pub fn is_dir(&self) -> bool {
        self.file_type() == S_IFDIR
    }
    pub fn is_reg(&self) -> bool {
        self.file_type() == S_IFREG
    }
    pub fn is_symlink(&self) -> bool {
        self.file_type() == S_IFLNK
    }
}

/// A directory entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dirent {
    pub name_off: u32,
    pub name_len: u32,
    pub ino: u32,
}

/// A reference from a file to one stored block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockRef {
    pub id: Hash,
    pub key: Hash,
    pub file_offset: u64,
    pub plain_len: u32,
    pub stored_len: u32,
}

/// An extended attribute reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XattrRef {
    pub name_off: u32,
    pub name_len: u32,
    pub val_off: u32,
    pub val_len: u32,
}

/// A signature record of the trailer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureRec {
    pub public_key: [u8; 32],
    pub signature: [u8; 64],
}

/// The trailer: what may change without changing the image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trailer {
    pub signatures: Vec<SignatureRec>,
    pub routes: Vec<String>,
    pub prefetch: Vec<u32>,
    /// Blocks to fetch up front at mount (indices into the block table).
    pub prefetch_blocks: Vec<u32>,
}

/// A decoded, validated flist.
#[derive(Debug, Clone)]
pub struct Flist {
    pub identity: Hash,
    pub params: Params,
    pub inodes: Vec<Inode>,
    pub dirents: Vec<Dirent>,
    pub blocks: Vec<BlockRef>,
    pub xattrs: Vec<XattrRef>,
    pub names: Vec<u8>,
    pub data: Vec<u8>,
    pub trailer: Trailer,
    /// Raw body bytes (re-used when the trailer is rewritten).
    pub body: Vec<u8>,
}

// ---------------------------------------------------------------- encoding

struct W(Vec<u8>);
impl W {
    fn u8(&mut self, v: u8) {
        self.0.push(v)
    }
    fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_le_bytes())
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes())
    }
    fn i32(&mut self, v: i32) {
        self.0.extend_from_slice(&v.to_le_bytes())
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes())
    }
    fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes())
    }
    fn bytes(&mut self, v: &[u8]) {
        self.0.extend_from_slice(v)
    }
}

/// Encode the canonical body from its tables.
pub fn encode_body(
    params: &Params,
    inodes: &[Inode],
    dirents: &[Dirent],
    blocks: &[BlockRef],
    xattrs: &[XattrRef],
    names: &[u8],
    data: &[u8],
) -> Vec<u8> {
    let mut w = W(Vec::with_capacity(
        BODY_HEADER_LEN
            + inodes.len() * INODE_LEN
            + dirents.len() * DIRENT_LEN
            + blocks.len() * BLOCK_LEN
            + xattrs.len() * XATTR_LEN
            + names.len()
            + data.len(),
    ));
    w.u8(params.chunk.chunking as u8);
    w.u8(params.hash);
    w.u8(params.compression);
    w.u8(u8::from(params.encrypted));
    w.i32(params.level);
    w.u32(params.chunk.min);
    w.u32(params.chunk.avg);
    w.u32(params.chunk.max);
    w.u32(0);
    w.u64(0);
    for n in [
        inodes.len(),
        dirents.len(),
        blocks.len(),
        xattrs.len(),
        names.len(),
        data.len(),
    ] {
        w.u64(n as u64);
    }
    for i in inodes {
        w.u32(i.mode);
        w.u32(i.uid);
        w.u32(i.gid);
        w.u32(i.nlink);
        w.u64(i.size);
        w.u64(i.rdev);
        w.i64(i.mtime_sec);
        w.u32(i.mtime_nsec);
        w.u32(i.xattr_count);
        w.u32(i.xattr_first);
        w.u32(i.parent);
        w.u64(i.first);
        w.u64(i.count);
    }
    for d in dirents {
        w.u32(d.name_off);
        w.u32(d.name_len);
        w.u32(d.ino);
        w.u32(0);
    }
    for b in blocks {
        w.bytes(&b.id);
        w.bytes(&b.key);
        w.u64(b.file_offset);
        w.u32(b.plain_len);
        w.u32(b.stored_len);
    }
    for x in xattrs {
        w.u32(x.name_off);
        w.u32(x.name_len);
        w.u32(x.val_off);
        w.u32(x.val_len);
    }
    w.bytes(names);
    w.bytes(data);
    w.0
}

/// Encode a trailer.
pub fn encode_trailer(t: &Trailer) -> Vec<u8> {
    let mut w = W(Vec::new());
    for s in &t.signatures {
        w.u16(TAG_SIGNATURE);
        w.u32(96);
        w.bytes(&s.public_key);
        w.bytes(&s.signature);
    }
    for r in &t.routes {
        w.u16(TAG_ROUTE);
        w.u32(r.len() as u32);
        w.bytes(r.as_bytes());
    }
    if !t.prefetch.is_empty() {
        w.u16(TAG_PREFETCH);
        w.u32((t.prefetch.len() * 4) as u32);
        for i in &t.prefetch {
            w.u32(*i);
        }
    }
    if !t.prefetch_blocks.is_empty() {
        w.u16(TAG_PREFETCH_BLOCKS);
        w.u32((t.prefetch_blocks.len() * 4) as u32);
        for i in &t.prefetch_blocks {
            w.u32(*i);
        }
    }
    w.0
}

/// Assemble a whole flist file from a body and a trailer.
pub fn encode_file(body: &[u8], trailer: &Trailer) -> Vec<u8> {
    let tr = encode_trailer(trailer);
    let mut w = W(Vec::with_capacity(HEADER_LEN + body.len() + tr.len() + 32));
    w.bytes(&MAGIC);
    w.u32(VERSION);
    w.u32(0);
    w.u64(body.len() as u64);
    w.u64(tr.len() as u64);
    w.bytes(blake3::hash(body).as_bytes());
    w.bytes(body);
    w.bytes(&tr);
    w.bytes(blake3::hash(&tr).as_bytes());
    w.0
}

// ---------------------------------------------------------------- decoding

struct R<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> R<'a> {
    fn take(&mut self, n: usize) -> std::result::Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.b.len())
            .ok_or_else(|| format!("truncated at byte {} (need {n} more)", self.pos))?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn arr<const N: usize>(&mut self) -> std::result::Result<[u8; N], String> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u8(&mut self) -> std::result::Result<u8, String> {
        Ok(self.arr::<1>()?[0])
    }
    fn u16(&mut self) -> std::result::Result<u16, String> {
        Ok(u16::from_le_bytes(self.arr()?))
    }
    fn u32(&mut self) -> std::result::Result<u32, String> {
        Ok(u32::from_le_bytes(self.arr()?))
    }
    fn i32(&mut self) -> std::result::Result<i32, String> {
        Ok(i32::from_le_bytes(self.arr()?))
    }
    fn u64(&mut self) -> std::result::Result<u64, String> {
        Ok(u64::from_le_bytes(self.arr()?))
    }
    fn i64(&mut self) -> std::result::Result<i64, String> {
        Ok(i64::from_le_bytes(self.arr()?))
    }
    fn count(&mut self, rec: usize) -> std::result::Result<usize, String> {
        let n = self.u64()?;
        let n = usize::try_from(n).map_err(|_| "table too large".to_string())?;
        if n.saturating_mul(rec) > self.b.len() {
            return Err(format!("table of {n} entries exceeds the body"));
        }
        Ok(n)
    }
}

/// Check that a name is a single, safe path component.
pub fn valid_name(n: &[u8]) -> bool {
    !n.is_empty() && n != b"." && n != b".." && !n.contains(&b'/') && !n.contains(&0)
}

/// Read and decode an flist file.
pub fn read_file(path: &Path) -> Result<Flist> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if bytes.starts_with(crate::rfs::SQLITE_MAGIC) {
        return Err(Error::invalid(
            path,
            "an rfs .fl, not an flist: this command needs our format (see `flist convert`)",
        ));
    }
    decode(&bytes).map_err(|msg| Error::corrupt(path, msg))
}

/// Decode and validate flist bytes.
pub fn decode(bytes: &[u8]) -> std::result::Result<Flist, String> {
    if bytes.len() < HEADER_LEN {
        return Err(format!(
            "file is {} bytes, shorter than the {HEADER_LEN}-byte header (truncated or not an flist)",
            bytes.len()
        ));
    }
    let mut r = R { b: bytes, pos: 0 };
    if r.arr::<8>()? != MAGIC {
        return Err("bad magic: not an flist file".into());
    }
    let version = r.u32()?;
    if version != VERSION {
        return Err(format!("unsupported format version {version}"));
    }
    if r.u32()? != 0 {
        return Err("unknown header flags".into());
    }
    let body_len = r.u64()?;
    let trailer_len = r.u64()?;
    let identity: Hash = r.arr()?;
    let expected = (HEADER_LEN as u64)
        .checked_add(body_len)
        .and_then(|x| x.checked_add(trailer_len))
        .and_then(|x| x.checked_add(32))
        .ok_or("header lengths overflow")?;
    if expected != bytes.len() as u64 {
        return Err(format!(
            "file is {} bytes but its header announces {expected} (truncated or corrupt)",
            bytes.len()
        ));
    }
    let body = r.take(body_len as usize)?;
    if blake3::hash(body).as_bytes() != &identity {
        return Err("metadata body does not match its identity hash".into());
    }
    let tr = r.take(trailer_len as usize)?;
    let sum: Hash = r.arr()?;
    if blake3::hash(tr).as_bytes() != &sum {
        return Err("trailer checksum mismatch".into());
    }
    let trailer = decode_trailer(tr)?;
    let mut fl = decode_body(body)?;
    fl.identity = identity;
    fl.trailer = trailer;
    fl.body = body.to_vec();
    Ok(fl)
}

fn decode_trailer(b: &[u8]) -> std::result::Result<Trailer, String> {
    let mut r = R { b, pos: 0 };
    let mut t = Trailer::default();
    while r.pos < b.len() {
        let tag = r.u16()?;
        let len = r.u32()? as usize;
        let v = r.take(len)?;
        let mut vr = R { b: v, pos: 0 };
        match tag {
            TAG_SIGNATURE => {
                if len != 96 {
                    return Err("bad signature record length".into());
                }
                t.signatures.push(SignatureRec {
                    public_key: vr.arr()?,
                    signature: vr.arr()?,
                });
            }
            TAG_ROUTE => t
                .routes
                .push(String::from_utf8(v.to_vec()).map_err(|_| "store route is not UTF-8")?),
            TAG_PREFETCH => {
                if !len.is_multiple_of(4) {
                    return Err("bad prefetch record length".into());
                }
                while vr.pos < len {
                    t.prefetch.push(vr.u32()?);
                }
            }
            TAG_PREFETCH_BLOCKS => {
                if !len.is_multiple_of(4) {
                    return Err("bad prefetch-blocks record length".into());
                }
                while vr.pos < len {
                    t.prefetch_blocks.push(vr.u32()?);
                }
            }
            _ => {}
        }
    }
    Ok(t)
}

fn decode_body(b: &[u8]) -> std::result::Result<Flist, String> {
    let mut r = R { b, pos: 0 };
    let chunking = match r.u8()? {
        1 => Chunking::Fixed,
        2 => Chunking::FastCdc,
        x => return Err(format!("unknown chunking algorithm {x}")),
    };
    let hash = r.u8()?;
    if hash != 1 {
        return Err(format!("unknown hash algorithm {hash}"));
    }
    let compression = r.u8()?;
    if compression != 1 {
        return Err(format!("unknown compression algorithm {compression}"));
    }
    let encrypted = match r.u8()? {
        0 => false,
        1 => true,
        x => return Err(format!("unknown encryption algorithm {x}")),
    };
    let level = r.i32()?;
    let chunk = ChunkParams {
        chunking,
        min: r.u32()?,
        avg: r.u32()?,
        max: r.u32()?,
    };
    if chunk.max == 0 || chunk.max > crate::chunk::MAX_BLOCK {
        return Err(format!("invalid block size {}", chunk.max));
    }
    r.u32()?;
    r.u64()?;
    let n_inodes = r.count(INODE_LEN)?;
    let n_dirents = r.count(DIRENT_LEN)?;
    let n_blocks = r.count(BLOCK_LEN)?;
    let n_xattrs = r.count(XATTR_LEN)?;
    let names_len = r.count(1)?;
    let data_len = r.count(1)?;
    let mut inodes = Vec::with_capacity(n_inodes);
    for _ in 0..n_inodes {
        inodes.push(Inode {
            mode: r.u32()?,
            uid: r.u32()?,
            gid: r.u32()?,
            nlink: r.u32()?,
            size: r.u64()?,
            rdev: r.u64()?,
            mtime_sec: r.i64()?,
            mtime_nsec: r.u32()?,
            xattr_count: r.u32()?,
            xattr_first: r.u32()?,
            parent: r.u32()?,
            first: r.u64()?,
            count: r.u64()?,
        });
    }
    let mut dirents = Vec::with_capacity(n_dirents);
    for _ in 0..n_dirents {
        let d = Dirent {
            name_off: r.u32()?,
            name_len: r.u32()?,
            ino: r.u32()?,
        };
        r.u32()?;
        dirents.push(d);
    }
    let mut blocks = Vec::with_capacity(n_blocks);
    for _ in 0..n_blocks {
        blocks.push(BlockRef {
            id: r.arr()?,
            key: r.arr()?,
            file_offset: r.u64()?,
            plain_len: r.u32()?,
            stored_len: r.u32()?,
        });
    }
    let mut xattrs = Vec::with_capacity(n_xattrs);
    for _ in 0..n_xattrs {
        xattrs.push(XattrRef {
            name_off: r.u32()?,
            name_len: r.u32()?,
            val_off: r.u32()?,
            val_len: r.u32()?,
        });
    }
    let names = r.take(names_len)?.to_vec();
    let data = r.take(data_len)?.to_vec();
    if r.pos != b.len() {
        return Err("trailing bytes after the metadata body".into());
    }
    let fl = Flist {
        identity: [0; 32],
        params: Params {
            chunk,
            hash,
            compression,
            level,
            encrypted,
        },
        inodes,
        dirents,
        blocks,
        xattrs,
        names,
        data,
        trailer: Trailer::default(),
        body: Vec::new(),
    };
    fl.validate()?;
    Ok(fl)
}

fn range(first: u64, count: u64, len: usize) -> Option<std::ops::Range<usize>> {
    let f = usize::try_from(first).ok()?;
    let c = usize::try_from(count).ok()?;
    let e = f.checked_add(c)?;
    (e <= len).then_some(f..e)
}

impl Flist {
    /// Structural validation: every reference in range, names safe, a proper tree.
    pub(crate) fn validate(&self) -> std::result::Result<(), String> {
        let root = self.inodes.first().ok_or("no root inode")?;
        if !root.is_dir() {
            return Err("root inode is not a directory".into());
        }
        let mut dirent_owner = vec![false; self.dirents.len()];
        let mut refs = vec![0u32; self.inodes.len()];
        for (ino, i) in self.inodes.iter().enumerate() {
            let ft = i.file_type();
            let xr = range(
                i.xattr_first as u64,
                i.xattr_count as u64,
                self.xattrs.len(),
            )
            .ok_or(format!("inode {ino}: xattr range out of bounds"))?;
            for x in &self.xattrs[xr] {
                range(x.name_off as u64, x.name_len as u64, self.names.len())
                    .ok_or(format!("inode {ino}: xattr name out of bounds"))?;
                range(x.val_off as u64, x.val_len as u64, self.data.len())
                    .ok_or(format!("inode {ino}: xattr value out of bounds"))?;
            }
            match ft {
                S_IFDIR => {
                    let dr = range(i.first, i.count, self.dirents.len())
                        .ok_or(format!("inode {ino}: directory entries out of bounds"))?;
                    let mut prev: Option<&[u8]> = None;
                    for k in dr {
                        if std::mem::replace(&mut dirent_owner[k], true) {
                            return Err(format!("dirent {k} belongs to two directories"));
                        }
                        let d = self.dirents[k];
                        let name = range(d.name_off as u64, d.name_len as u64, self.names.len())
                            .map(|r| &self.names[r])
                            .ok_or(format!("dirent {k}: name out of bounds"))?;
                        if !valid_name(name) {
                            return Err(format!(
                                "dirent {k}: name {:?} escapes its directory",
                                String::from_utf8_lossy(name)
                            ));
                        }
                        if prev.is_some_and(|p| p >= name) {
                            return Err(format!("inode {ino}: entries not sorted or duplicated"));
                        }
                        prev = Some(name);
                        let c = self
                            .inodes
                            .get(d.ino as usize)
                            .ok_or(format!("dirent {k}: inode {} out of range", d.ino))?;
                        if d.ino == ROOT_INO {
                            return Err(format!("dirent {k}: links the root"));
                        }
                        refs[d.ino as usize] += 1;
                        if c.is_dir() && c.parent as usize != ino {
                            return Err(format!("directory {} has a wrong parent", d.ino));
                        }
                    }
                }
                S_IFREG => {
                    let br = range(i.first, i.count, self.blocks.len())
                        .ok_or(format!("inode {ino}: blocks out of bounds"))?;
                    let mut off = 0u64;
                    for b in &self.blocks[br] {
                        if b.file_offset != off
                            || b.plain_len == 0
                            || b.plain_len > self.params.chunk.max
                        {
                            return Err(format!("inode {ino}: inconsistent block offsets"));
                        }
                        off += b.plain_len as u64;
                    }
                    if off != i.size {
                        return Err(format!("inode {ino}: blocks do not add up to the size"));
                    }
                }
                S_IFLNK => {
                    range(i.first, i.count, self.data.len())
                        .ok_or(format!("inode {ino}: symlink target out of bounds"))?;
                    if i.count == 0 {
                        return Err(format!("inode {ino}: empty symlink target"));
                    }
                }
                S_IFCHR | S_IFBLK | S_IFIFO | S_IFSOCK => {}
                _ => return Err(format!("inode {ino}: unknown file type {ft:o}")),
            }
        }
        if dirent_owner.iter().any(|o| !o) {
            return Err("a directory entry belongs to no directory".into());
        }
        for (ino, i) in self.inodes.iter().enumerate().skip(1) {
            if refs[ino] == 0 {
                return Err(format!("inode {ino} is unreachable"));
            }
            if i.is_dir() && refs[ino] != 1 {
                return Err(format!(
                    "directory inode {ino} is linked {} times",
                    refs[ino]
                ));
            }
        }
        // Every directory is reached from the root exactly once: no cycles.
        let mut seen = vec![false; self.inodes.len()];
        let mut stack = vec![ROOT_INO];
        seen[0] = true;
        while let Some(d) = stack.pop() {
            for e in self.children(d) {
                let c = e.ino as usize;
                if self.inodes[c].is_dir() {
                    if seen[c] {
                        return Err("directory cycle".into());
                    }
                    seen[c] = true;
                    stack.push(e.ino);
                }
            }
        }
        if self.inodes.iter().zip(&seen).any(|(i, s)| i.is_dir() && !s) {
            return Err("directory not reachable from the root".into());
        }
        Ok(())
    }

    /// Inode by number.
    pub fn inode(&self, ino: u32) -> Option<&Inode> {
        self.inodes.get(ino as usize)
    }

    /// Entries of a directory inode (empty for other inodes).
    pub fn children(&self, ino: u32) -> &[Dirent] {
        match self.inode(ino) {
            Some(i) if i.is_dir() => range(i.first, i.count, self.dirents.len())
                .map(|r| &self.dirents[r])
                .unwrap_or(&[]),
            _ => &[],
        }
    }

    /// Name of an entry.
    pub fn name(&self, d: &Dirent) -> &[u8] {
        self.names
            .get(d.name_off as usize..(d.name_off as usize + d.name_len as usize))
            .unwrap_or(&[])
    }

    /// Look a name up in a directory (binary search).
    pub fn lookup_in(&self, dir: u32, name: &[u8]) -> Option<u32> {
        let ch = self.children(dir);
        ch.binary_search_by(|d| self.name(d).cmp(name))
            .ok()
            .map(|k| ch[k].ino)
    }

    /// Look a path up from the root; `/`, `` and `.` are the root. `..` is refused.
    pub fn lookup(&self, path: &[u8]) -> Option<u32> {
        let mut ino = ROOT_INO;
        for c in path.split(|b| *b == b'/') {
            if c.is_empty() || c == b"." {
                continue;
            }
            if c == b".." {
                return None;
            }
            ino = self.lookup_in(ino, c)?;
        }
        Some(ino)
    }

    /// Target of a symlink inode.
    pub fn symlink_target(&self, ino: u32) -> &[u8] {
        match self.inode(ino) {
            Some(i) if i.is_symlink() => range(i.first, i.count, self.data.len())
                .map(|r| &self.data[r])
                .unwrap_or(&[]),
            _ => &[],
        }
    }

    /// Blocks of a regular file.
    pub fn file_blocks(&self, ino: u32) -> &[BlockRef] {
        match self.inode(ino) {
            Some(i) if i.is_reg() => range(i.first, i.count, self.blocks.len())
                .map(|r| &self.blocks[r])
                .unwrap_or(&[]),
            _ => &[],
        }
    }

    /// Index (into `file_blocks`) of the block holding `offset` of a file.
    pub fn block_at(&self, ino: u32, offset: u64) -> Option<usize> {
        let bl = self.file_blocks(ino);
        let k = bl.partition_point(|b| b.file_offset <= offset);
        let k = k.checked_sub(1)?;
        let b = bl.get(k)?;
        (offset < b.file_offset + b.plain_len as u64).then_some(k)
    }

    /// Extended attributes of an inode.
    pub fn xattrs_of(&self, ino: u32) -> Vec<(&[u8], &[u8])> {
        let Some(i) = self.inode(ino) else {
            return Vec::new();
        };
        let Some(r) = range(
            i.xattr_first as u64,
            i.xattr_count as u64,
            self.xattrs.len(),
        ) else {
            return Vec::new();
        };
        self.xattrs[r]
            .iter()
            .map(|x| {
                (
                    self.names
                        .get(x.name_off as usize..x.name_off as usize + x.name_len as usize)
                        .unwrap_or(&[]),
                    self.data
                        .get(x.val_off as usize..x.val_off as usize + x.val_len as usize)
                        .unwrap_or(&[]),
                )
            })
            .collect()
    }

    /// Paths of all inodes, breadth-first (`(path, ino)`, root is the empty path).
    pub fn walk(&self) -> Vec<(Vec<u8>, u32)> {
        let mut out = vec![(Vec::new(), ROOT_INO)];
        let mut k = 0;
        while k < out.len() {
            let (p, ino) = out[k].clone();
            k += 1;
            for d in self.children(ino) {
                let mut q = p.clone();
                if !q.is_empty() {
                    q.push(b'/');
                }
                q.extend_from_slice(self.name(d));
                out.push((q, d.ino));
            }
        }
        out
    }

    /// Re-encode the whole file (same body, current trailer).
    pub fn to_bytes(&self) -> Vec<u8> {
        encode_file(&self.body, &self.trailer)
    }

    /// The message a signature covers.
    pub fn signed_message(&self) -> Vec<u8> {
        signed_message(&self.identity)
    }
}

/// The message an ed25519 signature covers for an identity.
pub fn signed_message(identity: &Hash) -> Vec<u8> {
    let mut m = b"flist-signature-v1\0".to_vec();
    m.extend_from_slice(identity);
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_roundtrip() {
        assert_eq!(
            unhex(&hex(&[0, 1, 0xab, 0xff])),
            Some(vec![0, 1, 0xab, 0xff])
        );
        assert_eq!(unhex("zz"), None);
    }

    #[test]
    fn names() {
        assert!(valid_name(b"a\xff"));
        for n in [&b""[..], b".", b"..", b"a/b", b"a\0"] {
            assert!(!valid_name(n));
        }
    }

    #[test]
    fn truncated_is_error() {
        let root = Inode {
            mode: S_IFDIR | 0o755,
            nlink: 2,
            ..Default::default()
        };
        let body = encode_body(&Params::default(), &[root], &[], &[], &[], &[], &[]);
        let f = encode_file(&body, &Trailer::default());
        assert!(decode(&f).is_ok());
        for n in 0..f.len() {
            assert!(decode(&f[..n]).is_err());
        }
        let mut g = f.clone();
        g[70] ^= 1;
        assert!(decode(&g).is_err());
    }
}
