//! What the worker does next for one deployment: a pure decision over the record and the names
//! already attempted in this pass.
//!
//! | record state | next step                                                              |
//! |--------------|------------------------------------------------------------------------|
//! | active       | remove workloads no longer listed (highest rank first), then apply the  |
//! |              | listed ones (lowest rank first); a failure at a rank blocks higher ranks |
//! | deleting     | remove every workload (highest rank first); a failure blocks lower ranks |
//! |              | and once none is left, turn the record into a tombstone                 |
//! | deleted      | nothing                                                                 |

use super::store::Record;
use crate::blueprint::WorkloadSpec;
use bus::api::node::{DeploymentState, Workload, WorkloadState};
use std::collections::HashSet;

/// The next action.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Call the handler's `apply`.
    Apply {
        /// Workload name.
        name: String,
        /// Desired spec.
        workload: Workload,
    },
    /// Call the handler's `remove` with the last applied spec.
    Remove {
        /// Workload name.
        name: String,
        /// Last applied spec.
        workload: Workload,
    },
    /// Drop an entry that was never applied (nothing to remove).
    Forget {
        /// Workload name.
        name: String,
    },
    /// Every workload is gone: keep only a tombstone.
    Tombstone,
    /// Nothing more in this pass.
    Idle,
}

fn removal(rec: &Record, names: &[String], attempted: &HashSet<String>) -> Option<Step> {
    let mut by_rank: Vec<(&String, u8)> = names
        .iter()
        .filter_map(|n| {
            rec.workloads
                .get(n)
                .map(|e| (n, WorkloadSpec::rank(&e.kind)))
        })
        .collect();
    by_rank.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let mut blocked: Option<u8> = None;
    for (name, rank) in by_rank {
        if attempted.contains(name) {
            // still present after an attempt: it failed; keep lower ranks in place
            blocked = Some(blocked.map_or(rank, |b| b.max(rank)));
            continue;
        }
        if blocked.is_some_and(|b| rank < b) {
            return None;
        }
        let entry = rec.workloads.get(name)?;
        return Some(match &entry.applied {
            Some(w) => Step::Remove {
                name: name.clone(),
                workload: w.clone(),
            },
            None => Step::Forget { name: name.clone() },
        });
    }
    None
}

/// Decides the next step for `rec`, given the workload names already attempted in this pass.
pub fn next_step(rec: &Record, attempted: &HashSet<String>) -> Step {
    match (rec.state, &rec.deployment) {
        (DeploymentState::Deleted, _) | (DeploymentState::Active, None) => Step::Idle,
        (DeploymentState::Deleting, _) => {
            let names: Vec<String> = rec.workloads.keys().cloned().collect();
            if names.is_empty() {
                return Step::Tombstone;
            }
            removal(rec, &names, attempted).unwrap_or(Step::Idle)
        }
        (DeploymentState::Active, Some(d)) => {
            let listed: HashSet<&str> = d.workloads.iter().map(|w| w.name.as_str()).collect();
            let gone: Vec<String> = rec
                .workloads
                .keys()
                .filter(|n| !listed.contains(n.as_str()))
                .cloned()
                .collect();
            if let Some(step) = removal(rec, &gone, attempted) {
                return step;
            }
            let mut order: Vec<&Workload> = d.workloads.iter().collect();
            order.sort_by_key(|w| WorkloadSpec::rank(&w.kind));
            let mut failed_rank: Option<u8> = None;
            for wl in order {
                let rank = WorkloadSpec::rank(&wl.kind);
                if failed_rank.is_some_and(|f| rank > f) {
                    return Step::Idle;
                }
                if attempted.contains(&wl.name) {
                    let failed = rec
                        .workloads
                        .get(&wl.name)
                        .is_none_or(|e| e.result.state == WorkloadState::Error);
                    if failed {
                        failed_rank = Some(failed_rank.map_or(rank, |f| f.min(rank)));
                    }
                    continue;
                }
                return Step::Apply {
                    name: wl.name.clone(),
                    workload: wl.clone(),
                };
            }
            Step::Idle
        }
    }
}
