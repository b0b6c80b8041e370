//! The mount daemon's log lines, on stderr (its log file when detached).

use std::time::{SystemTime, UNIX_EPOCH};

/// A log line: `flist-mount[PID] SECONDS.MILLIS: msg`.
pub fn log(msg: &str) {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    eprintln!(
        "flist-mount[{}] {}.{:03}: {msg}",
        std::process::id(),
        t.as_secs(),
        t.subsec_millis()
    );
}
