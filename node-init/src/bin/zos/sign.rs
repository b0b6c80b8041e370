//! `zos sign FILE --key KEY`: adds (or refreshes) one signature, rewriting the file atomically.

use super::node::read_blueprint;
use anyhow::{Context, Result};
use node_init::blueprint::{sign, validate_deployment};
use node_init::keys::KeyPair;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Blueprint file
    file: PathBuf,
    /// Key file
    #[arg(long)]
    key: PathBuf,
}

pub fn run(a: Args) -> Result<()> {
    let mut d = read_blueprint(&a.file)?;
    validate_deployment(&d)?;
    let key = KeyPair::load(&a.key)?;
    let hash = sign(&mut d, &key)?;
    // 0600: a blueprint may hold workload passwords.
    let mut text = serde_json::to_vec_pretty(&d)?;
    text.push(b'\n');
    nodeutil::fs::write_durable(&a.file, &text, 0o600)
        .with_context(|| format!("writing {}", a.file.display()))?;
    println!(
        "signed {} version {} (hash {}) by {}; {} signature(s)",
        d.id,
        d.version,
        nodeutil::hex::encode(hash),
        key.public_hex(),
        d.signatures.len()
    );
    Ok(())
}
