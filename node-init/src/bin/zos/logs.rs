//! `zos logs ID WORKLOAD [-f]`: a container's captured output, read from computed.

use super::node::client;
use anyhow::{Result, bail};
use bus::api::compute::copy_logs;
use bus::api::node::{Get, GetRequest};
use node_init::engine::WorkloadCtx;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Deployment id
    id: String,
    /// Container workload name
    workload: String,
    /// Owner key (hex), when several owners use this id
    #[arg(long)]
    owner: Option<String>,
    /// Keep printing new output until the container ends (Ctrl-C to leave earlier)
    #[arg(long, short)]
    follow: bool,
}

pub async fn run(node: Option<PathBuf>, a: Args) -> Result<()> {
    let Some(dir) = node.clone() else {
        bail!("no node given: pass --node DIR or set ZOS_NODE to the node's folder");
    };
    let view = client(node)?
        .call::<Get>(&GetRequest {
            id: a.id.clone(),
            owner: a.owner,
        })
        .await?;
    let is_container = view
        .deployment
        .iter()
        .flat_map(|d| d.workloads.iter())
        .any(|w| w.name == a.workload && w.kind == "container");
    if !is_container {
        bail!("deployment {} has no container named {}", a.id, a.workload);
    }
    let name = WorkloadCtx {
        owner: view.owner,
        deployment: a.id,
        name: a.workload,
    }
    .global_name();
    let computed = bus::Client::new(bus::service_socket(&dir.join("run"), "computed"));
    copy_logs(&computed, &name, a.follow, &mut std::io::stdout())
        .await
        .map_err(|e| anyhow::anyhow!(e))
}
