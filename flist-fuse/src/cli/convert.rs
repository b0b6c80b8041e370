//! `flist convert`.

use std::path::PathBuf;

use clap::Args;

use super::stores::{StoreArgs, read_specs};
use crate::blocks::BlockReader;
use crate::error::{Error, Result};
use crate::format::hex;

/// Arguments of `flist convert`.
#[derive(Debug, Args)]
pub struct ConvertCmd {
    /// Block store to write our blocks to (at least one; `LO-HI=URL` allowed).
    #[command(flatten)]
    pub stores: StoreArgs,
    /// Store URLs to read the rfs blocks from, replacing the `.fl`'s routes.
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
    /// The rfs `.fl`.
    pub file: PathBuf,
}

impl ConvertCmd {
    /// Convert, print a summary on stderr and the identity on stdout.
    pub fn run(self) -> Result<()> {
        let file = &self.file;
        let stores = self.stores.required()?;
        let mut from = self.from_stores.clone();
        if self.from_stores_stdin {
            from.extend(read_specs(std::io::stdin().lock())?);
        }
        if !crate::rfs::is_rfs(file)? {
            return Err(Error::invalid(
                file,
                "not an rfs .fl (no SQLite header): nothing to convert",
            ));
        }
        let fl = crate::rfs::read_file(file)?;
        let r = BlockReader::open(&fl, file, &from)?;
        let rep = crate::rfs::convert(&fl, &r, &stores, &self.output, self.level, self.encrypt)?;
        eprintln!(
            "converted {} entries; {} distinct blocks ({} bytes) fetched, verified and re-stored",
            rep.entries, rep.blocks, rep.plain_bytes
        );
        println!("{}", hex(&rep.identity));
        Ok(())
    }
}
