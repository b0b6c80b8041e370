//! `zos key new FILE`, `zos key show FILE`.

use anyhow::Result;
use clap::Subcommand;
use node_init::keys::KeyPair;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum KeyCmd {
    /// Make a new ed25519 key file (mode 0600) and print its public key
    New {
        /// Where to write the key
        file: PathBuf,
    },
    /// Print the public key of a key file
    Show {
        /// Key file
        file: PathBuf,
    },
}

pub fn run(cmd: KeyCmd) -> Result<()> {
    let key = match cmd {
        KeyCmd::New { file } => KeyPair::create(&file)?,
        KeyCmd::Show { file } => KeyPair::load(&file)?,
    };
    println!("{}", key.public_hex());
    Ok(())
}
