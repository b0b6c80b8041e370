//! Attributes the kernel sees: FUSE inode numbers, types, device numbers, times.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{FileAttr, FileType, INodeNo};

use crate::format::{
    Inode, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK,
};

/// Entry and attribute timeout: the image never changes.
pub const TTL: Duration = Duration::from_secs(365 * 24 * 3600);

/// The FUSE file type of a mode.
pub fn kind(mode: u32) -> FileType {
    match mode & S_IFMT {
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

/// The attributes of flist inode `n` (FUSE inode `n + 1`).
pub fn attr(n: u32, i: &Inode) -> FileAttr {
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
