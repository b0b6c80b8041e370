//! A write-back buffer in front of an append-only file.
//!
//! Appends at the end collect in memory and reach the file in one `pwrite` when
//! [`Appender::flush`] is called (the server does so before it sends the replies that
//! acknowledge them), so a pipeline of 16 SETs costs two writes, not 32. Reads and in-place
//! rewrites see and patch the buffered bytes; `sync`, `set_len` and a full buffer flush first.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;

use super::StorageFile;

/// Flush once this much is buffered.
pub const LIMIT: usize = 1 << 20;
/// Start the disk writing the appended bytes every time this much more is in the file.
const WRITE_BEHIND: u64 = 8 << 20;

struct Pending {
    /// File offset of the first buffered byte (= bytes already in the file).
    base: u64,
    buf: Vec<u8>,
    /// Writeback was started for the file up to here.
    behind: u64,
}

impl Pending {
    /// After appends moved `base`: hand every whole page written since the last call to the
    /// disk, so the fsync that closes the file (rotation) finds them written instead of
    /// flushing the whole file while every writer waits.
    fn write_behind(&mut self, file: &Arc<dyn StorageFile>) {
        if self.base >= self.behind + WRITE_BEHIND {
            // Whole pages only: the tail page is appended to again.
            let end = self.base & !4095;
            if writeback::start(file.clone(), self.behind, end - self.behind) {
                self.behind = end;
            }
        }
    }
}

/// Starting writeback can block on a busy disk (request queue full), so it runs on a thread of
/// its own, never on the thread serving clients. A hint the queue has no room for is retried
/// with the next one, which then covers both ranges.
mod writeback {
    use std::sync::mpsc::{SyncSender, sync_channel};
    use std::sync::{Arc, OnceLock};

    use super::StorageFile;

    type Hint = (Arc<dyn StorageFile>, u64, u64);

    /// Hints waiting at most (each stands for 8 MiB or more of written data).
    const QUEUE: usize = 64;

    static WORKER: OnceLock<Option<SyncSender<Hint>>> = OnceLock::new();

    /// Queue a hint; false if it was not taken (queue full, or no thread could be started).
    pub(super) fn start(file: Arc<dyn StorageFile>, off: u64, len: u64) -> bool {
        let worker = WORKER.get_or_init(|| {
            let (tx, rx) = sync_channel::<Hint>(QUEUE);
            std::thread::Builder::new()
                .name("zdb-writeback".into())
                .spawn(move || {
                    for (file, off, len) in rx {
                        file.start_writeback(off, len);
                    }
                })
                .ok()
                .map(|_| tx)
        });
        worker
            .as_ref()
            .is_some_and(|tx| tx.try_send((file, off, len)).is_ok())
    }
}

/// Buffered appender over a file.
pub struct Appender {
    file: Arc<dyn StorageFile>,
    pending: Mutex<Pending>,
    /// `pending.buf.len()`, readable without the lock (set under it).
    buffered: AtomicUsize,
}

impl Appender {
    /// Wrap `file`, whose current size is `len`.
    pub fn new(file: Arc<dyn StorageFile>, len: u64) -> Self {
        Self {
            file,
            pending: Mutex::new(Pending {
                base: len,
                buf: Vec::new(),
                behind: len & !4095,
            }),
            buffered: AtomicUsize::new(0),
        }
    }

    /// Write buffered bytes to the file. On failure they are dropped and the file is cut back
    /// to where they began, so it never holds half an append.
    pub fn flush(&self) -> io::Result<()> {
        let mut p = self.pending.lock();
        let flushed = Self::flush_locked(&self.file, &mut p);
        self.buffered.store(p.buf.len(), Ordering::Relaxed);
        flushed
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
        p.write_behind(file);
        Ok(())
    }

    /// Append an entry made of two parts at the end (`off`), straight to the file after the
    /// buffer: a large value is written from where it lies instead of being copied. On failure
    /// the file is cut back to `off`, so it never holds half an entry.
    pub fn append_parts(&self, head: &[u8], body: &[u8], off: u64) -> io::Result<()> {
        let mut p = self.pending.lock();
        let flushed = Self::flush_locked(&self.file, &mut p);
        self.buffered.store(p.buf.len(), Ordering::Relaxed);
        flushed?;
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
        p.write_behind(&self.file);
        Ok(())
    }

    /// Whether `len` bytes at `off` lie wholly inside the buffered (unwritten) bytes.
    pub fn holds(&self, off: u64, len: usize) -> bool {
        let p = self.pending.lock();
        off >= p.base && off + len as u64 <= p.base + p.buf.len() as u64
    }

    /// Bytes waiting to be written (a relaxed look, without the lock).
    pub fn buffered(&self) -> usize {
        self.buffered.load(Ordering::Relaxed)
    }

    /// Whether anything waits to be written.
    pub fn has_pending(&self) -> bool {
        !self.pending.lock().buf.is_empty()
    }
}

impl Appender {
    /// A read that sees the buffered bytes; the file part through `file_read` (blocking or
    /// not), whose `None` (would block) it passes on.
    fn read_through(
        &self,
        out: &mut [u8],
        off: u64,
        file_read: impl FnOnce(&mut [u8], u64) -> io::Result<Option<usize>>,
    ) -> io::Result<Option<usize>> {
        let p = self.pending.lock();
        let end = off + out.len() as u64;
        if p.buf.is_empty() || end <= p.base {
            drop(p);
            return file_read(out, off);
        }
        // Part before the buffer comes from the file, the rest from the buffer.
        let mut n = 0;
        if off < p.base {
            let head = (p.base - off) as usize;
            let Some(got) = file_read(out.get_mut(..head).unwrap_or_default(), off)? else {
                return Ok(None);
            };
            if got < head {
                return Ok(Some(got));
            }
            n = head;
        }
        let from = (off + n as u64 - p.base) as usize;
        let avail = p.buf.len().saturating_sub(from);
        let take = avail.min(out.len() - n);
        if let (Some(dst), Some(src)) = (out.get_mut(n..n + take), p.buf.get(from..from + take)) {
            dst.copy_from_slice(src);
        }
        Ok(Some(n + take))
    }
}

impl StorageFile for Appender {
    fn read_at(&self, out: &mut [u8], off: u64) -> io::Result<usize> {
        let read = self.read_through(out, off, |buf, at| self.file.read_at(buf, at).map(Some))?;
        Ok(read.unwrap_or(0))
    }

    fn read_at_nowait(&self, out: &mut [u8], off: u64) -> io::Result<Option<usize>> {
        self.read_through(out, off, |buf, at| self.file.read_at_nowait(buf, at))
    }

    fn write_at(&self, data: &[u8], off: u64) -> io::Result<()> {
        let mut p = self.pending.lock();
        let buffered_end = p.base + p.buf.len() as u64;
        if off == buffered_end {
            p.buf.extend_from_slice(data);
            let flushed = if p.buf.len() >= LIMIT {
                Self::flush_locked(&self.file, &mut p)
            } else {
                Ok(())
            };
            self.buffered.store(p.buf.len(), Ordering::Relaxed);
            return flushed;
        }
        let end = off + data.len() as u64;
        if off >= p.base && end <= buffered_end {
            let at = (off - p.base) as usize;
            if let Some(dst) = p.buf.get_mut(at..at + data.len()) {
                dst.copy_from_slice(data);
            }
            return Ok(());
        }
        let flushed = Self::flush_locked(&self.file, &mut p);
        self.buffered.store(p.buf.len(), Ordering::Relaxed);
        flushed?;
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
        self.buffered.store(p.buf.len(), Ordering::Relaxed);
        self.file.set_len(len)?;
        p.base = len;
        p.behind = p.behind.min(len & !4095);
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

    /// An empty file `/d/f` in a fresh simulated filesystem.
    fn new_file() -> (SimStorage, Arc<dyn StorageFile>) {
        let s = SimStorage::new();
        s.create_dir_all(Path::new("/d")).expect("dir");
        let f = s
            .open(Path::new("/d/f"), OpenMode::CreateNew)
            .expect("create");
        (s, f)
    }

    #[test]
    fn reads_and_patches_see_buffered_bytes() {
        let (s, f) = new_file();
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

    /// Records the writeback hints it gets.
    struct Hinted {
        inner: Arc<dyn StorageFile>,
        hints: Mutex<Vec<(u64, u64)>>,
    }

    impl StorageFile for Hinted {
        fn read_at(&self, buf: &mut [u8], off: u64) -> io::Result<usize> {
            self.inner.read_at(buf, off)
        }
        fn write_at(&self, buf: &[u8], off: u64) -> io::Result<()> {
            self.inner.write_at(buf, off)
        }
        fn len(&self) -> io::Result<u64> {
            self.inner.len()
        }
        fn set_len(&self, len: u64) -> io::Result<()> {
            self.inner.set_len(len)
        }
        fn sync(&self) -> io::Result<()> {
            self.inner.sync()
        }
        fn start_writeback(&self, off: u64, len: u64) {
            self.hints.lock().push((off, len));
        }
    }

    #[test]
    fn written_pages_are_handed_to_the_disk_behind_the_tail() {
        let (_s, inner) = new_file();
        let f = Arc::new(Hinted {
            inner,
            hints: Mutex::new(Vec::new()),
        });
        let a = Appender::new(f.clone(), 0);
        // Small appends flushed now and then, and large ones written directly.
        let mut end = 0u64;
        for i in 0..3000u64 {
            let chunk = vec![i as u8; 7001];
            a.write_at(&chunk, end).expect("append");
            end += chunk.len() as u64;
            if i % 10 == 0 {
                a.flush().expect("flush");
            }
        }
        a.flush().expect("flush");
        let big = vec![1u8; 3 << 20];
        for _ in 0..4 {
            a.append_parts(b"head", &big, end).expect("append");
            end += 4 + big.len() as u64;
        }
        // Hints reach the file from the writeback thread.
        let started = std::time::Instant::now();
        while f.hints.lock().len() < 3 && started.elapsed() < std::time::Duration::from_secs(10) {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let hints = f.hints.lock().clone();
        assert!(hints.len() >= 3, "{hints:?}");
        // Contiguous from the start, whole pages, never the page still being appended to.
        let mut next = 0;
        for (off, len) in hints {
            assert_eq!(off, next);
            assert_eq!((off + len) % 4096, 0);
            next = off + len;
        }
        assert!(next <= end & !4095);
        assert!(end - next < WRITE_BEHIND + 4096);
    }

    #[test]
    fn failed_flush_cuts_back() {
        let (s, f) = new_file();
        let a = Appender::new(f, 0);
        a.write_at(b"ok", 0).expect("append");
        a.flush().expect("flush");
        s.set_capacity(Some(3));
        a.write_at(b"too much", 2).expect("buffered");
        assert!(a.flush().is_err());
        assert_eq!(s.read_file(Path::new("/d/f")).as_deref(), Some(&b"ok"[..]));
    }
}
