//! PID 1's wait loop.
//!
//! TEMPORARY (issue 21): the supervisor being written in `node-init/src/supervisor/` replaces
//! this function; until then PID 1 only reaps. Orphans reparented to PID 1 would otherwise stay
//! zombies forever. Every reaped process is printed on the console, so a crashing daemon shows
//! there; nothing is restarted.

use super::shutdown::State;
use rustix::process::{WaitOptions, WaitStatus, wait};
use std::time::Duration;

/// Reaps every child forever; the node daemon's pid is in `st`, whose exit during a
/// power-off is expected (and reported to the power-off).
pub fn reap_forever(st: &State) -> ! {
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
                    "init: node-init (pid {}) {}; nothing restarts it yet (issue 21)",
                    pid.as_raw_nonzero(),
                    describe(status)
                );
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
