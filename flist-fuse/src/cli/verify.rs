//! `flist verify`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use clap::Args;

use super::stores::StoreArgs;
use crate::blocks::{BlockReader, VerifyReport, paths_holding};
use crate::error::{Error, Result};
use crate::format::{Flist, hex};
use crate::sign;

/// Paths named per failing block, at most.
const PATHS_SHOWN: usize = 8;

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

/// One line per missing or corrupt block, with the files it affects; the blocks a failing
/// store could not be asked about are said once.
fn report(fl: &Flist, file: &Path, r: &VerifyReport) -> Vec<String> {
    let ids: HashSet<_> = r.bad.iter().map(|(b, _)| b.id).collect();
    let paths = paths_holding(fl, &ids);
    let mut lines = Vec::new();
    for (b, e) in &r.bad {
        let ps = paths.get(&b.id).map(Vec::as_slice).unwrap_or_default();
        let mut shown: Vec<String> = ps
            .iter()
            .take(PATHS_SHOWN)
            .map(|p| format!("/{}", String::from_utf8_lossy(p)))
            .collect();
        if ps.len() > PATHS_SHOWN {
            shown.push(format!("and {} more", ps.len() - PATHS_SHOWN));
        }
        lines.push(format!(
            "{}: block {}: {e}; files: {}",
            file.display(),
            hex(&b.id),
            shown.join(", ")
        ));
    }
    if let Some((_, e)) = r.unreadable.first() {
        lines.push(format!(
            "{}: {} blocks could not be read: {e}",
            file.display(),
            r.unreadable.len()
        ));
    }
    lines
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
            let r = BlockReader::open(&fl, file, &stores)?.verify_all(&fl);
            let failed = r.bad.len() + r.unreadable.len();
            if failed > 0 {
                for l in report(&fl, file, &r) {
                    eprintln!("{l}");
                }
                return Err(Error::invalid(
                    file,
                    format!(
                        "{failed} of {} blocks missing, corrupt or unreadable",
                        r.blocks
                    ),
                ));
            }
            r.blocks
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
