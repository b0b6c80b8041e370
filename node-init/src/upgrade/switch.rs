//! Steps 2 to 5 of the module doc above: stop the daemon, migrate a copy of its state, switch
//! the folders and the definition, start the new binary, commit or put the old one back.

use super::journal::{self, Journal, NextFrom, StateSwitch};
use super::{Prep, Upgrader, blocking, internal, state};
use crate::supervisor::{self, service::ServiceDef};
use bus::RemoteError;
use bus::api::upgrade::{Outcome, UpgradeReply};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a migration may run.
const MIGRATE_TIMEOUT: Duration = Duration::from_secs(300);

impl Upgrader {
    /// Steps 2 to 5 of the module doc.
    #[expect(clippy::too_many_arguments, reason = "one call site each, all named")]
    pub(super) async fn switch(
        &self,
        service: &str,
        from: ServiceDef,
        to: ServiceDef,
        prep: Prep,
        deadline: Duration,
        success: Outcome,
        from_version: String,
        to_version: String,
    ) -> Result<UpgradeReply, RemoteError> {
        let mut j = Journal {
            service: service.into(),
            from: from.clone(),
            to: to.clone(),
            state: match &prep {
                Prep::None => None,
                Prep::Migrate(d) => Some(StateSwitch {
                    dir: d.clone(),
                    next_from: NextFrom::Copy,
                    from_inode: None,
                }),
                Prep::Rollback(d) => Some(StateSwitch {
                    dir: d.clone(),
                    next_from: NextFrom::Rollback,
                    from_inode: None,
                }),
            },
            committed: false,
        };
        let jpath = journal::journal_path(&self.node, service);
        self.save(&jpath, &j).await?;
        let reply = |outcome, running_version: &str, pid, migrated, detail| UpgradeReply {
            pid,
            migrated,
            detail,
            ..UpgradeReply::new(
                service,
                outcome,
                from_version.clone(),
                to_version.clone(),
                running_version.into(),
            )
        };
        if let Err(e) = self.sup.replace(service, None).await {
            let _ = self.save_undo(&j).await;
            return Err(RemoteError::new(
                bus::ErrorCode::Unavailable,
                format!("cannot stop {service}: {e}"),
            ));
        }
        tracing::info!(service, from = %from_version, to = %to_version, "switching");
        let mut migrated = false;
        // state: the new version's folder ready in DIR.next, then exchanged
        let prepared = match &prep {
            Prep::None => Ok(()),
            Prep::Migrate(d) => {
                migrated = true;
                self.migrate(service, &to.exec, d).await
            }
            Prep::Rollback(d) => {
                let (back, next) = (state::rollback(d), state::next(d));
                blocking(move || {
                    state::remove(&next)?;
                    state::rename(&back, &next)
                })
                .await
                .map_err(|e| format!("cannot take the rollback state: {e}"))
            }
        };
        let switched = match prepared {
            Err(e) => Err(e),
            Ok(()) => self.switch_files(&mut j, &jpath).await,
        };
        let outcome = match switched {
            Err(e) => Err(e),
            Ok(()) => match self.sup.replace(service, Some(to.clone())).await {
                Err(e) => Err(format!("cannot start the new version: {e}")),
                Ok(()) => self.sup.wait_started(service, deadline).await,
            },
        };
        match outcome {
            Ok(pid) => {
                self.commit(&jpath, &mut j, None).await?;
                tracing::info!(service, version = %to_version, pid, "switched");
                Ok(reply(success, &to_version, Some(pid), migrated, None))
            }
            Err(why) => {
                tracing::warn!(service, reason = %why, "new version failed: putting the old one back");
                let _ = self.sup.replace(service, None).await;
                self.save_undo(&j).await.map_err(|e| {
                    RemoteError::internal(format!("{why}; and the rollback failed: {}", e.message))
                })?;
                self.sup
                    .replace(service, Some(from.clone()))
                    .await
                    .map_err(|e| {
                        RemoteError::internal(format!("{why}; old version not restarted: {e}"))
                    })?;
                let pid = self
                    .sup
                    .wait_started(service, Self::deadline(&from, None))
                    .await
                    .ok();
                let detail = match pid {
                    Some(_) => why,
                    None => format!("{why}; the old version is not ready yet either"),
                };
                Ok(reply(
                    Outcome::Reverted,
                    &from_version,
                    pid,
                    migrated,
                    Some(detail),
                ))
            }
        }
    }

    pub(super) async fn save(&self, path: &Path, j: &Journal) -> Result<(), RemoteError> {
        let (p, j) = (path.to_path_buf(), j.clone());
        blocking(move || journal::write(&p, &j))
            .await
            .map_err(internal("journal"))
    }

    /// Commits the switch: the journal marked committed, then finished (the new version
    /// stays); `stale`, a state folder no version owns any more, goes with it.
    pub(super) async fn commit(
        &self,
        jpath: &Path,
        j: &mut Journal,
        stale: Option<PathBuf>,
    ) -> Result<(), RemoteError> {
        j.committed = true;
        self.save(jpath, j).await?;
        let (node, j) = (self.node.clone(), j.clone());
        blocking(move || {
            journal::finish(&node, &j)?;
            stale.map_or(Ok(()), |d| state::remove(&d))
        })
        .await
        .map_err(internal("commit"))
    }

    /// Undoes the switch's files (the daemon is stopped).
    pub(super) async fn save_undo(&self, j: &Journal) -> Result<(), RemoteError> {
        let (node, services, j) = (self.node.clone(), self.services.clone(), j.clone());
        // the new binary is stopped by the supervisor already
        blocking(move || journal::undo(&node, &services, &j, &|_| {}))
            .await
            .map_err(internal("undo"))
    }

    /// Records the state folder's inode, exchanges `DIR` and `DIR.next`, writes the definition.
    async fn switch_files(&self, j: &mut Journal, jpath: &Path) -> Result<(), String> {
        if let Some(s) = &mut j.state {
            let d = s.dir.clone();
            s.from_inode = state::inode(&d);
            self.save(jpath, j).await.map_err(|e| e.message)?;
            blocking(move || state::exchange(&d, &state::next(&d)))
                .await
                .map_err(|e| format!("cannot switch the state folder: {e}"))?;
        }
        let (services, name, def) = (self.services.clone(), j.service.clone(), j.to.clone());
        blocking(move || journal::write_def(&services, &name, &def))
            .await
            .map_err(|e| format!("cannot write the definition: {e}"))
    }

    /// Copies `dir` to `DIR.next` and runs `BIN --migrate --state DIR.next` there.
    async fn migrate(&self, service: &str, bin: &Path, dir: &Path) -> Result<(), String> {
        self.copy_state(dir).await?;
        self.run_migration(service, bin, &state::next(dir)).await
    }

    /// Copies `dir` to `DIR.next` (a stale one removed first).
    pub(super) async fn copy_state(&self, dir: &Path) -> Result<(), String> {
        let (src, next) = (dir.to_path_buf(), state::next(dir));
        blocking(move || {
            state::remove(&next)?;
            state::copy_tree(&src, &next)
        })
        .await
        .map_err(|e| format!("cannot copy the state {}: {e}", dir.display()))
    }

    /// Runs `BIN --migrate --state NEXT`, its output appended to the service's log.
    pub(super) async fn run_migration(
        &self,
        service: &str,
        bin: &Path,
        next: &Path,
    ) -> Result<(), String> {
        let log = supervisor::logs::log_path(&self.log_dir, service);
        let out = supervisor::logs::open_append(&log).map_err(|e| format!("log: {e}"))?;
        let err = out.try_clone().map_err(|e| format!("log: {e}"))?;
        let mut child = tokio::process::Command::new(bin)
            .arg("--migrate")
            .arg("--state")
            .arg(next)
            .env(nodeutil::log::ENV, nodeutil::log::for_children())
            .stdin(std::process::Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot run the migration: {e}"))?;
        // the process-wide reaper leaves a child nobody registered to whoever waits for it
        match tokio::time::timeout(MIGRATE_TIMEOUT, child.wait()).await {
            Ok(Ok(s)) if s.success() => Ok(()),
            Ok(Ok(s)) => Err(format!("migration failed ({s}); see {}", log.display())),
            Ok(Err(e)) => Err(format!("migration: {e}")),
            Err(_) => {
                let _ = child.kill().await;
                Err(format!(
                    "migration did not end within {} s",
                    MIGRATE_TIMEOUT.as_secs()
                ))
            }
        }
    }
}
