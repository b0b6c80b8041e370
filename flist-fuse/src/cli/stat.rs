//! `flist stat`.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use super::show::{lookup, mode_string};
use crate::error::{Error, IoContext, Result};
use crate::format::{self, hex};

/// Arguments of `flist stat`.
#[derive(Debug, Args)]
pub struct StatCmd {
    /// The flist.
    pub file: PathBuf,
    /// A path inside the image.
    pub path: String,
}

impl StatCmd {
    /// Print the entry's metadata.
    pub fn run(self) -> Result<()> {
        let (file, path) = (&self.file, &self.path);
        let fl = crate::rfs::read_any(file)?;
        let ino = lookup(&fl, file, path)?;
        let i = fl
            .inode(ino)
            .ok_or_else(|| Error::corrupt(file, "bad inode"))?;
        let mut o = Vec::new();
        let _ = writeln!(o, "path: {path}");
        let _ = writeln!(o, "inode: {ino}");
        let _ = writeln!(o, "mode: {:06o} ({})", i.mode, mode_string(i.mode));
        let _ = writeln!(
            o,
            "uid: {}\ngid: {}\nnlink: {}\nsize: {}",
            i.uid, i.gid, i.nlink, i.size
        );
        let _ = writeln!(o, "mtime: {}.{:09}", i.mtime_sec, i.mtime_nsec);
        if matches!(i.file_type(), format::S_IFCHR | format::S_IFBLK) {
            let _ = writeln!(
                o,
                "rdev: {},{}",
                rustix::fs::major(i.rdev),
                rustix::fs::minor(i.rdev)
            );
        }
        if i.is_symlink() {
            o.extend_from_slice(b"target: ");
            o.extend_from_slice(fl.symlink_target(ino));
            o.push(b'\n');
        }
        if i.is_reg() {
            let _ = writeln!(o, "blocks: {}", fl.file_blocks(ino).len());
        }
        for (n, v) in fl.xattrs_of(ino) {
            o.extend_from_slice(b"xattr: ");
            o.extend_from_slice(n);
            let _ = writeln!(o, " = {}", hex(v));
        }
        std::io::stdout().write_all(&o).ctx("stdout")
    }
}
