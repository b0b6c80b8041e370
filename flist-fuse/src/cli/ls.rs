//! `flist ls`.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use super::show::{lookup, mode_string, size_or_dev};
use crate::error::{IoContext, Result};
use crate::format::Flist;

/// Arguments of `flist ls`.
#[derive(Debug, Args)]
pub struct LsCmd {
    /// List everything below PATH.
    #[arg(long, short = 'R')]
    pub recursive: bool,
    /// The flist.
    pub file: PathBuf,
    /// A path inside the image (default: the root).
    pub path: Option<String>,
}

fn ls_line(fl: &Flist, ino: u32, name: &[u8], out: &mut Vec<u8>) {
    let Some(i) = fl.inode(ino) else { return };
    out.extend_from_slice(
        format!(
            "{} {:>3} {:>5} {:>5} {:>10} {}.{:09} ",
            mode_string(i.mode),
            i.nlink,
            i.uid,
            i.gid,
            size_or_dev(i),
            i.mtime_sec,
            i.mtime_nsec
        )
        .as_bytes(),
    );
    out.extend_from_slice(if name.is_empty() { b"/" } else { name });
    if i.is_symlink() {
        out.extend_from_slice(b" -> ");
        out.extend_from_slice(fl.symlink_target(ino));
    }
    out.push(b'\n');
}

impl LsCmd {
    /// Print the listing.
    pub fn run(self) -> Result<()> {
        let path = self.path.as_deref().unwrap_or("/");
        let fl = crate::rfs::read_any(&self.file)?;
        let ino = lookup(&fl, &self.file, path)?;
        let mut out = Vec::new();
        if self.recursive {
            let prefix = path.trim_matches('/').as_bytes();
            for (p, i) in fl.walk() {
                let inside = prefix.is_empty()
                    || p == prefix
                    || (p.starts_with(prefix) && p.get(prefix.len()) == Some(&b'/'));
                if inside {
                    ls_line(&fl, i, &p, &mut out);
                }
            }
        } else if fl.inode(ino).is_some_and(|i| i.is_dir()) {
            for d in fl.children(ino) {
                ls_line(&fl, d.ino, fl.name(d), &mut out);
            }
        } else {
            ls_line(&fl, ino, path.as_bytes(), &mut out);
        }
        std::io::stdout().write_all(&out).ctx("stdout")
    }
}
