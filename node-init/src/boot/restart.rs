//! PID 1 starts the node daemon again when it ends without a power-off asked for: a crash, or
//! a node-init upgrade whose new build died before it was ready (`upgrade/reexec.rs`; in the
//! image node-init starts no guard of its own, PID 1 is it). What runs: the old binary and
//! command line of an unfinished upgrade (its journal; that node-init then records the upgrade
//! as reverted), else the binary of the last upgrade, else the image's, with the boot command
//! line. At most
//! [`MAX_RESTARTS`] within [`WINDOW`]: a daemon that cannot start is left down, reported.

use std::collections::VecDeque;
use std::path::Path;
use std::time::{Duration, Instant};

/// Restarts allowed within [`WINDOW`].
pub const MAX_RESTARTS: usize = 5;
/// See [`MAX_RESTARTS`].
pub const WINDOW: Duration = Duration::from_secs(60);

/// The program and arguments (without argv\[0\]) to start the node daemon with again: the
/// old binary of an unfinished upgrade, else the binary of the last one, else `program`.
pub fn plan(node: &Path, program: &str, args: &[String]) -> (String, Vec<String>) {
    use crate::upgrade::reexec::{PreviousExec, Trial, current_path, trial_path};
    if let Ok(Some(t)) = nodeutil::fs::read_json::<Trial>(&trial_path(node))
        && t.from.is_file()
    {
        return (
            t.from.display().to_string(),
            t.args.iter().skip(1).cloned().collect(),
        );
    }
    match nodeutil::fs::read_json::<PreviousExec>(&current_path(node)) {
        Ok(Some(c)) if c.exec.is_file() => (c.exec.display().to_string(), args.to_vec()),
        _ => (program.to_string(), args.to_vec()),
    }
}

/// The recent restarts.
#[derive(Debug, Default)]
pub struct Budget {
    starts: VecDeque<Instant>,
}

impl Budget {
    /// Whether one more restart at `now` is allowed (and counts it).
    pub fn allow(&mut self, now: Instant) -> bool {
        while self
            .starts
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) > WINDOW)
        {
            self.starts.pop_front();
        }
        if self.starts.len() >= MAX_RESTARTS {
            return false;
        }
        self.starts.push_back(now);
        true
    }
}

#[cfg(test)]
mod test {
    #![expect(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn an_unfinished_upgrade_restarts_the_old_binary_else_the_current_else_the_images() {
        let d = tempfile::tempdir().unwrap();
        let args = vec!["--node".to_string(), "/var/node".into()];
        assert_eq!(
            plan(d.path(), "/usr/bin/node-init", &args),
            ("/usr/bin/node-init".into(), args.clone())
        );
        let old = d.path().join("old-node-init");
        std::fs::write(&old, "").unwrap();
        let t = serde_json::json!({
            "attempt": "a", "pid": 7, "from": old, "to": "/new", "deadline": 0,
            "args": ["node-init", "--node", "/var/node", "--start-storaged"],
            "from_version": "b3:1", "to_version": "b3:2",
        });
        crate::upgrade::journal::write(&crate::upgrade::reexec::trial_path(d.path()), &t).unwrap();
        let (p, a) = plan(d.path(), "/usr/bin/node-init", &args);
        assert_eq!(p, old.display().to_string());
        assert_eq!(a, ["--node", "/var/node", "--start-storaged"]);
        // upgraded since: the binary of the last upgrade
        std::fs::remove_file(crate::upgrade::reexec::trial_path(d.path())).unwrap();
        let cur = serde_json::json!({ "exec": old });
        crate::upgrade::journal::write(&crate::upgrade::reexec::current_path(d.path()), &cur)
            .unwrap();
        assert_eq!(
            plan(d.path(), "/usr/bin/node-init", &args),
            (old.display().to_string(), args.clone())
        );
    }

    #[test]
    fn restarts_are_bounded_within_the_window() {
        let mut b = Budget::default();
        let t = Instant::now();
        for _ in 0..MAX_RESTARTS {
            assert!(b.allow(t));
        }
        assert!(!b.allow(t + Duration::from_secs(1)));
        assert!(b.allow(t + WINDOW + Duration::from_secs(1)));
    }
}
