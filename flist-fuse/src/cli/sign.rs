//! `flist sign`.

use std::path::PathBuf;

use clap::Args;

use crate::error::Result;
use crate::format::hex;
use crate::sign;

/// Arguments of `flist sign`.
#[derive(Debug, Args)]
pub struct SignCmd {
    /// Secret key file (64 hex digits), see `keygen`.
    #[arg(long)]
    pub key: PathBuf,
    /// The flist (rewritten in place; its identity does not change).
    pub file: PathBuf,
}

impl SignCmd {
    /// Add the signature and print the public key.
    pub fn run(self) -> Result<()> {
        let k = sign::read_key(&self.key)?;
        let mut fl = crate::rfs::read_ours(&self.file)?;
        sign::sign(&mut fl, &k);
        nodeutil::fs::write_durable(&self.file, &fl.to_bytes(), 0o644)?;
        println!("{}", hex(&k.verifying_key().to_bytes()));
        Ok(())
    }
}
