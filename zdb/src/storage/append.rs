//! A write-back buffer in front of an append-only file.
//!
//! Appends at the end collect in memory and reach the file in one `pwrite` when
//! [`Appender::flush`] is called (the server does so before it sends the replies that
//! acknowledge them), so a pipeline of 16 SETs costs two writes, not 32. Reads and in-place
//! rewrites see and patch the buffered bytes; `sync`, `set_len` and a full buffer flush first.

use std::io;
use std::sync::Arc;

use parking_lot::Mutex;

use super::StorageFile;

/// Flush once this much is buffered.
const LIMIT: usize = 1 << 20;

struct Pending {
    /// File offset of the first buffered byte (= bytes already in the file).
    base: u64,
    buf: Vec<u8>,
}

/// Buffered appender over a file.
pub struct Appender {
    file: Arc<dyn StorageFile>,
    pending: Mutex<Pending>,
}

impl Appender {
    /// Wrap `file`, whose current size is `len`.
    pub fn new(file: Arc<dyn StorageFile>, len: u64) -> Self {
        Self {
            file,
            pending: Mutex::new(Pending {
                base: len,
                buf: Vec::new(),
            }),
        }
    }

    /// Write buffered bytes to the file. On failure they are dropped and the file is cut back
    /// to where they began, so it never holds half an append.
    pub fn flush(&self) -> io::Result<()> {
        let mut p = self.pending.lock();
        Self::flush_locked(&self.file, &mut p)
    }

    fn flush_locked(file: &Arc<dyn StorageFile>, p: &mut Pending) -> io::Result<()> {
        if p.buf.is_empty() {
            return Ok(());
        }
        let res = file.write_at(&p.buf, p.base);
        if let Err(e) = res {
            let _ = file.set_len(p.base);
            p.buf.clear();
            return Err(e);
        }
        p.base += p.buf.len() as u64;
        p.buf.clear();
        if p.buf.capacity() > 4 * LIMIT {
            p.buf = Vec::new();
        }
        Ok(())
    }

    /// Append an entry made of two parts at the end (`off`), straight to the file after the
    /// buffer: a large value is written from where it lies instead of being copied. On failure
    /// the file is cut back to `off`, so it never holds half an entry.
    pub fn append_parts(&self, head: &[u8], body: &[u8], off: u64) -> io::Result<()> {
        let mut p = self.pending.lock();
        Self::flush_locked(&self.file, &mut p)?;
        if p.base != off {
            return Err(io::Error::other("append not at the end of the file"));
        }
        let written = self
            .file
            .write_at(head, off)
            .and_then(|()| self.file.write_at(body, off + head.len() as u64));
        if let Err(e) = written {
            let _ = self.file.set_len(off);
            return Err(e);
        }
        p.base = off + (head.len() + body.len()) as u64;
        Ok(())
    }

    /// Whether `len` bytes at `off` lie wholly inside the buffered (unwritten) bytes.
    pub fn holds(&self, off: u64, len: usize) -> bool {
        let p = self.pending.lock();
        off >= p.base && off + len as u64 <= p.base + p.buf.len() as u64
    }

    /// Whether anything waits to be written.
    pub fn has_pending(&self) -> bool {
        !self.pending.lock().buf.is_empty()
    }
}

impl StorageFile for Appender {
    fn read_at(&self, out: &mut [u8], off: u64) -> io::Result<usize> {
        let p = self.pending.lock();
        let end = off + out.len() as u64;
        if p.buf.is_empty() || end <= p.base {
            drop(p);
            return self.file.read_at(out, off);
        }
        // Part before the buffer comes from the file, the rest from the buffer.
        let mut n = 0;
        if off < p.base {
            let head = (p.base - off) as usize;
            let got = self
                .file
                .read_at(out.get_mut(..head).unwrap_or_default(), off)?;
            if got < head {
                return Ok(got);
            }
            n = head;
        }
        let from = (off + n as u64 - p.base) as usize;
        let avail = p.buf.len().saturating_sub(from);
        let take = avail.min(out.len() - n);
        if let (Some(dst), Some(src)) = (out.get_mut(n..n + take), p.buf.get(from..from + take)) {
            dst.copy_from_slice(src);
        }
        Ok(n + take)
    }

    fn write_at(&self, data: &[u8], off: u64) -> io::Result<()> {
        let mut p = self.pending.lock();
        let buffered_end = p.base + p.buf.len() as u64;
        if off == buffered_end {
            p.buf.extend_from_slice(data);
            if p.buf.len() >= LIMIT {
                return Self::flush_locked(&self.file, &mut p);
            }
            return Ok(());
        }
        let end = off + data.len() as u64;
        if off >= p.base && end <= buffered_end {
            let at = (off - p.base) as usize;
            if let Some(dst) = p.buf.get_mut(at..at + data.len()) {
                dst.copy_from_slice(data);
            }
            return Ok(());
        }
        Self::flush_locked(&self.file, &mut p)?;
        self.file.write_at(data, off)?;
        p.base = p.base.max(end);
        Ok(())
    }

    fn len(&self) -> io::Result<u64> {
        let p = self.pending.lock();
        if p.buf.is_empty() {
            drop(p);
            return self.file.len();
        }
        Ok(p.base + p.buf.len() as u64)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut p = self.pending.lock();
        let _ = Self::flush_locked(&self.file, &mut p);
        self.file.set_len(len)?;
        p.base = len;
        Ok(())
    }

    fn sync(&self) -> io::Result<()> {
        self.flush()?;
        self.file.sync()
    }

    fn preallocate(&self, len: u64) -> io::Result<()> {
        self.file.preallocate(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::sim::SimStorage;
    use crate::storage::{OpenMode, Storage};
    use std::path::Path;

    #[test]
    fn reads_and_patches_see_buffered_bytes() {
        let s = SimStorage::new();
        s.create_dir_all(Path::new("/d")).expect("dir");
        let f = s
            .open(Path::new("/d/f"), OpenMode::CreateNew)
            .expect("create");
        f.write_at(b"head", 0).expect("write");
        let a = Appender::new(f, 4);
        a.write_at(b"-tail", 4).expect("append");
        assert!(a.has_pending());
        let mut out = [0u8; 9];
        assert_eq!(a.read_at(&mut out, 0).expect("read"), 9);
        assert_eq!(&out, b"head-tail");
        a.write_at(b"T", 5).expect("patch");
        a.write_at(b"H", 0).expect("patch flushed part");
        a.flush().expect("flush");
        assert_eq!(
            s.read_file(Path::new("/d/f")).as_deref(),
            Some(&b"Head-Tail"[..])
        );
    }

    #[test]
    fn failed_flush_cuts_back() {
        let s = SimStorage::new();
        s.create_dir_all(Path::new("/d")).expect("dir");
        let f = s
            .open(Path::new("/d/f"), OpenMode::CreateNew)
            .expect("create");
        let a = Appender::new(f, 0);
        a.write_at(b"ok", 0).expect("append");
        a.flush().expect("flush");
        s.set_capacity(Some(3));
        a.write_at(b"too much", 2).expect("buffered");
        assert!(a.flush().is_err());
        assert_eq!(s.read_file(Path::new("/d/f")).as_deref(), Some(&b"ok"[..]));
    }
}
