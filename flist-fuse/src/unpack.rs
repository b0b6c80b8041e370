//! Unpacking an flist into a folder.
//!
//! Everything is created below a fresh temporary folder next to DEST with `*at` calls
//! relative to directory handles opened with `O_NOFOLLOW`, and the folder is renamed to
//! DEST only when complete: nothing is written through a symlink or outside DEST, and a
//! failure leaves no half tree. Symlink targets (absolute ones too) are kept as content.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timespec, Timestamps};
use rustix::io::Errno;
use rustix::process::{Gid, Uid};

use crate::blocks::BlockReader;
use crate::error::{Error, IoContext, Result};
use crate::format::{Flist, Inode, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFREG, S_IFSOCK};

struct Ctx<'a> {
    fl: &'a Flist,
    reader: &'a BlockReader,
    tmp: PathBuf,
    root: OwnedFd,
    links: HashMap<u32, PathBuf>,
    is_root: bool,
}

/// Unpack `fl` (read from `file`) into `dest`, which must not exist or be an empty folder.
pub fn unpack(fl: &Flist, reader: &BlockReader, dest: &Path) -> Result<()> {
    if let Ok(md) = std::fs::symlink_metadata(dest) {
        let empty = md.is_dir() && std::fs::read_dir(dest).ctx(dest)?.next().is_none();
        if !empty {
            return Err(Error::invalid(
                dest,
                "destination exists and is not an empty folder",
            ));
        }
    }
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = dest
        .file_name()
        .ok_or_else(|| Error::invalid(dest, "bad destination"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".flist-tmp-{}", std::process::id()));
    let tmp = parent.join(tmp_name);
    std::fs::create_dir(&tmp).ctx(&tmp)?;
    let res = (|| {
        let root = rustix::fs::open(
            &tmp,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ctx(&tmp)?;
        let mut cx = Ctx {
            fl,
            reader,
            tmp: tmp.clone(),
            root,
            links: HashMap::new(),
            is_root: rustix::process::geteuid().is_root(),
        };
        let rootfd = cx.root.try_clone().ctx(&tmp)?;
        cx.fill(0, &rootfd, Path::new(""))?;
        let ri = *fl
            .inode(0)
            .ok_or_else(|| Error::corrupt(&reader.file, "no root"))?;
        cx.meta_fd(&rootfd, &ri, 0, &tmp)?;
        rustix::fs::syncfs(&rootfd).ctx(&tmp)?;
        Ok(())
    })();
    if let Err(e) = res {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if std::fs::symlink_metadata(dest).is_ok() {
        std::fs::remove_dir(dest).ctx(dest)?;
    }
    std::fs::rename(&tmp, dest).ctx(dest)?;
    File::open(&parent).and_then(|f| f.sync_all()).ctx(&parent)
}

fn times(i: &Inode) -> Timestamps {
    let t = Timespec {
        tv_sec: i.mtime_sec,
        tv_nsec: i.mtime_nsec.into(),
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

impl Ctx<'_> {
    fn owner_ok(&self, r: rustix::io::Result<()>, p: &Path) -> Result<()> {
        match r {
            Err(Errno::PERM) if !self.is_root => Ok(()),
            r => r.ctx(p),
        }
    }

    fn meta_fd(&self, fd: &OwnedFd, i: &Inode, ino: u32, p: &Path) -> Result<()> {
        self.owner_ok(
            rustix::fs::fchown(fd, Some(Uid::from_raw(i.uid)), Some(Gid::from_raw(i.gid))),
            p,
        )?;
        rustix::fs::fchmod(fd, Mode::from_raw_mode(i.mode & 0o7777)).ctx(p)?;
        for (n, v) in self.fl.xattrs_of(ino) {
            rustix::fs::fsetxattr(fd, n, v, rustix::fs::XattrFlags::empty()).ctx(p)?;
        }
        rustix::fs::futimens(fd, &times(i)).ctx(p)
    }

    fn meta_at(&self, dirfd: &OwnedFd, name: &OsStr, i: &Inode, ino: u32, p: &Path) -> Result<()> {
        self.owner_ok(
            rustix::fs::chownat(
                dirfd,
                name,
                Some(Uid::from_raw(i.uid)),
                Some(Gid::from_raw(i.gid)),
                AtFlags::SYMLINK_NOFOLLOW,
            ),
            p,
        )?;
        if !i.is_symlink() {
            rustix::fs::chmodat(
                dirfd,
                name,
                Mode::from_raw_mode(i.mode & 0o7777),
                AtFlags::empty(),
            )
            .ctx(p)?;
        }
        let tp = self.tmp.join(p.strip_prefix(&self.tmp).unwrap_or(p));
        for (n, v) in self.fl.xattrs_of(ino) {
            rustix::fs::lsetxattr(&tp, n, v, rustix::fs::XattrFlags::empty()).ctx(p)?;
        }
        rustix::fs::utimensat(dirfd, name, &times(i), AtFlags::SYMLINK_NOFOLLOW).ctx(p)
    }

    fn fill(&mut self, dir: u32, dirfd: &OwnedFd, rel: &Path) -> Result<()> {
        for d in self.fl.children(dir).to_vec() {
            let name = OsStr::from_bytes(self.fl.name(&d));
            let crel = rel.join(name);
            let p = self.tmp.join(&crel);
            let ino = d.ino;
            let i = *self
                .fl
                .inode(ino)
                .ok_or_else(|| Error::corrupt(&self.reader.file, "bad inode"))?;
            if !i.is_dir() {
                if let Some(first) = self.links.get(&ino) {
                    rustix::fs::linkat(self.root.as_fd(), first, dirfd, name, AtFlags::empty())
                        .ctx(&p)?;
                    continue;
                }
                if i.nlink > 1 {
                    self.links.insert(ino, crel.clone());
                }
            }
            match i.file_type() {
                S_IFDIR => {
                    rustix::fs::mkdirat(dirfd, name, Mode::from_raw_mode(0o700)).ctx(&p)?;
                    let fd = rustix::fs::openat(
                        dirfd,
                        name,
                        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    )
                    .ctx(&p)?;
                    self.fill(ino, &fd, &crel)?;
                    self.meta_fd(&fd, &i, ino, &p)?;
                }
                S_IFREG => {
                    let fd = rustix::fs::openat(
                        dirfd,
                        name,
                        OFlags::WRONLY
                            | OFlags::CREATE
                            | OFlags::EXCL
                            | OFlags::NOFOLLOW
                            | OFlags::CLOEXEC,
                        Mode::from_raw_mode(0o600),
                    )
                    .ctx(&p)?;
                    let mut f = File::from(fd);
                    self.reader.copy_file(self.fl, ino, &mut f, &p)?;
                    let fd = OwnedFd::from(f);
                    self.meta_fd(&fd, &i, ino, &p)?;
                }
                S_IFLNK => {
                    let t = OsStr::from_bytes(self.fl.symlink_target(ino));
                    rustix::fs::symlinkat(t, dirfd, name).ctx(&p)?;
                    self.meta_at(dirfd, name, &i, ino, &p)?;
                }
                S_IFCHR | S_IFBLK | S_IFIFO | S_IFSOCK => {
                    let ft = match i.file_type() {
                        S_IFCHR => FileType::CharacterDevice,
                        S_IFBLK => FileType::BlockDevice,
                        S_IFIFO => FileType::Fifo,
                        _ => FileType::Socket,
                    };
                    rustix::fs::mknodat(dirfd, name, ft, Mode::from_raw_mode(0o600), i.rdev)
                        .ctx(&p)?;
                    self.meta_at(dirfd, name, &i, ino, &p)?;
                }
                t => {
                    return Err(Error::corrupt(
                        &self.reader.file,
                        format!("file type {t:o}"),
                    ));
                }
            }
        }
        Ok(())
    }
}
