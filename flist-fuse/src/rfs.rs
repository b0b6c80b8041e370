//! The field's existing `.fl` flists (rfs format): read them into our in-memory [`Flist`]
//! so that `mount`, `ls`, `cat`, `unpack` and `verify` serve them unchanged, and convert
//! them into our format (`flist convert`).
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
//! Content is cut in fixed 512 KiB blocks: `key = BLAKE2b-256(plain)`, stored bytes =
//! AES-256-GCM(key, nonce = key[0..12], snappy_raw(plain)), `id = BLAKE2b-256(stored)`.
//! Such blocks are marked in memory by [`Params::hash`] = [`HASH_RFS`] (never written to an
//! flist file) and decoded by [`decode_block`], which checks both the id and the key.
//!
//! What rfs itself gets wrong when serving (gid reported as uid, nlink 0, fifos and devices
//! invisible, every error ENOENT, non-UTF-8 names) does not apply here: the metadata goes
//! through our model and our filesystem. Names are served as the bytes the `.fl` holds.
//!
//! A malformed `.fl` (missing tables or columns, bad routes, block rows that do not match
//! the file sizes, unreachable or duplicate entries, absurd values) is a typed error naming
//! the file, never a panic.

use std::collections::HashMap;
use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use blake2::Blake2b;
use blake2::digest::Digest;
use blake2::digest::consts::U32;
use rayon::prelude::*;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

use crate::blocks::BlockReader;
use crate::chunk::ChunkParams;
use crate::error::{Error, IoContext, Result};
use crate::format::{
    self, BlockRef, Dirent, Flist, Hash, Inode, Params, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO,
    S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK, Trailer, hex, unhex, valid_name,
};
use crate::store::{self, StoreError};

/// First bytes of an SQLite database (an rfs `.fl`).
pub const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";
/// rfs block size.
pub const BLOCK_SIZE: u32 = 512 * 1024;
/// In-memory [`Params::hash`] of rfs blocks (BLAKE2b-256, snappy, AES-256-GCM).
pub const HASH_RFS: u8 = 2;
/// In-memory [`Params::compression`] of rfs blocks (raw snappy).
pub const COMPRESSION_SNAPPY: u8 = 2;

/// The block parameters of an rfs flist.
pub fn params() -> Params {
    Params {
        chunk: ChunkParams::fixed(BLOCK_SIZE),
        hash: HASH_RFS,
        compression: COMPRESSION_SNAPPY,
        level: 0,
        encrypted: true,
    }
}

/// BLAKE2b with a 256-bit output.
pub fn blake2b256(data: &[u8]) -> Hash {
    let mut h = Blake2b::<U32>::new();
    h.update(data);
    h.finalize().into()
}

/// Check stored bytes against an rfs block id.
pub fn check(id: &Hash, stored: &[u8]) -> std::result::Result<(), StoreError> {
    if &blake2b256(stored) == id {
        Ok(())
    } else {
        Err(StoreError::Mismatch)
    }
}

/// An rfs block as rfs writes it: `(id, key, stored bytes)`.
pub fn encode_block(plain: &[u8]) -> std::result::Result<(Hash, Hash, Vec<u8>), String> {
    let key = blake2b256(plain);
    let z = snap::raw::Encoder::new()
        .compress_vec(plain)
        .map_err(|e| format!("snappy: {e}"))?;
    let c = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&key));
    let stored = c
        .encrypt(Nonce::from_slice(&key[..12]), z.as_slice())
        .map_err(|_| "encryption failed".to_string())?;
    Ok((blake2b256(&stored), key, stored))
}

/// Decode the stored bytes of an rfs block: check BLAKE2b(stored) == id, decrypt with the
/// key (nonce key[0..12]), snappy-decompress, check the length and BLAKE2b(plain) == key.
pub fn decode_block(stored: &[u8], b: &BlockRef) -> std::result::Result<Vec<u8>, StoreError> {
    check(&b.id, stored)?;
    let c = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&b.key));
    let z = c
        .decrypt(Nonce::from_slice(&b.key[..12]), stored)
        .map_err(|_| StoreError::Decode("decryption failed (wrong key)".into()))?;
    let n =
        snap::raw::decompress_len(&z).map_err(|e| StoreError::Decode(format!("snappy: {e}")))?;
    if n != b.plain_len as usize {
        return Err(StoreError::Decode(format!(
            "block is {n} bytes, expected {}",
            b.plain_len
        )));
    }
    let plain = snap::raw::Decoder::new()
        .decompress_vec(&z)
        .map_err(|e| StoreError::Decode(format!("snappy: {e}")))?;
    if plain.len() != b.plain_len as usize {
        return Err(StoreError::Decode(format!(
            "block is {} bytes, expected {}",
            plain.len(),
            b.plain_len
        )));
    }
    if blake2b256(&plain) != b.key {
        return Err(StoreError::Decode(
            "plaintext does not match its key".into(),
        ));
    }
    Ok(plain)
}

/// Whether a file is an rfs `.fl` (an SQLite database).
pub fn is_rfs(path: &Path) -> Result<bool> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).ctx(path)?;
    let mut head = [0u8; 16];
    let mut n = 0;
    while n < head.len() {
        let k = f.read(&mut head[n..]).ctx(path)?;
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

/// Read an rfs `.fl` into our model.
pub fn read_file(path: &Path) -> Result<Flist> {
    let bytes = std::fs::read(path).ctx(path)?;
    if !bytes.starts_with(SQLITE_MAGIC) {
        return Err(Error::corrupt(
            path,
            "not an rfs .fl (no SQLite header)".to_string(),
        ));
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| Error::corrupt(path, format!("rfs .fl: cannot open as SQLite: {e}")))?;
    let mut fl = load(&conn).map_err(|m| Error::corrupt(path, format!("rfs .fl: {m}")))?;
    fl.identity = *blake3::hash(&bytes).as_bytes();
    Ok(fl)
}

type R<T> = std::result::Result<T, String>;

fn sql(table: &str) -> impl Fn(rusqlite::Error) -> String + '_ {
    move |e| format!("table {table}: {e}")
}

fn int(v: ValueRef<'_>, what: &str) -> R<i64> {
    match v {
        ValueRef::Integer(i) => Ok(i),
        ValueRef::Null => Err(format!("{what} is NULL")),
        _ => Err(format!("{what} is not an integer")),
    }
}

fn ranged<T: TryFrom<i64>>(v: ValueRef<'_>, what: &str) -> R<T> {
    let i = int(v, what)?;
    T::try_from(i).map_err(|_| format!("{what} {i} out of range"))
}

fn bytes(v: ValueRef<'_>, what: &str) -> R<Vec<u8>> {
    match v {
        ValueRef::Text(b) | ValueRef::Blob(b) => Ok(b.to_vec()),
        ValueRef::Null => Err(format!("{what} is NULL")),
        _ => Err(format!("{what} is not text")),
    }
}

fn hash32(v: ValueRef<'_>, what: &str) -> R<Hash> {
    let b = bytes(v, what)?;
    let raw = if b.len() == 64 {
        std::str::from_utf8(&b).ok().and_then(unhex)
    } else {
        Some(b)
    };
    raw.and_then(|r| <Hash>::try_from(r.as_slice()).ok())
        .ok_or_else(|| format!("{what} is not a 32-byte hash"))
}

struct Row {
    ino: i64,
    parent: i64,
    name: Vec<u8>,
    size: u64,
    uid: u32,
    gid: u32,
    mode: u32,
    rdev: u64,
    mtime: i64,
}

/// Parse one store route of the `route` table into `LO-HI=URL`.
pub fn route_spec(start: i64, end: i64, url: &str) -> R<String> {
    if !(0..=255).contains(&start) || !(0..=255).contains(&end) || start > end {
        return Err(format!(
            "route {start}-{end} {url:?}: range must be 0..=255 with start <= end"
        ));
    }
    let ok = match url.split_once("://") {
        Some(("dir", p)) => !p.is_empty(),
        Some(("zdb", rest)) => !rest.is_empty(),
        Some(("http" | "https", rest)) => !rest.is_empty(),
        _ => false,
    };
    if !ok {
        return Err(format!(
            "route {start}-{end} {:?}: not a dir://, zdb:// or http(s):// store URL",
            store::redact(url)
        ));
    }
    Ok(format!("{start:02x}-{end:02x}={url}"))
}

fn tables(conn: &Connection) -> R<Vec<String>> {
    let mut st = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .map_err(|e| format!("not a readable SQLite database: {e}"))?;
    let names = st
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(|e| format!("not a readable SQLite database: {e}"))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| format!("not a readable SQLite database: {e}"))?;
    Ok(names)
}

/// Build our model from an open `.fl`.
fn load(conn: &Connection) -> R<Flist> {
    let have = tables(conn)?;
    for t in ["inode", "extra", "block", "route"] {
        if !have.iter().any(|h| h == t) {
            return Err(format!("missing table {t:?}"));
        }
    }

    // inode
    let mut rows: Vec<Row> = Vec::new();
    {
        let e = sql("inode");
        let mut st = conn
            .prepare("SELECT ino, parent, name, size, uid, gid, mode, rdev, mtime FROM inode ORDER BY ino")
            .map_err(&e)?;
        let mut q = st.query([]).map_err(&e)?;
        while let Some(r) = q.next().map_err(&e)? {
            let g = |k: usize| r.get_ref(k).map_err(&e);
            let ino = int(g(0)?, "inode.ino")?;
            let w = |f: &str| format!("inode {ino}: {f}");
            rows.push(Row {
                ino,
                parent: int(g(1)?, &w("parent"))?,
                name: bytes(g(2)?, &w("name"))?,
                size: ranged(g(3)?, &w("size"))?,
                uid: ranged(g(4)?, &w("uid"))?,
                gid: ranged(g(5)?, &w("gid"))?,
                mode: ranged(g(6)?, &w("mode"))?,
                rdev: ranged(g(7)?, &w("rdev"))?,
                mtime: int(g(8)?, &w("mtime"))?,
            });
        }
    }
    if rows.len() >= u32::MAX as usize {
        return Err("too many inodes".into());
    }
    let mut by_ino: HashMap<i64, usize> = HashMap::with_capacity(rows.len());
    for (k, r) in rows.iter().enumerate() {
        if r.ino < 1 {
            return Err(format!("invalid inode number {}", r.ino));
        }
        if by_ino.insert(r.ino, k).is_some() {
            return Err(format!("inode {} listed twice", r.ino));
        }
        let ft = r.mode & S_IFMT;
        if r.mode > 0o177777
            || !matches!(
                ft,
                S_IFDIR | S_IFREG | S_IFLNK | S_IFCHR | S_IFBLK | S_IFIFO | S_IFSOCK
            )
        {
            return Err(format!("inode {}: invalid mode {:o}", r.ino, r.mode));
        }
    }
    let roots: Vec<usize> = rows
        .iter()
        .enumerate()
        .filter(|(_, r)| r.parent == 0)
        .map(|(k, _)| k)
        .collect();
    let root = match roots.as_slice() {
        [one] => *one,
        [] => return Err("no root inode (an inode with parent 0)".into()),
        _ => return Err(format!("{} root inodes (parent 0)", roots.len())),
    };
    if rows[root].mode & S_IFMT != S_IFDIR {
        return Err("the root inode is not a directory".into());
    }
    let mut children: HashMap<i64, Vec<usize>> = HashMap::new();
    for (k, r) in rows.iter().enumerate() {
        if k == root {
            continue;
        }
        match by_ino.get(&r.parent) {
            Some(&p) if rows[p].mode & S_IFMT == S_IFDIR => {}
            Some(_) => {
                return Err(format!(
                    "inode {}: parent {} is not a directory",
                    r.ino, r.parent
                ));
            }
            None => {
                return Err(format!(
                    "inode {}: parent {} does not exist",
                    r.ino, r.parent
                ));
            }
        }
        if !valid_name(&r.name) {
            return Err(format!(
                "inode {}: invalid name {:?}",
                r.ino,
                String::from_utf8_lossy(&r.name)
            ));
        }
        children.entry(r.parent).or_default().push(k);
    }

    // extra
    let mut extra: HashMap<i64, Vec<u8>> = HashMap::new();
    {
        let e = sql("extra");
        let mut st = conn.prepare("SELECT ino, data FROM extra").map_err(&e)?;
        let mut q = st.query([]).map_err(&e)?;
        while let Some(r) = q.next().map_err(&e)? {
            let ino = int(r.get_ref(0).map_err(&e)?, "extra.ino")?;
            let d = bytes(
                r.get_ref(1).map_err(&e)?,
                &format!("extra of inode {ino}: data"),
            )?;
            extra.insert(ino, d);
        }
    }

    // block (rowid order is file order)
    let mut blocks_of: HashMap<i64, Vec<(Hash, Hash)>> = HashMap::new();
    {
        let e = sql("block");
        let mut st = conn
            .prepare("SELECT ino, id, key FROM block ORDER BY rowid")
            .map_err(&e)?;
        let mut q = st.query([]).map_err(&e)?;
        while let Some(r) = q.next().map_err(&e)? {
            let ino = int(r.get_ref(0).map_err(&e)?, "block.ino")?;
            let id = hash32(
                r.get_ref(1).map_err(&e)?,
                &format!("block of inode {ino}: id"),
            )?;
            let key = hash32(
                r.get_ref(2).map_err(&e)?,
                &format!("block of inode {ino}: key"),
            )?;
            match by_ino.get(&ino) {
                None => return Err(format!("block row for inode {ino}, which does not exist")),
                Some(&k) if rows[k].mode & S_IFMT != S_IFREG => {
                    return Err(format!(
                        "block row for inode {ino}, which is not a regular file"
                    ));
                }
                Some(_) => blocks_of.entry(ino).or_default().push((id, key)),
            }
        }
    }

    // route
    let mut routes = Vec::new();
    {
        let e = sql("route");
        let mut st = conn
            .prepare("SELECT start, \"end\", url FROM route")
            .map_err(&e)?;
        let mut q = st.query([]).map_err(&e)?;
        while let Some(r) = q.next().map_err(&e)? {
            let start = int(r.get_ref(0).map_err(&e)?, "route.start")?;
            let end = int(r.get_ref(1).map_err(&e)?, "route.end")?;
            let url = bytes(r.get_ref(2).map_err(&e)?, "route.url")?;
            let url = String::from_utf8(url).map_err(|_| "route url is not UTF-8".to_string())?;
            routes.push(route_spec(start, end, &url)?);
        }
    }

    // Breadth-first in name order, like `flist pack`.
    let mut order: Vec<usize> = vec![root];
    let mut inodes: Vec<Inode> = Vec::with_capacity(rows.len());
    let mut dirents: Vec<Dirent> = Vec::new();
    let mut blocks: Vec<BlockRef> = Vec::new();
    let mut names: Vec<u8> = Vec::new();
    let mut data: Vec<u8> = Vec::new();
    let mut parents: Vec<u32> = vec![0];
    let mut k = 0;
    while k < order.len() {
        let r = &rows[order[k]];
        let ft = r.mode & S_IFMT;
        let mut i = Inode {
            mode: r.mode,
            uid: r.uid,
            gid: r.gid,
            nlink: 1,
            size: r.size,
            rdev: r.rdev,
            mtime_sec: r.mtime,
            parent: parents[k],
            ..Inode::default()
        };
        match ft {
            S_IFDIR => {
                let mut ch = children.remove(&r.ino).unwrap_or_default();
                ch.sort_by(|a, b| rows[*a].name.cmp(&rows[*b].name));
                if let Some(w) = ch.windows(2).find(|w| rows[w[0]].name == rows[w[1]].name) {
                    return Err(format!(
                        "directory inode {}: two entries named {:?}",
                        r.ino,
                        String::from_utf8_lossy(&rows[w[0]].name)
                    ));
                }
                i.first = dirents.len() as u64;
                i.count = ch.len() as u64;
                let mut subdirs = 0u32;
                for c in ch {
                    let cr = &rows[c];
                    if cr.mode & S_IFMT == S_IFDIR {
                        subdirs = subdirs.saturating_add(1);
                    }
                    let name_off = u32::try_from(names.len()).map_err(|_| "names too large")?;
                    names.extend_from_slice(&cr.name);
                    dirents.push(Dirent {
                        name_off,
                        name_len: cr.name.len() as u32,
                        ino: order.len() as u32,
                    });
                    parents.push(k as u32);
                    order.push(c);
                }
                i.nlink = subdirs.saturating_add(2);
            }
            S_IFREG => {
                let bl = blocks_of.remove(&r.ino).unwrap_or_default();
                let want = r.size.div_ceil(BLOCK_SIZE as u64);
                if bl.len() as u64 != want {
                    return Err(format!(
                        "inode {} ({:?}): {} block rows for {} bytes (expected {want}): block rows missing, extra or out of order",
                        r.ino,
                        String::from_utf8_lossy(&r.name),
                        bl.len(),
                        r.size
                    ));
                }
                i.first = blocks.len() as u64;
                i.count = bl.len() as u64;
                for (n, (id, key)) in bl.into_iter().enumerate() {
                    let off = n as u64 * BLOCK_SIZE as u64;
                    blocks.push(BlockRef {
                        id,
                        key,
                        file_offset: off,
                        plain_len: (r.size - off).min(BLOCK_SIZE as u64) as u32,
                        stored_len: 0,
                    });
                }
            }
            S_IFLNK => {
                let t = extra
                    .get(&r.ino)
                    .filter(|t| !t.is_empty() && !t.contains(&0))
                    .ok_or_else(|| format!("symlink inode {}: no target in table extra", r.ino))?;
                i.first = data.len() as u64;
                i.count = t.len() as u64;
                i.size = t.len() as u64;
                data.extend_from_slice(t);
            }
            _ => i.size = 0,
        }
        inodes.push(i);
        k += 1;
    }
    if order.len() != rows.len() {
        let mut seen = vec![false; rows.len()];
        for o in &order {
            seen[*o] = true;
        }
        if let Some((_, r)) = rows.iter().enumerate().find(|(k, _)| !seen[*k]) {
            return Err(format!(
                "inode {} ({:?}) is not reachable from the root (parent cycle)",
                r.ino,
                String::from_utf8_lossy(&r.name)
            ));
        }
    }
    if data.len() > u32::MAX as usize {
        return Err("symlink targets too large".into());
    }
    let fl = Flist {
        identity: [0; 32],
        params: params(),
        inodes,
        dirents,
        blocks,
        xattrs: Vec::new(),
        names,
        data,
        trailer: Trailer {
            routes,
            ..Trailer::default()
        },
        body: Vec::new(),
    };
    fl.validate()?;
    Ok(fl)
}

/// What `flist convert` did.
#[derive(Debug, Clone, Default)]
pub struct ConvertReport {
    pub identity: Hash,
    pub entries: usize,
    /// Distinct rfs blocks fetched (each once) and re-stored as our blocks.
    pub blocks: usize,
    pub plain_bytes: u64,
}

/// Convert an rfs flist (read from `src` with `reader`) into our format: every distinct rfs
/// block is fetched once, verified (id and key), decoded, re-encoded as our block with the
/// same boundaries (fixed 512 KiB) and put into `stores` (a block the target already holds
/// is not written again). The flist is written atomically after every block is durable.
pub fn convert(
    src: &Flist,
    reader: &BlockReader,
    stores: &[String],
    output: &Path,
    level: i32,
    encrypt: bool,
) -> Result<ConvertReport> {
    if src.params.hash != HASH_RFS {
        return Err(Error::invalid(
            &reader.file,
            "already in flist format (nothing to convert)",
        ));
    }
    let params = Params {
        chunk: ChunkParams::fixed(BLOCK_SIZE),
        level,
        encrypted: encrypt,
        ..Params::default()
    };
    let target = store::open(stores).map_err(|e| Error::Store {
        path: output.to_path_buf(),
        source: e,
    })?;
    let mut seen = std::collections::HashSet::new();
    let uniq: Vec<BlockRef> = src
        .blocks
        .iter()
        .filter(|b| seen.insert(b.id))
        .copied()
        .collect();
    let mut map: HashMap<Hash, (Hash, Hash, u32)> = HashMap::with_capacity(uniq.len());
    let mut plain_bytes = 0u64;
    for group in uniq.chunks(32) {
        let enc: Vec<(Hash, crate::blocks::Encoded)> = group
            .par_iter()
            .map(|b| {
                let plain = reader.read_block(b)?;
                let e = crate::blocks::encode(&plain, &params)
                    .map_err(|m| Error::invalid(&reader.file, m))?;
                Ok((b.id, e))
            })
            .collect::<Result<_>>()?;
        let batch: Vec<(Hash, Vec<u8>)> =
            enc.iter().map(|(_, e)| (e.id, e.stored.clone())).collect();
        target.put_batch(&batch).map_err(|e| Error::Store {
            path: output.to_path_buf(),
            source: e,
        })?;
        for (rid, e) in enc {
            plain_bytes += e.plain_len as u64;
            map.insert(rid, (e.id, e.key, e.stored.len() as u32));
        }
    }
    let mut blocks = Vec::with_capacity(src.blocks.len());
    for b in &src.blocks {
        let (id, key, stored_len) = *map
            .get(&b.id)
            .ok_or_else(|| Error::invalid(&reader.file, format!("block {} lost", hex(&b.id))))?;
        blocks.push(BlockRef {
            id,
            key,
            stored_len,
            ..*b
        });
    }
    let body = format::encode_body(
        &params,
        &src.inodes,
        &src.dirents,
        &blocks,
        &src.xattrs,
        &src.names,
        &src.data,
    );
    let trailer = Trailer {
        routes: stores.iter().map(|s| store::redact(s)).collect(),
        ..Trailer::default()
    };
    let bytes = format::encode_file(&body, &trailer);
    // Never write a file we could not read back.
    let fl = format::decode(&bytes).map_err(|m| Error::invalid(&reader.file, m))?;
    crate::pack::write_atomic(output, &bytes)?;
    Ok(ConvertReport {
        identity: fl.identity,
        entries: fl.dirents.len() + 1,
        blocks: uniq.len(),
        plain_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_roundtrip_checks_id_and_key() {
        let plain = b"rfs block rfs block rfs block".repeat(50);
        let (id, key, stored) = encode_block(&plain).expect("encode");
        let b = BlockRef {
            id,
            key,
            file_offset: 0,
            plain_len: plain.len() as u32,
            stored_len: stored.len() as u32,
        };
        assert_eq!(decode_block(&stored, &b).expect("decode"), plain);
        let mut t = stored.clone();
        t[5] ^= 1;
        assert!(matches!(decode_block(&t, &b), Err(StoreError::Mismatch)));
        let wrong_key = BlockRef { key: [7; 32], ..b };
        assert!(decode_block(&stored, &wrong_key).is_err());
        let wrong_len = BlockRef { plain_len: 3, ..b };
        assert!(decode_block(&stored, &wrong_len).is_err());
    }

    #[test]
    fn routes() {
        assert_eq!(
            route_spec(0, 255, "dir://store").ok().as_deref(),
            Some("00-ff=dir://store")
        );
        assert!(route_spec(0, 256, "dir://x").is_err());
        assert!(route_spec(9, 3, "dir://x").is_err());
        assert!(route_spec(0, 255, "ftp://x").is_err());
        assert!(route_spec(0, 255, "dir://").is_err());
    }
}
