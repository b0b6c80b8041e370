//! `--hook`: run an executable on events with 0-db's argv (`hook, event, zdbid, args...`).
//!
//! A blocking hook is awaited by the task that fired it (a writer of the rotating namespace,
//! the GET that found a data file missing); every other client keeps being served, unlike
//! 0-db whose single thread stops for it. Finished runs are listed by HOOKS for 300 s.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::process::Command;

/// How long a finished hook stays listed.
const KEEP: Duration = Duration::from_secs(300);

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
    runs: Arc<Mutex<Vec<HookRun>>>,
    next_id: Arc<std::sync::atomic::AtomicU64>,
}

impl Hooks {
    /// A runner for `exe` (none: every event is a no-op).
    pub fn new(exe: Option<PathBuf>, zdbid: String) -> Self {
        Self {
            exe,
            zdbid,
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

    /// Run the hook and wait for it; returns its exit code (None if no hook or it failed to run).
    pub async fn run_blocking(&self, event: &str, args: &[String]) -> Option<i32> {
        let exe = self.exe.clone()?;
        self.run(exe, event, args).await
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
            this.run(exe, &event, &args).await;
        });
    }

    async fn run(&self, exe: PathBuf, event: &str, args: &[String]) -> Option<i32> {
        let mut cmd = Command::new(&exe);
        cmd.arg(event)
            .arg(&self.zdbid)
            .args(args)
            .kill_on_drop(false);
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
                child.wait().await.ok().and_then(|s| s.code())
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
