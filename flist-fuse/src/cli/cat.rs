//! `flist cat`.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;

use super::show::lookup;
use super::stores::StoreArgs;
use crate::blocks::BlockReader;
use crate::error::{Error, IoContext, Result};

/// Arguments of `flist cat`.
#[derive(Debug, Args)]
pub struct CatCmd {
    /// Store URLs overriding the flist's routes.
    #[command(flatten)]
    pub stores: StoreArgs,
    /// The flist.
    pub file: PathBuf,
    /// A regular file inside the image.
    pub path: String,
}

impl CatCmd {
    /// Write the file's content to stdout (nothing at all if a block fails).
    pub fn run(self) -> Result<()> {
        let (file, path) = (&self.file, &self.path);
        let stores = self.stores.resolve()?;
        let fl = crate::rfs::read_any(file)?;
        let ino = lookup(&fl, file, path)?;
        if !fl.inode(ino).is_some_and(|i| i.is_reg()) {
            return Err(Error::invalid(file, format!("{path}: not a regular file")));
        }
        let r = BlockReader::open(&fl, file, &stores)?;
        // Buffer the whole file so that a failing block writes nothing.
        let mut buf = Vec::new();
        r.copy_file(&fl, ino, &mut buf, Path::new("stdout"))?;
        std::io::stdout().write_all(&buf).ctx("stdout")
    }
}
