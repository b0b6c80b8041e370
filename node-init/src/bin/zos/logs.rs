//! `zos logs SERVICE [-f]`: a supervised daemon's log, read from `<node>/log/` (so it works
//! while node-init is down too); `zos logs ID WORKLOAD [-f]`: a container's captured output,
//! read from computed.

use super::node::client;
use anyhow::{Context, Result, bail};
use bus::api::compute::copy_logs;
use bus::api::node::{Get, GetRequest};
use node_init::engine::WorkloadCtx;
use node_init::supervisor::{logs, service::valid_name};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// A service (storaged, computed, netd, ...), or a deployment id followed by WORKLOAD
    target: String,
    /// Container workload name (with a deployment id)
    workload: Option<String>,
    /// Owner key (hex), when several owners use this id
    #[arg(long)]
    owner: Option<String>,
    /// Keep printing new output (a container's until it ends; Ctrl-C to leave)
    #[arg(long, short)]
    follow: bool,
}

pub async fn run(node: Option<PathBuf>, a: Args) -> Result<()> {
    let Some(dir) = node.clone() else {
        bail!("no node given: pass --node DIR or set ZOS_NODE to the node's folder");
    };
    let Some(workload) = a.workload else {
        let service = a.target;
        if !valid_name(&service) {
            bail!("{service:?} is not a service name");
        }
        let path = logs::log_path(&dir.join("log"), &service);
        let follow = a.follow;
        return tokio::task::spawn_blocking(move || service_log(&service, &path, follow))
            .await
            .context("log reader")?;
    };
    let view = client(node)?
        .call::<Get>(&GetRequest {
            id: a.target.clone(),
            owner: a.owner,
        })
        .await?;
    let is_container = view
        .deployment
        .iter()
        .flat_map(|d| d.workloads.iter())
        .any(|w| w.name == workload && w.kind == "container");
    if !is_container {
        bail!("deployment {} has no container named {workload}", a.target);
    }
    let name = WorkloadCtx {
        owner: view.owner,
        deployment: a.target,
        name: workload,
    }
    .global_name();
    let computed = bus::Client::new(bus::service_socket(&dir.join("run"), "computed"));
    copy_logs(&computed, &name, a.follow, &mut std::io::stdout())
        .await
        .map_err(|e| anyhow::anyhow!(e))
}

/// Prints the rotated files oldest first, then the current one; with `follow`, keeps reading
/// it, and moves to the new file when the supervisor rotates it.
fn service_log(service: &str, path: &Path, follow: bool) -> Result<()> {
    let files = logs::files_oldest_first(path, 16);
    if files.is_empty() {
        bail!(
            "no log of service {service} (looked for {}); `zos services` lists them",
            path.display()
        );
    }
    let mut out = std::io::stdout().lock();
    for f in &files[..files.len() - 1] {
        std::io::copy(&mut std::fs::File::open(f)?, &mut out)?;
    }
    let mut cur = std::fs::File::open(path).with_context(|| path.display().to_string())?;
    std::io::copy(&mut cur, &mut out)?;
    out.flush()?;
    if !follow {
        return Ok(());
    }
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = cur.read(&mut buf)?;
        if n > 0 {
            out.write_all(&buf[..n])?;
            out.flush()?;
            continue;
        }
        std::thread::sleep(Duration::from_millis(200));
        // rotated: the name now points at a new file; the old one is read to its end above
        let renamed = std::fs::metadata(path)
            .is_ok_and(|m| m.ino() != cur.metadata().map(|c| c.ino()).unwrap_or(0));
        if renamed && let Ok(f) = std::fs::File::open(path) {
            cur = f;
        } else if cur.stream_position()? > cur.metadata()?.len() {
            // truncated in place (keep = 0)
            cur.rewind()?;
        }
    }
}
