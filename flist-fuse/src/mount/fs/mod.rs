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
//!
//! Modules: [`attr`] (what the kernel sees of an inode), [`read`] (the read path),
//! [`ahead`] (fetching a folder's files ahead of their readers).

pub mod ahead;
pub mod attr;
pub mod read;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use fuser::{
    AccessFlags, FileAttr, FileHandle, Filesystem, FopenFlags, Generation, INodeNo, InitFlags,
    KernelConfig, LockOwner, OpenAccMode, OpenFlags, ReplyAttr, ReplyData, ReplyDirectory,
    ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyXattr, Request,
};

use super::errno::{FsError, errno};
use super::fetch::Fetcher;
use super::handover::{Drain, InitParams};
use super::prefetch::Recorder;
use crate::format::{Flist, Inode};
use ahead::Ahead;
use attr::{TTL, attr, kind};
use read::{ReadOut, Reader};

/// The filesystem.
pub struct FlistFs {
    fl: Arc<Flist>,
    reader: Reader,
    ahead: Ahead,
    next_fh: AtomicU64,
    content_bytes: u64,
    /// Answer `open` with ENOSYS (kernel-side opens); false keeps classic open/release.
    pub no_open: bool,
    /// Parks the answering thread after a `read` or `statfs` reply while the mount is
    /// handed over (see `handover::drain`).
    pub drain: Arc<Drain>,
    /// The kernel's INIT as `init` saw it, for a hand-over to replay.
    pub init_seen: Arc<Mutex<Option<InitParams>>>,
}

impl FlistFs {
    /// The filesystem of `fl`, reading blocks through `fetch`, noting reads in `recorder`,
    /// fetching up to `ahead_budget` bytes ahead in a folder listed or read (0: never).
    pub fn new(
        fl: Arc<Flist>,
        fetch: Arc<Fetcher>,
        recorder: Option<Arc<Recorder>>,
        ahead_budget: u64,
    ) -> Self {
        let content_bytes = fl
            .inodes
            .iter()
            .filter(|i| i.is_reg())
            .map(|i| i.size)
            .sum();
        FlistFs {
            ahead: Ahead::new(fl.clone(), fetch.clone(), ahead_budget),
            reader: Reader::new(fl.clone(), fetch, recorder),
            fl,
            next_fh: AtomicU64::new(1),
            content_bytes,
            no_open: true,
            drain: Arc::new(Drain::new()),
            init_seen: Arc::new(Mutex::new(None)),
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

    /// The entries of folder `ino` from `offset` (`.` and `..` first): the offset of the
    /// next entry, the inode, its record and its name. Listing a folder from the start
    /// fetches its small files ahead.
    fn listing(
        &self,
        ino: INodeNo,
        offset: u64,
    ) -> Result<Vec<(u64, u32, &Inode, &OsStr)>, FsError> {
        let (n, i) = self.dir(ino)?;
        if offset == 0 {
            self.ahead.folder(n);
        }
        let dots = [(n, OsStr::new(".")), (i.parent, OsStr::new(".."))];
        let children = self
            .fl
            .children(n)
            .iter()
            .map(|d| (d.ino, OsStr::from_bytes(self.fl.name(d))));
        Ok(dots
            .into_iter()
            .chain(children)
            .zip(1u64..)
            .skip(offset as usize)
            .filter_map(|((c, name), next)| Some((next, c, self.fl.inode(c)?, name)))
            .collect())
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
        Ok(attr(c, ci))
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
        let abi = config.kernel_abi();
        *self.init_seen.lock().unwrap_or_else(|p| p.into_inner()) = Some(InitParams {
            major: abi.0,
            minor: abi.1,
            capabilities: have.bits(),
        });
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
            Ok((n, i)) => reply.attr(&TTL, &attr(n, i)),
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
        let res = self.ino(ino).and_then(|(n, i)| {
            self.ahead.folder(i.parent);
            self.reader.read(n, key, offset, size)
        });
        match res {
            Ok(ReadOut::Owned(d)) => reply.data(&d),
            Ok(ReadOut::Shared(d, r)) => reply.data(d.get(r).unwrap_or(&[])),
            Err(e) => {
                // A block that could not be had was logged by the fetcher, once.
                if !matches!(e, FsError::Fetch(_)) {
                    super::log::log(&format!(
                        "read of inode {} failed: {e}",
                        ino.0.saturating_sub(1)
                    ));
                }
                reply.error(errno(&e))
            }
        }
        self.drain.after_reply();
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
        self.reader.release(fh.0);
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
        let entries = match self.listing(ino, offset) {
            Ok(e) => e,
            Err(e) => return reply.error(errno(&e)),
        };
        for (next, n, i, name) in entries {
            if reply.add(INodeNo(n as u64 + 1), next, kind(i.mode), name) {
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
        let entries = match self.listing(ino, offset) {
            Ok(e) => e,
            Err(e) => return reply.error(errno(&e)),
        };
        for (next, n, i, name) in entries {
            let a = attr(n, i);
            if reply.add(a.ino, next, name, &TTL, &a, Generation(0)) {
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
        self.drain.after_reply();
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
