//! Releasing everything a node (or a test) started under one folder: the processes whose
//! command line names a path in it, the mounts below it, the loop devices backed by files in
//! it. What `node-init --dev DIR --destroy` and the test harnesses do before removing a folder.
//!
//! A process "names" DIR when one of its arguments is DIR or a path below it (component-wise:
//! `/tmp/node2` is not below `/tmp/node`). This process and its ancestors are never signalled,
//! so a shell or test that runs the teardown survives it.

use crate::mounts;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What [`release`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Released {
    /// Processes stopped (SIGTERM, SIGKILL after the grace period).
    pub processes: Vec<u32>,
    /// Mount points unmounted, deepest first.
    pub unmounted: Vec<PathBuf>,
    /// Loop devices detached.
    pub detached: Vec<PathBuf>,
}

/// Something under the folder could not be released.
#[derive(Debug, thiserror::Error)]
pub enum TeardownError {
    /// Processes survived SIGKILL (stuck in the kernel, e.g. on a dead disk).
    #[error("processes {pids:?} naming {} survive SIGKILL", dir.display())]
    Processes {
        /// The folder.
        dir: PathBuf,
        /// Their pids.
        pids: Vec<u32>,
    },
    /// A mount point stayed mounted even after a lazy unmount.
    #[error("cannot unmount {}: {source}", path.display())]
    Unmount {
        /// The mount point.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// `losetup -d` failed.
    #[error("cannot detach loop device {}: {message}", dev.display())]
    Detach {
        /// The device.
        dev: PathBuf,
        /// losetup's message.
        message: String,
    },
    /// The mount table could not be read.
    #[error("cannot read the mount table: {0}")]
    Mounts(#[source] std::io::Error),
}

/// This process and its ancestors.
fn me_and_ancestors() -> Vec<u32> {
    let mut out = vec![std::process::id()];
    let mut pid = std::process::id();
    for _ in 0..64 {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let Some(ppid) = status
            .lines()
            .find_map(|l| l.strip_prefix("PPid:"))
            .and_then(|v| v.trim().parse::<u32>().ok())
            .filter(|p| *p > 1)
        else {
            break;
        };
        out.push(ppid);
        pid = ppid;
    }
    out
}

/// Whether a process's NUL-separated command line has an argument at or below `dir`.
pub fn names(cmdline: &[u8], dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    cmdline
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .any(|a| Path::new(std::ffi::OsStr::from_bytes(a)).starts_with(dir))
}

/// Live processes (not this one nor its ancestors) whose command line names `dir`.
pub fn processes_under(dir: &Path) -> Vec<u32> {
    let spared = me_and_ancestors();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if spared.contains(&pid) {
            continue;
        }
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        if names(&cmdline, dir) {
            out.push(pid);
        }
    }
    out.sort_unstable();
    out
}

fn signal(pid: u32, sig: rustix::process::Signal) {
    if let Some(p) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process(p, sig);
    }
}

/// Stops every process naming `dir`: SIGTERM, then SIGKILL to what is left after `grace`
/// (a zero grace sends SIGKILL only, as a power cut would stop them). Rescans until none is
/// left, since a supervisor may start a process before it stops itself.
pub fn stop_processes_under(dir: &Path, grace: Duration) -> Result<Vec<u32>, TeardownError> {
    let mut stopped = Vec::new();
    for round in 0..5 {
        let pids = processes_under(dir);
        if pids.is_empty() {
            stopped.sort_unstable();
            stopped.dedup();
            return Ok(stopped);
        }
        let sig = if round < 2 && !grace.is_zero() {
            rustix::process::Signal::TERM
        } else {
            rustix::process::Signal::KILL
        };
        for &pid in &pids {
            signal(pid, sig);
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline && pids.iter().any(|p| alive(*p)) {
            std::thread::sleep(Duration::from_millis(50));
        }
        for &pid in &pids {
            if alive(pid) {
                signal(pid, rustix::process::Signal::KILL);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && pids.iter().any(|p| alive(*p)) {
            std::thread::sleep(Duration::from_millis(50));
        }
        stopped.extend(pids);
    }
    let left = processes_under(dir);
    if left.is_empty() {
        Ok(stopped)
    } else {
        Err(TeardownError::Processes {
            dir: dir.to_path_buf(),
            pids: left,
        })
    }
}

/// Whether `pid` runs (a zombie does not: it only waits to be reaped).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(") ")
            .and_then(|(_, r)| r.chars().next())
            .is_some_and(|state| state != 'Z' && state != 'X')
    })
}

/// Unmounts everything at or below `dir`, deepest first; a busy mount is detached lazily.
pub fn unmount_under(dir: &Path) -> Result<Vec<PathBuf>, TeardownError> {
    use rustix::mount::{UnmountFlags, unmount};
    let targets = mounts::under(&mounts::current().map_err(TeardownError::Mounts)?, dir);
    for t in &targets {
        if unmount(t, UnmountFlags::empty()).is_err() {
            unmount(t, UnmountFlags::DETACH).map_err(|e| TeardownError::Unmount {
                path: t.clone(),
                source: e.into(),
            })?;
        }
    }
    let left = mounts::under(&mounts::current().map_err(TeardownError::Mounts)?, dir);
    if let Some(t) = left.first() {
        return Err(TeardownError::Unmount {
            path: t.clone(),
            source: std::io::Error::other("still mounted"),
        });
    }
    Ok(targets)
}

/// Loop devices whose backing file is at or below `dir`: (device, backing file).
pub fn loops_under(dir: &Path) -> Vec<(PathBuf, PathBuf)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/sys/block")
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with("loop") {
            continue;
        }
        let Ok(backing) = std::fs::read_to_string(e.path().join("loop/backing_file")) else {
            continue;
        };
        // A removed backing file reads "PATH (deleted)".
        let backing = backing.trim_end_matches('\n');
        let backing = PathBuf::from(backing.strip_suffix(" (deleted)").unwrap_or(backing));
        if backing.starts_with(dir) {
            out.push((PathBuf::from(format!("/dev/{name}")), backing));
        }
    }
    out.sort();
    out
}

/// Detaches every loop device backed by a file at or below `dir` (`losetup -d`).
pub fn detach_loops_under(dir: &Path) -> Result<Vec<PathBuf>, TeardownError> {
    let mut done = Vec::new();
    for (dev, _) in loops_under(dir) {
        let out = Command::new("losetup")
            .arg("-d")
            .arg(&dev)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| TeardownError::Detach {
                dev: dev.clone(),
                message: e.to_string(),
            })?;
        if !out.status.success() {
            return Err(TeardownError::Detach {
                dev,
                message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        done.push(dev);
    }
    Ok(done)
}

/// Stops the processes naming `dir`, unmounts what is mounted below it, detaches the loop
/// devices backed by files in it, in that order (a mount is busy while its server runs, a loop
/// device while it is mounted). `dir` should be absolute.
pub fn release(dir: &Path, grace: Duration) -> Result<Released, TeardownError> {
    let processes = stop_processes_under(dir, grace)?;
    let unmounted = unmount_under(dir)?;
    let detached = detach_loops_under(dir)?;
    Ok(Released {
        processes,
        unmounted,
        detached,
    })
}

#[cfg(test)]
mod test {
    #![expect(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn arguments_name_a_folder_component_wise() {
        let dir = Path::new("/tmp/node");
        assert!(names(b"zdb\0--socket\0/tmp/node/run/zdb.sock\0", dir));
        assert!(names(b"node-init\0--dev\0/tmp/node\0", dir));
        assert!(!names(b"node-init\0--dev\0/tmp/node2\0", dir));
        assert!(!names(b"sh\0-c\0echo /tmp/node\0", dir));
        assert!(!names(b"", dir));
    }

    #[test]
    fn stops_processes_naming_the_folder_and_spares_others() {
        let d = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let dir = d.path();
        // Each names its folder as $0.
        let spawn = |script: &str, named: &Path| {
            Command::new("sh")
                .arg("-c")
                .arg(script)
                .arg(named)
                .spawn()
                .unwrap()
        };
        let looping = "while :; do sleep 0.05; done";
        let mut polite = spawn(looping, &dir.join("x"));
        let mut stubborn = spawn("trap '' TERM; while :; do sleep 0.05; done", dir);
        let mut other = spawn(looping, elsewhere.path());
        let pids = processes_under(dir);
        assert!(
            pids.contains(&polite.id()) && pids.contains(&stubborn.id()),
            "{pids:?}"
        );
        assert!(!pids.contains(&other.id()));
        let stopped = stop_processes_under(dir, Duration::from_millis(300)).unwrap();
        assert!(stopped.contains(&polite.id()) && stopped.contains(&stubborn.id()));
        let _ = polite.wait();
        let _ = stubborn.wait();
        assert!(processes_under(dir).is_empty());
        assert!(alive(other.id()), "a process of another folder was stopped");
        // Nothing mounted or attached there: nothing else to do.
        assert_eq!(
            release(dir, Duration::from_millis(100)).unwrap(),
            Released::default()
        );
        assert_eq!(
            stop_processes_under(elsewhere.path(), Duration::from_secs(5)).unwrap(),
            [other.id()]
        );
        let _ = other.wait();
    }
}
