//! Bounded, rotated service logs: a daemon's stdout and stderr go through one pipe to
//! `<node>/log/<name>.log`; at `max_bytes` the file becomes `<name>.log.1` (older ones shift
//! to `.2` ... `.keep`, the oldest is dropped) and a new one starts. So a service never holds
//! more than `(keep + 1) * max_bytes` of log (plus one write).
//!
//! The copying runs on its own thread per started process (it ends when the last writer of the
//! pipe closes), never on the async runtime.

use super::service::LogPolicy;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

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

/// A log file that rotates itself at its size limit.
pub struct RotatingLog {
    path: PathBuf,
    policy: LogPolicy,
    file: File,
    size: u64,
}

impl RotatingLog {
    /// Opens (appends to) `path`.
    pub fn open(path: &Path, policy: LogPolicy) -> io::Result<Self> {
        let file = open_append(path)?;
        let size = file.metadata()?.len();
        Ok(Self {
            path: path.to_path_buf(),
            policy,
            file,
            size,
        })
    }

    /// Appends `buf`, rotating first when it would pass the limit.
    pub fn write(&mut self, buf: &[u8]) -> io::Result<()> {
        if self.size > 0 && self.size + buf.len() as u64 > self.policy.max_bytes {
            self.rotate()?;
        }
        self.file.write_all(buf)?;
        self.size += buf.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        if self.policy.keep == 0 {
            self.file.set_len(0)?;
        } else {
            for i in (1..self.policy.keep).rev() {
                let from = rotated(&self.path, i);
                if from.exists() {
                    std::fs::rename(&from, rotated(&self.path, i + 1))?;
                }
            }
            std::fs::rename(&self.path, rotated(&self.path, 1))?;
            self.file = open_append(&self.path)?;
        }
        self.size = 0;
        Ok(())
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

/// Copies everything read from `from` (a pipe) into `log` on a new thread, until end of file.
pub fn capture(mut from: impl Read + Send + 'static, log: Arc<Mutex<RotatingLog>>, name: String) {
    let spawned = std::thread::Builder::new()
        .name(format!("log-{name}"))
        .spawn(move || {
            let mut buf = vec![0u8; 16 << 10];
            loop {
                let n = match from.read(&mut buf) {
                    Ok(0) => return,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => return,
                };
                let mut l = log.lock().unwrap_or_else(|p| p.into_inner());
                if let Err(e) = l.write(&buf[..n]) {
                    // keep draining the pipe (the daemon must never block on its log)
                    tracing::warn!(service = %name, error = %e, "cannot write service log");
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start a log thread");
    }
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

    #[test]
    fn rotation_bounds_the_log_and_keeps_the_newest_lines() {
        let d = tempfile::tempdir().unwrap();
        let path = log_path(d.path(), "svc");
        let policy = LogPolicy {
            max_bytes: 4096,
            keep: 2,
        };
        let mut l = RotatingLog::open(&path, policy).unwrap();
        for i in 0..1000 {
            l.write(format!("line {i:05}\n").as_bytes()).unwrap();
        }
        let files = files_oldest_first(&path, 2);
        assert_eq!(files.len(), 3, "{files:?}");
        assert!(!rotated(&path, 3).exists());
        for f in &files {
            assert!(std::fs::metadata(f).unwrap().len() <= 4096);
        }
        let all: String = files
            .iter()
            .map(|f| std::fs::read_to_string(f).unwrap())
            .collect();
        assert!(all.ends_with("line 00999\n"));
        // lines in order, none cut: the newest ones are contiguous
        let nums: Vec<u32> = all
            .lines()
            .map(|l| l.trim_start_matches("line ").parse().unwrap())
            .collect();
        assert!(nums.windows(2).all(|w| w[1] == w[0] + 1));
    }

    #[test]
    fn captured_pipe_output_lands_in_the_log() {
        let d = tempfile::tempdir().unwrap();
        let path = log_path(d.path(), "svc");
        let log = Arc::new(Mutex::new(
            RotatingLog::open(&path, LogPolicy::default()).unwrap(),
        ));
        let (r, mut w) = std::io::pipe().unwrap();
        capture(r, log, "svc".into());
        w.write_all(b"hello\n").unwrap();
        drop(w);
        for _ in 0..100 {
            if std::fs::read_to_string(&path).unwrap() == "hello\n" {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!("log not written");
    }
}
