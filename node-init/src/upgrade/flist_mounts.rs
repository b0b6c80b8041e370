//! `zos upgrade flist --from PATH`: the binary is installed like a daemon's, then computed
//! hands each shared flist mount over to it, live (`compute.flist.upgrade@1`): containers
//! reading their root filesystems see no error. Mounts made afterwards use it.

use super::{FLIST, Upgrader, blocking, handover, install, internal, short, version_of};
use bus::RemoteError;
use bus::api::upgrade::{FlistMountsUpgrade, Outcome, UpgradeFlistMounts, UpgradeReply};
use std::path::Path;
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
        let computed = bus::Client::new(bus::service_socket(&self.node.join("run"), "computed"))
            .call_timeout(FLIST_CALL_TIMEOUT);
        let report = computed
            .call::<UpgradeFlistMounts>(&FlistMountsUpgrade { binary: dest })
            .await
            .map_err(|e| RemoteError::new(bus::ErrorCode::Unavailable, format!("computed: {e}")))?;
        let prev = report.previous.clone();
        let from_version = blocking(move || Ok(version_of(&prev)))
            .await
            .map_err(internal("version"))?;
        let to_version = short(&hex);
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
        let mut r = handover::reply(
            FLIST,
            Outcome::Upgraded,
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
