//! `zos deploy FILE [--key KEY]... [--wait]`: returns once the node stored the blueprint durably
//! (with `--etcd URLS --node ID`: once etcd did, see `remote.rs`).

use super::node::{client, print_json, read_blueprint, settled, wait_settled};
use anyhow::{Context, Result};
use bus::api::node::{Deploy, DeployRequest};
use node_init::blueprint::sign;
use node_init::keys::KeyPair;
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// Blueprint file
    file: PathBuf,
    /// Sign with this key file first (repeatable; the file is not modified)
    #[arg(long)]
    key: Vec<PathBuf>,
    /// Also wait until every workload is applied (or failed), up to SECONDS
    #[arg(long, value_name = "SECONDS", num_args = 0..=1, default_missing_value = "120")]
    wait: Option<u64>,
    /// Print JSON
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    farm: super::remote::Farm,
}

pub async fn run(node: Option<PathBuf>, a: Args) -> Result<()> {
    let mut d = read_blueprint(&a.file)?;
    for k in &a.key {
        let key = KeyPair::load(k)?;
        sign(&mut d, &key).context("signing")?;
    }
    if !a.farm.etcd.is_empty() {
        return super::remote::deploy(&a.farm, node.as_ref(), d, a.wait, a.json).await;
    }
    let c = client(node)?;
    let reply = c.call::<Deploy>(&DeployRequest { deployment: d }).await?;
    let view = match a.wait {
        Some(s) => {
            Some(wait_settled(&c, &reply.owner, &reply.id, Duration::from_secs(s), settled).await?)
        }
        None => None,
    };
    if a.json {
        return match view {
            Some(v) => print_json(&v),
            None => print_json(&reply),
        };
    }
    let what = if reply.changed {
        "accepted"
    } else {
        "unchanged (already accepted)"
    };
    println!(
        "{} version {} {what} (hash {})",
        reply.id, reply.version, reply.hash
    );
    if let Some(v) = view {
        super::get::print_view(&v);
    }
    Ok(())
}
