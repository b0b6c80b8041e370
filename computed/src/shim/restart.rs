//! The restart policy, as a pure function of how a run ended and how long it lasted: the shim
//! loop only sleeps and starts again when told to.

use bus::api::compute::RestartPolicy;
use std::time::Duration;

/// Shortest pause before a restart.
pub const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// Longest pause before a restart.
pub const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// A run that lasted longer than this starts the backoff and the retry count over.
pub const RESET: Duration = Duration::from_secs(10);

/// Restart bookkeeping carried from one run to the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Restarts {
    /// Pause before the next restart.
    pub backoff: Duration,
    /// Restarts in a row without a long run in between.
    pub consecutive: u32,
}

impl Default for Restarts {
    fn default() -> Self {
        Restarts {
            backoff: BACKOFF_MIN,
            consecutive: 0,
        }
    }
}

/// What the shim does after a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The container stays exited.
    Stay,
    /// Start it again after this pause.
    RestartAfter(Duration),
}

/// Decides after a run that `failed` (non-zero exit or a signal) and lasted `ran`.
pub fn decide(
    policy: RestartPolicy,
    failed: bool,
    ran: Duration,
    prev: Restarts,
) -> (Decision, Restarts) {
    let r = if ran > RESET {
        Restarts::default()
    } else {
        prev
    };
    let again = match policy {
        RestartPolicy::Never => false,
        RestartPolicy::Always => true,
        RestartPolicy::OnFailure { max_retries } => failed && r.consecutive < max_retries,
    };
    if !again {
        return (Decision::Stay, r);
    }
    let next = Restarts {
        backoff: (r.backoff * 2).min(BACKOFF_MAX),
        consecutive: r.consecutive.saturating_add(1),
    };
    (Decision::RestartAfter(r.backoff), next)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHORT: Duration = Duration::from_millis(50);

    /// Pauses of successive short runs until the policy says stay.
    fn pauses(policy: RestartPolicy, failed: bool, runs: usize) -> Vec<Duration> {
        let mut r = Restarts::default();
        let mut out = Vec::new();
        for _ in 0..runs {
            match decide(policy, failed, SHORT, r) {
                (Decision::Stay, _) => break,
                (Decision::RestartAfter(d), next) => {
                    out.push(d);
                    r = next;
                }
            }
        }
        out
    }

    #[test]
    fn never_stays_and_on_failure_retries_failures_up_to_its_cap() {
        assert!(pauses(RestartPolicy::Never, true, 10).is_empty());
        let cap = RestartPolicy::OnFailure { max_retries: 2 };
        assert_eq!(pauses(cap, true, 10).len(), 2);
        assert!(
            pauses(cap, false, 10).is_empty(),
            "a clean exit is not retried"
        );
        let none = RestartPolicy::OnFailure { max_retries: 0 };
        assert!(pauses(none, true, 10).is_empty());
    }

    #[test]
    fn always_backs_off_doubling_to_a_cap() {
        let p = pauses(RestartPolicy::Always, false, 12);
        assert_eq!(p.len(), 12);
        assert_eq!(p.first(), Some(&BACKOFF_MIN));
        assert_eq!(p.get(1), Some(&(BACKOFF_MIN * 2)));
        assert_eq!(p.get(2), Some(&(BACKOFF_MIN * 4)));
        assert!(p.windows(2).all(|w| matches!(w, [a, b] if a <= b)));
        assert_eq!(p.last(), Some(&BACKOFF_MAX));
    }

    #[test]
    fn a_long_run_starts_backoff_and_retries_over() {
        let cap = RestartPolicy::OnFailure { max_retries: 1 };
        let worn = Restarts {
            backoff: BACKOFF_MAX,
            consecutive: 1,
        };
        assert_eq!(decide(cap, true, SHORT, worn).0, Decision::Stay);
        let (d, next) = decide(cap, true, RESET + SHORT, worn);
        assert_eq!(d, Decision::RestartAfter(BACKOFF_MIN));
        assert_eq!(next.consecutive, 1);
    }
}
