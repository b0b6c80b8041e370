//! `zos deploy|get|delete ... --etcd URLS`: blueprints through a farm's etcd instead of a local
//! node's socket. A deployment goes to `deploy/<node>/<owner>/<id>` (`--node ID`), or, when it
//! holds a `store` workload, to the farm-wide `stores/<owner>/<id>` that every node of the farm
//! follows; the nodes write what they made of it to `results/<node>/<owner>/<id>`.

use super::node::{print_json, settled};
use anyhow::{Context, Result, bail};
use bus::api::node::{DeleteRequest, Deployment};
use farm::ids::NodeId;
use farm::meta::Meta;
use node_init::farm_inbox::{BlueprintResult, Envelope, MAX_BLUEPRINT};
use node_init::farm_services::PublishedServices;
use std::path::PathBuf;
use std::time::Duration;

/// Where the farm is.
#[derive(clap::Args)]
pub struct Farm {
    /// Go through the farm's etcd at these client URLs (comma separated) instead of a local
    /// node; `--node` is then the target node's id
    #[arg(long, value_delimiter = ',', value_name = "URLS")]
    pub etcd: Vec<String>,
    /// The farm's name
    #[arg(long, env = "ZOS_FARM", default_value = "default")]
    pub farm: String,
    #[command(flatten)]
    pub security: node_init::etcd_args::EtcdSecurity,
}

/// The target node's id from `--node` (in etcd mode `--node` is an id, not a folder).
fn node_id(node: Option<&PathBuf>) -> Result<NodeId> {
    let s = node.and_then(|p| p.to_str()).unwrap_or_default();
    if s.len() != 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!(
            "with --etcd, --node must be the target node's id (32 hex digits; `zos node` on \
             the node shows it), not {s:?}"
        );
    }
    Ok(NodeId(s.to_ascii_lowercase()))
}

async fn connect(f: &Farm) -> Result<Meta> {
    let access = f.security.load()?;
    Meta::connect_with(&f.etcd, &access, &f.farm)
        .await
        .with_context(|| format!("farm {} at {}", f.farm, f.etcd.join(",")))
}

/// True when `d` is a farm-wide store deployment.
fn is_store(d: &Deployment) -> bool {
    d.workloads.iter().any(|w| w.kind == "store")
}

/// Writes `env` under `key`; returns the revision of the write.
async fn put(meta: &Meta, key: &str, env: &Envelope) -> Result<i64> {
    let bytes = farm::meta::client::to_json(env);
    if bytes.len() > MAX_BLUEPRINT {
        bail!(
            "the document is {} bytes; nodes take at most {MAX_BLUEPRINT}",
            bytes.len()
        );
    }
    let resp = meta
        .retry("put", |mut c| {
            let (key, bytes) = (key.to_string(), bytes.clone());
            async move { c.put(key, bytes, None).await }
        })
        .await?;
    Ok(resp.header().map_or(0, |h| h.revision()))
}

/// Deploys `d` through etcd; with `wait`, waits for the node's result.
pub async fn deploy(
    f: &Farm,
    node: Option<&PathBuf>,
    d: Deployment,
    wait: Option<u64>,
    json: bool,
) -> Result<()> {
    let meta = connect(f).await?;
    let keys = meta.keys().clone();
    let suffix = format!("{}/{}", d.owner, d.id);
    let (owner, id, version) = (d.owner.clone(), d.id.clone(), d.version);
    if is_store(&d) {
        let rev = put(
            &meta,
            &format!("{}{suffix}", keys.stores()),
            &Envelope::Deploy(d),
        )
        .await?;
        println!(
            "{id} version {version} written for every node of farm {} (revision {rev})",
            f.farm
        );
        return Ok(());
    }
    let node = node_id(node)?;
    let rev = put(
        &meta,
        &format!("{}{suffix}", keys.deploy(&node)),
        &Envelope::Deploy(d),
    )
    .await?;
    let Some(secs) = wait else {
        println!("{id} version {version} written for node {node} (revision {rev})");
        return Ok(());
    };
    let r = wait_result(
        &meta,
        &node,
        &owner,
        &id,
        rev,
        Duration::from_secs(secs),
        |r| r.refused.is_some() || r.view.as_ref().is_some_and(settled),
    )
    .await?;
    show(&r, json)?;
    if let Some(why) = &r.refused {
        bail!("node {node} refused it: {why}");
    }
    Ok(())
}

/// Polls the node's result until it answers revision `rev` (or later) and `done` holds.
async fn wait_result(
    meta: &Meta,
    node: &NodeId,
    owner: &str,
    id: &str,
    rev: i64,
    timeout: Duration,
    done: impl Fn(&BlueprintResult) -> bool,
) -> Result<BlueprintResult> {
    let key = format!("{}{owner}/{id}", meta.keys().results(node));
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some((r, _)) = meta.get_json::<BlueprintResult>(&key).await?
            && r.revision >= rev
            && done(&r)
        {
            return Ok(r);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("node {node} did not answer within {timeout:?} (is it up and in the farm?)");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn show(r: &BlueprintResult, json: bool) -> Result<()> {
    if json {
        return print_json(r);
    }
    if let Some(why) = &r.refused {
        println!("refused (revision {}): {why}", r.revision);
    }
    match &r.view {
        Some(v) => super::get::print_view(v),
        None => println!("no deployment on the node"),
    }
    Ok(())
}

/// The results node `node` wrote for id `id` (of `owner`, or any owner).
pub async fn get(
    f: &Farm,
    node: Option<&PathBuf>,
    id: &str,
    owner: Option<&str>,
    json: bool,
) -> Result<()> {
    let meta = connect(f).await?;
    let node = node_id(node)?;
    let prefix = meta.keys().results(&node);
    let mut found = Vec::new();
    for (suffix, value, _) in meta.list_raw(&prefix).await? {
        let Some((o, i)) = suffix.split_once('/') else {
            continue;
        };
        if i == id && owner.is_none_or(|w| w == o) {
            found.push(farm::meta::client::parse::<BlueprintResult>(
                &suffix, &value,
            )?);
        }
    }
    match found.as_slice() {
        [] => bail!("node {node} has written no result for {id}"),
        [r] => show(r, json),
        _ => bail!("several owners have a deployment {id} on node {node}: give --owner"),
    }
}

/// The services snapshot node `node` published (`node_init::farm_services`).
pub async fn services(f: &Farm, node: Option<&PathBuf>) -> Result<PublishedServices> {
    let meta = connect(f).await?;
    let node = node_id(node)?;
    match meta.get_json(&meta.keys().services(&node)).await? {
        Some((p, _)) => Ok(p),
        None => bail!(
            "node {node} publishes no services in farm {} (it is down, not in this farm, or \
             runs a node-init older than the snapshot)",
            f.farm
        ),
    }
}

/// Signs a delete of the current version of `id` (owner: `owner`, else the first key's) and
/// writes it where the deployment was written.
pub async fn delete(
    f: &Farm,
    node: Option<&PathBuf>,
    id: &str,
    owner: Option<String>,
    keys: &[node_init::keys::KeyPair],
    json: bool,
) -> Result<()> {
    let meta = connect(f).await?;
    let owner = match (owner, keys.first()) {
        (Some(o), _) => o,
        (None, Some(k)) => k.public_hex(),
        (None, None) => bail!("give --key"),
    };
    let suffix = format!("{owner}/{id}");
    let mut places = vec![format!("{}{suffix}", meta.keys().stores())];
    if let Ok(n) = node_id(node) {
        places.insert(0, format!("{}{suffix}", meta.keys().deploy(&n)));
    }
    for key in places {
        let Some((value, _)) = meta.get_raw(&key).await? else {
            continue;
        };
        let env = node_init::farm_inbox::parse(&suffix, &value)
            .map_err(|e| anyhow::anyhow!("{key}: {e}"))?;
        let Envelope::Deploy(cur) = env else {
            bail!("deployment {id} is already deleted");
        };
        let hash = node_init::blueprint::delete_hash(&owner, id, cur.version)?;
        let mut req = DeleteRequest {
            owner: owner.clone(),
            id: id.to_string(),
            version: cur.version,
            signatures: vec![],
        };
        for k in keys {
            node_init::blueprint::add_signature(&mut req.signatures, &hash, k);
        }
        let rev = put(&meta, &key, &Envelope::Delete(req)).await?;
        if json {
            return print_json(&serde_json::json!({"key": key, "revision": rev}));
        }
        println!("{id} delete written (revision {rev})");
        return Ok(());
    }
    bail!(
        "no deployment {id} of {owner} in farm {} for that node",
        f.farm
    )
}
