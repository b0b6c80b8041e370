//! `zos upgrade SERVICE --from PATH`, `zos upgrade --rollback SERVICE` and `zos upgrade --flist
//! URL` (a signed release): node-init installs
//! the binary side by side, migrates, switches and restarts only that daemon, and reverts by
//! itself when the new one fails (`node-init/src/upgrade/`).

use super::node::{client, print_json};
use anyhow::{Context, Result, bail};
use bus::api::upgrade::{
    FlistUpgradeRequest, Outcome, Rollback, RollbackRequest, Upgrade, UpgradeFlist, UpgradeReply,
    UpgradeRequest,
};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Beyond the readiness deadline: stopping the old one, copying and migrating its state.
const CALL_MARGIN: Duration = Duration::from_secs(420);

#[derive(clap::Args)]
#[command(group = clap::ArgGroup::new("what").required(true).args(["from", "rollback", "flist"]))]
pub struct Args {
    /// The service (as `zos services` names it; `zdb` for the node's zdb servers,
    /// `flist` for its flist mounts)
    #[arg(required_unless_present = "flist")]
    service: Option<String>,
    /// The new binary
    #[arg(long, value_name = "PATH")]
    from: Option<PathBuf>,
    /// Go back to the version (and state) the service ran before its last upgrade
    #[arg(long)]
    rollback: bool,
    /// A release: a signed flist holding new daemon binaries (`bin/NAME`), a path or file://
    /// URL; refused unless it verifies with the node's release key
    #[arg(long, value_name = "URL", conflicts_with = "service")]
    flist: Option<String>,
    /// Seconds the new version may take to be ready (default: its definition's)
    #[arg(long, value_name = "SECS")]
    ready_timeout: Option<u64>,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

pub async fn run(node: Option<PathBuf>, a: Args) -> Result<()> {
    let wait = Duration::from_secs(a.ready_timeout.unwrap_or(600)) * 2 + CALL_MARGIN;
    let c = client(node.clone())?.call_timeout(wait);
    if let Some(url) = a.flist {
        // a local path is read by node-init: make it absolute
        let url = match std::fs::canonicalize(&url) {
            Ok(p) if !url.contains("://") => p.display().to_string(),
            _ => url,
        };
        let mut r = c
            .call::<UpgradeFlist>(&FlistUpgradeRequest {
                url,
                ready_timeout_secs: a.ready_timeout,
            })
            .await?;
        // node-init comes last and re-executes itself: its outcome comes from its result file
        if let (Some(last), Some(dir)) = (r.services.last_mut(), node.as_deref())
            && last.outcome == Outcome::Restarting
        {
            let ready = Duration::from_secs(a.ready_timeout.unwrap_or(120));
            *last = wait_self(dir, last, ready + Duration::from_secs(60)).await?;
        }
        if a.json {
            print_json(&r)?;
        } else {
            println!("release signed by {}", r.signer);
            r.services.iter().for_each(print);
        }
        if let Some(bad) = r.services.iter().find(|s| s.outcome == Outcome::Reverted) {
            bail!(
                "{} not upgraded: {}",
                bad.service,
                bad.detail.as_deref().unwrap_or("the new version failed")
            );
        }
        return Ok(());
    }
    let service = a.service.unwrap_or_default();
    let reply = match a.from {
        Some(from) => {
            let from = std::fs::canonicalize(&from)
                .with_context(|| format!("cannot find {}", from.display()))?;
            c.call::<Upgrade>(&UpgradeRequest {
                service,
                from,
                ready_timeout_secs: a.ready_timeout,
            })
            .await?
        }
        None => {
            c.call::<Rollback>(&RollbackRequest {
                service,
                ready_timeout_secs: a.ready_timeout,
            })
            .await?
        }
    };
    let reply = match (reply.outcome, node.as_deref()) {
        (Outcome::Restarting, Some(dir)) => {
            let ready = Duration::from_secs(a.ready_timeout.unwrap_or(120));
            wait_self(dir, &reply, ready + Duration::from_secs(60)).await?
        }
        _ => reply,
    };
    if a.json {
        print_json(&reply)?;
    } else {
        print(&reply);
    }
    if reply.outcome == Outcome::Reverted {
        bail!(
            "{} not upgraded: {}",
            reply.service,
            reply.detail.as_deref().unwrap_or("the new version failed")
        );
    }
    Ok(())
}

/// node-init re-executes itself: waits until the attempt's result is written (by the new
/// node-init once ready, or by the old one back) and its socket answers again.
async fn wait_self(node: &Path, r: &UpgradeReply, within: Duration) -> Result<UpgradeReply> {
    let path = node_init::upgrade::reexec::result_path(node);
    let deadline = tokio::time::Instant::now() + within;
    let result = loop {
        let p = path.clone();
        let got: Option<UpgradeReply> =
            tokio::task::spawn_blocking(move || nodeutil::fs::read_json(&p).ok().flatten()).await?;
        if let Some(g) = got.filter(|g| g.attempt == r.attempt) {
            break g;
        }
        if tokio::time::Instant::now() > deadline {
            bail!(
                "node-init re-executed itself but no result after {} s (see {})",
                within.as_secs(),
                path.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let c = client(Some(node.to_path_buf()))?
        .connect_timeout(Duration::from_secs(1))
        .call_timeout(Duration::from_secs(2));
    while c.health().await.is_err() {
        if tokio::time::Instant::now() > deadline {
            bail!("node-init does not answer after its upgrade");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(result)
}

fn print(r: &UpgradeReply) {
    let pid = r.pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
    match r.outcome {
        Outcome::Upgraded => println!(
            "{}: upgraded {} -> {}{}{pid}",
            r.service,
            r.from_version,
            r.to_version,
            match (
                r.migrated,
                r.taken_over && r.zdb.is_empty() && r.flist.is_empty()
            ) {
                (true, _) => ", state migrated",
                (false, true) => ", taken over live",
                (false, false) => "",
            }
        ),
        Outcome::RolledBack => println!(
            "{}: rolled back {} -> {}{pid}",
            r.service, r.from_version, r.to_version
        ),
        Outcome::Reverted => println!(
            "{}: {} failed, reverted to {}{pid}",
            r.service, r.to_version, r.running_version
        ),
        Outcome::Unchanged => println!("{}: already runs {}{pid}", r.service, r.to_version),
        Outcome::Restarting => println!(
            "{}: re-executing {} -> {}{pid}",
            r.service, r.from_version, r.to_version
        ),
    }
    for m in &r.flist {
        let id = m.identity.get(..16).unwrap_or(&m.identity);
        match (&m.detail, m.pid) {
            (None, Some(pid)) => println!("  flist {id}: taken over by pid {pid}"),
            (d, _) => println!(
                "  flist {id}: the old process serves on ({})",
                d.as_deref().unwrap_or("hand-over failed")
            ),
        }
    }
    for z in &r.zdb {
        match (&z.detail, z.upgraded) {
            (_, true) => println!("  zdb on {}: pid {} -> {}", z.disk, z.old_pid, z.pid),
            (d, false) => println!(
                "  zdb on {}: pid {} serves on ({})",
                z.disk,
                z.pid,
                d.as_deref().unwrap_or("hand-over failed")
            ),
        }
    }
}
