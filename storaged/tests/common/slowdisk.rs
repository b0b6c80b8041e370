//! A disk that seeks like a spinning one: a single image file served over FUSE with every read
//! delayed, to be attached as a real loop device. This host has no HDD and no device-mapper
//! `delay` target, and a file on a virtual disk measures like an SSD, so this is how the seek
//! classification meets a slow block device.
//!
//! The file is opened with `FOPEN_DIRECT_IO`, so the loop driver's reads all reach us (no page
//! cache in between); writes go straight to a backing file undelayed.
//!
//! [`Hang::start`] (from [`SlowDisk::hang_control`]) makes every read, write and fsync block
//! until [`Hang::release`] or the drop of the [`Hang`]: a disk that stops answering, as a dying
//! one does.

use fuser::{
    Config, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo,
    LockOwner, MountOption, OpenFlags, ReplyAttr, ReplyData, ReplyEmpty, ReplyEntry, ReplyOpen,
    ReplyWrite, Request, SessionACL, WriteFlags,
};
use std::ffi::OsStr;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

const ROOT: INodeNo = INodeNo(1);
const IMAGE: INodeNo = INodeNo(2);
const TTL: Duration = Duration::from_secs(60);

struct SlowFs {
    backing: File,
    name: String,
    size: u64,
    delay: Duration,
    hung: Arc<AtomicBool>,
}

impl SlowFs {
    fn wait_while_hung(&self) {
        while self.hung.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn attr(&self, ino: INodeNo) -> FileAttr {
        let (kind, perm, size) = if ino == ROOT {
            (FileType::Directory, 0o755, 4096)
        } else {
            (FileType::RegularFile, 0o600, self.size)
        };
        let now = SystemTime::now();
        FileAttr {
            ino,
            size,
            blocks: size.div_ceil(512),
            atime: now,
            mtime: now,
            ctime: now,
            crtime: now,
            kind,
            perm,
            nlink: 1,
            uid: 0,
            gid: 0,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        }
    }
}

impl Filesystem for SlowFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        if parent == ROOT && name == OsStr::new(&self.name) {
            reply.entry(&TTL, &self.attr(IMAGE), Generation(0));
        } else {
            reply.error(Errno::ENOENT);
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        if ino == ROOT || ino == IMAGE {
            reply.attr(&TTL, &self.attr(ino));
        } else {
            reply.error(Errno::ENOENT);
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        if ino == IMAGE {
            reply.opened(FileHandle(0), FopenFlags::FOPEN_DIRECT_IO);
        } else {
            reply.error(Errno::EISDIR);
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        self.wait_while_hung();
        std::thread::sleep(self.delay);
        let len = (size as u64).min(self.size.saturating_sub(offset)) as usize;
        let mut buf = vec![0u8; len];
        match self.backing.read_exact_at(&mut buf, offset) {
            Ok(()) => reply.data(&buf),
            Err(e) => reply.error(e.into()),
        }
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        self.wait_while_hung();
        if offset.saturating_add(data.len() as u64) > self.size {
            return reply.error(Errno::from_i32(libc::ENOSPC));
        }
        match self.backing.write_all_at(data, offset) {
            Ok(()) => reply.written(data.len() as u32),
            Err(e) => reply.error(e.into()),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.wait_while_hung();
        match self.backing.sync_data() {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e.into()),
        }
    }
}

/// A mounted slow image; unmounted when dropped (after the loop device using it is gone).
pub struct SlowDisk {
    /// The image to name in the node config.
    pub image: PathBuf,
    hung: Arc<AtomicBool>,
    _session: fuser::BackgroundSession,
}

/// Makes a disk hang; dropping it lets the disk answer again (so that the test's teardown
/// can unmount it: keep it in a variable declared after the test's `Env`).
pub struct Hang(Arc<AtomicBool>);

impl Hang {
    /// Every read, write and fsync blocks from now on.
    pub fn start(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// The disk answers again.
    pub fn release(&self) {
        self.0.store(false, Ordering::Release);
    }
}

impl Drop for Hang {
    fn drop(&mut self) {
        self.release();
    }
}

impl SlowDisk {
    /// Mounts `dir/mnt` serving `dir/mnt/NAME.img` (`size` bytes, backed by `dir/NAME.backing`)
    /// whose reads each take `delay` longer.
    pub fn new(dir: &Path, name: &str, size: u64, delay: Duration) -> SlowDisk {
        let mnt = dir.join("mnt");
        std::fs::create_dir_all(&mnt).unwrap();
        let backing = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(format!("{name}.backing")))
            .unwrap();
        backing.set_len(size).unwrap();
        let hung = Arc::new(AtomicBool::new(false));
        let fs = SlowFs {
            backing,
            name: format!("{name}.img"),
            size,
            delay,
            hung: hung.clone(),
        };
        let mut cfg = Config::default();
        cfg.mount_options = vec![MountOption::FSName(format!("slowdisk-{name}"))];
        cfg.acl = SessionACL::All;
        let session = fuser::spawn_mount(fs, &mnt, &cfg).unwrap();
        SlowDisk {
            image: mnt.join(format!("{name}.img")),
            hung,
            _session: session,
        }
    }

    /// The switch that makes this disk hang.
    pub fn hang_control(&self) -> Hang {
        Hang(self.hung.clone())
    }
}
