//! `zos upgrade flist --from PATH` and `zos upgrade --rollback flist`: the binary is installed
//! like a daemon's, then computed hands each shared flist mount over to it, live
//! (`compute.flist.upgrade@1`): containers reading their root filesystems see no error. Mounts
//! made afterwards use it. Once every mount took it, the binary it replaced is recorded in
//! `<node>/upgrade/flist.previous.json`: a rollback hands the mounts back to that one the same
//! live way (and records the one it left, so a second rollback goes forward again).

use super::{FLIST, Upgrader, blocking, handover, install, internal, short, version_of};
use bus::RemoteError;
use bus::api::upgrade::{FlistMountsUpgrade, Outcome, UpgradeFlistMounts, UpgradeReply};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// computed hands mounts over one after the other, each within 180 s.
const FLIST_CALL_TIMEOUT: Duration = Duration::from_secs(3600);

impl Upgrader {
    /// `zos upgrade flist --from PATH`.
    pub(super) async fn upgrade_flist_mounts(
        &self,
        from: &Path,
    ) -> Result<UpgradeReply, RemoteError> {
        let (node, src) = (self.node.clone(), from.to_path_buf());
        let (dest, hex) = blocking(move || install(&node, FLIST, &src, FLIST))
            .await
            .map_err(|e| RemoteError::invalid(format!("cannot install {}: {e}", from.display())))?;
        self.hand_mounts_over(dest, short(&hex), Outcome::Upgraded)
            .await
    }

    /// `zos upgrade --rollback flist`; the caller holds the upgrade lock.
    pub(super) async fn rollback_flist_mounts(&self) -> Result<UpgradeReply, RemoteError> {
        let (exec, version) = self.previous_binary(FLIST).await?;
        self.hand_mounts_over(exec, version, Outcome::RolledBack)
            .await
    }

    /// computed hands every shared mount over to `binary`; `success` when all took it (then
    /// the binary they left is recorded for the next rollback).
    async fn hand_mounts_over(
        &self,
        binary: PathBuf,
        to_version: String,
        success: Outcome,
    ) -> Result<UpgradeReply, RemoteError> {
        let computed = bus::Client::new(bus::service_socket(&self.node.join("run"), "computed"))
            .call_timeout(FLIST_CALL_TIMEOUT);
        let report = computed
            .call::<UpgradeFlistMounts>(&FlistMountsUpgrade {
                binary: binary.clone(),
            })
            .await
            .map_err(|e| RemoteError::new(bus::ErrorCode::Unavailable, format!("computed: {e}")))?;
        let prev = report.previous.clone();
        let from_version = blocking(move || Ok(version_of(&prev)))
            .await
            .map_err(internal("version"))?;
        let failed: Vec<String> = report
            .mounts
            .iter()
            .filter(|m| !m.upgraded)
            .map(|m| {
                format!(
                    "{}: {}",
                    m.identity.get(..16).unwrap_or(&m.identity),
                    m.detail.as_deref().unwrap_or("failed")
                )
            })
            .collect();
        tracing::info!(mounts = report.mounts.len(), failed = failed.len(), version = %to_version, "flist upgrade");
        if failed.is_empty() {
            self.record_previous(FLIST, &report.previous, &binary)
                .await?;
        }
        let mut r = handover::reply(
            FLIST,
            success,
            from_version,
            to_version,
            &failed,
            report.mounts.len(),
            "mount process",
        );
        r.flist = report.mounts;
        Ok(r)
    }
}
