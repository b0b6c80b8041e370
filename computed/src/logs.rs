//! Captured output: two rotating files per container, `out-<N>.log` where `N` is the absolute
//! offset of the file's first byte. A reader asks by absolute offset and learns when older
//! output was rotated away; a new shim continues after the last file, so offsets never go back.

use crate::error::{IoContext, Result};
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Largest chunk one read returns.
pub const MAX_CHUNK: u64 = 256 << 10;

fn files(dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut v: Vec<(u64, PathBuf)> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let n = name
                .strip_prefix("out-")?
                .strip_suffix(".log")?
                .parse()
                .ok()?;
            Some((n, e.path()))
        })
        .collect();
    v.sort();
    v
}

/// Appends output, rotating at half of the bound so that at most `max` bytes are kept.
pub struct LogWriter {
    dir: PathBuf,
    half: u64,
    base: u64,
    len: u64,
    file: fs::File,
}

impl LogWriter {
    /// Opens the newest file of `dir` (or the first one).
    pub fn open(dir: &Path, max: u64) -> Result<LogWriter> {
        let (base, path) = files(dir)
            .pop()
            .unwrap_or_else(|| (0, dir.join("out-0.log")));
        let file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .ctx(&path)?;
        let len = file.metadata().ctx(&path)?.len();
        Ok(LogWriter {
            dir: dir.to_path_buf(),
            half: (max / 2).max(4096),
            base,
            len,
            file,
        })
    }

    /// Appends `buf`; a write error is returned (the caller drops output rather than block
    /// the container).
    pub fn write(&mut self, mut buf: &[u8]) -> Result<()> {
        while !buf.is_empty() {
            if self.len >= self.half {
                self.rotate()?;
            }
            let n = buf.len().min((self.half - self.len) as usize);
            let (now, rest) = buf.split_at(n);
            self.file
                .write_all(now)
                .ctx(self.dir.join(format!("out-{}.log", self.base)))?;
            self.len += n as u64;
            buf = rest;
        }
        Ok(())
    }

    fn rotate(&mut self) -> Result<()> {
        let base = self.base + self.len;
        let path = self.dir.join(format!("out-{base}.log"));
        self.file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .ctx(&path)?;
        self.base = base;
        self.len = 0;
        // keep the newest older file only
        let older: Vec<PathBuf> = files(&self.dir)
            .into_iter()
            .filter(|(n, _)| *n < base)
            .map(|(_, p)| p)
            .collect();
        for p in older.iter().rev().skip(1) {
            let _ = fs::remove_file(p);
        }
        Ok(())
    }
}

/// Reads up to `max` bytes from absolute offset `offset`: returns where the data really starts
/// (later when that output is gone), the bytes, and the next offset.
pub fn read(dir: &Path, offset: u64, max: u64) -> Result<(u64, Vec<u8>, u64)> {
    let fs_ = files(dir);
    let Some((first, _)) = fs_.first() else {
        return Ok((0, Vec::new(), 0));
    };
    let mut at = offset.max(*first);
    let mut out = Vec::new();
    let max = max.clamp(1, MAX_CHUNK);
    let mut start = at;
    for (i, (base, path)) in fs_.iter().enumerate() {
        let end = fs_.get(i + 1).map(|(n, _)| *n);
        if end.is_some_and(|e| at >= e) {
            continue;
        }
        let mut f = match fs::File::open(path) {
            Ok(f) => f,
            // rotated away between listing and opening: the next file continues
            Err(_) => continue,
        };
        if at < *base {
            // a gap (an older file shorter than its successor's offset says): the bytes in it
            // are gone; skip to this file, or stop here if something was read already
            if !out.is_empty() {
                break;
            }
            at = *base;
            start = at;
        }
        f.seek(SeekFrom::Start(at - base)).ctx(path)?;
        let want = max - out.len() as u64;
        let n = f.take(want).read_to_end(&mut out).ctx(path)?;
        at += n as u64;
        if out.len() as u64 >= max {
            break;
        }
    }
    Ok((start, out, at))
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn rotation_keeps_the_bound_and_offsets_keep_counting() {
        let d = std::env::temp_dir().join(format!("computed-logs-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        let mut w = LogWriter::open(&d, 8192).unwrap();
        let line = [b'x'; 100];
        for _ in 0..500 {
            w.write(&line).unwrap();
        }
        let kept: u64 = files(&d)
            .iter()
            .map(|(_, p)| fs::metadata(p).unwrap().len())
            .sum();
        assert!(kept <= 8192, "kept {kept} bytes");
        assert_eq!(files(&d).len(), 2);
        // asking for offset 0 jumps to the oldest byte still kept
        let (start, data, next) = read(&d, 0, MAX_CHUNK).unwrap();
        assert!(start > 0);
        assert_eq!(next, 50_000);
        assert_eq!(start + data.len() as u64, next);
        // a new writer continues the same offsets
        drop(w);
        let mut w = LogWriter::open(&d, 8192).unwrap();
        w.write(b"tail").unwrap();
        let (s, data, next) = read(&d, 50_000, 10).unwrap();
        assert_eq!((s, data.as_slice(), next), (50_000, &b"tail"[..], 50_004));
        fs::remove_dir_all(&d).unwrap();
    }

    /// Log files come from disk: a gap between one file's end and the next file's offset
    /// (the old subtraction `at - base` underflowed there) is skipped, not a panic.
    #[test]
    fn a_gap_between_files_is_skipped() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("out-0.log"), b"0123456789").unwrap();
        fs::write(d.path().join("out-100.log"), b"abcde").unwrap();
        let (s, data, next) = read(d.path(), 0, MAX_CHUNK).unwrap();
        assert_eq!((s, data.as_slice(), next), (0, &b"0123456789"[..], 10));
        let (s, data, next) = read(d.path(), next, MAX_CHUNK).unwrap();
        assert_eq!((s, data.as_slice(), next), (100, &b"abcde"[..], 105));
        let (s, data, next) = read(d.path(), 50, 2).unwrap();
        assert_eq!((s, data.as_slice(), next), (100, &b"ab"[..], 102));
    }
}
