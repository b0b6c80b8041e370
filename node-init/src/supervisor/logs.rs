//! Bounded, rotated service logs: a daemon's stdout and stderr are `<node>/log/<name>.log`,
//! opened in append mode. Every second the supervisor checks the sizes; a file over
//! `max_bytes` is copied to `<name>.log.1` (older ones shift to `.2` ... `.keep`, the oldest is
//! dropped) and truncated in place. Writers in append mode go on at the new end.
//!
//! A file, not a pipe to node-init: a daemon (and what it starts with its output inherited,
//! such as a FUSE mount process) must not lose its output, or die of a broken pipe, when
//! node-init itself is killed and restarted and adopts it. The price: lines written between
//! the copy and the truncation are lost, and a file can pass its limit by one second's output.

use super::service::LogPolicy;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

/// `<log dir>/<name>.log`.
pub fn log_path(log_dir: &Path, name: &str) -> PathBuf {
    log_dir.join(format!("{name}.log"))
}

/// The `i`-th rotated file (`.1` is the newest).
pub fn rotated(path: &Path, i: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{i}"));
    PathBuf::from(s)
}

/// Opens (creating, mode 0600) `path` for appending: what a started daemon writes into.
pub fn open_append(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

/// Rotates `path` when it is over the limit; true when it did.
pub fn rotate_if_over(path: &Path, policy: &LogPolicy) -> io::Result<bool> {
    let len = match std::fs::metadata(path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    if len <= policy.max_bytes {
        return Ok(false);
    }
    if policy.keep > 0 {
        for i in (1..policy.keep).rev() {
            let from = rotated(path, i);
            if from.exists() {
                std::fs::rename(&from, rotated(path, i + 1))?;
            }
        }
        std::fs::copy(path, rotated(path, 1))?;
    }
    OpenOptions::new().write(true).open(path)?.set_len(0)?;
    Ok(true)
}

/// The files of a service's log, oldest first (rotated ones, then the current one).
pub fn files_oldest_first(path: &Path, keep: u32) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = (1..=keep.max(16))
        .rev()
        .map(|i| rotated(path, i))
        .filter(|p| p.exists())
        .collect();
    if path.exists() {
        out.push(path.to_path_buf());
    }
    out
}

#[cfg(test)]
mod test {
    #![expect(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use std::io::Write;

    #[test]
    fn rotation_bounds_the_log_and_an_appending_writer_goes_on() {
        let d = tempfile::tempdir().unwrap();
        let path = log_path(d.path(), "svc");
        let policy = LogPolicy {
            max_bytes: 4096,
            keep: 2,
        };
        let mut w = open_append(&path).unwrap();
        for round in 0..4 {
            for i in 0..500 {
                writeln!(w, "line {round}-{i:04}").unwrap();
            }
            assert!(rotate_if_over(&path, &policy).unwrap());
        }
        assert!(!rotate_if_over(&path, &policy).unwrap());
        writeln!(w, "after").unwrap();
        let files = files_oldest_first(&path, 2);
        assert_eq!(files.len(), 3, "{files:?}");
        assert!(!rotated(&path, 3).exists());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "after\n");
        let newest = std::fs::read_to_string(rotated(&path, 1)).unwrap();
        assert!(newest.starts_with("line 3-0000") && newest.ends_with("line 3-0499\n"));
        let older = std::fs::read_to_string(rotated(&path, 2)).unwrap();
        assert!(older.starts_with("line 2-0000"));
    }
}
