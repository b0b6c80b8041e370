//! `flist keygen`.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use clap::Args;

use crate::error::{IoContext, Result};
use crate::format::hex;
use crate::sign;

/// Arguments of `flist keygen`.
#[derive(Debug, Args)]
pub struct KeygenCmd {
    /// The secret key file to create (mode 0600); the public key goes to FILE.pub.
    #[arg(long, short)]
    pub output: PathBuf,
}

impl KeygenCmd {
    /// Create the key pair and print the public key.
    pub fn run(self) -> Result<()> {
        let output = &self.output;
        let k = sign::generate()?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(output)
            .ctx(output)?;
        writeln!(f, "{}", hex(&k.to_bytes())).ctx(output)?;
        let mut pubp = output.as_os_str().to_owned();
        pubp.push(".pub");
        let pk = hex(&k.verifying_key().to_bytes());
        std::fs::write(&pubp, format!("{pk}\n")).ctx(PathBuf::from(&pubp))?;
        println!("{pk}");
        Ok(())
    }
}
