//! Blueprints through etcd (`node-init --etcd URLS --farm NAME`): the node follows its own
//! prefix `deploy/<node>/` and the farm's `stores/` (farm::meta::inbox: a full listing at
//! start, then a watch resumed at the next revision after a disconnect), hands every document
//! to its own engine through its own API (the same accept path as `zos deploy` on the node:
//! signatures, versions, capacity; a forged or stale one is refused and nothing changes), and
//! writes what became of it under `results/<node>/<owner>/<id>`: the refusal, or the
//! deployment as `zos get` shows it (passwords redacted), rewritten whenever that changes.
//! The node still serves no network API: it only reads etcd and writes its own results.
//!
//! A document is `{"deploy": <signed deployment>}` or `{"delete": <signed delete request>}`
//! ([`Envelope`]), at most [`MAX_BLUEPRINT`] bytes, under the key `<owner>/<id>` it names.
//! Deleting the key itself changes nothing on the node: only a signed delete does.

use crate::blueprint::{StoreSpec, WorkloadSpec};
use bus::api::node::{
    Delete, DeleteRequest, Deploy, DeployRequest, Deployment, DeploymentView, Get, GetRequest,
    WorkloadState,
};
use farm::ids::NodeId;
use farm::meta::Meta;
use farm::meta::inbox::{Entry, follow};
use farm::meta::records::ZdbEndpoint;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Largest document accepted (a blueprint with a few hundred workloads fits).
pub const MAX_BLUEPRINT: usize = 256 * 1024;
/// How often the results of the deployments that came through etcd are compared with what
/// was written back.
pub const REFRESH: Duration = Duration::from_secs(2);

/// A document in a node's prefix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Envelope {
    /// Create or update a deployment.
    Deploy(Deployment),
    /// Delete one.
    Delete(DeleteRequest),
}

impl Envelope {
    /// (owner, id) the document is about.
    pub fn key(&self) -> (&str, &str) {
        match self {
            Envelope::Deploy(d) => (&d.owner, &d.id),
            Envelope::Delete(r) => (&r.owner, &r.id),
        }
    }
}

/// What the node writes back under `results/<node>/<owner>/<id>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlueprintResult {
    /// etcd revision of the document this answers.
    pub revision: i64,
    /// Why it was refused (nothing changed on the node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
    /// The deployment as the node shows it (passwords redacted), with workload results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view: Option<DeploymentView>,
}

/// Parses a document found under `<owner>/<id>` (pure): size, JSON, and the key it names.
pub fn parse(suffix: &str, value: &[u8]) -> Result<Envelope, String> {
    if value.len() > MAX_BLUEPRINT {
        return Err(format!(
            "document of {} bytes is larger than {MAX_BLUEPRINT}",
            value.len()
        ));
    }
    let env: Envelope =
        serde_json::from_slice(value).map_err(|e| format!("not a blueprint document: {e}"))?;
    let (owner, id) = env.key();
    if suffix != format!("{owner}/{id}") {
        return Err(format!(
            "a document under {suffix:?} must be about {suffix:?}, not {owner}/{id}"
        ));
    }
    Ok(env)
}

/// A `store` workload this node hosts and has provisioned: what its farm registration
/// advertises, and the password the repair candidate uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostedStore {
    /// The deployment's owner.
    pub owner: String,
    /// The deployment's id.
    pub id: String,
    /// The `store` workload's name.
    pub workload: String,
    /// Where its namespace is (labelled with [`HostedStore::store`]).
    pub endpoint: ZdbEndpoint,
    /// Its namespace password (from the verified deployment; never logged).
    pub password: bus::api::Secret,
    /// Bytes at most.
    pub size: u64,
}

/// The farm's name for the store of workload `workload` in deployment `owner`/`id`: its
/// objects, node states and repair leader live under it (farm/README.md).
pub fn store_name(owner: &str, id: &str, workload: &str) -> String {
    format!("{owner}/{id}/{workload}")
}

/// The store workloads of farm `farm` in `d` (pure).
pub fn store_specs(d: &Deployment, farm: &str) -> Vec<(String, StoreSpec)> {
    d.workloads
        .iter()
        .filter(|w| w.kind == "store")
        .filter_map(|w| match WorkloadSpec::parse(w) {
            Ok(WorkloadSpec::Store(s)) if s.farm == farm => Some((w.name.clone(), s)),
            _ => None,
        })
        .collect()
}

/// The provisioned namespaces of the `store` workloads in `view` whose specs are `specs`
/// (pure): only workloads whose result is `ok` with an address, port and namespace.
pub fn hosted(view: &DeploymentView, specs: &[(String, StoreSpec)]) -> Vec<HostedStore> {
    let Some(d) = &view.deployment else {
        return Vec::new();
    };
    if view.state != bus::api::node::DeploymentState::Active {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (name, spec) in specs {
        let Some(r) = d
            .workloads
            .iter()
            .find(|w| &w.name == name)
            .and_then(|w| w.result.as_ref())
        else {
            continue;
        };
        let (Some(address), Some(port), Some(namespace)) = (
            r.data.get("address").and_then(|v| v.as_str()),
            r.data.get("port").and_then(|v| v.as_u64()),
            r.data.get("namespace").and_then(|v| v.as_str()),
        ) else {
            continue;
        };
        if r.state != WorkloadState::Ok {
            continue;
        }
        let address = if address.contains(':') {
            format!("[{address}]:{port}")
        } else {
            format!("{address}:{port}")
        };
        out.push(HostedStore {
            owner: view.owner.clone(),
            id: view.id.clone(),
            workload: name.clone(),
            endpoint: ZdbEndpoint {
                address,
                namespace: namespace.to_string(),
                store: Some(store_name(&view.owner, &view.id, name)),
            },
            password: spec.password.clone(),
            size: spec.size,
        });
    }
    out
}

/// One deployment that came through etcd.
struct Tracked {
    revision: i64,
    refused: Option<String>,
    stores: Vec<(String, StoreSpec)>,
    /// The bytes last written back.
    written: Vec<u8>,
}

/// The node's inbox.
pub struct Inbox {
    meta: Meta,
    node: NodeId,
    farm: String,
    api: bus::Client,
    tracked: BTreeMap<(String, String), Tracked>,
    hosted: watch::Sender<Vec<HostedStore>>,
}

impl Inbox {
    /// The inbox of node `node` in farm `farm`, applying through the node's API `api`;
    /// provisioned stores are published on `hosted`.
    pub fn new(
        meta: Meta,
        node: NodeId,
        farm: String,
        api: bus::Client,
        hosted: watch::Sender<Vec<HostedStore>>,
    ) -> Self {
        Inbox {
            meta,
            node,
            farm,
            api,
            tracked: BTreeMap::new(),
            hosted,
        }
    }

    /// Follows the node's prefix and the farm's stores until `stop`.
    pub async fn run(mut self, stop: watch::Receiver<bool>) {
        let keys = self.meta.keys().clone();
        let (tx, mut rx) = mpsc::channel::<Entry>(64);
        let mut tasks = Vec::new();
        for prefix in [keys.deploy(&self.node), keys.stores()] {
            tasks.push(tokio::spawn(follow(
                self.meta.clone(),
                prefix,
                tx.clone(),
                stop.clone(),
            )));
        }
        drop(tx);
        let mut stop = stop;
        let mut tick = tokio::time::interval(REFRESH);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // Decide first, act after: nothing borrowed by `select!` lives across an await.
            let next = tokio::select! {
                e = rx.recv() => e.map(Some),
                _ = tick.tick() => Some(None),
                r = stop.wait_for(|s| *s) => r.is_err().then_some(None),
            };
            match next {
                Some(Some(e)) => self.handle(e).await,
                Some(None) if !*stop.borrow() => self.refresh().await,
                _ => break,
            }
        }
        for t in tasks {
            let _ = t.await;
        }
    }

    /// Applies one document and writes its result.
    async fn handle(&mut self, e: Entry) {
        let Some(value) = e.value else {
            tracing::info!(key = %e.suffix, "blueprint key deleted in etcd (the deployment stays: only a signed delete removes it)");
            return;
        };
        let env = match parse(&e.suffix, &value) {
            Ok(env) => env,
            Err(why) => {
                tracing::warn!(key = %e.suffix, "blueprint from etcd refused: {why}");
                self.write(&e.suffix, e.revision, Some(why), None).await;
                return;
            }
        };
        let (owner, id) = (env.key().0.to_string(), env.key().1.to_string());
        let (outcome, stores) = match env {
            Envelope::Deploy(d) => {
                let stores = store_specs(&d, &self.farm);
                let r = self
                    .api
                    .call::<Deploy>(&DeployRequest { deployment: d })
                    .await
                    .map(|_| ());
                (r, stores)
            }
            Envelope::Delete(req) => (self.api.call::<Delete>(&req).await.map(|_| ()), vec![]),
        };
        let refused = match outcome {
            Ok(()) => None,
            Err(err) => Some(err.to_string()),
        };
        match &refused {
            None => {
                tracing::info!(owner = %owner, id = %id, revision = e.revision, "blueprint from etcd accepted")
            }
            Some(why) => {
                tracing::warn!(owner = %owner, id = %id, "blueprint from etcd refused: {why}")
            }
        }
        let key = (owner, id);
        let stores = match (&refused, self.tracked.remove(&key)) {
            // A refused update leaves the accepted version (and its stores) in place.
            (Some(_), Some(old)) => old.stores,
            _ => stores,
        };
        self.tracked.insert(
            key.clone(),
            Tracked {
                revision: e.revision,
                refused,
                stores,
                written: Vec::new(),
            },
        );
        self.refresh_one(&key).await;
        self.publish().await;
    }

    /// Rewrites every result that changed.
    async fn refresh(&mut self) {
        let keys: Vec<(String, String)> = self.tracked.keys().cloned().collect();
        for k in &keys {
            self.refresh_one(k).await;
        }
        self.publish().await;
    }

    async fn refresh_one(&mut self, key: &(String, String)) {
        let Some(t) = self.tracked.get(key) else {
            return;
        };
        let view = self
            .api
            .call::<Get>(&GetRequest {
                id: key.1.clone(),
                owner: Some(key.0.clone()),
            })
            .await
            .ok();
        let result = BlueprintResult {
            revision: t.revision,
            refused: t.refused.clone(),
            view,
        };
        let bytes = farm::meta::client::to_json(&result);
        if bytes == t.written {
            return;
        }
        let k = format!(
            "{}{}/{}",
            self.meta.keys().results(&self.node),
            key.0,
            key.1
        );
        match tokio::time::timeout(
            Meta::RETRY + Meta::REQUEST,
            self.meta.put_json(&k, &result, None),
        )
        .await
        {
            Ok(Ok(())) => {
                if let Some(t) = self.tracked.get_mut(key) {
                    t.written = bytes;
                }
            }
            Ok(Err(e)) => tracing::warn!("writing the result of {}/{}: {e}", key.0, key.1),
            Err(_) => tracing::warn!("writing the result of {}/{}: timed out", key.0, key.1),
        }
    }

    /// Writes a result for a document that names no deployment it could be tracked under.
    async fn write(
        &self,
        suffix: &str,
        revision: i64,
        refused: Option<String>,
        view: Option<DeploymentView>,
    ) {
        let k = format!("{}{suffix}", self.meta.keys().results(&self.node));
        let r = BlueprintResult {
            revision,
            refused,
            view,
        };
        if let Err(e) = self.meta.put_json(&k, &r, None).await {
            tracing::warn!("writing the result of {suffix}: {e}");
        }
    }

    /// Publishes the provisioned stores (from the node's current views).
    async fn publish(&self) {
        let mut all = Vec::new();
        for ((owner, id), t) in &self.tracked {
            if t.stores.is_empty() {
                continue;
            }
            if let Ok(v) = self
                .api
                .call::<Get>(&GetRequest {
                    id: id.clone(),
                    owner: Some(owner.clone()),
                })
                .await
            {
                all.extend(hosted(&v, &t.stores));
            }
        }
        self.hosted.send_if_modified(|cur| {
            if *cur == all {
                false
            } else {
                *cur = all;
                true
            }
        });
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn documents_are_bounded_and_must_name_their_key() {
        let big = vec![b' '; MAX_BLUEPRINT + 1];
        assert!(parse("a/b", &big).is_err_and(|e| e.contains("larger")));
        assert!(parse("a/b", b"{").is_err_and(|e| e.contains("not a blueprint")));
        let del = serde_json::json!({"delete": {"owner": "a", "id": "b", "version": 0, "signatures": []}});
        let bytes = serde_json::to_vec(&del).unwrap_or_default();
        assert!(parse("a/b", &bytes).is_ok());
        assert!(parse("a/c", &bytes).is_err_and(|e| e.contains("must be about")));
        let unknown = serde_json::json!({"exec": {}});
        assert!(parse("a/b", &serde_json::to_vec(&unknown).unwrap_or_default()).is_err());
    }
}
