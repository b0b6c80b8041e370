//! Finding the node, blueprint files, and `zos node`.

use anyhow::{Context, Result, bail};
use bus::api::node::{Deployment, DeploymentView, WorkloadState};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The node API client for `--node DIR` / `ZOS_NODE`.
pub fn client(node: Option<PathBuf>) -> Result<bus::Client> {
    let Some(dir) = node else {
        bail!("no node given: pass --node DIR or set ZOS_NODE to the node's folder");
    };
    Ok(bus::Client::new(bus::service_socket(
        &dir.join("run"),
        "node-init",
    )))
}

/// Reads a blueprint file.
pub fn read_blueprint(path: &Path) -> Result<Deployment> {
    let text = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_slice(&text)
        .with_context(|| format!("{} is not a valid blueprint", path.display()))
}

/// Prints JSON.
pub fn print_json<T: serde::Serialize>(v: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// Polls until no workload is pending (`init`) for the current version, or the timeout.
pub async fn wait_settled(
    c: &bus::Client,
    owner: &str,
    id: &str,
    timeout: Duration,
    done: impl Fn(&DeploymentView) -> bool,
) -> Result<DeploymentView> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let v = c
            .call::<bus::api::node::Get>(&bus::api::node::GetRequest {
                id: id.into(),
                owner: Some(owner.into()),
            })
            .await?;
        if done(&v) {
            return Ok(v);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("deployment {id} did not settle within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// All workloads have a result other than `init` for their version.
pub fn settled(v: &DeploymentView) -> bool {
    v.deployment.as_ref().is_some_and(|d| {
        d.workloads.iter().all(|w| {
            w.result
                .as_ref()
                .is_some_and(|r| r.version == w.version && r.state != WorkloadState::Init)
        })
    })
}

#[derive(clap::Args)]
pub struct Args {
    /// Print JSON
    #[arg(long)]
    json: bool,
}

pub async fn run(node: Option<PathBuf>, a: Args) -> Result<()> {
    let id = client(node)?
        .call::<bus::api::node::GetIdentity>(&bus::api::Empty {})
        .await?;
    if a.json {
        print_json(&id)
    } else {
        println!("node id     {}\npublic key  {}", id.node_id, id.public_key);
        Ok(())
    }
}
