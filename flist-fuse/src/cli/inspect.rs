//! `flist inspect`.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

use clap::Args;

use super::show::ratio;
use crate::error::{Error, IoContext, Result};
use crate::format::{self, ImageKind, hex};
use crate::store;

/// Arguments of `flist inspect`.
#[derive(Debug, Args)]
pub struct InspectCmd {
    /// The flist (ours or an rfs `.fl`).
    pub file: PathBuf,
}

impl InspectCmd {
    /// Print the summary.
    pub fn run(self) -> Result<()> {
        let file = &self.file;
        let fl = crate::rfs::read_any(file)?;
        let mut counts = [0usize; 7];
        let mut bytes = 0u64;
        for i in &fl.inodes {
            let k = match i.file_type() {
                format::S_IFREG => 0,
                format::S_IFDIR => 1,
                format::S_IFLNK => 2,
                format::S_IFCHR | format::S_IFBLK => 3,
                format::S_IFIFO => 4,
                format::S_IFSOCK => 5,
                _ => 6,
            };
            if let Some(c) = counts.get_mut(k) {
                *c += 1;
            }
            if i.is_reg() {
                bytes += i.size;
            }
        }
        let mut seen = HashSet::new();
        let (mut up, mut us) = (0u64, 0u64);
        for b in &fl.blocks {
            if seen.insert(b.id) {
                up += b.plain_len as u64;
                us += b.stored_len as u64;
            }
        }
        let codec = crate::codec::for_params(&fl.params).map_err(|m| Error::corrupt(file, m))?;
        let p = &fl.params;
        let mut o = String::new();
        let _ = writeln!(o, "file: {}", file.display());
        let _ = writeln!(o, "identity: {}", hex(&fl.identity));
        match fl.kind {
            ImageKind::Rfs => {
                let _ = writeln!(
                    o,
                    "format: rfs .fl (SQLite); fixed 512 KiB blocks, {}",
                    codec.describe()
                );
            }
            ImageKind::Flist { version } => {
                let _ = writeln!(o, "format: v{version}");
                let _ = writeln!(
                    o,
                    "chunking: {:?} min {} avg {} max {}; {}",
                    p.chunk.chunking,
                    p.chunk.min,
                    p.chunk.avg,
                    p.chunk.max,
                    codec.describe()
                );
            }
        }
        let [files, dirs, links, devs, fifos, socks, _] = counts;
        let _ = writeln!(
            o,
            "inodes: {} (files {files}, dirs {dirs}, symlinks {links}, devices {devs}, fifos {fifos}, sockets {socks}); entries {}",
            fl.inodes.len(),
            fl.dirents.len() + 1
        );
        let _ = writeln!(
            o,
            "content: {bytes} bytes in {} block references",
            fl.blocks.len()
        );
        let _ = writeln!(
            o,
            "unique blocks: {} ({up} bytes, {us} stored); dedup ratio {:.2}x; compression {:.2}x",
            seen.len(),
            ratio(bytes, up),
            ratio(up, us)
        );
        if p.small_files > 0 {
            let (mut files, mut packs) = (0usize, HashSet::new());
            for (ino, i) in fl.inodes.iter().enumerate() {
                if i.is_reg() && i.size > 0 && i.size < p.small_files as u64 {
                    files += 1;
                    packs.extend(fl.file_blocks(ino as u32).iter().map(|b| b.id));
                }
            }
            let _ = writeln!(
                o,
                "small files: {files} (below {} bytes) packed in {} blocks",
                p.small_files,
                packs.len()
            );
        }
        let _ = writeln!(o, "metadata: {} bytes", fl.body.len());
        for r in &fl.trailer.routes {
            let _ = writeln!(o, "route: {}", store::redact(r));
        }
        for s in &fl.trailer.signatures {
            let _ = writeln!(o, "signature: {}", hex(&s.public_key));
        }
        std::io::stdout().write_all(o.as_bytes()).ctx("stdout")
    }
}
