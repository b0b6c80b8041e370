//! The life of one mount as a small state machine:
//!
//! ```text
//! Starting --mounted--> Mounted --signal--> Unmounting --unmounted--> Stopped
//!    |                     |                                  ^
//!    +--mount failed--> Failed   +--unmounted (umount by someone else)-+
//! ```

use std::sync::Mutex;

use super::log;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Starting,
    Mounted,
    Unmounting,
    Stopped,
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The kernel accepted the mount.
    Mounted,
    /// mount(2) or the FUSE handshake failed.
    MountFailed,
    /// SIGTERM/SIGINT/SIGHUP: we unmount.
    Signal,
    /// The kernel ended the session (our unmount, or `umount` by someone else).
    Unmounted,
}

/// The transition function; `None` for an event that does not apply in a state.
pub fn next(s: State, e: Event) -> Option<State> {
    use Event as E;
    use State as S;
    match (s, e) {
        (S::Starting, E::Mounted) => Some(S::Mounted),
        (S::Starting, E::MountFailed) => Some(S::Failed),
        (S::Mounted, E::Signal) => Some(S::Unmounting),
        (S::Unmounting, E::Signal) => Some(S::Unmounting),
        (S::Mounted | S::Unmounting, E::Unmounted) => Some(S::Stopped),
        _ => None,
    }
}

/// A thread-safe holder of the state that logs every transition.
pub struct Lifecycle {
    state: Mutex<State>,
    name: String,
}

impl Lifecycle {
    pub fn new(name: &str) -> Self {
        Lifecycle {
            state: Mutex::new(State::Starting),
            name: name.to_string(),
        }
    }

    pub fn state(&self) -> State {
        *self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Apply an event; returns the new state, or `None` (state unchanged) if it does not apply.
    pub fn fire(&self, e: Event) -> Option<State> {
        let mut g = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let n = next(*g, e)?;
        if n != *g {
            log(&format!("{}: {:?} -> {:?} ({e:?})", self.name, *g, n));
        }
        *g = n;
        Some(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions() {
        assert_eq!(next(State::Starting, Event::Mounted), Some(State::Mounted));
        assert_eq!(
            next(State::Starting, Event::MountFailed),
            Some(State::Failed)
        );
        assert_eq!(next(State::Mounted, Event::Signal), Some(State::Unmounting));
        assert_eq!(next(State::Mounted, Event::Unmounted), Some(State::Stopped));
        assert_eq!(
            next(State::Unmounting, Event::Unmounted),
            Some(State::Stopped)
        );
        assert_eq!(next(State::Stopped, Event::Signal), None);
        assert_eq!(next(State::Starting, Event::Signal), None);
        assert_eq!(next(State::Failed, Event::Mounted), None);
        let l = Lifecycle::new("t");
        assert_eq!(l.fire(Event::Signal), None);
        assert_eq!(l.fire(Event::Mounted), Some(State::Mounted));
        assert_eq!(l.state(), State::Mounted);
    }
}
