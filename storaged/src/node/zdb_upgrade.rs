//! `storage.zdb.upgrade@1`: every zdb server handed over to a new binary, live. For each
//! disk in turn (under its pool lock, supervision told to keep off): a new process from the
//! new binary with the same flags plus `--take-over` receives the old one's listeners and
//! client connections; the old one exits once the new one is ready. When the new one exits
//! first (or is not done within [`HANDOVER_TIMEOUT`]), the old one thaws and serves on: the
//! server is reported not upgraded. The binary becomes the one later restarts use
//! (`<root>/zdb-binary.json`) only when every server took it.

use super::Storage;
use crate::zdbs::ZdbProc;
use bus::api::upgrade::{ZdbHandover, ZdbUpgradeReport};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// zdb's own deadline for the new process to be ready is 120 s; beyond it the new one is
/// killed.
const HANDOVER_TIMEOUT: Duration = Duration::from_secs(150);

#[derive(Serialize, Deserialize)]
struct Chosen {
    binary: PathBuf,
}

fn chosen_path(paths: &crate::config::Paths) -> PathBuf {
    paths.root.join("zdb-binary.json")
}

/// The binary a live upgrade switched to, if any.
pub(super) fn upgraded_binary(paths: &crate::config::Paths) -> Option<PathBuf> {
    nodeutil::fs::read_json::<Chosen>(&chosen_path(paths))
        .ok()
        .flatten()
        .map(|c| c.binary)
        .filter(|b| b.exists())
}

impl Storage {
    /// The binary new zdb servers run.
    pub(crate) fn zdb_binary(&self) -> PathBuf {
        self.inner
            .zdb_binary
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Hands every server over to `binary`.
    pub async fn zdb_upgrade(&self, binary: &Path) -> crate::Result<ZdbUpgradeReport> {
        if !binary.is_absolute() || !binary.is_file() {
            return Err(crate::Error::Invalid(format!(
                "{} is not a binary (an absolute path is needed)",
                binary.display()
            )));
        }
        let previous = self.zdb_binary();
        let disks: Vec<String> = self.with_state(|st| {
            st.disks
                .iter()
                .filter(|(_, d)| d.zdb.is_some())
                .map(|(k, _)| k.clone())
                .collect()
        });
        let mut servers = Vec::new();
        for disk in disks {
            if let Some(r) = self.hand_over(&disk, binary).await {
                servers.push(r);
            }
        }
        if servers.iter().all(|s| s.upgraded) {
            let file = chosen_path(self.paths());
            let chosen = Chosen {
                binary: binary.to_path_buf(),
            };
            tokio::task::spawn_blocking(move || nodeutil::fs::write_json(&file, &chosen))
                .await
                .map_err(|e| crate::Error::Unavailable(e.to_string()))?
                .map_err(|e| crate::Error::Unavailable(e.to_string()))?;
            *self
                .inner
                .zdb_binary
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = binary.to_path_buf();
        }
        Ok(ZdbUpgradeReport { previous, servers })
    }

    /// One disk's hand-over; `None` when it has no server (any more).
    async fn hand_over(&self, disk: &str, binary: &Path) -> Option<ZdbHandover> {
        let _pool = self.lock_pool(disk).await;
        let spec = self.zdb_spec(disk)?;
        // take the server out of supervision; the spec with the new binary
        let (old_pid, can) = self.with_state(|st| {
            let d = st.disks.get_mut(disk)?;
            let z = d.zdb.as_ref()?;
            d.handover = true;
            Some((z.pid, z.can_hand_over()))
        })?;
        let done = |pid, upgraded, detail: Option<String>| ZdbHandover {
            disk: disk.to_string(),
            old_pid,
            pid,
            upgraded,
            detail,
        };
        let result = if can {
            self.run_hand_over(disk, binary, spec).await
        } else {
            Err(
                "its server was started without a hand-over socket (by an older storaged); \
                 it takes the new binary at its next restart"
                    .into(),
            )
        };
        let r = match result {
            Ok(new) => {
                let pid = new.pid;
                tracing::info!(disk, old_pid, pid, "zdb handed over to the new binary");
                self.with_state(|st| {
                    if let Some(d) = st.disks.get_mut(disk) {
                        d.zdb = Some(new);
                    }
                });
                done(pid, true, None)
            }
            Err(why) => {
                tracing::warn!(disk, old_pid, reason = %why, "zdb hand-over failed: the old one serves on");
                done(old_pid, false, Some(why))
            }
        };
        self.with_state(|st| {
            if let Some(d) = st.disks.get_mut(disk) {
                d.handover = false;
            }
        });
        Some(r)
    }

    /// Starts the new process and waits for the outcome: the new one once the old one left,
    /// or why not (the new one is gone then).
    async fn run_hand_over(
        &self,
        disk: &str,
        binary: &Path,
        mut spec: crate::zdbs::ZdbSpec,
    ) -> Result<ZdbProc, String> {
        spec.binary = binary.to_path_buf();
        let new = self.with_state(|st| {
            let z = st.disks.get(disk)?.zdb.as_ref()?;
            Some(z.take_over(spec))
        });
        let mut new = match new {
            None => return Err("the server is gone".into()),
            Some(Err(e)) => return Err(e.to_string()),
            Some(Ok(n)) => n,
        };
        let deadline = Instant::now() + HANDOVER_TIMEOUT;
        loop {
            tokio::time::sleep(Duration::from_millis(20)).await;
            // exited() reaps the old one when it is our child
            let old_gone = self.with_state(|st| {
                st.disks
                    .get_mut(disk)
                    .and_then(|d| d.zdb.as_mut())
                    .is_none_or(|z| z.exited())
            });
            if new.exited() {
                let why = new
                    .exit_reason()
                    .unwrap_or_else(|| "the new process exited".into());
                return Err(why);
            }
            if old_gone {
                break;
            }
            if Instant::now() >= deadline {
                new.stop(self.sys()).await;
                return Err(format!(
                    "not handed over within {} s",
                    HANDOVER_TIMEOUT.as_secs()
                ));
            }
        }
        let n = tokio::task::spawn_blocking(move || new.write_pid_file().map(|()| new))
            .await
            .map_err(|e| e.to_string())?;
        n.map_err(|e| e.to_string())
    }
}
