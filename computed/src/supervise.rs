//! Supervision: every second, recover containers that lost their shim and notice state
//! changes; and the daemon's health, which shows what went wrong here instead of hiding it:
//! a pass that failed, passes that stopped coming (a hung pass), internal errors of
//! operations, failed containers.

use crate::api::Shared;
use bus::api::compute::{Container, ContainerState};
use bus::api::health::HealthStatus;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// A pass is expected every second; past this without one, health says supervision stalled.
pub const STALL: Duration = Duration::from_secs(10);

#[derive(Debug)]
struct State {
    last_ok: Instant,
    failure: Option<String>,
    failed: Vec<String>,
}

/// The supervision loop's state, shared with the health check.
pub struct Supervision {
    engine: Shared,
    state: Mutex<State>,
}

impl Supervision {
    /// Supervision of `engine`'s containers.
    pub fn new(engine: Shared) -> Supervision {
        Supervision {
            engine,
            state: Mutex::new(State {
                last_ok: Instant::now(),
                failure: None,
                failed: Vec::new(),
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One pass (blocking): begins recoveries, returns every container, or `None` when the
    /// pass failed (health then says why).
    pub fn pass(&self) -> Option<Vec<Container>> {
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let recovering = self.engine.supervise();
            if !recovering.is_empty() {
                tracing::warn!(?recovering, "shims restarted");
            }
            self.engine.list()
        }));
        let mut st = self.state();
        match run {
            Ok(list) => {
                st.last_ok = Instant::now();
                st.failure = None;
                st.failed = list
                    .iter()
                    .filter(|c| c.state == ContainerState::Failed)
                    .map(|c| c.name.clone())
                    .collect();
                Some(list)
            }
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                tracing::error!(error = %what, "supervision pass failed");
                st.failure = Some(what);
                None
            }
        }
    }

    /// The daemon's health now.
    pub fn health(&self) -> (HealthStatus, Option<String>) {
        let mut problems = Vec::new();
        {
            let st = self.state();
            if let Some(f) = &st.failure {
                problems.push(format!("container supervision failed: {f}"));
            }
            let idle = st.last_ok.elapsed();
            if idle > STALL {
                problems.push(format!(
                    "container supervision has not completed a pass for {} s",
                    idle.as_secs()
                ));
            }
            if !st.failed.is_empty() {
                problems.push(format!("failed containers: {:?}", st.failed));
            }
        }
        let faults = self.engine.faults();
        if faults.count > 0 {
            problems.push(format!(
                "{} internal errors, last: {}",
                faults.count, faults.last
            ));
        }
        if problems.is_empty() {
            (HealthStatus::Ok, None)
        } else {
            (HealthStatus::Degraded, Some(problems.join("; ")))
        }
    }
}
