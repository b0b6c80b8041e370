//! `flist pack`.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::args::small_files_arg;
use super::stores::StoreArgs;
use crate::chunk;
use crate::error::{Error, Result};
use crate::format::{Params, hex};
use crate::pack::{self, PackOptions, SourceKind};

/// How to read the source.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SourceArg {
    /// Detect from the path.
    Auto,
    /// A root filesystem folder.
    Dir,
    /// A root filesystem tar (plain, gzip, zstd).
    Tar,
    /// An OCI layout or docker-save archive (folder or tar).
    Image,
}

/// Arguments of `flist pack`.
#[derive(Debug, Args)]
pub struct PackCmd {
    /// Where the blocks go (at least one).
    #[command(flatten)]
    pub stores: StoreArgs,
    /// The flist file to write.
    #[arg(long, short)]
    pub output: PathBuf,
    /// Chunking: `fixed:SIZE` or `cdc:AVG` (sizes with K/M suffix, at most 8M).
    #[arg(long, default_value = "fixed:1M")]
    pub chunking: String,
    /// zstd level.
    #[arg(long, default_value_t = 3)]
    pub level: i32,
    /// Convergent encryption of blocks.
    #[arg(long)]
    pub encrypt: bool,
    /// Pack files smaller than SIZE together, several to a block, in tree order (0: every
    /// file gets blocks of its own). At most the block size.
    #[arg(long = "small-files", default_value = "128K")]
    pub small_files: String,
    /// How to read SOURCE.
    #[arg(long = "source-type", value_enum, default_value = "auto")]
    pub source_type: SourceArg,
    /// Do not show a progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Folder, tar or image to pack.
    pub source: PathBuf,
}

impl PackCmd {
    /// Pack, print a summary on stderr and the identity on stdout.
    pub fn run(self) -> Result<()> {
        let chunk =
            chunk::parse_chunking(&self.chunking).map_err(|m| Error::invalid(&self.source, m))?;
        let opts = PackOptions {
            stores: self.stores.required()?,
            params: Params {
                chunk,
                level: self.level,
                encrypted: self.encrypt,
                small_files: small_files_arg(&self.small_files)?,
                ..Params::default()
            },
            progress: !self.quiet,
            kind: match self.source_type {
                SourceArg::Auto => SourceKind::Auto,
                SourceArg::Dir => SourceKind::Dir,
                SourceArg::Tar => SourceKind::Tar,
                SourceArg::Image => SourceKind::Image,
            },
        };
        let r = pack::pack(&self.source, &self.output, &opts)?;
        let s = &r.stats;
        eprintln!(
            "packed {} entries, {} bytes in {} blocks ({} unique, {} stored) in {:.2}s, dedup {:.2}x",
            r.entries,
            s.plain_bytes,
            s.chunks,
            s.unique_blocks,
            s.unique_stored,
            r.elapsed.as_secs_f64(),
            super::show::ratio(s.plain_bytes, s.unique_plain)
        );
        println!("{}", hex(&r.identity));
        Ok(())
    }
}
