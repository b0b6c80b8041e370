//! `zos delete ID --key KEY...`: signs a delete of the current version and submits it.

use super::node::{client, print_json, wait_settled};
use anyhow::{Result, bail};
use bus::api::node::{Delete, DeleteRequest, DeploymentState, Get, GetRequest};
use node_init::blueprint::{add_signature, delete_hash};
use node_init::keys::KeyPair;
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// Deployment id
    id: String,
    /// Owner key file(s) signing the delete
    #[arg(long, required = true)]
    key: Vec<PathBuf>,
    /// Owner key (hex), when several owners use this id
    #[arg(long)]
    owner: Option<String>,
    /// Also wait until the workloads are removed, up to SECONDS
    #[arg(long, value_name = "SECONDS", num_args = 0..=1, default_missing_value = "120")]
    wait: Option<u64>,
    /// Print JSON
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    farm: super::remote::Farm,
}

pub async fn run(node: Option<PathBuf>, a: Args) -> Result<()> {
    if !a.farm.etcd.is_empty() {
        let keys = a
            .key
            .iter()
            .map(|k| KeyPair::load(k))
            .collect::<Result<Vec<_>, _>>()?;
        return super::remote::delete(&a.farm, node.as_ref(), &a.id, a.owner, &keys, a.json).await;
    }
    let c = client(node)?;
    let cur = c
        .call::<Get>(&GetRequest {
            id: a.id.clone(),
            owner: a.owner,
        })
        .await?;
    if cur.state == DeploymentState::Deleted {
        bail!("deployment {} is already deleted", a.id);
    }
    let hash = delete_hash(&cur.owner, &cur.id, cur.version)?;
    let mut req = DeleteRequest {
        owner: cur.owner.clone(),
        id: cur.id.clone(),
        version: cur.version,
        signatures: vec![],
    };
    for k in &a.key {
        add_signature(&mut req.signatures, &hash, &KeyPair::load(k)?);
    }
    let mut v = c.call::<Delete>(&req).await?;
    if let Some(s) = a.wait {
        v = wait_settled(&c, &cur.owner, &cur.id, Duration::from_secs(s), |v| {
            v.state == DeploymentState::Deleted
        })
        .await?;
    }
    if a.json {
        return print_json(&v);
    }
    println!("{} {}", v.id, format!("{:?}", v.state).to_lowercase());
    Ok(())
}
