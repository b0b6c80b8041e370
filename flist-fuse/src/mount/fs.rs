//! The read-only FUSE filesystem over a decoded flist.
//!
//! FUSE inode = flist inode + 1 (the root is 1). Metadata never changes, so entries and
//! attributes carry long timeouts and folders are opened with `FOPEN_CACHE_DIR`.
//!
//! Opening a file needs nothing from an immutable, read-only image (the kernel refuses
//! writes on the read-only mount before asking us), so `open` answers `ENOSYS` once: the
//! kernel then opens files without a round trip, keeps their page cache
//! (`FOPEN_KEEP_CACHE`) and sends no `release`/`flush` either. A warm tree is then served
//! from the kernel's caches alone. Read-ahead state is kept per inode.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    AccessFlags, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo,
    InitFlags, KernelConfig, LockOwner, OpenAccMode, OpenFlags, ReplyAttr, ReplyData,
    ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyXattr,
    Request,
};

use super::errno::{FsError, errno};
use super::fetch::{Fetcher, Priority};
use super::prefetch::Recorder;
use crate::format::{
    BlockRef, Flist, Inode, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFREG, S_IFSOCK,
};

/// Entry and attribute timeout: the image never changes.
pub const TTL: Duration = Duration::from_secs(365 * 24 * 3600);
/// Most blocks read ahead of a sequential reader.
const MAX_READAHEAD_BLOCKS: usize = 16;

/// Per-inode read state (sequential detection for read-ahead).
#[derive(Debug, Default, Clone, Copy)]
struct Handle {
    /// End offset of the last read.
    next: u64,
    /// Consecutive sequential reads.
    streak: u32,
    /// Highest block index already queued for read-ahead.
    ahead: usize,
}

/// The bytes of a read: a slice of one cached block, or assembled from several.
enum ReadOut {
    Shared(Arc<Vec<u8>>, std::ops::Range<usize>),
    Owned(Vec<u8>),
}

/// The filesystem.
pub struct FlistFs {
    fl: Arc<Flist>,
    fetch: Arc<Fetcher>,
    recorder: Option<Arc<Recorder>>,
    handles: Mutex<HashMap<u64, Handle>>,
    next_fh: AtomicU64,
    content_bytes: u64,
    /// Answer `open` with ENOSYS (kernel-side opens); false keeps classic open/release.
    pub no_open: bool,
}

fn kind(mode: u32) -> FileType {
    match mode & crate::format::S_IFMT {
        S_IFDIR => FileType::Directory,
        S_IFLNK => FileType::Symlink,
        S_IFCHR => FileType::CharDevice,
        S_IFBLK => FileType::BlockDevice,
        S_IFIFO => FileType::NamedPipe,
        S_IFSOCK => FileType::Socket,
        S_IFREG => FileType::RegularFile,
        _ => FileType::RegularFile,
    }
}

/// The kernel's `new_encode_dev` of a userspace `dev_t`.
fn kernel_dev(rdev: u64) -> u32 {
    let (ma, mi) = (rustix::fs::major(rdev), rustix::fs::minor(rdev));
    (mi & 0xff) | (ma << 8) | ((mi & !0xff) << 12)
}

fn time(sec: i64, nsec: u32) -> SystemTime {
    if sec >= 0 {
        UNIX_EPOCH + Duration::new(sec as u64, nsec)
    } else {
        UNIX_EPOCH - Duration::from_secs(sec.unsigned_abs()) + Duration::from_nanos(nsec as u64)
    }
}

impl FlistFs {
    pub fn new(fl: Arc<Flist>, fetch: Arc<Fetcher>, recorder: Option<Arc<Recorder>>) -> Self {
        let content_bytes = fl
            .inodes
            .iter()
            .filter(|i| i.is_reg())
            .map(|i| i.size)
            .sum();
        FlistFs {
            fl,
            fetch,
            recorder,
            handles: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            content_bytes,
            no_open: true,
        }
    }

    fn ino(&self, ino: INodeNo) -> Result<(u32, &Inode), FsError> {
        let n = ino.0.checked_sub(1).ok_or(FsError::NotFound)?;
        let n = u32::try_from(n).map_err(|_| FsError::NotFound)?;
        self.fl.inode(n).map(|i| (n, i)).ok_or(FsError::NotFound)
    }

    /// The directory behind `ino` (ENOTDIR for any other type).
    fn dir(&self, ino: INodeNo) -> Result<(u32, &Inode), FsError> {
        match self.ino(ino)? {
            (n, i) if i.is_dir() => Ok((n, i)),
            _ => Err(FsError::NotDir),
        }
    }

    fn attr(&self, n: u32, i: &Inode) -> FileAttr {
        let t = time(i.mtime_sec, i.mtime_nsec);
        let size = if i.is_dir() && i.size == 0 {
            4096
        } else {
            i.size
        };
        FileAttr {
            ino: INodeNo(n as u64 + 1),
            size,
            blocks: size.div_ceil(512),
            atime: t,
            mtime: t,
            ctime: t,
            crtime: t,
            kind: kind(i.mode),
            perm: (i.mode & 0o7777) as u16,
            nlink: i.nlink.max(1),
            uid: i.uid,
            gid: i.gid,
            rdev: if matches!(i.file_type(), S_IFCHR | S_IFBLK) {
                kernel_dev(i.rdev)
            } else {
                0
            },
            blksize: 128 * 1024,
            flags: 0,
        }
    }

    fn do_lookup(&self, parent: INodeNo, name: &OsStr) -> Result<FileAttr, FsError> {
        let (p, pi) = self.ino(parent)?;
        if !pi.is_dir() {
            return Err(FsError::NotDir);
        }
        let c = self
            .fl
            .lookup_in(p, name.as_bytes())
            .ok_or(FsError::NotFound)?;
        let ci = self.fl.inode(c).ok_or(FsError::NotFound)?;
        Ok(self.attr(c, ci))
    }

    fn do_read(&self, ino: INodeNo, fh: u64, offset: u64, size: u32) -> Result<ReadOut, FsError> {
        let (n, i) = self.ino(ino)?;
        if i.is_dir() {
            return Err(FsError::IsDir);
        }
        if !i.is_reg() {
            return Err(FsError::Invalid);
        }
        if offset >= i.size || size == 0 {
            return Ok(ReadOut::Owned(Vec::new()));
        }
        let end = (offset + size as u64).min(i.size);
        let bl = self.fl.file_blocks(n);
        let (Some(first), Some(last)) = (self.fl.block_at(n, offset), self.fl.block_at(n, end - 1))
        else {
            return Ok(ReadOut::Owned(Vec::new()));
        };
        // Read-ahead: a sequential reader gets a window doubling up to 16 blocks.
        let window = {
            let mut hs = self.handles.lock().unwrap_or_else(|p| p.into_inner());
            if hs.len() > 4096 {
                hs.clear();
            }
            let h = hs.entry(fh).or_default();
            let sequential = offset == h.next || (offset == 0 && h.next == 0);
            h.streak = if sequential { h.streak + 1 } else { 0 };
            h.next = end;
            let w = if sequential {
                (1usize << h.streak.min(5)).min(MAX_READAHEAD_BLOCKS)
            } else {
                0
            };
            let from = (last + 1).max(if sequential { h.ahead + 1 } else { 0 });
            let to = (last + w).min(bl.len().saturating_sub(1));
            if w > 0 && from <= to {
                h.ahead = to;
                Some(from..=to)
            } else {
                None
            }
        };
        if let Some(r) = window
            && let Some(ra) = bl.get(r)
        {
            self.fetch.prefetch(ra, Priority::ReadAhead);
        }
        let want = &bl[first..=last];
        if let Some(rec) = &self.recorder {
            let base = self.fl.inode(n).map(|i| i.first as usize).unwrap_or(0);
            rec.touch_range(base + first, base + last);
        }
        let mut got = self.fetch.get_many(want);
        let span = |b: &BlockRef| {
            let s = offset.max(b.file_offset) - b.file_offset;
            let e = end.min(b.file_offset + b.plain_len as u64) - b.file_offset;
            s as usize..e as usize
        };
        if let ([b], [_]) = (want, got.as_slice()) {
            // Within one block (the common case): answer from the block, no copy.
            let d = got.pop().ok_or(FsError::Invalid)??;
            let r = span(b);
            if d.get(r.clone()).is_none() {
                return Err(FsError::Invalid);
            }
            return Ok(ReadOut::Shared(d, r));
        }
        let mut out = Vec::with_capacity((end - offset) as usize);
        for (b, d) in want.iter().zip(got) {
            let d = d?;
            out.extend_from_slice(d.get(span(b)).ok_or(FsError::Invalid)?);
        }
        Ok(ReadOut::Owned(out))
    }

    fn xattr_reply(data: &[u8], size: u32, reply: ReplyXattr) {
        if size == 0 {
            reply.size(data.len() as u32);
        } else if (size as usize) < data.len() {
            reply.error(errno(&FsError::Range));
        } else {
            reply.data(data);
        }
    }

    fn check_access(&self, req: &Request, i: &Inode, mask: AccessFlags) -> Result<(), FsError> {
        if mask.contains(AccessFlags::W_OK) {
            return Err(FsError::ReadOnly);
        }
        let want = (if mask.contains(AccessFlags::R_OK) {
            4
        } else {
            0
        }) | (if mask.contains(AccessFlags::X_OK) {
            1
        } else {
            0
        });
        if req.uid() == 0 {
            // Root: everything but executing a file with no x bit at all.
            if want & 1 != 0 && !i.is_dir() && i.mode & 0o111 == 0 {
                return Err(FsError::Access);
            }
            return Ok(());
        }
        let bits = if req.uid() == i.uid {
            (i.mode >> 6) & 7
        } else if req.gid() == i.gid {
            (i.mode >> 3) & 7
        } else {
            i.mode & 7
        };
        if bits & want == want {
            Ok(())
        } else {
            Err(FsError::Access)
        }
    }
}

impl Filesystem for FlistFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        let want = InitFlags::FUSE_DO_READDIRPLUS
            | InitFlags::FUSE_READDIRPLUS_AUTO
            | InitFlags::FUSE_CACHE_SYMLINKS
            | InitFlags::FUSE_PARALLEL_DIROPS
            | InitFlags::FUSE_ASYNC_READ
            | InitFlags::FUSE_MAX_PAGES;
        let have = config.capabilities();
        let _ = config.add_capabilities(want & have);
        let _ = config.set_max_readahead(1024 * 1024);
        let _ = config.set_max_background(64);
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        match self.do_lookup(parent, name) {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.ino(ino) {
            Ok((n, i)) => reply.attr(&TTL, &self.attr(n, i)),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self.ino(ino) {
            Ok((n, i)) if i.is_symlink() => reply.data(self.fl.symlink_target(n)),
            Ok(_) => reply.error(errno(&FsError::Invalid)),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let r = self.ino(ino).and_then(|(_, i)| {
            if flags.acc_mode() != OpenAccMode::O_RDONLY {
                Err(FsError::ReadOnly)
            } else if i.is_dir() {
                Err(FsError::IsDir)
            } else {
                Ok(())
            }
        });
        match r {
            // Zero-message opens from now on (see the module comment).
            Ok(()) if self.no_open => reply.error(fuser::Errno::ENOSYS),
            Ok(()) => {
                let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
                reply.opened(FileHandle(fh), FopenFlags::FOPEN_KEEP_CACHE);
            }
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        // Read-ahead state per inode: with kernel-side opens every handle is 0.
        let key = if self.no_open { ino.0 } else { fh.0 };
        match self.do_read(ino, key, offset, size) {
            Ok(ReadOut::Owned(d)) => reply.data(&d),
            Ok(ReadOut::Shared(d, r)) => reply.data(d.get(r).unwrap_or(&[])),
            Err(e) => {
                super::log(&format!("read of inode {} failed: {e} (EIO)", ino.0 - 1));
                reply.error(errno(&e))
            }
        }
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.handles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&fh.0);
        reply.ok();
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.dir(ino) {
            Ok(_) => reply.opened(
                FileHandle(0),
                FopenFlags::FOPEN_KEEP_CACHE | FopenFlags::FOPEN_CACHE_DIR,
            ),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let (n, i) = match self.dir(ino) {
            Ok(d) => d,
            Err(e) => return reply.error(errno(&e)),
        };
        let children = self.fl.children(n);
        let total = children.len() as u64 + 2;
        for off in offset..total {
            let full = match off {
                0 => reply.add(ino, 1, FileType::Directory, "."),
                1 => reply.add(INodeNo(i.parent as u64 + 1), 2, FileType::Directory, ".."),
                k => {
                    let d = &children[(k - 2) as usize];
                    let m = self.fl.inode(d.ino).map(|c| c.mode).unwrap_or(S_IFREG);
                    reply.add(
                        INodeNo(d.ino as u64 + 1),
                        k + 1,
                        kind(m),
                        OsStr::from_bytes(self.fl.name(d)),
                    )
                }
            };
            if full {
                break;
            }
        }
        reply.ok();
    }

    fn readdirplus(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        let (n, i) = match self.dir(ino) {
            Ok(d) => d,
            Err(e) => return reply.error(errno(&e)),
        };
        let children = self.fl.children(n);
        let total = children.len() as u64 + 2;
        for off in offset..total {
            let full = match off {
                0 => reply.add(ino, 1, ".", &TTL, &self.attr(n, i), Generation(0)),
                1 => {
                    let p = i.parent;
                    let Some(pi) = self.fl.inode(p) else { break };
                    reply.add(
                        INodeNo(p as u64 + 1),
                        2,
                        "..",
                        &TTL,
                        &self.attr(p, pi),
                        Generation(0),
                    )
                }
                k => {
                    let d = &children[(k - 2) as usize];
                    let Some(ci) = self.fl.inode(d.ino) else {
                        break;
                    };
                    reply.add(
                        INodeNo(d.ino as u64 + 1),
                        k + 1,
                        OsStr::from_bytes(self.fl.name(d)),
                        &TTL,
                        &self.attr(d.ino, ci),
                        Generation(0),
                    )
                }
            };
            if full {
                break;
            }
        }
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let bsize = 4096u32;
        reply.statfs(
            self.content_bytes.div_ceil(bsize as u64),
            0,
            0,
            self.fl.inodes.len() as u64,
            0,
            bsize,
            255,
            bsize,
        );
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        let (n, _) = match self.ino(ino) {
            Ok(x) => x,
            Err(e) => return reply.error(errno(&e)),
        };
        match self
            .fl
            .xattrs_of(n)
            .into_iter()
            .find(|(k, _)| *k == name.as_bytes())
        {
            Some((_, v)) => Self::xattr_reply(v, size, reply),
            None => reply.error(errno(&FsError::NoXattr)),
        }
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        let (n, _) = match self.ino(ino) {
            Ok(x) => x,
            Err(e) => return reply.error(errno(&e)),
        };
        let mut list = Vec::new();
        for (k, _) in self.fl.xattrs_of(n) {
            list.extend_from_slice(k);
            list.push(0);
        }
        Self::xattr_reply(&list, size, reply);
    }

    fn access(&self, req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        match self
            .ino(ino)
            .and_then(|(_, i)| self.check_access(req, i, mask))
        {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn mkdir(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        reply.error(errno(&FsError::ReadOnly));
    }

    fn unlink(&self, _req: &Request, _parent: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(errno(&FsError::ReadOnly));
    }

    fn rmdir(&self, _req: &Request, _parent: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(errno(&FsError::ReadOnly));
    }

    fn removexattr(&self, _req: &Request, _ino: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(errno(&FsError::ReadOnly));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_encoding() {
        // /dev/null is 1:3 -> 0x103; 7:0 -> 0x700; a large minor keeps its high bits.
        assert_eq!(kernel_dev(rustix::fs::makedev(1, 3)), 0x103);
        assert_eq!(kernel_dev(rustix::fs::makedev(7, 0)), 0x700);
        assert_eq!(
            kernel_dev(rustix::fs::makedev(8, 0x1234)),
            0x34 | (8 << 8) | (0x1200 << 12)
        );
    }
}
