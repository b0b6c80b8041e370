//! `zos store keygen|put|get`: the owner's key, and objects in and out.

use super::read_key;
use anyhow::Context;
use clap::Args;
use farm::codec::seal::StoreKey;
use farm::ops::Farm;
use farm::store::zdb::ZdbStore;
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;

#[derive(Args)]
pub struct KeygenArgs {
    /// Where to write the key (must not exist)
    file: PathBuf,
}

#[derive(Args)]
pub struct PutArgs {
    /// Your store key file (from `zos store keygen`)
    #[arg(long, env = "ZOS_STORE_KEY", value_name = "FILE")]
    key: PathBuf,
    /// Object name
    name: String,
    /// What to store (- : stdin)
    file: PathBuf,
    /// Data + parity shards per stripe (any M of the K + M nodes may be lost)
    #[arg(long, default_value = "4+2", value_name = "K+M")]
    shards: String,
}

/// `K+M` as (k, m).
fn shape(s: &str) -> anyhow::Result<(u8, u8)> {
    let parsed = s
        .split_once('+')
        .and_then(|(k, m)| Some((k.trim().parse().ok()?, m.trim().parse().ok()?)));
    parsed.ok_or_else(|| anyhow::anyhow!("--shards {s:?}: expected K+M, e.g. 4+2"))
}

#[derive(Args)]
pub struct GetArgs {
    /// Your store key file
    #[arg(long, env = "ZOS_STORE_KEY", value_name = "FILE")]
    key: PathBuf,
    /// Object name
    name: String,
    /// Where to write it (- : stdout); a file appears only once complete and verified
    file: PathBuf,
}

pub fn keygen(a: &KeygenArgs) -> anyhow::Result<()> {
    if a.file.exists() {
        anyhow::bail!("{} exists: not overwriting a key", a.file.display());
    }
    let key = StoreKey::generate();
    nodeutil::fs::write_durable_creating(&a.file, key.to_hex().as_bytes(), 0o600)?;
    println!("store key written to {}", a.file.display());
    Ok(())
}

pub async fn put(mut farm: Farm<ZdbStore>, a: PutArgs) -> anyhow::Result<()> {
    let key = read_key(&a.key)?;
    (farm.params.k, farm.params.m) = shape(&a.shards)?;
    farm.params.validate()?;
    let input: Box<dyn std::io::Read + Send> = if a.file == Path::new("-") {
        Box::new(std::io::stdin())
    } else {
        Box::new(std::fs::File::open(&a.file).with_context(|| format!("{}", a.file.display()))?)
    };
    let r = farm.put(&a.name, input, &key).await?;
    println!(
        "{}\t{}\t{}+{}\t{}",
        r.meta.name, r.meta.size, r.meta.params.k, r.meta.params.m, r.meta.id
    );
    Ok(())
}

pub async fn get(farm: &Farm<ZdbStore>, a: GetArgs) -> anyhow::Result<()> {
    let key = read_key(&a.key)?;
    let mut reader = farm.open(&a.name, &key).await?;
    if a.file == Path::new("-") {
        let mut out = tokio::io::stdout();
        while let Some(stripe) = reader.next_stripe().await? {
            out.write_all(&stripe).await?;
        }
        out.flush().await?;
        return Ok(());
    }
    // Into a temporary file next to the target, renamed over it once every stripe verified.
    let dir = nodeutil::fs::parent_dir(&a.file).to_path_buf();
    let tmp = dir.join(format!(
        ".{}.zos-{}",
        a.file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        nodeutil::random::hex(6)
    ));
    let written = async {
        let mut out = tokio::fs::File::create(&tmp).await?;
        while let Some(stripe) = reader.next_stripe().await? {
            out.write_all(&stripe).await?;
        }
        out.sync_all().await?;
        tokio::fs::rename(&tmp, &a.file).await?;
        tokio::task::spawn_blocking(move || nodeutil::fs::sync_dir(&dir)).await??;
        anyhow::Ok(())
    }
    .await;
    if written.is_err() {
        let _ = tokio::fs::remove_file(&tmp).await;
    }
    written.with_context(|| format!("{}", a.file.display()))
}
