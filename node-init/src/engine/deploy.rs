//! `Engine::deploy`: verify, validate, check capacity, then commit the deployment and its job in
//! one atomic write. A refused blueprint changes nothing.

use super::store::{Record, WorkloadEntry, now};
use super::{Engine, EngineError};
use crate::blueprint::{
    BlueprintError, Pool, check_create, check_update, deployment_hash, validate_deployment,
    validate_update,
};
use bus::api::node::{DeployReply, Deployment, DeploymentState, WorkloadResult, WorkloadState};
use nodeutil::hex;
use std::collections::BTreeMap;

impl Engine {
    /// Accepts a signed deployment (creation or update). Returns once it is durably stored; the
    /// worker makes it real afterwards.
    pub async fn deploy(&self, mut d: Deployment) -> Result<DeployReply, EngineError> {
        if self.is_poisoned() {
            return Err(EngineError::Poisoned);
        }
        for wl in &mut d.workloads {
            wl.result = None;
        }
        validate_deployment(&d)?;
        let _guard = self.inner.lock.lock().await;
        let existing = self.inner.store.load(&d.owner, &d.id)?;
        let (hash, need) = match &existing {
            None => (check_create(&d)?, validate_update(None, &d)?),
            Some(rec) => match (rec.state, &rec.deployment) {
                (DeploymentState::Deleted, _) | (_, None) => {
                    return Err(BlueprintError::Tombstoned { id: d.id.clone() }.into());
                }
                (DeploymentState::Deleting, _) => {
                    return Err(BlueprintError::Deleting { id: d.id.clone() }.into());
                }
                (DeploymentState::Active, Some(old)) => {
                    if d.version == rec.version && hex::encode(deployment_hash(&d)?) == rec.hash {
                        return Ok(DeployReply {
                            owner: d.owner,
                            id: d.id,
                            version: rec.version,
                            hash: rec.hash.clone(),
                            changed: false,
                        });
                    }
                    (check_update(old, &d)?, validate_update(Some(old), &d)?)
                }
            },
        };
        self.check_capacity(&need).await?;

        let hash = hex::encode(hash);
        let mut rec = existing.unwrap_or_else(|| Record {
            owner: d.owner.clone(),
            id: d.id.clone(),
            state: DeploymentState::Active,
            version: d.version,
            hash: hash.clone(),
            deployment: None,
            workloads: BTreeMap::new(),
            history: Vec::new(),
        });
        for wl in &d.workloads {
            let unchanged = rec
                .workloads
                .get(&wl.name)
                .and_then(|e| e.applied.as_ref())
                .is_some_and(|a| a.version == wl.version && a.data == wl.data);
            if !unchanged {
                let entry = WorkloadEntry {
                    kind: wl.kind.clone(),
                    applied: rec.workloads.get(&wl.name).and_then(|e| e.applied.clone()),
                    result: WorkloadResult {
                        state: WorkloadState::Init,
                        message: String::new(),
                        data: serde_json::Value::Null,
                        updated: now(),
                        version: wl.version,
                    },
                };
                rec.workloads.insert(wl.name.clone(), entry);
            }
        }
        rec.version = d.version;
        rec.hash = hash.clone();
        rec.state = DeploymentState::Active;
        rec.deployment = Some(d);
        rec.log(None, "accepted", "");
        self.save(&rec)?;
        tracing::info!(owner = %rec.owner, id = %rec.id, version = rec.version, "deployment accepted");
        self.publish(&rec, None, "accepted");
        self.enqueue((rec.owner.clone(), rec.id.clone()));
        Ok(DeployReply {
            owner: rec.owner,
            id: rec.id,
            version: rec.version,
            hash,
            changed: true,
        })
    }

    /// Refuses when the extra bytes needed per pool exceed what storage can give now.
    async fn check_capacity(&self, need: &BTreeMap<Pool, u64>) -> Result<(), EngineError> {
        if need.values().all(|n| *n == 0) {
            return Ok(());
        }
        let storage_needed = need.iter().any(|(p, n)| *p != Pool::Memory && *n > 0);
        let cap = if storage_needed {
            Some(
                self.inner
                    .capacity
                    .capacity()
                    .await
                    .map_err(|e| EngineError::CapacityUnknown(e.0))?,
            )
        } else {
            None
        };
        for (pool, bytes) in need {
            if *bytes == 0 {
                continue;
            }
            let (room, what) = match (pool, &cap) {
                (Pool::Zdb, Some(cap)) => (cap.max_zdb, "zdb namespaces"),
                (Pool::Volume, Some(cap)) => (cap.max_volume, "volumes"),
                (Pool::Memory, _) => (
                    self.inner
                        .capacity
                        .memory_free()
                        .await
                        .map_err(|e| EngineError::CapacityUnknown(e.0))?,
                    "container memory",
                ),
                (_, None) => continue,
            };
            if *bytes > room {
                return Err(EngineError::NoCapacity(format!(
                    "{bytes} more bytes needed for {what}, at most {room} available"
                )));
            }
        }
        Ok(())
    }
}
