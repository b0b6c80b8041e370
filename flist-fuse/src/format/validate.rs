//! Structural validation of a decoded image (ours or an rfs `.fl`): every reference in range,
//! names safe, block offsets consistent, a proper tree. After it, lookups can index freely.

use super::model::{
    Flist, ROOT_INO, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFREG, S_IFSOCK, range,
};

/// Check that a name is a single, safe path component.
pub fn valid_name(n: &[u8]) -> bool {
    !n.is_empty() && n != b"." && n != b".." && !n.contains(&b'/') && !n.contains(&0)
}

type Res = std::result::Result<(), String>;

impl Flist {
    /// Structural validation: every reference in range, names safe, a proper tree.
    pub(crate) fn validate(&self) -> Res {
        let root = self.inodes.first().ok_or("no root inode")?;
        if !root.is_dir() {
            return Err("root inode is not a directory".into());
        }
        let mut dirent_owner = vec![false; self.dirents.len()];
        let mut refs = vec![0u32; self.inodes.len()];
        for (ino, i) in self.inodes.iter().enumerate() {
            let xr = range(
                i.xattr_first as u64,
                i.xattr_count as u64,
                self.xattrs.len(),
            )
            .ok_or(format!("inode {ino}: xattr range out of bounds"))?;
            for x in self.xattrs.get(xr).unwrap_or(&[]) {
                range(x.name_off as u64, x.name_len as u64, self.names.len())
                    .ok_or(format!("inode {ino}: xattr name out of bounds"))?;
                range(x.val_off as u64, x.val_len as u64, self.data.len())
                    .ok_or(format!("inode {ino}: xattr value out of bounds"))?;
            }
            match i.file_type() {
                S_IFDIR => self.check_dir(ino, &mut dirent_owner, &mut refs)?,
                S_IFREG => self.check_file(ino)?,
                S_IFLNK => {
                    range(i.first, i.count, self.data.len())
                        .ok_or(format!("inode {ino}: symlink target out of bounds"))?;
                    if i.count == 0 {
                        return Err(format!("inode {ino}: empty symlink target"));
                    }
                }
                S_IFCHR | S_IFBLK | S_IFIFO | S_IFSOCK => {}
                ft => return Err(format!("inode {ino}: unknown file type {ft:o}")),
            }
        }
        if dirent_owner.iter().any(|o| !o) {
            return Err("a directory entry belongs to no directory".into());
        }
        for (ino, (i, r)) in self.inodes.iter().zip(&refs).enumerate().skip(1) {
            if *r == 0 {
                return Err(format!("inode {ino} is unreachable"));
            }
            if i.is_dir() && *r != 1 {
                return Err(format!("directory inode {ino} is linked {r} times"));
            }
        }
        self.check_acyclic()
    }

    /// A folder's entries: owned once, in range, safe names, sorted, no link to the root,
    /// sub-folders pointing back to it. Counts the links of each inode in `refs`.
    fn check_dir(&self, ino: usize, owner: &mut [bool], refs: &mut [u32]) -> Res {
        let Some(i) = self.inodes.get(ino) else {
            return Err(format!("inode {ino} out of range"));
        };
        let dr = range(i.first, i.count, self.dirents.len())
            .ok_or(format!("inode {ino}: directory entries out of bounds"))?;
        let mut prev: Option<&[u8]> = None;
        for k in dr {
            let (Some(o), Some(d)) = (owner.get_mut(k), self.dirents.get(k)) else {
                return Err(format!("dirent {k} out of range"));
            };
            if std::mem::replace(o, true) {
                return Err(format!("dirent {k} belongs to two directories"));
            }
            let name = range(d.name_off as u64, d.name_len as u64, self.names.len())
                .and_then(|r| self.names.get(r))
                .ok_or(format!("dirent {k}: name out of bounds"))?;
            if !valid_name(name) {
                return Err(format!(
                    "dirent {k}: name {:?} escapes its directory",
                    String::from_utf8_lossy(name)
                ));
            }
            if prev.is_some_and(|p| p >= name) {
                return Err(format!("inode {ino}: entries not sorted or duplicated"));
            }
            prev = Some(name);
            let c = self
                .inodes
                .get(d.ino as usize)
                .ok_or(format!("dirent {k}: inode {} out of range", d.ino))?;
            if d.ino == ROOT_INO {
                return Err(format!("dirent {k}: links the root"));
            }
            if let Some(r) = refs.get_mut(d.ino as usize) {
                *r += 1;
            }
            if c.is_dir() && c.parent as usize != ino {
                return Err(format!("directory {} has a wrong parent", d.ino));
            }
        }
        Ok(())
    }

    /// A file's blocks: in range, contiguous offsets, each within the block size, adding up
    /// to the file size.
    fn check_file(&self, ino: usize) -> Res {
        let Some(i) = self.inodes.get(ino) else {
            return Err(format!("inode {ino} out of range"));
        };
        let bl = range(i.first, i.count, self.blocks.len())
            .and_then(|r| self.blocks.get(r))
            .ok_or(format!("inode {ino}: blocks out of bounds"))?;
        let mut off = 0u64;
        for b in bl {
            if b.file_offset != off
                || b.len == 0
                || b.plain_len > self.params.chunk.max
                || b.off as u64 + b.len as u64 > b.plain_len as u64
            {
                return Err(format!("inode {ino}: inconsistent block offsets"));
            }
            off += b.len as u64;
        }
        if off != i.size {
            return Err(format!("inode {ino}: blocks do not add up to the size"));
        }
        Ok(())
    }

    /// Every directory is reached from the root exactly once: no cycles.
    fn check_acyclic(&self) -> Res {
        let mut seen = vec![false; self.inodes.len()];
        let mut stack = vec![ROOT_INO];
        if let Some(s) = seen.first_mut() {
            *s = true;
        }
        while let Some(d) = stack.pop() {
            for e in self.children(d) {
                let c = e.ino as usize;
                if self.inodes.get(c).is_some_and(|i| i.is_dir()) {
                    match seen.get_mut(c) {
                        Some(s) if *s => return Err("directory cycle".into()),
                        Some(s) => *s = true,
                        None => return Err(format!("inode {c} out of range")),
                    }
                    stack.push(e.ino);
                }
            }
        }
        if self.inodes.iter().zip(&seen).any(|(i, s)| i.is_dir() && !s) {
            return Err("directory not reachable from the root".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(valid_name(b"a\xff"));
        for n in [&b""[..], b".", b"..", b"a/b", b"a\0"] {
            assert!(!valid_name(n));
        }
    }
}
