//! PID 1's wait loop.
//!
//! Orphans reparented to PID 1 would otherwise stay zombies forever. Every reaped process is
//! printed on the console, so a crashing daemon shows there. The node daemon (node-init, which
//! supervises the others) is started again when it ends unasked ([`super::restart`]).

use super::shutdown::State;
use rustix::process::{WaitOptions, WaitStatus, wait};
use std::time::{Duration, Instant};

/// Reaps every child forever; the node daemon's pid is in `st`, whose exit during a
/// power-off is expected (and reported to the power-off); an unexpected one is started again
/// with `restart` (its pid), within [`super::restart::Budget`].
pub fn reap_forever(st: &State, restart: &dyn Fn() -> Option<u32>) -> ! {
    let mut budget = super::restart::Budget::default();
    loop {
        match wait(WaitOptions::empty()) {
            Ok(Some((pid, status)))
                if Some(pid.as_raw_nonzero().get() as u32) == st.main() && st.requested() =>
            {
                eprintln!("init: node-init stopped ({})", describe(status));
                st.main_exited();
            }
            Ok(Some((pid, status))) if Some(pid.as_raw_nonzero().get() as u32) == st.main() => {
                eprintln!(
                    "init: node-init (pid {}) {}",
                    pid.as_raw_nonzero(),
                    describe(status)
                );
                if budget.allow(Instant::now()) {
                    std::thread::sleep(Duration::from_secs(1));
                    // a power-off asked for meanwhile wants no new daemon
                    if !st.requested() {
                        let new = restart();
                        eprintln!("init: node-init started again (pid {new:?})");
                        st.set_main(new);
                    }
                } else {
                    eprintln!(
                        "init: node-init ended {} times within {:?}: left down",
                        super::restart::MAX_RESTARTS,
                        super::restart::WINDOW
                    );
                    st.set_main(None);
                }
            }
            Ok(Some((pid, status))) => {
                eprintln!(
                    "init: reaped pid {} ({})",
                    pid.as_raw_nonzero(),
                    describe(status)
                );
            }
            // no children at all (ECHILD) or an interrupted wait: look again in a while
            Ok(None) | Err(_) => std::thread::sleep(Duration::from_secs(1)),
        }
    }
}

fn describe(s: WaitStatus) -> String {
    match (s.exit_status(), s.terminating_signal()) {
        (Some(c), _) => format!("exited with status {c}"),
        (_, Some(sig)) => format!("killed by signal {sig}"),
        _ => format!("wait status {:#x}", s.as_raw()),
    }
}
