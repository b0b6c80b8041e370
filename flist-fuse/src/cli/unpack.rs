//! `flist unpack`.

use std::path::PathBuf;

use clap::Args;

use super::stores::StoreArgs;
use crate::blocks::BlockReader;
use crate::error::Result;

/// Arguments of `flist unpack`.
#[derive(Debug, Args)]
pub struct UnpackCmd {
    /// Store URLs overriding the flist's routes.
    #[command(flatten)]
    pub stores: StoreArgs,
    /// The flist.
    pub file: PathBuf,
    /// The folder to create (absent or empty).
    pub dest: PathBuf,
}

impl UnpackCmd {
    /// Unpack the whole tree.
    pub fn run(self) -> Result<()> {
        let stores = self.stores.resolve()?;
        let fl = crate::rfs::read_any(&self.file)?;
        let r = BlockReader::open(&fl, &self.file, &stores)?;
        crate::unpack::unpack(&fl, &r, &self.dest)
    }
}
