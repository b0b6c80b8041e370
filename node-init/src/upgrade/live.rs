//! Live switches of a daemon that hands its work over (`ServiceDef::take_over`, netd): the new
//! binary starts beside the running one with `--take-over SOCKET`, takes its tunnels and
//! sockets, and the old one exits by itself ([`crate::supervisor::Handle::succeed`]). Nothing
//! is stopped or made again; a successor that fails before it is ready leaves the old process
//! serving as it was.
//!
//! Used when the daemon runs with its take-over socket, the new binary knows `--take-over` (its
//! `--help`), and its migration, run on a copy of the state, leaves that copy as it is (the
//! two versions read the same state). A
//! migration that changes the state goes the stop-migrate-start way of the module above; one
//! that fails refuses the upgrade before anything changed. A live switch keeps no
//! `DIR.rollback`: both versions run on the one state, so a rollback is live too.

use super::journal::{self, Journal};
use super::{Prep, Upgrader, blocking, state};
use crate::supervisor::service::ServiceDef;
use bus::RemoteError;
use bus::api::upgrade::{Outcome, UpgradeReply};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How a switch can go.
pub(super) enum Fit {
    /// Live, through this take-over socket.
    Live(PathBuf),
    /// Stop, migrate, start.
    Restart,
    /// Not at all: why (nothing was touched).
    Refused(String),
}

/// Whether the binary `exec` knows `--take-over` (its `--help` names it, within 10 s): a
/// build older than the live switch is switched the stop-and-start way instead of failing.
async fn knows_take_over(exec: &Path) -> bool {
    let out = tokio::process::Command::new(exec)
        .arg("--help")
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(Duration::from_secs(10), out)
        .await
        .is_ok_and(|o| o.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("--take-over")))
}

/// Whether process `pid` was started with `socket` among its arguments (it serves it).
fn serves(pid: u32, socket: &Path) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
        c.split(|b| *b == 0)
            .any(|a| a == socket.as_os_str().as_encoded_bytes())
    })
}

impl Upgrader {
    /// The pid `service` runs with, when it is running.
    fn running_pid(&self, service: &str) -> Option<u32> {
        self.sup
            .snapshot()
            .into_iter()
            .find(|s| s.name == service)
            .and_then(|s| match s.state {
                crate::supervisor::policy::State::Running { pid } => Some(pid),
                _ => None,
            })
    }

    /// How `service` can switch from `cur` to `to` (module doc).
    pub(super) async fn try_live(
        &self,
        service: &str,
        cur: &ServiceDef,
        to: &ServiceDef,
        prep: &Prep,
    ) -> Fit {
        let Some(socket) = cur.take_over.clone() else {
            return Fit::Restart;
        };
        // a process started before its definition named the socket cannot hand over
        let Some(pid) = self.running_pid(service).filter(|p| serves(*p, &socket)) else {
            return Fit::Restart;
        };
        if !knows_take_over(&to.exec).await {
            tracing::info!(service, exec = %to.exec.display(), "the new build cannot take over: switching by a restart");
            return Fit::Restart;
        }
        let dir = match prep {
            Prep::None => return Fit::Live(socket),
            Prep::Migrate(dir) => dir,
            Prep::Rollback(_) => return Fit::Restart,
        };
        if let Err(e) = self.copy_state(dir).await {
            return Fit::Refused(e);
        }
        let next = state::next(dir);
        let digest = |p: PathBuf| blocking(move || state::digest(&p));
        let before = digest(next.clone()).await;
        let migrated = self.run_migration(service, &to.exec, &next).await;
        let after = digest(next.clone()).await;
        let n = next.clone();
        if let Err(e) = blocking(move || state::remove(&n)).await {
            tracing::warn!(dir = %next.display(), error = %e, "cannot remove the migration's copy");
        }
        match (migrated, before, after) {
            (Err(why), _, _) => Fit::Refused(why),
            (Ok(()), Ok(b), Ok(a)) if a == b => {
                tracing::info!(service, pid, "the state needs no migration: switching live");
                Fit::Live(socket)
            }
            _ => Fit::Restart,
        }
    }

    /// A reply for an upgrade refused before anything changed.
    pub(super) fn refused(
        &self,
        service: &str,
        (from_version, to_version): (String, String),
        why: String,
    ) -> UpgradeReply {
        tracing::warn!(service, reason = %why, "upgrade refused: the old version serves on");
        let running = from_version.clone();
        UpgradeReply {
            pid: self.running_pid(service),
            detail: Some(why),
            ..UpgradeReply::new(
                service,
                Outcome::Reverted,
                from_version,
                to_version,
                running,
            )
        }
    }

    /// Switches `service` from `from` to `to` live through `socket`; the caller holds the
    /// upgrade lock.
    #[expect(clippy::too_many_arguments, reason = "one call site each, all named")]
    pub(super) async fn live_switch(
        &self,
        service: &str,
        from: ServiceDef,
        to: ServiceDef,
        socket: PathBuf,
        deadline: Duration,
        success: Outcome,
        (from_version, to_version): (String, String),
    ) -> Result<UpgradeReply, RemoteError> {
        let mut j = Journal {
            service: service.into(),
            from: from.clone(),
            to: to.clone(),
            state: None,
            committed: false,
        };
        let jpath = journal::journal_path(&self.node, service);
        self.save(&jpath, &j).await?;
        let (services, name, def) = (self.services.clone(), service.to_string(), to.clone());
        if let Err(e) = blocking(move || journal::write_def(&services, &name, &def)).await {
            let _ = self.save_undo(&j).await;
            return Err(RemoteError::internal(format!(
                "cannot write the definition: {e}"
            )));
        }
        tracing::info!(service, from = %from_version, to = %to_version, "switching live");
        let extra = vec!["--take-over".to_string(), socket.display().to_string()];
        let outcome = match self.sup.succeed(service, to.clone(), extra).await {
            Ok(pid) => self.sup.wait_succeeded(service, pid, deadline).await,
            Err(e) => Err(format!("cannot start the new version: {e}")),
        };
        let reply = |outcome, running: &str, pid, taken_over, detail| UpgradeReply {
            pid,
            taken_over,
            detail,
            ..UpgradeReply::new(
                service,
                outcome,
                from_version.clone(),
                to_version.clone(),
                running.into(),
            )
        };
        match outcome {
            Ok(pid) => {
                // the state of an earlier stop-migrate-start upgrade is not this version's
                let stale = to.state_dir.as_deref().map(state::rollback);
                self.commit(&jpath, &mut j, stale).await?;
                tracing::info!(service, version = %to_version, pid, "switched live");
                Ok(reply(success, &to_version, Some(pid), true, None))
            }
            Err(why) => {
                tracing::warn!(service, reason = %why, "live switch failed: the old version serves");
                // the supervisor went back to the old process (or restarts the old definition)
                self.save_undo(&j).await.map_err(|e| {
                    RemoteError::internal(format!("{why}; and the rollback failed: {}", e.message))
                })?;
                let pid = match self.running_pid(service) {
                    Some(pid) => Some(pid),
                    None => {
                        let wait = Self::deadline(&from, None);
                        let _ = self.sup.wait_ready(service, wait).await;
                        self.running_pid(service)
                    }
                };
                Ok(reply(
                    Outcome::Reverted,
                    &from_version,
                    pid,
                    false,
                    Some(why),
                ))
            }
        }
    }
}

#[cfg(test)]
mod test {
    #![expect(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[tokio::test]
    async fn a_build_without_take_over_is_told_apart() {
        let d = tempfile::tempdir().unwrap();
        let script = |name: &str, body: &str| {
            let p = d.path().join(name);
            std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
            p
        };
        let new = script("new", "echo '      --take-over <PATH>  Take over ...'");
        let old = script("old", "echo 'Usage: netd [OPTIONS]'");
        assert!(knows_take_over(&new).await);
        assert!(!knows_take_over(&old).await);
        assert!(!knows_take_over(&d.path().join("missing")).await);
    }
}
