//! The worker: takes deployment keys off the queue, runs the steps `plan.rs` decides, records
//! each result, and re-queues failed deployments with exponential backoff.

use super::plan::{Step, next_step};
use super::store::now;
use super::{Engine, EngineError, Key, WorkloadCtx};
use bus::api::node::{DeploymentState, WorkloadState};
use std::collections::{HashMap, HashSet};
use tokio::sync::mpsc;

pub(super) async fn worker(engine: Engine, mut rx: mpsc::UnboundedReceiver<Key>) {
    let mut retries: HashMap<Key, u32> = HashMap::new();
    while let Some(key) = rx.recv().await {
        if let Ok(mut p) = engine.inner.pending.lock() {
            p.remove(&key);
        }
        let failed = match engine.reconcile(&key).await {
            Ok(failed) => failed,
            Err(e) => {
                tracing::error!(owner = %key.0, id = %key.1, error = %e, "reconcile failed");
                true
            }
        };
        if failed {
            let n = retries.entry(key.clone()).or_insert(0);
            *n = n.saturating_add(1);
            let delay = engine.inner.backoff.delay(*n);
            tracing::info!(owner = %key.0, id = %key.1, attempt = *n, ?delay, "retrying later");
            let e = engine.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                e.enqueue(key);
            });
        } else {
            retries.remove(&key);
        }
    }
}

impl Engine {
    /// One pass over a deployment; returns whether some step failed.
    async fn reconcile(&self, key: &Key) -> Result<bool, EngineError> {
        let mut attempted: HashSet<String> = HashSet::new();
        let mut failed = false;
        loop {
            let (step, version) = {
                let _g = self.inner.lock.lock().await;
                let Some(rec) = self.inner.store.load(&key.0, &key.1)? else {
                    return Ok(false);
                };
                (next_step(&rec, &attempted), rec.version)
            };
            let ctx = |name: &str| WorkloadCtx {
                owner: key.0.clone(),
                deployment: key.1.clone(),
                name: name.to_string(),
            };
            match step {
                Step::Idle => return Ok(failed),
                Step::Tombstone => {
                    let _g = self.inner.lock.lock().await;
                    if let Some(mut rec) = self.inner.store.load(&key.0, &key.1)?
                        && rec.state == DeploymentState::Deleting
                        && rec.workloads.is_empty()
                    {
                        rec.state = DeploymentState::Deleted;
                        rec.deployment = None;
                        rec.log(None, "deleted", "");
                        self.save(&rec)?;
                        tracing::info!(owner = %rec.owner, id = %rec.id, "deployment deleted");
                        self.publish(&rec, None, "deleted");
                    }
                    return Ok(failed);
                }
                Step::Forget { name } => {
                    attempted.insert(name.clone());
                    let _g = self.inner.lock.lock().await;
                    if let Some(mut rec) = self.inner.store.load(&key.0, &key.1)? {
                        rec.workloads.remove(&name);
                        self.save(&rec)?;
                    }
                }
                Step::Apply { name, workload } => {
                    attempted.insert(name.clone());
                    let res = match self.inner.handlers.get(&workload.kind) {
                        Some(h) => h.apply(&ctx(&name), &workload).await,
                        None => Err(super::HandlerError(format!(
                            "no handler for type {}",
                            workload.kind
                        ))),
                    };
                    let _g = self.inner.lock.lock().await;
                    let Some(mut rec) = self.inner.store.load(&key.0, &key.1)? else {
                        return Ok(failed);
                    };
                    let current = rec
                        .deployment
                        .as_ref()
                        .and_then(|d| d.workloads.iter().find(|w| w.name == name));
                    if rec.version != version
                        || rec.state != DeploymentState::Active
                        || current != Some(&workload)
                    {
                        continue; // superseded while we worked; a new pass is queued
                    }
                    let Some(entry) = rec.workloads.get_mut(&name) else {
                        continue;
                    };
                    let before = (
                        entry.result.state,
                        entry.result.data.clone(),
                        entry.result.message.clone(),
                    );
                    let wl_version = workload.version;
                    match res {
                        Ok(data) => {
                            entry.result.state = WorkloadState::Ok;
                            entry.result.data = data;
                            // a drift repair stays visible in the result until the next change
                            entry.result.message =
                                super::drift::after_repair(&entry.result.message);
                            entry.applied = Some(workload);
                        }
                        Err(e) => {
                            failed = true;
                            tracing::warn!(owner = %key.0, id = %key.1, workload = %name, error = %e, "apply failed");
                            entry.result.state = WorkloadState::Error;
                            entry.result.message = e.0;
                        }
                    }
                    entry.result.version = wl_version;
                    let after = (
                        entry.result.state,
                        entry.result.data.clone(),
                        entry.result.message.clone(),
                    );
                    if before != after {
                        entry.result.updated = now();
                        let (state, msg) = (format!("{:?}", after.0).to_lowercase(), after.2);
                        rec.log(Some(&name), &state, &msg);
                        self.save(&rec)?;
                        self.publish(&rec, Some(&name), &msg);
                    }
                }
                Step::Remove { name, workload } => {
                    attempted.insert(name.clone());
                    let res = match self.inner.handlers.get(&workload.kind) {
                        Some(h) => h.remove(&ctx(&name), &workload).await,
                        None => Err(super::HandlerError(format!(
                            "no handler for type {}",
                            workload.kind
                        ))),
                    };
                    let _g = self.inner.lock.lock().await;
                    let Some(mut rec) = self.inner.store.load(&key.0, &key.1)? else {
                        return Ok(failed);
                    };
                    match res {
                        Ok(()) => {
                            rec.workloads.remove(&name);
                            rec.log(Some(&name), "deleted", "");
                            tracing::info!(owner = %key.0, id = %key.1, workload = %name, "workload removed");
                        }
                        Err(e) => {
                            failed = true;
                            tracing::warn!(owner = %key.0, id = %key.1, workload = %name, error = %e, "remove failed");
                            if let Some(entry) = rec.workloads.get_mut(&name) {
                                entry.result.state = WorkloadState::Error;
                                entry.result.message = format!("remove: {}", e.0);
                                entry.result.updated = now();
                            }
                            rec.log(Some(&name), "error", &format!("remove: {}", e.0));
                        }
                    }
                    self.save(&rec)?;
                    self.publish(&rec, Some(&name), "");
                }
            }
        }
    }
}
