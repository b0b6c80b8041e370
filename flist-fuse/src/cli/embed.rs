//! `flist embed-prefetch`.

use std::path::PathBuf;

use clap::Args;

use crate::error::Result;

/// Arguments of `flist embed-prefetch`.
#[derive(Debug, Args)]
pub struct EmbedCmd {
    /// The flist (rewritten in place; its identity does not change).
    pub file: PathBuf,
    /// A list recorded by `flist mount --record` (none: remove the embedded list).
    pub list: Option<PathBuf>,
}

impl EmbedCmd {
    /// Embed the list and say how many blocks it holds.
    pub fn run(self) -> Result<()> {
        let n = crate::mount::prefetch::embed(&self.file, self.list.as_deref())?;
        println!("{}: {n} blocks in the prefetch list", self.file.display());
        Ok(())
    }
}
