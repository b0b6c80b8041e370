//! Encoding: the canonical body from its tables, the trailer, and the whole file.

use super::layout::{
    BLOCK_LEN, BODY_HEADER_LEN, DIRENT_LEN, HEADER_LEN, INODE_LEN, MAGIC, TAG_PREFETCH,
    TAG_PREFETCH_BLOCKS, TAG_ROUTE, TAG_SIGNATURE, VERSION, XATTR_LEN,
};
use super::model::{BlockRef, Dirent, Flist, ImageKind, Inode, Params, Trailer, XattrRef};

/// A little-endian byte writer.
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
    /// A trailer record of u32 values.
    fn u32_record(&mut self, tag: u16, values: &[u32]) {
        if values.is_empty() {
            return;
        }
        self.u16(tag);
        self.u32((values.len() * 4) as u32);
        for v in values {
            self.u32(*v);
        }
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
    w.u32(params.small_files);
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
        w.u32(b.off);
        w.u32(b.len);
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
    w.u32_record(TAG_PREFETCH, &t.prefetch);
    w.u32_record(TAG_PREFETCH_BLOCKS, &t.prefetch_blocks);
    w.0
}

/// Assemble a whole flist file of the current version from a body and a trailer.
pub fn encode_file(body: &[u8], trailer: &Trailer) -> Vec<u8> {
    encode_file_version(body, trailer, VERSION)
}

/// Assemble a whole flist file whose body is of format `version` (a body is only ever
/// re-used with the version it was written for: rewriting the trailer of an old flist keeps
/// it old).
pub fn encode_file_version(body: &[u8], trailer: &Trailer, version: u32) -> Vec<u8> {
    let tr = encode_trailer(trailer);
    let mut w = W(Vec::with_capacity(HEADER_LEN + body.len() + tr.len() + 32));
    w.bytes(&MAGIC);
    w.u32(version);
    w.u32(0);
    w.u64(body.len() as u64);
    w.u64(tr.len() as u64);
    w.bytes(blake3::hash(body).as_bytes());
    w.bytes(body);
    w.bytes(&tr);
    w.bytes(blake3::hash(&tr).as_bytes());
    w.0
}

impl Flist {
    /// Re-encode the whole file (same body and version, current trailer).
    pub fn to_bytes(&self) -> Vec<u8> {
        let version = match self.kind {
            ImageKind::Flist { version } => version,
            ImageKind::Rfs => VERSION,
        };
        encode_file_version(&self.body, &self.trailer, version)
    }
}
