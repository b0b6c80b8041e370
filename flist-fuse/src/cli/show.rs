//! Shared pieces of the commands that show an image: path lookup, `ls -l` style lines.

use std::path::Path;

use crate::error::{Error, Result};
use crate::format::{self, Flist, S_IFMT};

/// `a / b`, 1 when `b` is 0.
pub fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 1.0 } else { a as f64 / b as f64 }
}

/// The inode at `path` inside the image of `file`.
pub fn lookup(fl: &Flist, file: &Path, path: &str) -> Result<u32> {
    fl.lookup(path.as_bytes())
        .ok_or_else(|| Error::invalid(file, format!("{path}: no such entry")))
}

/// `drwxr-xr-x` of a mode, with setuid/setgid/sticky as `ls` shows them.
pub fn mode_string(mode: u32) -> String {
    let t = match mode & S_IFMT {
        format::S_IFDIR => 'd',
        format::S_IFLNK => 'l',
        format::S_IFCHR => 'c',
        format::S_IFBLK => 'b',
        format::S_IFIFO => 'p',
        format::S_IFSOCK => 's',
        _ => '-',
    };
    let mut s = String::from(t);
    let bits = [
        (0o400, 'r'),
        (0o200, 'w'),
        (0o100, 'x'),
        (0o040, 'r'),
        (0o020, 'w'),
        (0o010, 'x'),
        (0o004, 'r'),
        (0o002, 'w'),
        (0o001, 'x'),
    ];
    for (k, (b, c)) in bits.iter().enumerate() {
        let set = mode & b != 0;
        let special = match k {
            2 => mode & 0o4000 != 0,
            5 => mode & 0o2000 != 0,
            8 => mode & 0o1000 != 0,
            _ => false,
        };
        s.push(match (set, special, k) {
            (true, true, 8) => 't',
            (false, true, 8) => 'T',
            (true, true, _) => 's',
            (false, true, _) => 'S',
            (true, false, _) => *c,
            _ => '-',
        });
    }
    s
}

/// Size column: bytes, or `major,minor` of a device.
pub fn size_or_dev(i: &format::Inode) -> String {
    if matches!(i.file_type(), format::S_IFCHR | format::S_IFBLK) {
        format!(
            "{},{}",
            rustix::fs::major(i.rdev),
            rustix::fs::minor(i.rdev)
        )
    } else {
        i.size.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        assert_eq!(mode_string(format::S_IFDIR | 0o755), "drwxr-xr-x");
        assert_eq!(mode_string(format::S_IFREG | 0o4755), "-rwsr-xr-x");
        assert_eq!(mode_string(format::S_IFDIR | 0o1777), "drwxrwxrwt");
        assert_eq!(mode_string(format::S_IFREG | 0o2640), "-rw-r-S---");
    }
}
