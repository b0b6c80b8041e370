//! The node's own state volume: a subvolume `<pool>/state` on the best disk available (SSD
//! first, else HDD, so an HDD-only node comes online), linked at `<root>/state`. Once placed it
//! stays on its disk.

use super::Storage;
use crate::policy::{self, Choice};
use crate::volume;
use std::path::Path;

impl Storage {
    /// Path of the state volume, once it exists.
    pub fn state_path(&self) -> Option<&Path> {
        self.state_path.as_deref()
    }

    /// Places (once) and mounts the state volume; errors are logged and retried next scan.
    pub fn ensure_state_volume(&mut self) {
        if let Err(e) = self.try_state_volume() {
            tracing::warn!(error = %e, "state volume not ready");
        }
    }

    fn try_state_volume(&mut self) -> crate::Result<()> {
        if let Some(p) = &self.state_path
            && p.exists()
            && self.disks.values().any(|d| {
                d.ready_pool()
                    .is_some_and(|pl| p.starts_with(&pl.mountpoint))
            })
        {
            return Ok(());
        }
        let size = self.cfg.state_volume_size;
        let existing = self
            .disks
            .iter()
            .find(|(_, d)| {
                d.ready_pool()
                    .is_some_and(|p| p.record.state_volume.is_some())
            })
            .map(|(k, _)| k.clone());
        let disk = match existing {
            Some(d) => d,
            None => {
                if self.disks.values().any(|d| {
                    d.pool
                        .as_ref()
                        .is_some_and(|p| p.record.state_volume.is_some())
                }) {
                    // Its disk is broken or missing: do not silently start a fresh one.
                    self.state_path = None;
                    return Ok(());
                }
                match policy::place_state(&self.views(), size) {
                    Choice::Disk(d) => d,
                    Choice::NoRoom { largest_free } => {
                        return Err(crate::Error::NoCapacity(format!(
                            "state volume needs {size} bytes, largest free {largest_free}"
                        )));
                    }
                    Choice::NoDisk => return Ok(()),
                }
            }
        };
        let sys = self.sys.clone();
        let link = self.paths.state_link();
        let d = self.entry_mut(&disk)?;
        let Some(p) = d.pool.as_mut() else {
            return Ok(());
        };
        let path = p.mountpoint.join("state");
        volume::create_at(sys.as_ref(), &path, p.record.state_volume.unwrap_or(size))?;
        if p.record.state_volume.is_none() {
            p.record.state_volume = Some(size);
            p.save()?;
            tracing::info!(disk = %disk, path = %path.display(), "state volume created");
        }
        if std::fs::read_link(&link).ok().as_deref() != Some(path.as_path()) {
            let tmp = link.with_extension("tmp");
            let _ = std::fs::remove_file(&tmp);
            std::os::unix::fs::symlink(&path, &tmp).map_err(crate::Error::io("symlink", &tmp))?;
            std::fs::rename(&tmp, &link).map_err(crate::Error::io("rename", &link))?;
        }
        self.state_path = Some(path);
        Ok(())
    }
}
