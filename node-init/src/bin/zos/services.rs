//! `zos services [--json]`, `zos services restart SERVICE` and `zos version`: the daemons
//! node-init supervises, from `node.services@1` on its socket, under node-init's own health
//! (`node`); `zos services --etcd URLS --node ID`: the snapshot a farm node publishes in its
//! farm's etcd (`node_init::farm_services`), for a node nobody logs into.

use super::node::{client, print_json};
use anyhow::Result;
use bus::api::supervisor::{ListServices, RestartRequest, RestartService, ServiceList};
use std::path::PathBuf;
use std::time::Duration;

/// node-init probes each running daemon's health (1 s bound each) before answering.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    /// Print JSON
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    farm: super::remote::Farm,
    #[command(subcommand)]
    cmd: Option<Sub>,
}

#[derive(clap::Subcommand)]
enum Sub {
    /// Restart one daemon (stop it, start it, wait until it is ready)
    Restart {
        /// Service name (as `zos services` lists it)
        service: String,
        /// Seconds to wait for it to be ready again
        #[arg(long, default_value_t = 60)]
        timeout: u64,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
}

/// `zos services restart SERVICE`.
async fn restart(node: Option<PathBuf>, service: String, timeout: u64, json: bool) -> Result<()> {
    let s = client(node)?
        .call_timeout(Duration::from_secs(timeout.saturating_add(15)))
        .call::<RestartService>(&RestartRequest {
            name: service,
            timeout_secs: timeout,
        })
        .await?;
    if json {
        return print_json(&s);
    }
    println!(
        "{} {} (pid {}, {})",
        s.name,
        s.state,
        s.pid.map_or_else(|| "-".into(), |p| p.to_string()),
        s.readiness
    );
    Ok(())
}

async fn list(node: Option<PathBuf>) -> Result<ServiceList> {
    Ok(client(node)?
        .call_timeout(CALL_TIMEOUT)
        .call::<ListServices>(&bus::api::Empty {})
        .await?)
}

/// node-init's own health (a read-only or full state disk shows here), `None` when it does not
/// answer.
async fn node_health(node: Option<PathBuf>) -> Option<bus::api::health::Health> {
    client(node).ok()?.health().await.ok()
}

pub async fn run(node: Option<PathBuf>, a: Args) -> Result<()> {
    if let Some(Sub::Restart {
        service,
        timeout,
        json,
    }) = a.cmd
    {
        return restart(node, service, timeout, json).await;
    }
    if !a.farm.etcd.is_empty() {
        let p = super::remote::services(&a.farm, node.as_ref()).await?;
        if a.json {
            return print_json(&p);
        }
        // the node's clock against ours: a skew shows as 0
        let age = farm::meta::records::now().saturating_sub(p.at);
        println!("as published by the node {age} s ago (uptimes as of then)");
        print(&p.list);
        return Ok(());
    }
    let l = list(node.clone()).await?;
    let health = node_health(node).await;
    if a.json {
        let mut v = serde_json::to_value(&l)?;
        if let (Some(h), Some(m)) = (&health, v.as_object_mut()) {
            m.insert(
                "node".into(),
                serde_json::json!({"status": h.status, "detail": h.detail}),
            );
        }
        return print_json(&v);
    }
    if let Some(h) = &health {
        let status = serde_json::to_value(h.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        match &h.detail {
            Some(d) => println!("node: {status} ({d})"),
            None => println!("node: {status}"),
        }
    }
    print(&l);
    Ok(())
}

fn print(l: &ServiceList) {
    println!(
        "{:<12} {:<9} {:>8} {:>9} {:>8} {:<10} {:<16} DETAIL",
        "SERVICE", "STATE", "PID", "UPTIME", "RESTARTS", "READY", "VERSION"
    );
    for s in &l.services {
        let dash = || "-".to_string();
        println!(
            "{:<12} {:<9} {:>8} {:>9} {:>8} {:<10} {:<16} {}",
            s.name,
            s.state,
            s.pid.map_or_else(dash, |p| p.to_string()),
            s.uptime_secs.map_or_else(dash, uptime),
            s.restarts,
            s.readiness,
            s.version.clone().unwrap_or_else(dash),
            match (&s.detail, s.adopted) {
                (Some(d), _) => d.clone(),
                (None, true) => "adopted".into(),
                (None, false) => String::new(),
            }
        );
    }
}

fn uptime(s: u64) -> String {
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{}s", s / 60, s % 60),
        3600..86400 => format!("{}h{}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{}h", s / 86400, s % 86400 / 3600),
    }
}

#[derive(clap::Args)]
pub struct VersionArgs {
    /// Print JSON
    #[arg(long)]
    json: bool,
}

/// `zos version`: this CLI's, node-init's and every supervised daemon's.
pub async fn version(node: Option<PathBuf>, a: VersionArgs) -> Result<()> {
    let zos = env!("CARGO_PKG_VERSION");
    let node_list = if node.is_some() {
        Some(list(node).await)
    } else {
        None
    };
    if a.json {
        let l = node_list.transpose()?;
        return print_json(&serde_json::json!({
            "zos": zos,
            "node_init": l.as_ref().map(|l| &l.node_init_version),
            "services": l.as_ref().map(|l| l.services.iter()
                .map(|s| (s.name.clone(), s.version.clone()))
                .collect::<std::collections::BTreeMap<_, _>>()),
        }));
    }
    println!("zos        {zos}");
    match node_list {
        None => {
            println!("(no node given: --node DIR or ZOS_NODE for node-init's and its daemons')")
        }
        Some(l) => {
            let l = l?;
            println!("node-init  {}", l.node_init_version);
            for s in l.services {
                println!(
                    "{:<10} {}",
                    s.name,
                    s.version.unwrap_or_else(|| "unknown".into())
                );
            }
        }
    }
    Ok(())
}
