//! The storage trait: every byte zdb reads or writes on disk goes through it.
//!
//! Two implementations: [`fs::FsStorage`] (the real filesystem, `pread`/`pwrite`/`fdatasync`)
//! and [`sim::SimStorage`] (in memory, remembering what was fsynced so a test can cut the power
//! and see exactly what a real disk could hold afterwards).
//!
//! Contract, relied on by the engine and checked by the simulator:
//! - `read_at` returns fewer bytes only at end of file; reads past the end return 0 bytes.
//! - `write_at` writes the whole buffer or fails; a gap before `off` reads back as zeros.
//! - Nothing is durable until `sync` (file data and size) and, for a created, renamed or
//!   removed name, `sync_dir` of its parent.

pub mod append;
pub mod fs;
pub mod sim;

use std::ffi::OsString;
use std::io;
use std::path::Path;
use std::sync::Arc;

/// An open file.
#[expect(
    clippy::len_without_is_empty,
    reason = "a file's emptiness is never asked; its size is"
)]
pub trait StorageFile: Send + Sync {
    /// Read at `off` into `buf`; returns the bytes read (short only at end of file).
    fn read_at(&self, buf: &mut [u8], off: u64) -> io::Result<usize>;
    /// Write all of `buf` at `off`.
    fn write_at(&self, buf: &[u8], off: u64) -> io::Result<()>;
    /// Current size.
    fn len(&self) -> io::Result<u64>;
    /// Truncate or extend (with zeros) to `len`.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Make data and size durable (fdatasync).
    fn sync(&self) -> io::Result<()>;
    /// Reserve space without changing the size (best effort).
    fn preallocate(&self, _len: u64) -> io::Result<()> {
        Ok(())
    }
    /// Start writing `len` bytes at `off` to the disk without waiting (a hint: a failure shows
    /// up at the next `sync`, which is what must succeed).
    fn start_writeback(&self, _off: u64, _len: u64) {}

    /// Read at `off` only from memory (the page cache): `Ok(None)` when the read would wait
    /// for the disk. A server tries this on its async workers and hands the read to a thread
    /// that may block only when it would. Default: a plain read (storages living in memory).
    fn read_at_nowait(&self, buf: &mut [u8], off: u64) -> io::Result<Option<usize>> {
        self.read_at(buf, off).map(Some)
    }

    /// [`StorageFile::read_exact_at`] from memory only: `Ok(None)` when any part would wait
    /// for the disk.
    fn read_exact_at_nowait(&self, buf: &mut [u8], off: u64) -> io::Result<Option<()>> {
        let mut done = 0;
        while done < buf.len() {
            let rest = buf.get_mut(done..).unwrap_or_default();
            match self.read_at_nowait(rest, off + done as u64)? {
                None => return Ok(None),
                Some(0) => {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "short read"));
                }
                Some(n) => done += n,
            }
        }
        Ok(Some(()))
    }

    /// Read exactly `buf.len()` bytes at `off`, failing with `UnexpectedEof` if the file is shorter.
    fn read_exact_at(&self, buf: &mut [u8], off: u64) -> io::Result<()> {
        let mut done = 0;
        while done < buf.len() {
            let rest = buf.get_mut(done..).unwrap_or_default();
            let n = self.read_at(rest, off + done as u64)?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "short read"));
            }
            done += n;
        }
        Ok(())
    }
}

/// How to open a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Existing file, read and write.
    ReadWrite,
    /// Existing file, read only.
    ReadOnly,
    /// Create (truncating nothing: it must not exist), read and write.
    CreateNew,
    /// Create or truncate to zero, read and write.
    Truncate,
}

/// A filesystem: the directory operations zdb needs.
pub trait Storage: Send + Sync + 'static {
    /// Open a file.
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn StorageFile>>;
    /// Create a directory and its parents.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Rename a file, replacing `to`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Remove a file.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Remove a directory and everything under it.
    fn remove_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Make the directory's entries durable.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
    /// Names in a directory.
    fn list_dir(&self, path: &Path) -> io::Result<Vec<OsString>>;
    /// Whether a file or directory exists.
    fn exists(&self, path: &Path) -> bool;
    /// Free bytes on the filesystem holding `path`.
    fn free_space(&self, path: &Path) -> io::Result<u64>;
}

/// Replace `path` durably with what `fill` writes into a temp file beside it: the temp file
/// is written, fsynced and renamed over `path`, then the directory is fsynced. After a crash
/// `path` holds the old or the new bytes, never a mix; on failure the temp file is removed.
/// Through the [`Storage`] trait (not `nodeutil::fs`) so the power-cut model sees every step.
pub fn replace_with(
    storage: &dyn Storage,
    path: &Path,
    fill: impl FnOnce(Arc<dyn StorageFile>) -> io::Result<()>,
) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no parent"))?;
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    let written = storage
        .open(&tmp, OpenMode::Truncate)
        .and_then(|file| fill(file.clone()).and_then(|()| file.sync()));
    if let Err(e) = written {
        let _ = storage.remove_file(&tmp);
        return Err(e);
    }
    storage.rename(&tmp, path)?;
    storage.sync_dir(dir)
}

/// Replace `path` durably with `contents` ([`replace_with`]).
pub fn write_atomic(storage: &dyn Storage, path: &Path, contents: &[u8]) -> io::Result<()> {
    replace_with(storage, path, |file| file.write_at(contents, 0))
}
