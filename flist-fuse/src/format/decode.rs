//! Decoding: header checks (exact size, identity, trailer checksum), then the tables, then
//! [`validate`](super::validate) so that a mount can index them without further checks.

use std::path::Path;

use super::layout::{
    BLOCK_LEN, BLOCK_LEN_V1, DIRENT_LEN, HEADER_LEN, INODE_LEN, MAGIC, OLDEST_VERSION,
    TAG_PREFETCH, TAG_PREFETCH_BLOCKS, TAG_ROUTE, TAG_SIGNATURE, VERSION, XATTR_LEN,
};
use super::model::{
    BlockRef, Dirent, Flist, Hash, ImageKind, Inode, Params, SignatureRec, Trailer, XattrRef,
};
use crate::chunk::{ChunkParams, Chunking, MAX_BLOCK};
use crate::error::{Error, Result};

/// A little-endian byte reader whose every read is bounds-checked.
struct R<'a> {
    b: &'a [u8],
    pos: usize,
}

type Res<T> = std::result::Result<T, String>;

impl<'a> R<'a> {
    fn new(b: &'a [u8]) -> Self {
        R { b, pos: 0 }
    }
    fn done(&self) -> bool {
        self.pos >= self.b.len()
    }
    fn take(&mut self, n: usize) -> Res<&'a [u8]> {
        let s = self
            .pos
            .checked_add(n)
            .and_then(|end| self.b.get(self.pos..end))
            .ok_or_else(|| format!("truncated at byte {} (need {n} more)", self.pos))?;
        self.pos += n;
        Ok(s)
    }
    fn arr<const N: usize>(&mut self) -> Res<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u8(&mut self) -> Res<u8> {
        Ok(u8::from_le_bytes(self.arr()?))
    }
    fn u16(&mut self) -> Res<u16> {
        Ok(u16::from_le_bytes(self.arr()?))
    }
    fn u32(&mut self) -> Res<u32> {
        Ok(u32::from_le_bytes(self.arr()?))
    }
    fn i32(&mut self) -> Res<i32> {
        Ok(i32::from_le_bytes(self.arr()?))
    }
    fn u64(&mut self) -> Res<u64> {
        Ok(u64::from_le_bytes(self.arr()?))
    }
    fn i64(&mut self) -> Res<i64> {
        Ok(i64::from_le_bytes(self.arr()?))
    }
    /// A table size, refused when the table could not fit in what is left.
    fn count(&mut self, rec: usize) -> Res<usize> {
        let n = self.u64()?;
        let n = usize::try_from(n).map_err(|_| "table too large".to_string())?;
        if n.saturating_mul(rec) > self.b.len() {
            return Err(format!("table of {n} entries exceeds the body"));
        }
        Ok(n)
    }
    /// A record of u32 values.
    fn u32s(&mut self, what: &str, out: &mut Vec<u32>) -> Res<()> {
        if !self.b.len().is_multiple_of(4) {
            return Err(format!("bad {what} record length"));
        }
        while !self.done() {
            out.push(self.u32()?);
        }
        Ok(())
    }
}

/// Read and decode an flist file of our format.
pub fn read_file(path: &Path) -> Result<Flist> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    decode(&bytes).map_err(|msg| Error::corrupt(path, msg))
}

/// Decode and validate flist bytes.
pub fn decode(bytes: &[u8]) -> Res<Flist> {
    if bytes.len() < HEADER_LEN {
        return Err(format!(
            "file is {} bytes, shorter than the {HEADER_LEN}-byte header (truncated or not an flist)",
            bytes.len()
        ));
    }
    let mut r = R::new(bytes);
    if r.arr::<8>()? != MAGIC {
        return Err("bad magic: not an flist file".into());
    }
    let version = r.u32()?;
    if !(OLDEST_VERSION..=VERSION).contains(&version) {
        return Err(format!(
            "unsupported format version {version} (this flist reads {OLDEST_VERSION} to {VERSION})"
        ));
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
    let mut fl = decode_body(body, version)?;
    fl.identity = identity;
    fl.trailer = trailer;
    fl.body = body.to_vec();
    Ok(fl)
}

fn decode_trailer(b: &[u8]) -> Res<Trailer> {
    let mut r = R::new(b);
    let mut t = Trailer::default();
    while !r.done() {
        let tag = r.u16()?;
        let len = r.u32()? as usize;
        let v = r.take(len)?;
        let mut vr = R::new(v);
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
            TAG_PREFETCH => vr.u32s("prefetch", &mut t.prefetch)?,
            TAG_PREFETCH_BLOCKS => vr.u32s("prefetch-blocks", &mut t.prefetch_blocks)?,
            _ => {}
        }
    }
    Ok(t)
}

fn decode_params(r: &mut R<'_>, version: u32) -> Res<Params> {
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
    if chunk.max == 0 || chunk.max > MAX_BLOCK {
        return Err(format!("invalid block size {}", chunk.max));
    }
    // Version 1 wrote 0 here (reserved).
    let small_files = r.u32()?;
    r.u64()?;
    Ok(Params {
        chunk,
        hash,
        compression,
        level,
        encrypted,
        small_files: if version >= 2 { small_files } else { 0 },
    })
}

fn decode_body(b: &[u8], version: u32) -> Res<Flist> {
    let mut r = R::new(b);
    let params = decode_params(&mut r, version)?;
    let v1 = version < 2;
    let n_inodes = r.count(INODE_LEN)?;
    let n_dirents = r.count(DIRENT_LEN)?;
    let n_blocks = r.count(if v1 { BLOCK_LEN_V1 } else { BLOCK_LEN })?;
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
        let mut b = BlockRef::whole(r.arr()?, r.arr()?, r.u64()?, r.u32()?, r.u32()?);
        if !v1 {
            b.off = r.u32()?;
            b.len = r.u32()?;
        }
        blocks.push(b);
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
    if !r.done() {
        return Err("trailing bytes after the metadata body".into());
    }
    let fl = Flist {
        identity: [0; 32],
        kind: ImageKind::Flist { version },
        params,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{S_IFDIR, encode_body, encode_file};

    #[test]
    fn truncated_or_flipped_is_an_error() {
        let root = Inode {
            mode: S_IFDIR | 0o755,
            nlink: 2,
            ..Default::default()
        };
        let body = encode_body(&Params::default(), &[root], &[], &[], &[], &[], &[]);
        let f = encode_file(&body, &Trailer::default());
        assert!(decode(&f).is_ok());
        for n in 0..f.len() {
            assert!(decode(f.get(..n).unwrap_or_default()).is_err());
        }
        let mut g = f.clone();
        if let Some(b) = g.get_mut(70) {
            *b ^= 1;
        }
        assert!(decode(&g).is_err());
    }
}
