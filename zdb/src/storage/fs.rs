//! The real filesystem.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::{OpenMode, Storage, StorageFile};

/// Files and directories on the host filesystem.
#[derive(Debug, Default, Clone, Copy)]
pub struct FsStorage;

struct FsFile(File);

/// Whether `preadv2(RWF_NOWAIT)` works here (Linux 4.14+; cleared at the first refusal, and
/// reads then simply block as before).
static NOWAIT_READS: AtomicBool = AtomicBool::new(true);

impl StorageFile for FsFile {
    fn read_at(&self, buf: &mut [u8], off: u64) -> io::Result<usize> {
        loop {
            match self.0.read_at(buf, off) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }
    fn read_at_nowait(&self, buf: &mut [u8], off: u64) -> io::Result<Option<usize>> {
        use rustix::io::{Errno, ReadWriteFlags, preadv2};
        if !NOWAIT_READS.load(Ordering::Relaxed) {
            return self.read_at(buf, off).map(Some);
        }
        loop {
            let mut slices = [io::IoSliceMut::new(buf)];
            match preadv2(&self.0, &mut slices, off, ReadWriteFlags::NOWAIT) {
                Ok(n) => return Ok(Some(n)),
                Err(Errno::AGAIN) => return Ok(None),
                Err(Errno::INTR) => continue,
                Err(Errno::OPNOTSUPP | Errno::NOSYS | Errno::INVAL) => {
                    NOWAIT_READS.store(false, Ordering::Relaxed);
                    return self.read_at(buf, off).map(Some);
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    fn write_at(&self, buf: &[u8], off: u64) -> io::Result<()> {
        self.0.write_all_at(buf, off)
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
    fn sync(&self) -> io::Result<()> {
        self.0.sync_data()
    }
    fn preallocate(&self, len: u64) -> io::Result<()> {
        // Keeps the file size, so readers and tools see only written bytes (as 0-db does).
        rustix::fs::fallocate(&self.0, rustix::fs::FallocateFlags::KEEP_SIZE, 0, len)
            .map_err(io::Error::from)
    }
    #[expect(
        unsafe_code,
        reason = "sync_file_range has no safe wrapper in rustix or std"
    )]
    fn start_writeback(&self, off: u64, len: u64) {
        use std::os::fd::AsRawFd;
        let (Ok(off), Ok(len)) = (i64::try_from(off), i64::try_from(len)) else {
            return;
        };
        // SAFETY: plain syscall on a file descriptor we own; no memory is passed.
        unsafe {
            libc::sync_file_range(self.0.as_raw_fd(), off, len, libc::SYNC_FILE_RANGE_WRITE);
        }
    }
}

impl Storage for FsStorage {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn StorageFile>> {
        let mut opts = OpenOptions::new();
        opts.read(true);
        match mode {
            OpenMode::ReadOnly => {}
            OpenMode::ReadWrite => {
                opts.write(true);
            }
            OpenMode::CreateNew => {
                opts.write(true).create_new(true);
            }
            OpenMode::Truncate => {
                opts.write(true).create(true).truncate(true);
            }
        }
        // No access-time bookkeeping on every GET's read (2% of a pipelined GET's CPU under
        // relatime); only the owner (or CAP_FOWNER) may ask, so fall back when refused.
        let plain = opts.clone();
        opts.custom_flags(rustix::fs::OFlags::NOATIME.bits() as i32);
        let file = match opts.open(path) {
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => plain.open(path)?,
            other => other?,
        };
        Ok(Arc::new(FsFile(file)))
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir_all(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }
    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_dir_all(path)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        File::open(path)?.sync_all()
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<OsString>> {
        std::fs::read_dir(path)?
            .map(|e| e.map(|e| e.file_name()))
            .collect()
    }
    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }
    fn free_space(&self, path: &Path) -> io::Result<u64> {
        let st = rustix::fs::statvfs(path)?;
        Ok(st.f_bavail.saturating_mul(st.f_frsize))
    }
}
