//! `zos store`: objects in the storage farm (erasure-coded across nodes, metadata in etcd).
//! Talks to the farm's etcd and the nodes' zdb namespaces directly, not to a local node.
//! Secrets come from files (the owner's store key, the namespaces' password), never from the
//! command line.

mod catalog;
mod transfer;

use anyhow::Context;
use clap::{Args, Subcommand};
use farm::codec::seal::StoreKey;
use farm::meta::Meta;
use farm::meta::stores::pick;
use farm::ops::Farm;
use farm::store::zdb::{ZdbStore, ZdbStoreConfig};
use std::path::{Path, PathBuf};
use zdb_client::Secret;

/// Where the farm is and how to reach it.
#[derive(Args)]
pub struct Conn {
    /// The farm's etcd client URLs, comma separated
    #[arg(long, env = "ZOS_ETCD", value_delimiter = ',', global = true)]
    etcd: Vec<String>,
    /// The farm's name
    #[arg(long, env = "ZOS_FARM", default_value = "default", global = true)]
    farm: String,
    /// File holding the password of the farm's shard namespaces (none: namespaces without one)
    #[arg(
        long,
        env = "ZOS_STORE_PASSWORD_FILE",
        global = true,
        value_name = "FILE"
    )]
    password_file: Option<PathBuf>,
    /// The store (an owner's `store` deployment: OWNER/DEPLOYMENT/WORKLOAD or its last parts);
    /// needed only when the farm holds several
    #[arg(long, env = "ZOS_STORE", global = true, value_name = "STORE")]
    store: Option<String>,
    #[command(flatten)]
    security: node_init::etcd_args::EtcdSecurity,
}

/// `zos store ...`.
#[derive(Args)]
pub struct StoreArgs {
    #[command(flatten)]
    conn: Conn,
    #[command(subcommand)]
    cmd: StoreCmd,
}

#[derive(Subcommand)]
enum StoreCmd {
    /// Write a new store key (64 hex digits) to FILE, readable by you only
    Keygen(transfer::KeygenArgs),
    /// Store FILE (or stdin: -) as object NAME, replacing its current version
    Put(transfer::PutArgs),
    /// Read object NAME into FILE (or stdout: -)
    Get(transfer::GetArgs),
    /// List objects (name, size, created, version)
    Ls(catalog::LsArgs),
    /// Remove object NAME (its shards are deleted by the repair loop)
    Rm(catalog::RmArgs),
    /// Show the farm's nodes, their states and the repair loop's progress; with NAME, where
    /// the object's shards are, their nodes' states and its redundancy
    Status(catalog::StatusArgs),
}

/// Runs a `zos store` subcommand.
pub async fn run(a: StoreArgs) -> anyhow::Result<()> {
    match a.cmd {
        StoreCmd::Keygen(k) => transfer::keygen(&k),
        StoreCmd::Put(p) => transfer::put(connect(&a.conn).await?, p).await,
        StoreCmd::Get(g) => transfer::get(&connect(&a.conn).await?, g).await,
        StoreCmd::Ls(l) => catalog::ls(&connect(&a.conn).await?, l).await,
        StoreCmd::Rm(r) => catalog::rm(&connect(&a.conn).await?, r).await,
        StoreCmd::Status(s) => catalog::status(&connect(&a.conn).await?, s).await,
    }
}

async fn connect(c: &Conn) -> anyhow::Result<Farm<ZdbStore>> {
    if c.etcd.is_empty() {
        anyhow::bail!("no farm given: pass --etcd URLS or set ZOS_ETCD");
    }
    let password = match &c.password_file {
        Some(p) => Some(Secret::new(read_secret(p)?)),
        None => None,
    };
    let access = c.security.load()?;
    let at = || format!("farm {} at {}", c.farm, c.etcd.join(","));
    let meta = Meta::connect_with(&c.etcd, &access, &c.farm)
        .await
        .with_context(at)?;
    let known = meta.stores().await.with_context(at)?;
    let store = pick(c.store.as_deref(), &known).map_err(anyhow::Error::msg)?;
    let cfg = ZdbStoreConfig {
        store,
        password,
        ..ZdbStoreConfig::default()
    };
    Farm::over(&meta, cfg).await.with_context(at)
}

/// A secret file's first line (a trailing newline is not part of it).
fn read_secret(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    Ok(text.lines().next().unwrap_or_default().to_string())
}

/// The owner's store key from `path`.
fn read_key(path: &Path) -> anyhow::Result<StoreKey> {
    StoreKey::from_hex(&read_secret(path)?).with_context(|| format!("{}", path.display()))
}
