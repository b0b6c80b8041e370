//! `compute.flist.upgrade@1`: every shared flist mount handed over to a new `flist` binary,
//! live. Containers are not touched: their overlays stay on the same mounts.

use super::Engine;
use crate::error::Result;
use bus::api::upgrade::FlistMountsReport;
use std::path::Path;

impl Engine {
    /// Hand every shared flist mount over to `binary` (see [`crate::system::System::rootfs_upgrade`]).
    pub fn upgrade_flist(&self, binary: &Path) -> Result<FlistMountsReport> {
        if !binary.is_absolute() {
            return Err(crate::Error::Invalid(format!(
                "the flist binary must be an absolute path, not {}",
                binary.display()
            )));
        }
        let (previous, mounts) = self.sys.rootfs_upgrade(binary)?;
        let failed = mounts.iter().filter(|m| !m.upgraded).count();
        tracing::info!(
            mounts = mounts.len(),
            failed,
            binary = %binary.display(),
            "flist mounts upgraded"
        );
        Ok(FlistMountsReport { previous, mounts })
    }
}
