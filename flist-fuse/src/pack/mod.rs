//! Packing a source (directory, tar, OCI image layout or `docker save` archive) into an
//! flist: contents go to the store as blocks, then the flist file is written atomically.

pub mod dirsrc;
pub mod ingest;
pub mod oci;
pub mod tarsrc;
pub mod tree;

use std::fs::File;
use std::io::Write;
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
    Dir,
    Tar,
    Image,
}

/// Options of `pack`.
#[derive(Debug, Clone, Default)]
pub struct PackOptions {
    pub stores: Vec<String>,
    pub params: Params,
    pub progress: bool,
    pub kind: SourceKind,
}

/// Outcome of `pack`.
#[derive(Debug, Clone)]
pub struct PackReport {
    pub identity: Hash,
    pub entries: usize,
    pub stats: Stats,
    pub elapsed: Duration,
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
    let mut ing = ingest::Ingest::new(st, opts.params, opts.progress);
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
    let (refs, stats) = ing.finish(output)?;
    let body =
        tree::build_body(&tree, &refs, &opts.params).map_err(|m| Error::invalid(source, m))?;
    let trailer = Trailer {
        routes: opts.stores.iter().map(|s| store::redact(s)).collect(),
        ..Trailer::default()
    };
    let bytes = format::encode_file(&body, &trailer);
    // Never write a file we could not read back.
    let fl = format::decode(&bytes).map_err(|m| Error::invalid(source, m))?;
    write_atomic(output, &bytes)?;
    Ok(PackReport {
        identity: fl.identity,
        entries: fl.dirents.len() + 1,
        stats,
        elapsed: start.elapsed(),
        flist_bytes: bytes.len(),
    })
}

/// Write a file atomically: temp file, fsync, rename, fsync of the folder.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| Error::invalid(path, "not a file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let res = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        File::open(&dir)?.sync_all()
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res.ctx(path)
}

/// A temporary folder next to the output, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(near: &Path) -> Result<Self> {
        let base = match near.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let p = base.join(format!(".flist-image-{}-{nanos}", std::process::id()));
        std::fs::create_dir(&p).ctx(&p)?;
        Ok(TempDir(p))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
