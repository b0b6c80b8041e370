//! `flist convert`.

use std::path::PathBuf;

use clap::Args;

use super::args::small_files_arg;
use super::stores::{StoreArgs, read_specs};
use crate::blocks::BlockReader;
use crate::convert::{ConvertOptions, convert};
use crate::error::Result;
use crate::format::hex;

/// Arguments of `flist convert`.
#[derive(Debug, Args)]
pub struct ConvertCmd {
    /// Block store to write the new blocks to (at least one; `LO-HI=URL` allowed).
    #[command(flatten)]
    pub stores: StoreArgs,
    /// Store URLs to read the source's blocks from, replacing its routes.
    #[arg(long = "from-store")]
    pub from_stores: Vec<String>,
    /// Read the --from-store URLs from stdin, one per line (not with --stores-stdin).
    #[arg(long = "from-stores-stdin", conflicts_with = "stores_stdin")]
    pub from_stores_stdin: bool,
    /// The flist file to write.
    #[arg(long, short)]
    pub output: PathBuf,
    /// zstd level.
    #[arg(long, default_value_t = 3)]
    pub level: i32,
    /// Convergent encryption of the new blocks.
    #[arg(long)]
    pub encrypt: bool,
    /// Pack files smaller than SIZE together (0: none), as `flist pack` does.
    #[arg(long = "small-files", default_value = "128K")]
    pub small_files: String,
    /// The rfs `.fl` or version-1 flist.
    pub file: PathBuf,
}

impl ConvertCmd {
    /// Convert, print a summary on stderr and the identity on stdout.
    pub fn run(self) -> Result<()> {
        let file = &self.file;
        let opts = ConvertOptions {
            stores: self.stores.required()?,
            level: self.level,
            encrypt: self.encrypt,
            small_files: small_files_arg(&self.small_files)?,
        };
        let mut from = self.from_stores.clone();
        if self.from_stores_stdin {
            from.extend(read_specs(std::io::stdin().lock())?);
        }
        let fl = crate::rfs::read_any(file)?;
        let r = BlockReader::open(&fl, file, &from)?;
        let rep = convert(&fl, &r, &opts, &self.output)?;
        eprintln!(
            "converted {} entries: {} small files packed in {} blocks, {} blocks kept; {} distinct blocks ({} bytes) fetched and verified{}",
            rep.entries,
            rep.packed_files,
            rep.packs,
            rep.kept,
            rep.fetched,
            rep.plain_bytes,
            if rep.dropped_signatures > 0 {
                format!(
                    "; {} signatures dropped (new identity: sign again)",
                    rep.dropped_signatures
                )
            } else {
                String::new()
            }
        );
        println!("{}", hex(&rep.identity));
        Ok(())
    }
}
