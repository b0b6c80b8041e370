//! The supervisor's decisions as pure functions over a snapshot: start order, which service may
//! start now, what a crash leads to (restart after a backoff, or `failed`), and the stop order.
//! No clock, no process: `now` is passed in, so every rule is tested without waiting.

use super::service::{RestartPolicy, Service};
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// Where a service is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Not started: waiting for the services in its `after` to be ready.
    Waiting,
    /// Started (or adopted), not ready yet.
    Starting {
        /// Its process.
        pid: u32,
    },
    /// Ready.
    Running {
        /// Its process.
        pid: u32,
    },
    /// Crashed; started again at `until`.
    Backoff {
        /// When it may start again.
        until: Instant,
    },
    /// Crashed more often than its policy allows; not restarted.
    Failed {
        /// The last crash.
        reason: String,
    },
    /// Asked to stop.
    Stopping {
        /// Its process.
        pid: u32,
    },
    /// Stopped (shutdown).
    Stopped,
}

impl State {
    /// Its name as `zos services` shows it.
    pub fn name(&self) -> &'static str {
        match self {
            State::Waiting => "waiting",
            State::Starting { .. } => "starting",
            State::Running { .. } => "running",
            State::Backoff { .. } => "backoff",
            State::Failed { .. } => "failed",
            State::Stopping { .. } => "stopping",
            State::Stopped => "stopped",
        }
    }

    /// The process, while there is one.
    pub fn pid(&self) -> Option<u32> {
        match self {
            State::Starting { pid } | State::Running { pid } | State::Stopping { pid } => {
                Some(*pid)
            }
            _ => None,
        }
    }
}

/// A cycle or an unknown name in the `after` lists.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    /// `after` names a service without a definition.
    #[error("service {service} starts after {missing}, which has no definition")]
    Unknown {
        /// The service.
        service: String,
        /// The missing one.
        missing: String,
    },
    /// The `after` lists form a cycle.
    #[error("services {0:?} wait for each other (cycle in `after`)")]
    Cycle(Vec<String>),
}

/// Start order: every service after those in its `after`; ties by name, so the order is stable.
/// Stop order is its reverse.
pub fn start_order(services: &[Service]) -> Result<Vec<String>, OrderError> {
    let mut deps: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for s in services {
        for a in &s.def.after {
            if !services.iter().any(|o| o.name == *a) {
                return Err(OrderError::Unknown {
                    service: s.name.clone(),
                    missing: a.clone(),
                });
            }
        }
        deps.insert(&s.name, s.def.after.iter().map(String::as_str).collect());
    }
    let mut order: Vec<String> = Vec::new();
    while order.len() < deps.len() {
        let next = deps
            .iter()
            .find(|(n, d)| {
                !order.iter().any(|o| o == *n) && d.iter().all(|d| order.contains(&d.to_string()))
            })
            .map(|(n, _)| n.to_string());
        match next {
            Some(n) => order.push(n),
            None => {
                let left = deps
                    .keys()
                    .filter(|n| !order.iter().any(|o| o == *n))
                    .map(|n| n.to_string())
                    .collect();
                return Err(OrderError::Cycle(left));
            }
        }
    }
    Ok(order)
}

/// What a crash leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Start again after this delay.
    Restart(Duration),
    /// Too many crashes in the window.
    Fail,
}

/// Records a crash at `now` in `crashes` (only those within the window are kept) and decides:
/// the n-th crash in the window waits `backoff * 2^(n-1)` (capped), more than `limit` fail.
pub fn on_crash(policy: &RestartPolicy, crashes: &mut VecDeque<Instant>, now: Instant) -> Decision {
    let window = Duration::from_secs(policy.window_secs);
    while crashes
        .front()
        .is_some_and(|t| now.saturating_duration_since(*t) > window)
    {
        crashes.pop_front();
    }
    crashes.push_back(now);
    // bounded: never more than limit + 1 entries are needed to decide
    while crashes.len() > policy.limit as usize + 1 {
        crashes.pop_front();
    }
    let n = crashes.len() as u32;
    if n > policy.limit {
        return Decision::Fail;
    }
    let factor = 1u64 << (n - 1).min(30);
    let ms = policy
        .backoff_ms
        .saturating_mul(factor)
        .min(policy.max_backoff_ms.max(policy.backoff_ms));
    Decision::Restart(Duration::from_millis(ms))
}

/// The services that may be started now, in start order: waiting ones whose `after` services
/// are all running (ready), and those whose backoff has passed. While `stopping` (shutdown),
/// none.
pub fn startable(
    order: &[String],
    services: &[Service],
    states: &BTreeMap<String, State>,
    now: Instant,
    stopping: bool,
) -> Vec<String> {
    if stopping {
        return Vec::new();
    }
    let ready = |n: &str| matches!(states.get(n), Some(State::Running { .. }));
    order
        .iter()
        .filter(|n| match states.get(n.as_str()) {
            Some(State::Waiting) => true,
            Some(State::Backoff { until }) => *until <= now,
            _ => false,
        })
        .filter(|n| {
            services
                .iter()
                .find(|s| s.name == **n)
                .is_some_and(|s| s.def.after.iter().all(|a| ready(a)))
        })
        .cloned()
        .collect()
}

/// The earliest backoff deadline, for the supervisor's next wake-up.
pub fn next_deadline(states: &BTreeMap<String, State>) -> Option<Instant> {
    states
        .values()
        .filter_map(|s| match s {
            State::Backoff { until } => Some(*until),
            _ => None,
        })
        .min()
}

#[cfg(test)]
mod test {
    #![expect(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use crate::supervisor::service::ServiceDef;

    fn svc(name: &str, after: &[&str]) -> Service {
        let mut def = ServiceDef::new("/bin/true", vec![]);
        def.after = after.iter().map(|s| s.to_string()).collect();
        Service {
            name: name.into(),
            def,
        }
    }

    #[test]
    fn order_follows_after_and_refuses_cycles_and_unknown_names() {
        let s = [
            svc("netd", &["storaged"]),
            svc("computed", &["storaged"]),
            svc("storaged", &[]),
        ];
        assert_eq!(start_order(&s).unwrap(), ["storaged", "computed", "netd"]);
        let s = [svc("a", &["b"]), svc("b", &["a"]), svc("c", &[])];
        assert_eq!(
            start_order(&s),
            Err(OrderError::Cycle(vec!["a".into(), "b".into()]))
        );
        let s = [svc("a", &["zz"])];
        assert!(matches!(start_order(&s), Err(OrderError::Unknown { .. })));
    }

    #[test]
    fn backoff_doubles_then_fails_and_old_crashes_are_forgotten() {
        let p = RestartPolicy {
            backoff_ms: 100,
            max_backoff_ms: 300,
            limit: 3,
            window_secs: 10,
        };
        let t0 = Instant::now();
        let mut c = VecDeque::new();
        let ms = |d: u64| Decision::Restart(Duration::from_millis(d));
        assert_eq!(on_crash(&p, &mut c, t0), ms(100));
        assert_eq!(on_crash(&p, &mut c, t0 + Duration::from_secs(1)), ms(200));
        assert_eq!(on_crash(&p, &mut c, t0 + Duration::from_secs(2)), ms(300));
        assert_eq!(
            on_crash(&p, &mut c, t0 + Duration::from_secs(3)),
            Decision::Fail
        );
        // a crash long after the others is a first crash again
        let mut c = VecDeque::from([t0, t0 + Duration::from_secs(1)]);
        assert_eq!(on_crash(&p, &mut c, t0 + Duration::from_secs(60)), ms(100));
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn dependents_start_once_their_dependencies_run_and_nothing_starts_while_stopping() {
        let s = [
            svc("storaged", &[]),
            svc("computed", &["storaged"]),
            svc("netd", &["storaged"]),
        ];
        let order = start_order(&s).unwrap();
        let now = Instant::now();
        let mut st: BTreeMap<String, State> =
            order.iter().map(|n| (n.clone(), State::Waiting)).collect();
        assert_eq!(startable(&order, &s, &st, now, false), ["storaged"]);
        st.insert("storaged".into(), State::Starting { pid: 7 });
        assert!(startable(&order, &s, &st, now, false).is_empty());
        st.insert("storaged".into(), State::Running { pid: 7 });
        assert_eq!(startable(&order, &s, &st, now, false), ["computed", "netd"]);
        st.insert("computed".into(), State::Running { pid: 8 });
        st.insert(
            "netd".into(),
            State::Backoff {
                until: now + Duration::from_millis(200),
            },
        );
        assert!(startable(&order, &s, &st, now, false).is_empty());
        assert_eq!(next_deadline(&st), Some(now + Duration::from_millis(200)));
        let later = now + Duration::from_millis(200);
        assert_eq!(startable(&order, &s, &st, later, false), ["netd"]);
        assert!(startable(&order, &s, &st, later, true).is_empty());
    }
}
