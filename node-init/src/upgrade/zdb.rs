//! `zos upgrade zdb --from PATH` and `zos upgrade --rollback zdb`: the binary is installed like
//! a daemon's, then storaged hands each of its zdb servers over to it, live
//! (`storage.zdb.upgrade@1`). Once every server took it, the binary it replaced is recorded in
//! `<node>/upgrade/zdb.previous.json`: a rollback hands the servers back to that one the same
//! live way (and records the one it left, so a second rollback goes forward again).

use super::{Upgrader, ZDB, blocking, handover, install, internal, short, version_of};
use bus::RemoteError;
use bus::api::upgrade::{Outcome, UpgradeReply, UpgradeZdb, ZdbUpgrade};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// storaged hands servers over one after the other, each within 150 s.
const ZDB_CALL_TIMEOUT: Duration = Duration::from_secs(3600);

impl Upgrader {
    /// `zos upgrade zdb --from PATH`.
    pub(super) async fn upgrade_zdb(&self, from: &Path) -> Result<UpgradeReply, RemoteError> {
        let (node, src) = (self.node.clone(), from.to_path_buf());
        let (dest, hex) = blocking(move || install(&node, ZDB, &src, ZDB))
            .await
            .map_err(|e| RemoteError::invalid(format!("cannot install {}: {e}", from.display())))?;
        self.hand_zdb_over(dest, short(&hex), Outcome::Upgraded)
            .await
    }

    /// `zos upgrade --rollback zdb`; the caller holds the upgrade lock.
    pub(super) async fn rollback_zdb(&self) -> Result<UpgradeReply, RemoteError> {
        let (exec, version) = self.previous_binary(ZDB).await?;
        self.hand_zdb_over(exec, version, Outcome::RolledBack).await
    }

    /// storaged hands every server over to `binary`; `success` when all took it (then the
    /// binary they left is recorded for the next rollback).
    async fn hand_zdb_over(
        &self,
        binary: PathBuf,
        to_version: String,
        success: Outcome,
    ) -> Result<UpgradeReply, RemoteError> {
        let storaged = bus::Client::new(bus::service_socket(&self.node.join("run"), "storaged"))
            .call_timeout(ZDB_CALL_TIMEOUT);
        let report = storaged
            .call::<UpgradeZdb>(&ZdbUpgrade {
                binary: binary.clone(),
            })
            .await
            .map_err(|e| RemoteError::new(bus::ErrorCode::Unavailable, format!("storaged: {e}")))?;
        let prev = report.previous.clone();
        let from_version = blocking(move || Ok(version_of(&prev)))
            .await
            .map_err(internal("version"))?;
        let failed: Vec<String> = report
            .servers
            .iter()
            .filter(|s| !s.upgraded)
            .map(|s| format!("{}: {}", s.disk, s.detail.as_deref().unwrap_or("failed")))
            .collect();
        tracing::info!(servers = report.servers.len(), failed = failed.len(), version = %to_version, "zdb hand-over");
        if failed.is_empty() {
            self.record_previous(ZDB, &report.previous, &binary).await?;
        }
        let mut r = handover::reply(
            ZDB,
            success,
            from_version,
            to_version,
            &failed,
            report.servers.len(),
            "server",
        );
        r.zdb = report.servers;
        Ok(r)
    }
}
