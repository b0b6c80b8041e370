//! node-init upgrades itself by re-executing in place (`zos upgrade node-init --from PATH`,
//! `zos upgrade --rollback node-init`): same pid, so it stays PID 1 of its pid namespace and
//! the daemons stay its children; the new image adopts them (they answer their bus health)
//! instead of starting them again.
//!
//! 1. The new binary is installed side by side (`<node>/versions/node-init/<blake3>/`) and
//!    must pass `NEW --self-check <the running command line>` (it parses the same flags) within
//!    10 s: a build that cannot even start is refused before anything changes.
//! 2. The trial journal `<node>/upgrade/node-init.reexec.json` names the old and new binary,
//!    the command line, the pid and a deadline; the bus call is answered `restarting`; then the
//!    process `execve`s the new binary.
//! 3. The new image finds the journal naming its pid and its binary ([`at_start`]): a trial.
//!    Ready (its API served) within the deadline: committed (the old binary becomes the
//!    `--rollback` target, the result is written, the journal removed). An error at start, a
//!    panic or a missed deadline: it execs the old binary back in place ([`fall_back`]).
//! 4. A new image that dies outright (not our code, a crash) cannot fall back by itself. Under
//!    the node image's PID 1, that one starts the old binary again (`boot::restart`). Else,
//!    unless node-init is PID 1 (whose death ends its namespace), a guard process started from
//!    the old binary before the exec ([`guard`]) notices (its parent changes) and starts the old
//!    binary again with the same command line; it also kills a trial that misses its deadline.
//!
//! Whoever ends the attempt writes `<node>/upgrade/node-init.result.json` (the bus reply,
//! with the attempt's id), which `zos upgrade` waits for. This file is the old image's side
//! (steps 1-2); [`trial`] the new image's (steps 3-4).

use super::{Upgrader, blocking, install, internal, version_of};
use bus::RemoteError;
use bus::api::upgrade::{Outcome, UpgradeReply};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod trial;

pub use trial::{Running, Started, at_start, guard};

/// The service name `zos upgrade` uses for node-init itself.
pub const NODE_INIT: &str = "node-init";

/// The hidden first argument that runs [`guard`].
pub const GUARD_FLAG: &str = "--reexec-guard";

/// Fault injection for the end-to-end tests, a comma-separated list: a new image whose
/// version (`b3:...`) it names fails its trial at start, as a build failing at start would,
/// and goes back; one named `hang:b3:...` never gets ready (its deadline takes it back).
pub const FAILPOINT: &str = "ZOS_FAILPOINT_REEXEC";

/// How long the new binary's `--self-check` may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// The new image's default deadline to be ready (adopting running daemons takes about a
/// second; storaged's health may wait for a zdb round).
const DEFAULT_READY: Duration = Duration::from_secs(120);

/// Lets the bus reply reach the client before the process image goes.
const REPLY_GRACE: Duration = Duration::from_millis(300);

/// One attempt to run another node-init binary in place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trial {
    /// Names the attempt (the reply and the result carry it).
    pub attempt: String,
    /// The process that re-executes.
    pub pid: u32,
    /// The binary it ran.
    pub from: PathBuf,
    /// The binary it runs now.
    pub to: PathBuf,
    /// Its command line (argv\[0\] first).
    pub args: Vec<String>,
    /// `b3:` versions of `from` and `to`.
    pub from_version: String,
    /// See `from_version`.
    pub to_version: String,
    /// Seconds since the epoch by which the new image must be ready.
    pub deadline: u64,
    /// A `--rollback` (the outcome is `rolled_back`).
    #[serde(default)]
    pub rollback: bool,
    /// The guard process (not as PID 1).
    #[serde(default)]
    pub guard: Option<u32>,
    /// Set before an exec back to `from`: why the new one failed.
    #[serde(default)]
    pub failed: Option<String>,
    /// The supervised processes (service -> pid) at the exec: the new image adopts them
    /// whatever their readiness test (a service without a bus socket would be started twice).
    #[serde(default)]
    pub children: BTreeMap<String, u32>,
}

/// What `--rollback node-init` returns to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviousExec {
    /// The binary node-init ran before its last upgrade.
    pub exec: PathBuf,
}

/// `<node>/upgrade/node-init.reexec.json`.
pub fn trial_path(node: &Path) -> PathBuf {
    super::journal::dir(node).join("node-init.reexec.json")
}

/// `<node>/upgrade/node-init.result.json`.
pub fn result_path(node: &Path) -> PathBuf {
    super::journal::dir(node).join("node-init.result.json")
}

/// `<node>/upgrade/node-init.previous.json`.
fn previous_path(node: &Path) -> PathBuf {
    super::journal::previous_path(node, NODE_INIT)
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// This process's binary (`/proc/self/exe`).
fn current_exe() -> io::Result<PathBuf> {
    std::env::current_exe()
}

/// The outcome of a finished attempt, as the bus reply.
fn result(t: &Trial, outcome: Outcome, detail: Option<String>) -> UpgradeReply {
    let ok = outcome != Outcome::Reverted;
    let running = if ok { &t.to_version } else { &t.from_version };
    UpgradeReply {
        pid: Some(std::process::id()),
        detail,
        attempt: Some(t.attempt.clone()),
        ..UpgradeReply::new(
            NODE_INIT,
            outcome,
            t.from_version.clone(),
            t.to_version.clone(),
            running.clone(),
        )
    }
}

/// Runs `bin --self-check ARGS` (the running command line without argv\[0\]): it must exit 0.
async fn self_check(bin: &Path, args: &[String]) -> Result<(), String> {
    let mut child = tokio::process::Command::new(bin)
        .arg("--self-check")
        .args(args.iter().skip(1))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run it: {e}"))?;
    let mut err = child.stderr.take();
    let read_err = async move {
        let mut s = String::new();
        if let Some(e) = err.as_mut() {
            use tokio::io::AsyncReadExt;
            let _ = e.take(4096).read_to_string(&mut s).await;
        }
        s
    };
    match tokio::time::timeout(CHECK_TIMEOUT, async {
        let (st, text) = tokio::join!(child.wait(), read_err);
        (st, text)
    })
    .await
    {
        Ok((Ok(s), _)) if s.success() => Ok(()),
        Ok((Ok(s), text)) => Err(format!("{s}: {}", text.trim())),
        Ok((Err(e), _)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} s", CHECK_TIMEOUT.as_secs())),
    }
}

impl Upgrader {
    /// `zos upgrade node-init --from PATH`; the caller holds the upgrade lock.
    pub(super) async fn upgrade_self(
        &self,
        from: &Path,
        ready_timeout_secs: Option<u64>,
    ) -> Result<UpgradeReply, RemoteError> {
        let (node, src) = (self.node.clone(), from.to_path_buf());
        let (dest, _) = blocking(move || install(&node, NODE_INIT, &src, NODE_INIT))
            .await
            .map_err(|e| RemoteError::invalid(format!("cannot install {}: {e}", from.display())))?;
        self.reexec(dest, ready_timeout_secs, false).await
    }

    /// `zos upgrade --rollback node-init`.
    pub(super) async fn rollback_self(
        &self,
        ready_timeout_secs: Option<u64>,
    ) -> Result<UpgradeReply, RemoteError> {
        let path = previous_path(&self.node);
        let prev: PreviousExec = blocking(move || nodeutil::fs::read_json(&path))
            .await
            .map_err(internal("previous version"))?
            .ok_or_else(|| {
                RemoteError::not_found("node-init has no previous version to roll back to")
            })?;
        self.reexec(prev.exec, ready_timeout_secs, true).await
    }

    /// Checks `to`, writes the trial journal, starts the guard and schedules the exec.
    async fn reexec(
        &self,
        to: PathBuf,
        ready_timeout_secs: Option<u64>,
        rollback: bool,
    ) -> Result<UpgradeReply, RemoteError> {
        let busy = trial_path(&self.node);
        if blocking(move || Ok(busy.exists()))
            .await
            .map_err(internal("journal"))?
        {
            return Err(RemoteError::new(
                bus::ErrorCode::Unavailable,
                "a node-init upgrade is under way",
            ));
        }
        let cur = current_exe().map_err(internal("own binary"))?;
        let (a, b) = (cur.clone(), to.clone());
        let (from_version, to_version) = blocking(move || Ok((version_of(&a), version_of(&b))))
            .await
            .map_err(internal("version"))?;
        let args: Vec<String> = std::env::args_os()
            .map(|a| a.into_string())
            .collect::<Result<_, _>>()
            .map_err(|_| RemoteError::invalid("node-init's command line is not UTF-8"))?;
        if from_version == to_version {
            let running = from_version.clone();
            return Ok(UpgradeReply {
                pid: Some(std::process::id()),
                ..UpgradeReply::new(
                    NODE_INIT,
                    Outcome::Unchanged,
                    from_version,
                    to_version,
                    running,
                )
            });
        }
        self_check(&to, &args).await.map_err(|e| {
            RemoteError::invalid(format!(
                "the new node-init ({}) fails its self-check, nothing changed: {e}",
                to.display()
            ))
        })?;
        let pid = std::process::id();
        let wait = ready_timeout_secs.map_or(DEFAULT_READY, |s| Duration::from_secs(s.max(1)));
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let mut trial = Trial {
            attempt: format!("{pid}-{nanos}"),
            pid,
            from: cur.clone(),
            to: to.clone(),
            args,
            from_version,
            to_version,
            deadline: now_secs() + wait.as_secs(),
            rollback,
            guard: None,
            failed: None,
            children: children(&self.sup),
        };
        let path = trial_path(&self.node);
        let (p, t) = (path.clone(), trial.clone());
        blocking(move || super::journal::write(&p, &t))
            .await
            .map_err(internal("journal"))?;
        if !super::super::supervisor::pid1::is_pid1() && !under_boot() {
            // PID 1's death ends its namespace, guard included: there it would be no help;
            // under the image's PID 1 (`boot::restart`) that one starts the old binary again
            match std::process::Command::new(&cur)
                .arg(GUARD_FLAG)
                .arg(&path)
                .stdin(std::process::Stdio::null())
                .spawn()
            {
                Ok(c) => {
                    let g = c.id();
                    // our child, in this image and the next one: the reaper collects it
                    drop(crate::supervisor::reaper::global().watch(g));
                    trial.guard = Some(g);
                    let (p, t) = (path.clone(), trial.clone());
                    blocking(move || super::journal::write(&p, &t))
                        .await
                        .map_err(internal("journal"))?;
                }
                Err(e) => tracing::warn!(error = %e, "no guard for the re-exec"),
            }
        }
        tracing::info!(from = %trial.from_version, to = %trial.to_version, "node-init re-executes itself");
        let (lock, sup) = (self.lock.clone(), self.sup.clone());
        let (mut t, node) = (trial.clone(), self.node.clone());
        tokio::spawn(async move {
            // after this call's reply is out, and with no other upgrade under way
            tokio::time::sleep(REPLY_GRACE).await;
            let _one = lock.lock_owned().await;
            // the pids as they are now (a daemon may have been restarted meanwhile)
            t.children = children(&sup);
            let (p, j) = (trial_path(&node), t.clone());
            if let Err(e) = blocking(move || super::journal::write(&p, &j)).await {
                tracing::warn!(error = %e, "cannot refresh the re-exec journal's pids");
            }
            let e = exec(&t.to, &t.args);
            tracing::error!(error = %e, "cannot re-execute: staying");
            let _ =
                blocking(move || finish(&node, &t, Outcome::Reverted, Some(format!("exec: {e}"))))
                    .await;
        });
        Ok(UpgradeReply {
            pid: Some(pid),
            attempt: Some(trial.attempt),
            ..UpgradeReply::new(
                NODE_INIT,
                Outcome::Restarting,
                trial.from_version.clone(),
                trial.to_version.clone(),
                trial.from_version.clone(),
            )
        })
    }
}

/// The supervised processes now: service -> pid.
fn children(sup: &crate::supervisor::Handle) -> BTreeMap<String, u32> {
    sup.snapshot()
        .iter()
        .filter_map(|s| Some((s.name.clone(), s.state.pid()?)))
        .collect()
}

/// Whether this node-init was started by the node image's PID 1 (also node-init).
fn under_boot() -> bool {
    rustix::process::getppid().is_some_and(|p| p.as_raw_nonzero().get() == 1)
        && std::fs::read_link("/proc/1/exe")
            .is_ok_and(|e| e.file_name() == Some(NODE_INIT.as_ref()))
}

/// Replaces this process's image with `bin` run with `args` (argv\[0\] kept); returns only
/// on failure. Every descriptor node-init opens is close-on-exec; the daemons stay children.
pub fn exec(bin: &Path, args: &[String]) -> io::Error {
    let mut c = std::process::Command::new(bin);
    if let Some((first, rest)) = args.split_first() {
        c.arg0(first).args(rest);
    }
    // the first re-exec records where the daemons' binaries were found (`default_bin`)
    let var = crate::daemon::BIN_DIR_ENV;
    if std::env::var_os(var).is_none()
        && let Some(d) = current_exe().ok().as_deref().and_then(Path::parent)
    {
        c.env(var, d);
    }
    c.exec()
}

/// `<node>/upgrade/node-init.current.json`: the binary node-init runs since its last
/// upgrade, which the image's PID 1 starts again after a crash (`boot::restart`).
pub fn current_path(node: &Path) -> PathBuf {
    super::journal::dir(node).join("node-init.current.json")
}

/// Ends an attempt: the result file, then (upgraded) the rollback target and the current
/// binary, then the journal.
fn finish(node: &Path, t: &Trial, outcome: Outcome, detail: Option<String>) -> io::Result<()> {
    super::journal::write(&result_path(node), &result(t, outcome, detail))?;
    if outcome != Outcome::Reverted {
        super::journal::write(
            &previous_path(node),
            &PreviousExec {
                exec: t.from.clone(),
            },
        )?;
        super::journal::write(&current_path(node), &PreviousExec { exec: t.to.clone() })?;
    }
    super::journal::remove(&trial_path(node))
}
