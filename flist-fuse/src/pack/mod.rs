//! Packing a source (directory, tar, OCI image layout or `docker save` archive) into an
//! flist: contents go to the store as blocks, then the flist file is written atomically.

pub mod dirsrc;
pub mod ingest;
pub mod oci;
pub mod packer;
pub mod tarsrc;
pub mod tree;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, IoContext, Result};
use crate::format::{self, Hash, Params, Trailer};
use crate::store;

pub use ingest::Stats;

/// What the source is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SourceKind {
    /// Detect: a directory with `oci-layout`/`manifest.json` is an image, else a root
    /// filesystem; a file holding `manifest.json`/`oci-layout` at its top is an image
    /// archive, else a root filesystem tar (plain, gzip or zstd).
    #[default]
    Auto,
    /// A root filesystem folder.
    Dir,
    /// A root filesystem tar (plain, gzip or zstd).
    Tar,
    /// An OCI layout or docker-save archive (folder or tar).
    Image,
}

/// Options of `pack`.
#[derive(Debug, Clone, Default)]
pub struct PackOptions {
    /// Where the blocks go (`[LO-HI=]URL`).
    pub stores: Vec<String>,
    /// Chunking, compression, encryption.
    pub params: Params,
    /// Show a progress bar.
    pub progress: bool,
    /// What the source is.
    pub kind: SourceKind,
}

/// Outcome of `pack`.
#[derive(Debug, Clone)]
pub struct PackReport {
    /// Identity of the new flist.
    pub identity: Hash,
    /// Entries of the tree (root included).
    pub entries: usize,
    /// Content counters.
    pub stats: Stats,
    /// Wall time of the pack.
    pub elapsed: Duration,
    /// Size of the flist file.
    pub flist_bytes: usize,
}

/// Pack `source` into the flist file `output`.
pub fn pack(source: &Path, output: &Path, opts: &PackOptions) -> Result<PackReport> {
    let start = Instant::now();
    opts.params
        .chunk
        .check()
        .map_err(|m| Error::invalid(source, m))?;
    let st = store::open(&opts.stores).map_err(|e| Error::Store {
        path: output.to_path_buf(),
        source: e,
    })?;
    let mut params = opts.params;
    params.small_files = packer::threshold(params.small_files, params.chunk.avg);
    let mut ing = ingest::Ingest::new(st, params, opts.progress, output)?;
    let mut tree = tree::Tree::new();
    let md = std::fs::metadata(source).ctx(source)?;
    let kind = match opts.kind {
        SourceKind::Auto if md.is_dir() => {
            if source.join("oci-layout").exists() || source.join("manifest.json").exists() {
                SourceKind::Image
            } else {
                SourceKind::Dir
            }
        }
        SourceKind::Auto => {
            if tarsrc::is_image_archive(source)? {
                SourceKind::Image
            } else {
                SourceKind::Tar
            }
        }
        k => k,
    };
    match kind {
        SourceKind::Dir | SourceKind::Auto => dirsrc::read_dir_tree(&mut tree, &mut ing, source)?,
        SourceKind::Tar => {
            let r = tarsrc::open_decompressed(source)?;
            tarsrc::apply_tar(&mut tree, &mut ing, r, 0, false, source)?;
        }
        SourceKind::Image if md.is_dir() => oci::apply_image_dir(&mut tree, &mut ing, source)?,
        SourceKind::Image => {
            let tmp = TempDir::new(output)?;
            tarsrc::extract(source, &tmp.0)?;
            oci::apply_image_dir(&mut tree, &mut ing, &tmp.0)?;
        }
    }
    let order = tree.inode_order().map_err(|m| Error::invalid(source, m))?;
    let (refs, stats) = ing.finish(&order.nodes, output)?;
    let body =
        tree::build_body(&tree, &order, &refs, &params).map_err(|m| Error::invalid(source, m))?;
    let trailer = Trailer {
        routes: opts.stores.iter().map(|s| store::redact(s)).collect(),
        ..Trailer::default()
    };
    let bytes = format::encode_file(&body, &trailer);
    // Never write a file we could not read back.
    let fl = format::decode(&bytes).map_err(|m| Error::invalid(source, m))?;
    nodeutil::fs::write_durable(output, &bytes, 0o644)?;
    Ok(PackReport {
        identity: fl.identity,
        entries: fl.dirents.len() + 1,
        stats,
        elapsed: start.elapsed(),
        flist_bytes: bytes.len(),
    })
}

/// A temporary folder next to the output, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(near: &Path) -> Result<Self> {
        let base = nodeutil::fs::parent_dir(near);
        let p = base.join(format!(
            ".flist-image-{}-{}",
            std::process::id(),
            nodeutil::random::hex(4)
        ));
        std::fs::create_dir(&p).ctx(&p)?;
        Ok(TempDir(p))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
