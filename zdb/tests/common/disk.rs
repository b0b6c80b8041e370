//! On-disk helpers: the 0-db layout parsed independently of zdb's own code, file surgery
//! (truncate, append, copy), deterministic bytes.

use std::io::Write;
use std::path::{Path, PathBuf};

pub const MIB8: usize = 8 * 1024 * 1024;
/// CRC-32C (Castagnoli) with init 0 and no final xor, as stored on disk.
pub fn crc32c_zdb(data: &[u8]) -> u32 {
    let mut crc: u32 = 0;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    crc
}
pub fn sha1_hex(s: &str) -> String {
    use sha1::{Digest, Sha1};
    hex::encode(Sha1::digest(s.as_bytes()))
}
/// Deterministic pseudo-random bytes (xorshift), seeded.
pub fn pseudo_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}
pub fn seq_id(n: u64) -> Vec<u8> {
    n.to_le_bytes().to_vec()
}
/// Copy a directory tree (files and dirs), making copies writable.
pub fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        let d = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&p, &d);
        } else {
            std::fs::copy(&p, &d).unwrap();
            let mut perm = std::fs::metadata(&d).unwrap().permissions();
            #[expect(
                clippy::permissions_set_readonly_false,
                reason = "copies of the read-only fixture must be writable"
            )]
            perm.set_readonly(false);
            std::fs::set_permissions(&d, perm).unwrap();
        }
    }
}
/// Highest N such that `dir/<prefix>N` exists (files numbered from 0).
pub fn last_file(dir: &Path, prefix: &str) -> Option<u32> {
    let mut n = None;
    let mut i = 0;
    while dir.join(format!("{prefix}{i}")).exists() {
        n = Some(i);
        i += 1;
    }
    n
}
/// One data-file entry, parsed from disk (reference §8.3).
#[derive(Debug, Clone)]
pub struct DataEntry {
    pub offset: u64,
    pub end: u64,
    pub key: Vec<u8>,
    pub flags: u8,
    pub value_len: u32,
}
/// Walk a data file's entries (stops at the first torn one).
pub fn parse_data_file(path: &Path) -> Vec<DataEntry> {
    let raw = std::fs::read(path).unwrap();
    let mut out = Vec::new();
    let mut off = 28usize;
    while off + 18 <= raw.len() {
        let idlen = raw[off] as usize;
        let dlen = u32::from_le_bytes(raw[off + 1..off + 5].try_into().unwrap());
        let flags = raw[off + 13];
        let end = off + 18 + idlen + dlen as usize;
        if end > raw.len() {
            break;
        }
        out.push(DataEntry {
            offset: off as u64,
            end: end as u64,
            key: raw[off + 18..off + 18 + idlen].to_vec(),
            flags,
            value_len: dlen,
        });
        off = end;
    }
    out
}
/// One index-file entry (reference §8.2).
#[derive(Debug, Clone)]
pub struct IndexEntry {
    pub offset: u64,
    pub end: u64,
    pub key: Vec<u8>,
    pub data_offset: u32,
    pub length: u32,
    pub flags: u8,
    pub dataid: u32,
}
pub fn parse_index_file(path: &Path) -> Vec<IndexEntry> {
    let raw = std::fs::read(path).unwrap();
    let mut out = Vec::new();
    let mut off = 29usize;
    let u32at = |o: usize| u32::from_le_bytes(raw[o..o + 4].try_into().unwrap());
    while off + 34 <= raw.len() {
        let idlen = raw[off] as usize;
        let end = off + 34 + idlen;
        if end > raw.len() {
            break;
        }
        out.push(IndexEntry {
            offset: off as u64,
            end: end as u64,
            key: raw[off + 34..end].to_vec(),
            data_offset: u32at(off + 1),
            length: u32at(off + 5),
            flags: raw[off + 13],
            dataid: u32at(off + 14),
        });
        off = end;
    }
    out
}
pub fn truncate_file(path: &Path, len: u64) {
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.set_len(len).unwrap();
}
pub fn append_file(path: &Path, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(bytes).unwrap();
}
/// Paths of `dir` entries (non-recursive) whose name starts with `prefix`.
pub fn files_with_prefix(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
            .map(|e| e.path())
            .collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

/// True if `needle` occurs anywhere in `hay`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// The admin password tests start servers with (`--admin`).
pub const ADMIN: &str = "adm1n";
