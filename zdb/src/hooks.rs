//! `--hook`: run an executable on events with 0-db's argv (`hook, event, zdbid, args...`).
//!
//! A blocking hook is awaited by the task that fired it (a writer of the rotating namespace,
//! the GET that found a data file missing); every other client keeps being served, unlike
//! 0-db whose single thread stops for it. A blocking hook that outlives `--hook-timeout`
//! (120 s) is killed with its whole process group (each hook runs in a group of its own), the
//! kill is logged, and zdb goes on as if it had failed: a stuck hook never freezes a
//! namespace's writers or a GET for good. Hooks run in the background are not limited (a
//! `jump-data` offload may upload a whole data file). Finished runs are listed by HOOKS for
//! 300 s.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::process::Command;

/// How long a finished hook stays listed.
const KEEP: Duration = Duration::from_secs(300);
/// How long a killed hook may take to be reaped before zdb stops waiting for it (a process
/// in uninterruptible sleep dies only when its I/O returns; tokio reaps it then).
const REAP_WAIT: Duration = Duration::from_secs(5);

/// One hook run, as HOOKS lists it.
#[derive(Debug, Clone)]
pub struct HookRun {
    /// Event name.
    pub event: String,
    /// Arguments after the zdb id.
    pub args: Vec<String>,
    /// Process id (0 if it could not start).
    pub pid: u32,
    /// Unix start time.
    pub started: u64,
    /// Unix end time (0 while running).
    pub finished: u64,
    /// Exit code (-1 while running or if killed).
    pub status: i64,
    ended_at: Option<Instant>,
    id: u64,
}

/// The hook runner.
#[derive(Clone)]
pub struct Hooks {
    exe: Option<PathBuf>,
    zdbid: String,
    /// Limit of a waited-for run.
    timeout: Option<Duration>,
    runs: Arc<Mutex<Vec<HookRun>>>,
    next_id: Arc<std::sync::atomic::AtomicU64>,
}

impl Hooks {
    /// A runner for `exe` (none: every event is a no-op); a waited-for run is killed after
    /// `timeout`.
    pub fn new(exe: Option<PathBuf>, zdbid: String, timeout: Option<Duration>) -> Self {
        Self {
            exe,
            zdbid,
            timeout,
            runs: Arc::default(),
            next_id: Arc::default(),
        }
    }

    /// Whether a hook is configured.
    pub fn enabled(&self) -> bool {
        self.exe.is_some()
    }

    /// Runs started in the last 300 s or still going.
    pub fn list(&self) -> Vec<HookRun> {
        let mut runs = self.runs.lock();
        runs.retain(|r| r.ended_at.is_none_or(|t| t.elapsed() < KEEP));
        runs.clone()
    }

    /// Run the hook and wait for it, at most the timeout; returns its exit code (None if no
    /// hook, or it failed to run, or it was killed).
    pub async fn run_blocking(&self, event: &str, args: &[String]) -> Option<i32> {
        let exe = self.exe.clone()?;
        self.run(exe, event, args, self.timeout).await
    }

    /// Fire the `crash` hook from a panicking thread (0-db fires it on SIGSEGV): started with
    /// std's process API, since the runtime may be what failed; not waited for.
    pub fn install_crash_hook(&self) {
        let Some(exe) = self.exe.clone() else { return };
        let zdbid = self.zdbid.clone();
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            previous(info);
            let _ = std::process::Command::new(&exe)
                .arg("crash")
                .arg(&zdbid)
                .spawn();
        }));
    }

    /// Run the hook in the background.
    pub fn fire(&self, event: &str, args: Vec<String>) {
        let Some(exe) = self.exe.clone() else { return };
        let this = self.clone();
        let event = event.to_string();
        tokio::spawn(async move {
            this.run(exe, &event, &args, None).await;
        });
    }

    async fn run(
        &self,
        exe: PathBuf,
        event: &str,
        args: &[String],
        limit: Option<Duration>,
    ) -> Option<i32> {
        let mut cmd = Command::new(&exe);
        cmd.arg(event)
            .arg(&self.zdbid)
            .args(args)
            .kill_on_drop(false)
            // A group of its own, so a kill reaches what the hook started too.
            .process_group(0);
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        {
            let mut runs = self.runs.lock();
            runs.push(HookRun {
                event: event.to_string(),
                args: args.to_vec(),
                pid: 0,
                started: crate::now_secs(),
                finished: 0,
                status: -1,
                ended_at: None,
                id,
            });
        }
        let result = match cmd.spawn() {
            Ok(mut child) => {
                let pid = child.id().unwrap_or(0);
                self.update(id, |r| r.pid = pid);
                let waited = match limit {
                    Some(limit) => tokio::time::timeout(limit, child.wait()).await,
                    None => Ok(child.wait().await),
                };
                match waited {
                    Ok(status) => status.ok().and_then(|s| s.code()),
                    Err(_) => {
                        tracing::warn!(
                            hook = %exe.display(),
                            event,
                            pid,
                            timeout_s = limit.map_or(0, |l| l.as_secs()),
                            "hook did not finish in time: killed with its process group"
                        );
                        kill_group(pid);
                        let _ = child.start_kill();
                        let _ = tokio::time::timeout(REAP_WAIT, child.wait()).await;
                        None
                    }
                }
            }
            Err(e) => {
                tracing::warn!(hook = %exe.display(), event, error = %e, "hook failed to start");
                None
            }
        };
        self.update(id, |r| {
            r.finished = crate::now_secs();
            r.status = result.map_or(-1, i64::from);
            r.ended_at = Some(Instant::now());
        });
        result
    }

    fn update(&self, id: u64, f: impl FnOnce(&mut HookRun)) {
        if let Some(r) = self.runs.lock().iter_mut().find(|r| r.id == id) {
            f(r);
        }
    }
}

/// SIGKILL the process group led by `pid` (a hook and whatever it started).
fn kill_group(pid: u32) {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw);
    if let Some(pid) = pid
        && let Err(e) = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL)
    {
        tracing::warn!(error = %e, "could not kill the hook's process group");
    }
}
