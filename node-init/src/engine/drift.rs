//! Self-healing: a periodic pass compares what the active deployments ask for with what runs
//! and repairs the difference through the handlers' idempotent `apply`.
//!
//! Each handler observes its workload ([`super::WorkloadHandler::observe`]); [`decide`], a
//! pure function of the recorded entry, the wanted spec and that observation, says what to do:
//!
//! | recorded entry                         | observed          | action                          |
//! |----------------------------------------|-------------------|---------------------------------|
//! | not `ok`, or applied spec != wanted    | anything          | keep (the worker owns it)       |
//! | `ok`, applied == wanted                | drifted (why)     | repair: record why, re-apply    |
//! | `ok`, applied == wanted                | live outputs      | record them if they changed     |
//! | `ok`, applied == wanted                | unknown           | keep (daemon down: no guessing) |
//!
//! A repair is logged, kept in the deployment's history (`drift`), published as an event, and
//! the deployment is queued: the worker re-applies its workloads in rank order and records the
//! outcome (`ok` with the message `repaired: why`, or `error` with retries and backoff as for
//! any failed apply).

use super::store::{WorkloadEntry, now};
use super::{Engine, EngineError, WorkloadCtx};
use bus::api::node::{DeploymentState, Workload, WorkloadState};
use serde_json::{Map, Value};
use std::time::Duration;

/// Bound on one workload's observation.
const OBSERVE_TIMEOUT: Duration = Duration::from_secs(5);

/// What a handler sees of a workload now.
#[derive(Debug, Clone, PartialEq)]
pub enum Observed {
    /// It runs as wanted; these output fields hold their live values (merged over the recorded
    /// outputs: a container's state, pid, restarts).
    Live(Map<String, Value>),
    /// It does not run as wanted (why); a re-apply repairs it.
    Drifted(String),
    /// Cannot tell (the daemon does not answer, or nothing can be looked at).
    Unknown,
}

/// What the drift pass does about one workload.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Nothing.
    Keep,
    /// Record these outputs (the live state changed).
    Record(Value),
    /// Re-apply it; why.
    Repair(String),
}

/// The recorded outputs with `live` fields put over them.
pub(super) fn merged(recorded: &Value, live: Map<String, Value>) -> Value {
    let mut out = match recorded {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    out.extend(live);
    Value::Object(out)
}

/// The drift policy (see the module doc).
pub fn decide(entry: &WorkloadEntry, wanted: &Workload, observed: Observed) -> Action {
    if entry.result.state != WorkloadState::Ok || entry.applied.as_ref() != Some(wanted) {
        return Action::Keep;
    }
    match observed {
        Observed::Unknown => Action::Keep,
        Observed::Drifted(why) => Action::Repair(why),
        Observed::Live(live) => {
            let new = merged(&entry.result.data, live);
            if new == entry.result.data {
                Action::Keep
            } else {
                Action::Record(new)
            }
        }
    }
}

/// Prefix of the result message of a workload being repaired.
const REPAIRING: &str = "repairing: ";

/// The message of a workload applied successfully, given its message before: `repaired: why`
/// after a drift repair, else empty.
pub(super) fn after_repair(before: &str) -> String {
    match before.strip_prefix(REPAIRING) {
        Some(why) => format!("repaired: {why}"),
        None => String::new(),
    }
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DriftReport {
    /// Workloads found drifted and queued for repair (`deployment/workload`).
    pub repaired: Vec<String>,
    /// Workloads whose recorded outputs followed their live state.
    pub updated: Vec<String>,
}

impl Engine {
    /// Starts the periodic drift pass, every `every` (the first one after `every`).
    pub fn watch_drift(&self, every: Duration) {
        let engine = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await; // the first tick is immediate; start already reconciles
            loop {
                tick.tick().await;
                if let Err(e) = engine.check_drift().await {
                    tracing::warn!(error = %e, "drift check failed");
                }
            }
        });
    }

    /// One drift pass over every active deployment (see the module doc).
    pub async fn check_drift(&self) -> Result<DriftReport, EngineError> {
        let mut report = DriftReport::default();
        for rec in self.inner.store.all()? {
            let Some(d) = rec.deployment.as_ref() else {
                continue;
            };
            if rec.state != DeploymentState::Active {
                continue;
            }
            let mut actions = Vec::new();
            for wl in &d.workloads {
                let (Some(entry), Some(h)) = (
                    rec.workloads.get(&wl.name),
                    self.inner.handlers.get(&wl.kind),
                ) else {
                    continue;
                };
                if entry.result.state != WorkloadState::Ok {
                    continue; // the worker retries it; no need to look
                }
                let ctx = WorkloadCtx {
                    owner: rec.owner.clone(),
                    deployment: rec.id.clone(),
                    name: wl.name.clone(),
                };
                let observed =
                    tokio::time::timeout(OBSERVE_TIMEOUT, h.observe(&ctx, &entry.result.data))
                        .await
                        .unwrap_or(Observed::Unknown);
                match decide(entry, wl, observed) {
                    Action::Keep => {}
                    a => actions.push((wl.clone(), a)),
                }
            }
            if actions.is_empty() {
                continue;
            }
            let repair = self
                .record_drift(&rec.owner, &rec.id, rec.version, actions, &mut report)
                .await?;
            if repair {
                self.enqueue((rec.owner.clone(), rec.id.clone()));
            }
        }
        Ok(report)
    }

    /// Records the actions of one deployment (unless it changed meanwhile); true when a repair
    /// is due.
    async fn record_drift(
        &self,
        owner: &str,
        id: &str,
        version: u64,
        actions: Vec<(Workload, Action)>,
        report: &mut DriftReport,
    ) -> Result<bool, EngineError> {
        let _g = self.inner.lock.lock().await;
        let Some(mut rec) = self.inner.store.load(owner, id)? else {
            return Ok(false);
        };
        if rec.version != version || rec.state != DeploymentState::Active {
            return Ok(false); // changed meanwhile: the worker has a pass queued
        }
        let mut repair = false;
        let mut events = Vec::new();
        for (wl, action) in actions {
            let Some(entry) = rec.workloads.get_mut(&wl.name) else {
                continue;
            };
            if entry.applied.as_ref() != Some(&wl) || entry.result.state != WorkloadState::Ok {
                continue;
            }
            let what = format!("{id}/{}", wl.name);
            match action {
                Action::Keep => {}
                Action::Record(data) => {
                    entry.result.data = data;
                    entry.result.updated = now();
                    report.updated.push(what);
                    events.push((wl.name, "live state changed".to_string(), false));
                }
                Action::Repair(why) => {
                    tracing::warn!(owner, id, workload = %wl.name, why = %why, "drift: repairing");
                    entry.result.message = format!("{REPAIRING}{why}");
                    entry.result.updated = now();
                    report.repaired.push(what);
                    events.push((wl.name, format!("{REPAIRING}{why}"), true));
                    repair = true;
                }
            }
        }
        if events.is_empty() {
            return Ok(false);
        }
        for (name, msg, is_repair) in &events {
            if *is_repair {
                rec.log(Some(name.as_str()), "drift", msg);
            }
        }
        self.save(&rec)?;
        for (name, msg, _) in &events {
            self.publish(&rec, Some(name.as_str()), msg);
        }
        Ok(repair)
    }
}

#[cfg(test)]
mod test {
    #![expect(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use bus::api::node::WorkloadResult;
    use serde_json::json;

    fn wl() -> Workload {
        serde_json::from_value(
            json!({"name": "app", "type": "container", "version": 1, "data": {}}),
        )
        .unwrap()
    }

    fn entry(state: WorkloadState, applied: Option<Workload>) -> WorkloadEntry {
        WorkloadEntry {
            kind: "container".into(),
            applied,
            result: WorkloadResult {
                state,
                message: String::new(),
                data: json!({"state": "running", "pid": 7, "rw": "/x"}),
                updated: 0,
                version: 1,
            },
        }
    }

    fn live(v: Value) -> Observed {
        Observed::Live(v.as_object().cloned().unwrap_or_default())
    }

    #[test]
    fn a_drifted_workload_is_repaired() {
        let e = entry(WorkloadState::Ok, Some(wl()));
        assert_eq!(
            decide(&e, &wl(), Observed::Drifted("gone".into())),
            Action::Repair("gone".into())
        );
    }

    #[test]
    fn live_outputs_are_recorded_only_when_they_change() {
        let e = entry(WorkloadState::Ok, Some(wl()));
        assert_eq!(
            decide(&e, &wl(), live(json!({"state": "running", "pid": 7}))),
            Action::Keep
        );
        assert_eq!(
            decide(&e, &wl(), live(json!({"state": "exited", "pid": null}))),
            Action::Record(json!({"state": "exited", "pid": null, "rw": "/x"}))
        );
    }

    #[test]
    fn unknown_or_not_applied_is_left_alone() {
        let ok = entry(WorkloadState::Ok, Some(wl()));
        assert_eq!(decide(&ok, &wl(), Observed::Unknown), Action::Keep);
        let failed = entry(WorkloadState::Error, Some(wl()));
        assert_eq!(
            decide(&failed, &wl(), Observed::Drifted("x".into())),
            Action::Keep
        );
        let pending = entry(WorkloadState::Ok, None);
        assert_eq!(
            decide(&pending, &wl(), Observed::Drifted("x".into())),
            Action::Keep
        );
        let mut newer = wl();
        newer.version = 2;
        assert_eq!(
            decide(&ok, &newer, Observed::Drifted("x".into())),
            Action::Keep
        );
    }
}
