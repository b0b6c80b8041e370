//! `flist verify`.

use std::path::PathBuf;

use clap::Args;

use super::stores::StoreArgs;
use crate::blocks::BlockReader;
use crate::error::Result;
use crate::format::hex;
use crate::sign;

/// Arguments of `flist verify`.
#[derive(Debug, Args)]
pub struct VerifyCmd {
    /// Store URLs overriding the flist's routes.
    #[command(flatten)]
    pub stores: StoreArgs,
    /// Require a valid signature by this ed25519 public key (hex).
    #[arg(long)]
    pub pubkey: Option<String>,
    /// The flist.
    pub file: PathBuf,
}

impl VerifyCmd {
    /// Check the file, its signatures and every block.
    pub fn run(self) -> Result<()> {
        let file = &self.file;
        let stores = self.stores.resolve()?;
        let fl = crate::rfs::read_any(file)?;
        let req = self
            .pubkey
            .as_deref()
            .map(|k| sign::parse_public(k, file))
            .transpose()?;
        let signers = sign::verify(&fl, file, req.as_ref())?;
        let n = if fl.blocks.is_empty() {
            0
        } else {
            BlockReader::open(&fl, file, &stores)?.verify_all(&fl)?
        };
        println!(
            "{}: ok, identity {}, {} blocks verified, {}",
            file.display(),
            hex(&fl.identity),
            n,
            if signers.is_empty() {
                "unsigned".to_string()
            } else {
                format!("signed by {}", signers.join(", "))
            }
        );
        Ok(())
    }
}
