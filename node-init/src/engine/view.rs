//! `Engine::get` and `Engine::list`: what callers see (passwords redacted).

use super::store::Record;
use super::{Engine, EngineError};
use crate::blueprint::redacted;
use bus::api::node::{
    DeploymentList, DeploymentState, DeploymentSummary, DeploymentView, ListRequest, WorkloadState,
};

/// Bound on one workload's live look in `get`.
const LIVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

pub(crate) fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 36
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn valid_owner(o: &str) -> bool {
    o.len() == 64
        && o.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// The redacted view of a record, with workload results filled in.
pub(crate) fn view_of(rec: &Record) -> DeploymentView {
    let deployment = rec.deployment.as_ref().map(|d| {
        let mut d = redacted(d);
        for wl in &mut d.workloads {
            wl.result = rec.workloads.get(&wl.name).map(|e| e.result.clone());
        }
        d
    });
    DeploymentView {
        owner: rec.owner.clone(),
        id: rec.id.clone(),
        version: rec.version,
        hash: rec.hash.clone(),
        state: rec.state,
        deployment,
    }
}

impl Engine {
    /// One deployment; `owner` may be omitted when the id is unique on the node.
    pub async fn get(&self, id: &str, owner: Option<&str>) -> Result<DeploymentView, EngineError> {
        if !valid_id(id) || owner.is_some_and(|o| !valid_owner(o)) {
            return Err(EngineError::NotFound(id.to_string()));
        }
        let owner = match owner {
            Some(o) => o.to_string(),
            None => {
                let mut owners = self.inner.store.owners_of(id)?;
                match owners.len() {
                    0 => return Err(EngineError::NotFound(id.to_string())),
                    1 => owners.remove(0),
                    _ => return Err(EngineError::Ambiguous(id.to_string())),
                }
            }
        };
        let mut view = self
            .inner
            .store
            .load(&owner, id)?
            .map(|r| view_of(&r))
            .ok_or_else(|| EngineError::NotFound(id.to_string()))?;
        self.live(&mut view).await;
        Ok(view)
    }

    /// Replaces the recorded outputs of applied workloads of an active deployment by their
    /// handler's live ones, where it has some ([`super::WorkloadHandler::status`], else the
    /// live fields of [`super::WorkloadHandler::observe`]).
    async fn live(&self, view: &mut DeploymentView) {
        if view.state != DeploymentState::Active {
            return;
        }
        let Some(d) = view.deployment.as_mut() else {
            return;
        };
        for wl in &mut d.workloads {
            let Some(r) = wl.result.as_mut() else {
                continue;
            };
            let Some(h) = self.inner.handlers.get(&wl.kind) else {
                continue;
            };
            if r.state != WorkloadState::Ok || r.version != wl.version {
                continue;
            }
            let ctx = super::WorkloadCtx {
                owner: view.owner.clone(),
                deployment: view.id.clone(),
                name: wl.name.clone(),
            };
            if let Some(data) = h.status(&ctx).await {
                r.data = data;
            } else if let Ok(super::Observed::Live(live)) =
                tokio::time::timeout(LIVE_TIMEOUT, h.observe(&ctx, &r.data)).await
            {
                // between drift passes, `get` still shows what runs (an exited container)
                r.data = super::drift::merged(&r.data, live);
            }
        }
    }

    /// All deployments (tombstones only when asked).
    pub async fn list(&self, req: &ListRequest) -> Result<DeploymentList, EngineError> {
        let deployments = self
            .inner
            .store
            .all()?
            .into_iter()
            .filter(|r| req.owner.as_ref().is_none_or(|o| *o == r.owner))
            .filter(|r| req.deleted || r.state != bus::api::node::DeploymentState::Deleted)
            .map(|r| {
                let workloads = r
                    .deployment
                    .iter()
                    .flat_map(|d| d.workloads.iter())
                    .map(|w| {
                        let state = r
                            .workloads
                            .get(&w.name)
                            .map(|e| e.result.state)
                            .unwrap_or(WorkloadState::Init);
                        (w.name.clone(), w.kind.clone(), state)
                    })
                    .collect();
                DeploymentSummary {
                    owner: r.owner,
                    id: r.id,
                    version: r.version,
                    state: r.state,
                    workloads,
                }
            })
            .collect();
        Ok(DeploymentList { deployments })
    }
}
