//! The one place that waits for child processes, so no exit status is stolen.
//!
//! `waitpid(-1)` (what a PID 1 usually runs on SIGCHLD) would also collect children that other
//! code waits for (a `std::process::Command::output()`, tokio's `Child`), which would then fail
//! with `ECHILD`. So the reaper never waits for "any" child:
//! * a process the supervisor started is registered here at spawn ([`Reaper::watch`]); every
//!   pass calls `waitpid(pid, WNOHANG)` for each registered pid and hands its exit to the
//!   supervisor through a oneshot channel;
//! * as PID 1 (orphan reaping on, [`Reaper::reap_orphans`]), a zombie child found in `/proc`
//!   that nobody registered is collected once it has stayed a zombie for [`ORPHAN_GRACE`]: code
//!   that waits for its own child collects it well before (at once, or on tokio's next SIGCHLD),
//!   while an orphan re-parented to PID 1 has nobody else.
//!
//! Passes run on SIGCHLD, after every registration, and every second (a missed signal cannot
//! leave a zombie), each on a blocking thread.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, oneshot};

/// How long an unregistered zombie child is left to whoever waits for it before the PID 1
/// reaper collects it.
pub const ORPHAN_GRACE: Duration = Duration::from_secs(1);

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Exit {
    /// Exited with this code.
    Code(i32),
    /// Killed by this signal.
    Signal(i32),
    /// Not our child (adopted) or already collected elsewhere: the status is unknown.
    Unknown,
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "exit code {c}"),
            Exit::Signal(s) => write!(f, "killed by signal {s}"),
            Exit::Unknown => f.write_str("ended (status unknown)"),
        }
    }
}

/// The process-wide reaper ([`global`]).
#[derive(Default)]
pub struct Reaper {
    waiters: Mutex<HashMap<i32, oneshot::Sender<Exit>>>,
    orphans: AtomicBool,
    zombies_seen: Mutex<HashMap<i32, Instant>>,
    kick: Notify,
    started: OnceLock<()>,
}

/// The reaper of this process. Its loop starts with the first [`Reaper::watch`] or
/// [`Reaper::reap_orphans`] (inside a tokio runtime).
pub fn global() -> &'static Reaper {
    static R: OnceLock<Reaper> = OnceLock::new();
    R.get_or_init(Reaper::default)
}

impl Reaper {
    /// Returns a receiver for the exit of our child `pid`. Call it right after spawning: the
    /// child stays a zombie until then (nothing else collects an unregistered child early).
    pub fn watch(&'static self, pid: u32) -> oneshot::Receiver<Exit> {
        let (tx, rx) = oneshot::channel();
        self.lock_waiters().insert(pid as i32, tx);
        self.start();
        self.kick.notify_one();
        rx
    }

    /// Also collects zombies nobody waits for (orphans re-parented to us): for PID 1, or a
    /// subreaper.
    pub fn reap_orphans(&'static self) {
        self.orphans.store(true, Ordering::Relaxed);
        self.start();
    }

    fn lock_waiters(&self) -> std::sync::MutexGuard<'_, HashMap<i32, oneshot::Sender<Exit>>> {
        self.waiters.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn start(&'static self) {
        if self.started.set(()).is_err() {
            return;
        }
        tokio::spawn(async move {
            let mut chld =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::child()).ok();
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = async {
                        match chld.as_mut() {
                            Some(s) => { s.recv().await; }
                            None => std::future::pending().await,
                        }
                    } => {}
                    _ = self.kick.notified() => {}
                    _ = tick.tick() => {}
                }
                let _ = tokio::task::spawn_blocking(move || self.pass()).await;
            }
        });
    }

    /// One pass: registered children first, then (as PID 1) old unregistered zombies.
    fn pass(&self) {
        let pids: Vec<i32> = self.lock_waiters().keys().copied().collect();
        for pid in pids {
            let Some(p) = rustix::process::Pid::from_raw(pid) else {
                continue;
            };
            let exit = match rustix::process::waitpid(Some(p), rustix::process::WaitOptions::NOHANG)
            {
                Ok(Some((_, st))) => match (st.exit_status(), st.terminating_signal()) {
                    (Some(c), _) => Exit::Code(c),
                    (_, Some(s)) => Exit::Signal(s),
                    // stopped or continued: still alive
                    _ => continue,
                },
                Ok(None) => continue,
                Err(rustix::io::Errno::CHILD) => Exit::Unknown,
                Err(e) => {
                    tracing::warn!(pid, error = %e, "waitpid failed");
                    continue;
                }
            };
            if let Some(tx) = self.lock_waiters().remove(&pid) {
                let _ = tx.send(exit);
            }
        }
        if self.orphans.load(Ordering::Relaxed) {
            self.reap_old_zombies(Instant::now());
        }
    }

    fn reap_old_zombies(&self, now: Instant) {
        let registered: Vec<i32> = self.lock_waiters().keys().copied().collect();
        let zombies: Vec<i32> = zombie_children()
            .into_iter()
            .filter(|p| !registered.contains(p))
            .collect();
        let mut seen = self.zombies_seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.retain(|p, _| zombies.contains(p));
        for pid in zombies {
            let first = *seen.entry(pid).or_insert(now);
            if now.saturating_duration_since(first) < ORPHAN_GRACE {
                continue;
            }
            if let Some(p) = rustix::process::Pid::from_raw(pid) {
                // WNOHANG and this pid only: never blocks, never takes another child's status
                if let Ok(Some(_)) =
                    rustix::process::waitpid(Some(p), rustix::process::WaitOptions::NOHANG)
                {
                    tracing::debug!(pid, "reaped an orphan");
                }
            }
            seen.remove(&pid);
        }
    }
}

/// Our children that are zombies, from `/proc/<pid>/stat` (state `Z`, parent = us).
pub fn zombie_children() -> Vec<i32> {
    let me = std::process::id() as i32;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| parse_stat(&s))
                .is_some_and(|(state, ppid)| state == 'Z' && ppid == me)
        })
        .collect()
}

/// Whether `pid` is a child of this process (alive or a zombie).
pub fn is_our_child(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| parse_stat(&s))
        .is_some_and(|(_, ppid)| ppid == std::process::id() as i32)
}

/// State and parent pid from a `/proc/<pid>/stat` line (the command may hold spaces and `)`).
fn parse_stat(stat: &str) -> Option<(char, i32)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut f = rest.split_whitespace();
    let state = f.next()?.chars().next()?;
    let ppid = f.next()?.parse().ok()?;
    Some((state, ppid))
}

#[cfg(test)]
mod test {
    #![expect(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn stat_lines_with_odd_commands_parse() {
        assert_eq!(parse_stat("12 (a b) c) Z 1 12 12"), Some(('Z', 1)));
        assert_eq!(parse_stat("7 (sh) S 6 7"), Some(('S', 6)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[tokio::test]
    #[expect(clippy::zombie_processes, reason = "the reaper waits for it")]
    async fn a_registered_child_exit_is_dispatched_and_an_owned_wait_is_not_stolen() {
        let child = std::process::Command::new("sh")
            .args(["-c", "exit 7"])
            .spawn()
            .unwrap();
        let rx = global().watch(child.id());
        let exit = tokio::time::timeout(Duration::from_secs(5), rx)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(exit, Exit::Code(7));
        // orphan reaping on: a child that other code waits for still gets its own status
        global().reap_orphans();
        let out = tokio::task::spawn_blocking(|| {
            std::process::Command::new("sh")
                .args(["-c", "sleep 0.3; exit 3"])
                .status()
                .unwrap()
        })
        .await
        .unwrap();
        assert_eq!(out.code(), Some(3));
    }
}
