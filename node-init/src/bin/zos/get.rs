//! `zos get ID`, `zos list`.

use super::node::{client, print_json};
use anyhow::Result;
use bus::api::node::{DeploymentView, Get, GetRequest, List, ListRequest};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct GetArgs {
    /// Deployment id
    id: String,
    /// Owner key (hex), when several owners use this id
    #[arg(long)]
    owner: Option<String>,
    /// Print JSON
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    farm: super::remote::Farm,
}

#[derive(clap::Args)]
pub struct ListArgs {
    /// Only this owner's
    #[arg(long)]
    owner: Option<String>,
    /// Include deleted deployments (tombstones)
    #[arg(long)]
    deleted: bool,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

pub fn print_view(v: &DeploymentView) {
    println!(
        "{} version {} {:?} (owner {})",
        v.id, v.version, v.state, v.owner
    );
    for w in v.deployment.iter().flat_map(|d| d.workloads.iter()) {
        let (state, msg, data) = match &w.result {
            Some(r) => (
                format!("{:?}", r.state).to_lowercase(),
                r.message.clone(),
                r.data.to_string(),
            ),
            None => ("init".into(), String::new(), String::new()),
        };
        println!(
            "  {:<20} {:<8} {:<7} {} {}",
            w.name, w.kind, state, data, msg
        );
    }
}

pub async fn get(node: Option<PathBuf>, a: GetArgs) -> Result<()> {
    if !a.farm.etcd.is_empty() {
        return super::remote::get(&a.farm, node.as_ref(), &a.id, a.owner.as_deref(), a.json).await;
    }
    let v = client(node)?
        .call::<Get>(&GetRequest {
            id: a.id,
            owner: a.owner,
        })
        .await?;
    if a.json {
        print_json(&v)
    } else {
        print_view(&v);
        Ok(())
    }
}

pub async fn list(node: Option<PathBuf>, a: ListArgs) -> Result<()> {
    let l = client(node)?
        .call::<List>(&ListRequest {
            owner: a.owner,
            deleted: a.deleted,
        })
        .await?;
    if a.json {
        return print_json(&l);
    }
    for d in &l.deployments {
        let wls: Vec<String> = d
            .workloads
            .iter()
            .map(|(n, k, s)| format!("{n}:{k}={}", format!("{s:?}").to_lowercase()))
            .collect();
        println!(
            "{:<36} v{:<4} {:<9} {}",
            d.id,
            d.version,
            format!("{:?}", d.state).to_lowercase(),
            wls.join(" ")
        );
    }
    Ok(())
}
