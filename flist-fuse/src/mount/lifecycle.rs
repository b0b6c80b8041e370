//! The life of one mount as a transition table that decides what the daemon does:
//!
//! ```text
//! Starting --mounted--> Mounted --signal/unmount--> Unmounting --unmounted/finish--> Stopped
//!    |                     |        Unmounting --signal/detach--> Unmounting          ^
//!    +--mount failed/fail--> Failed  +------------- unmounted/finish -----------------+
//!
//! Mounted --handing over/serve--> HandingOver --drained/exit--> HandedOver
//!    ^                                 |  (signals ignored: the mount is the new process's)
//!    +------- hand-over failed/serve ---+
//! ```
//!
//! [`next`] is pure; [`Lifecycle::fire`] applies it, logs the transition and hands the
//! action to the caller (the serve module), which performs it. An event that does not apply
//! in a state changes nothing and asks for nothing.

use std::sync::Mutex;

use super::log::log;

/// Where a mount is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Before mount(2) answered.
    Starting,
    /// Serving.
    Mounted,
    /// A signal asked it to go; the kernel has not ended the session yet.
    Unmounting,
    /// The session ended; the daemon winds down.
    Stopped,
    /// It never mounted.
    Failed,
    /// A new process serves the mount too; this one drains.
    HandingOver,
    /// Drained: the mount is the new process's; this one exits without unmounting.
    HandedOver,
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The kernel accepted the mount.
    Mounted,
    /// mount(2) or the FUSE handshake failed.
    MountFailed,
    /// SIGTERM/SIGINT/SIGHUP.
    Signal,
    /// The kernel ended the session (our unmount, or `umount` by someone else).
    Unmounted,
    /// A new process serves the mount (it said Serving); this one starts draining.
    HandingOver,
    /// The drain was given up; this one serves on.
    HandOverFailed,
    /// Every FUSE thread answered what it held and parked.
    Drained,
}

/// What the daemon must do on a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing: keep serving.
    Serve,
    /// Unmount (lazily when busy).
    Unmount,
    /// A further signal while unmounting: detach at once, whatever still uses the mount.
    Detach,
    /// Stop the fetcher, write the recorded prefetch list, log the counters, exit 0.
    Finish,
    /// Report the mount error and exit non-zero.
    Fail,
    /// Stop the fetcher, write the recorded list, log, exit 0 leaving the mount mounted.
    Exit,
}

/// The transition table; `None` for an event that does not apply in a state.
pub fn next(s: State, e: Event) -> Option<(State, Action)> {
    use Event as E;
    use State as S;
    match (s, e) {
        (S::Starting, E::Mounted) => Some((S::Mounted, Action::Serve)),
        (S::Starting, E::MountFailed) => Some((S::Failed, Action::Fail)),
        (S::Mounted, E::Signal) => Some((S::Unmounting, Action::Unmount)),
        (S::Unmounting, E::Signal) => Some((S::Unmounting, Action::Detach)),
        (S::Mounted | S::Unmounting | S::HandingOver, E::Unmounted) => {
            Some((S::Stopped, Action::Finish))
        }
        (S::Mounted, E::HandingOver) => Some((S::HandingOver, Action::Serve)),
        (S::HandingOver, E::Signal) => Some((S::HandingOver, Action::Serve)),
        (S::HandingOver, E::HandOverFailed) => Some((S::Mounted, Action::Serve)),
        (S::HandingOver, E::Drained) => Some((S::HandedOver, Action::Exit)),
        _ => None,
    }
}

/// A thread-safe holder of the state that logs every transition.
pub struct Lifecycle {
    state: Mutex<State>,
    name: String,
}

impl Lifecycle {
    /// A mount about to start; `name` prefixes its log lines.
    pub fn new(name: &str) -> Self {
        Lifecycle {
            state: Mutex::new(State::Starting),
            name: name.to_string(),
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        *self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Apply an event; returns the action to perform, or `None` (state unchanged, nothing to
    /// do) if it does not apply.
    pub fn fire(&self, e: Event) -> Option<Action> {
        let mut g = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (n, action) = next(*g, e)?;
        if n != *g {
            log(&format!("{}: {:?} -> {:?} ({e:?})", self.name, *g, n));
        }
        *g = n;
        Some(action)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions_decide_the_actions() {
        use Action as A;
        use Event as E;
        use State as S;
        assert_eq!(next(S::Starting, E::Mounted), Some((S::Mounted, A::Serve)));
        assert_eq!(
            next(S::Starting, E::MountFailed),
            Some((S::Failed, A::Fail))
        );
        assert_eq!(
            next(S::Mounted, E::Signal),
            Some((S::Unmounting, A::Unmount))
        );
        assert_eq!(
            next(S::Unmounting, E::Signal),
            Some((S::Unmounting, A::Detach))
        );
        assert_eq!(
            next(S::Mounted, E::Unmounted),
            Some((S::Stopped, A::Finish))
        );
        assert_eq!(
            next(S::Unmounting, E::Unmounted),
            Some((S::Stopped, A::Finish))
        );
        assert_eq!(next(S::Stopped, E::Signal), None);
        assert_eq!(next(S::Starting, E::Signal), None);
        assert_eq!(next(S::Failed, E::Mounted), None);
        let l = Lifecycle::new("t");
        assert_eq!(l.fire(E::Signal), None);
        assert_eq!(l.fire(E::Mounted), Some(A::Serve));
        assert_eq!(l.fire(E::Signal), Some(A::Unmount));
        assert_eq!(l.fire(E::Signal), Some(A::Detach));
        assert_eq!(l.fire(E::Unmounted), Some(A::Finish));
        assert_eq!(l.state(), S::Stopped);
        assert_eq!(l.fire(E::Signal), None);
    }

    #[test]
    fn a_mount_handed_over_ignores_signals_and_exits_mounted() {
        use Action as A;
        use Event as E;
        use State as S;
        let l = Lifecycle::new("t");
        assert_eq!(l.fire(E::HandingOver), None);
        assert_eq!(l.fire(E::Mounted), Some(A::Serve));
        assert_eq!(l.fire(E::HandingOver), Some(A::Serve));
        assert_eq!(l.fire(E::Signal), Some(A::Serve));
        assert_eq!(l.fire(E::HandOverFailed), Some(A::Serve));
        assert_eq!(l.state(), S::Mounted);
        assert_eq!(l.fire(E::Drained), None);
        assert_eq!(l.fire(E::HandingOver), Some(A::Serve));
        assert_eq!(l.fire(E::Drained), Some(A::Exit));
        assert_eq!(l.state(), S::HandedOver);
        assert_eq!(l.fire(E::Signal), None);
        assert_eq!(l.fire(E::Unmounted), None);
        assert_eq!(
            next(S::HandingOver, E::Unmounted),
            Some((S::Stopped, A::Finish))
        );
    }
}
