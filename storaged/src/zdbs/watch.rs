//! When to give up on a zdb server: a pure decision over what the supervisor observed each
//! second (alive, its answer, whether it did any work since the last look).
//!
//! * A server that answers `-LOADING` is loading and is never restarted for it, however long.
//! * One that does not answer yet but works (CPU or I/O moving: replaying its index before it
//!   listens, as older zdbs do) is waited for; it is restarted only after [`STALL`] without any
//!   work, or after [`SLOW_START_CAP`] in all.
//! * One that answered before and now stays silent is hung: restarted after [`HUNG`] without
//!   work, or [`HUNG_CAP`] in all (a busy loop that answers nobody).
//! * A dead one is restarted.
//!
//! Restarts back off: the n-th consecutive failed run waits [`backoff`]`(n)` (1 s doubling to
//! 5 min) before the next start; a run that served for [`STABLE`] resets the count.

use super::process::Answer;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// Work-free silence after which a server that answered before counts as hung.
pub const HUNG: Duration = Duration::from_secs(30);
/// Silence after which a server that answered before is restarted even if it keeps working.
pub const HUNG_CAP: Duration = Duration::from_secs(120);
/// Work-free silence after which a server that never answered counts as stuck.
pub const STALL: Duration = Duration::from_secs(60);
/// Longest a working server may take to start answering at all.
pub const SLOW_START_CAP: Duration = Duration::from_secs(30 * 60);
/// A run that served this long resets the failure count.
pub const STABLE: Duration = Duration::from_secs(60);

/// What a server is doing, for reports and placement.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "state", content = "detail", rename_all = "snake_case")]
pub enum ZdbState {
    /// Started (or adopted), not answering yet.
    #[default]
    Starting,
    /// Answers `-LOADING` (its progress).
    Loading(String),
    /// Serves.
    Up,
    /// Not running; why (the next start waits for the backoff).
    Down(String),
}

/// The supervisor's verdict after one observation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Serves; `first` the first time since it started (re-apply what zdb forgets).
    Up {
        /// First answer of this run.
        first: bool,
    },
    /// Loading or starting: leave it alone.
    Wait,
    /// Stop it (if alive) and start another after [`Watch::retry_at`]; why.
    Restart(String),
}

/// Supervision of one pool's server across its runs.
#[derive(Debug, Clone)]
pub struct Watch {
    /// What it does now.
    pub state: ZdbState,
    /// When the current run started (or was adopted).
    pub started: Instant,
    /// It answered during the current run.
    pub answered: bool,
    /// Since when it has been silent.
    pub silent_since: Option<Instant>,
    /// Last work figure seen and when it last moved.
    pub activity: Option<u64>,
    /// When its work figure last moved (or the run started).
    pub worked_at: Instant,
    /// Consecutive runs that failed before serving [`STABLE`].
    pub failures: u32,
    /// No new start before this.
    pub retry_at: Option<Instant>,
}

/// Wait before the next start after `failures` consecutive failed runs.
pub fn backoff(failures: u32) -> Duration {
    match failures {
        0 => Duration::ZERO,
        n => Duration::from_secs(1u64 << (n - 1).min(9)).min(Duration::from_secs(300)),
    }
}

impl Watch {
    /// A watch with no run yet.
    pub fn new(now: Instant) -> Watch {
        Watch {
            state: ZdbState::Down("not started yet".into()),
            started: now,
            answered: false,
            silent_since: None,
            activity: None,
            worked_at: now,
            failures: 0,
            retry_at: None,
        }
    }

    /// A run begins (started or adopted) now.
    pub fn run_started(&mut self, now: Instant) {
        self.state = ZdbState::Starting;
        self.started = now;
        self.answered = false;
        self.silent_since = None;
        self.activity = None;
        self.worked_at = now;
        self.retry_at = None;
    }

    /// The current run ended (or a start failed) for `why`: count it and back off.
    pub fn run_failed(&mut self, why: String, now: Instant) {
        if self.answered && now.saturating_duration_since(self.started) >= STABLE {
            self.failures = 0;
        }
        self.failures = self.failures.saturating_add(1);
        self.retry_at = Some(now + backoff(self.failures));
        self.state = ZdbState::Down(why);
        self.answered = false;
    }

    /// Whether a new run may start now.
    pub fn may_start(&self, now: Instant) -> bool {
        self.retry_at.is_none_or(|t| now >= t)
    }

    /// Takes one observation of the running server: alive or not, its answer, its work figure.
    pub fn observe(
        &mut self,
        alive: bool,
        answer: Answer,
        activity: Option<u64>,
        now: Instant,
    ) -> Verdict {
        if !alive {
            return Verdict::Restart("exited".into());
        }
        if activity.is_some() && activity != self.activity {
            self.worked_at = now;
        }
        self.activity = activity;
        match answer {
            Answer::Up => {
                let first = !self.answered;
                self.answered = true;
                self.silent_since = None;
                self.state = ZdbState::Up;
                if now.saturating_duration_since(self.started) >= STABLE {
                    self.failures = 0;
                }
                Verdict::Up { first }
            }
            Answer::Loading(progress) => {
                self.silent_since = None;
                self.worked_at = now;
                self.state = ZdbState::Loading(progress);
                Verdict::Wait
            }
            Answer::Silent(why) => {
                let since = *self.silent_since.get_or_insert(now);
                let silent = now.saturating_duration_since(since);
                // Silent and idle: since the silence began, or the last work if later.
                let quiet = now.saturating_duration_since(since.max(self.worked_at));
                let (stall, cap) = if self.answered {
                    (HUNG, HUNG_CAP)
                } else {
                    (STALL, SLOW_START_CAP)
                };
                if quiet >= stall {
                    Verdict::Restart(format!(
                        "silent for {}s without any work ({why})",
                        quiet.as_secs()
                    ))
                } else if silent >= cap {
                    Verdict::Restart(format!("silent for {}s ({why})", silent.as_secs()))
                } else {
                    if !self.answered {
                        self.state = ZdbState::Starting;
                    }
                    Verdict::Wait
                }
            }
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn at(t0: Instant, s: u64) -> Instant {
        t0 + Duration::from_secs(s)
    }

    #[test]
    fn loading_is_never_a_reason_to_restart() {
        let t0 = Instant::now();
        let mut w = Watch::new(t0);
        w.run_started(t0);
        for s in (0..24 * 3600).step_by(3600) {
            let v = w.observe(
                true,
                Answer::Loading("LOADING 1%".into()),
                Some(7),
                at(t0, s),
            );
            assert_eq!(v, Verdict::Wait);
        }
        assert_eq!(w.state, ZdbState::Loading("LOADING 1%".into()));
        assert_eq!(
            w.observe(true, Answer::Up, Some(7), at(t0, 90_000)),
            Verdict::Up { first: true }
        );
        assert_eq!(
            w.observe(true, Answer::Up, Some(7), at(t0, 90_001)),
            Verdict::Up { first: false }
        );
    }

    #[test]
    fn a_silent_server_that_works_is_waited_for_a_stuck_one_is_not() {
        let t0 = Instant::now();
        let silent = || Answer::Silent("connection refused".into());
        // Replaying before it listens: its work figure moves every second.
        let mut w = Watch::new(t0);
        w.run_started(t0);
        for s in 0..600 {
            assert_eq!(
                w.observe(true, silent(), Some(s), at(t0, s)),
                Verdict::Wait,
                "{s}"
            );
        }
        assert_eq!(w.state, ZdbState::Starting);
        // ... but not forever.
        assert!(matches!(
            w.observe(true, silent(), Some(1), at(t0, SLOW_START_CAP.as_secs())),
            Verdict::Restart(_)
        ));
        // Not working and not answering: stuck after STALL, not before.
        let mut w = Watch::new(t0);
        w.run_started(t0);
        assert_eq!(w.observe(true, silent(), Some(5), at(t0, 1)), Verdict::Wait);
        assert_eq!(
            w.observe(true, silent(), Some(5), at(t0, 59)),
            Verdict::Wait
        );
        assert!(matches!(
            w.observe(true, silent(), Some(5), at(t0, 62)),
            Verdict::Restart(_)
        ));
    }

    #[test]
    fn a_server_that_answered_and_hangs_is_restarted_sooner() {
        let t0 = Instant::now();
        let mut w = Watch::new(t0);
        w.run_started(t0);
        assert_eq!(
            w.observe(true, Answer::Up, Some(1), t0),
            Verdict::Up { first: true }
        );
        let silent = || Answer::Silent("no answer".into());
        assert_eq!(
            w.observe(true, silent(), Some(1), at(t0, 10)),
            Verdict::Wait
        );
        assert_eq!(
            w.observe(true, silent(), Some(1), at(t0, 39)),
            Verdict::Wait
        );
        assert!(matches!(
            w.observe(true, silent(), Some(1), at(t0, 41)),
            Verdict::Restart(_)
        ));
        // Busy but answering nobody: restarted at the cap.
        let mut w = Watch::new(t0);
        w.run_started(t0);
        w.observe(true, Answer::Up, Some(1), t0);
        assert_eq!(w.observe(true, silent(), Some(2), at(t0, 1)), Verdict::Wait);
        assert_eq!(
            w.observe(true, silent(), Some(3), at(t0, 100)),
            Verdict::Wait
        );
        assert!(matches!(
            w.observe(true, silent(), Some(4), at(t0, 122)),
            Verdict::Restart(_)
        ));
        assert!(matches!(
            w.observe(false, Answer::Up, None, t0),
            Verdict::Restart(_)
        ));
        // Up and idle for an hour, then one unanswered probe: not a restart.
        let mut w = Watch::new(t0);
        w.run_started(t0);
        w.observe(true, Answer::Up, Some(1), t0);
        w.observe(true, Answer::Up, Some(1), at(t0, 3600));
        assert_eq!(
            w.observe(true, silent(), Some(1), at(t0, 3601)),
            Verdict::Wait
        );
    }

    #[test]
    fn restarts_back_off_and_a_stable_run_resets_the_count() {
        assert_eq!(backoff(0), Duration::ZERO);
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(3), Duration::from_secs(4));
        assert_eq!(backoff(40), Duration::from_secs(300));
        let t0 = Instant::now();
        let mut w = Watch::new(t0);
        // Crashes at once, three times in a row: 1 s, 2 s, 4 s.
        for (n, wait) in [(1, 1), (2, 2), (3, 4)] {
            w.run_started(t0);
            w.run_failed("exited".into(), t0);
            assert_eq!(w.failures, n);
            assert!(!w.may_start(at(t0, wait - 1)) || wait == 1);
            assert!(w.may_start(at(t0, wait)));
        }
        // A run that served a while: the next failure counts from one again.
        w.run_started(t0);
        w.observe(true, Answer::Up, Some(1), at(t0, 1));
        w.observe(true, Answer::Up, Some(1), at(t0, 61));
        assert_eq!(w.failures, 0);
        w.run_failed("exited".into(), at(t0, 70));
        assert_eq!(w.failures, 1);
    }
}
