//! The node's own state volume: a subvolume `<pool>/state` on the best disk available (SSD
//! first, else HDD, so an HDD-only node comes online), linked at `<root>/state`. Once placed it
//! stays on its disk.

use super::Storage;
use crate::policy::{self, Choice};
use crate::volume;
use std::path::Path;

enum Where {
    /// It is there and linked.
    Done,
    /// Its disk is broken or missing: do not silently start a fresh one elsewhere.
    Lost,
    /// Nowhere to put it yet.
    Nowhere,
    /// Make (or check) it on this disk.
    On(String),
}

impl Storage {
    /// Path of the state volume, once it exists.
    pub fn state_path(&self) -> Option<std::path::PathBuf> {
        self.with_state(|st| st.state_path.clone())
    }

    /// Places (once) and mounts the state volume; errors are logged and retried next scan.
    pub async fn ensure_state_volume(&self) {
        if let Err(e) = self.try_state_volume().await {
            tracing::warn!(error = %e, "state volume not ready");
        }
    }

    async fn try_state_volume(&self) -> crate::Result<()> {
        let size = self.with_state(|st| st.cfg.state_volume_size);
        let place = self.with_state(|st| {
            if let Some(p) = &st.state_path
                && p.exists()
                && st.disks.values().any(|d| {
                    d.ready_pool()
                        .is_some_and(|pl| p.starts_with(&pl.mountpoint))
                })
            {
                return Where::Done;
            }
            let here = st
                .disks
                .iter()
                .find(|(_, d)| {
                    d.ready_pool()
                        .is_some_and(|p| p.record.state_volume.is_some())
                })
                .map(|(k, _)| k.clone());
            if let Some(d) = here {
                return Where::On(d);
            }
            if st.disks.values().any(|d| {
                d.pool
                    .as_ref()
                    .is_some_and(|p| p.record.state_volume.is_some())
            }) {
                st.state_path = None;
                return Where::Lost;
            }
            match policy::place_state(&st.views(), size) {
                Choice::Disk(d) => Where::On(d),
                Choice::NoRoom { largest_free } => {
                    tracing::warn!(size, largest_free, "no room for the state volume");
                    Where::Nowhere
                }
                Choice::NoDisk => Where::Nowhere,
            }
        });
        let disk = match place {
            Where::On(d) => d,
            Where::Done | Where::Lost | Where::Nowhere => return Ok(()),
        };
        let new = self.with_state(|st| {
            st.ready_pool_mut(&disk)
                .map(|p| p.record.state_volume.is_none())
        })?;
        // A new one's bytes are promised at once, so no volume placed meanwhile takes them.
        let _reserved = if new {
            Some(self.reserve_more(&disk, size, |_| Ok(()))?)
        } else {
            None
        };
        let _pool = self.lock_pool(&disk).await;
        let (mnt, quota) = self.with_state(|st| {
            let p = st.ready_pool_mut(&disk)?;
            Ok::<_, crate::Error>((p.mountpoint.clone(), p.record.state_volume))
        })?;
        let path = mnt.join("state");
        let link = self.paths().state_link();
        let (sys, p, l) = (self.sys(), path.clone(), link.clone());
        let step = self.limits().step;
        self.blocking(&disk, "creating the state volume", step, move || {
            volume::create_at(sys.as_ref(), &p, quota.unwrap_or(size))?;
            relink(&l, &p)
        })
        .await?;
        if quota.is_none() {
            self.commit(
                &disk,
                |r| r.state_volume = Some(size),
                |r| r.state_volume = None,
            )
            .await?;
            tracing::info!(disk = %disk, path = %path.display(), "state volume created");
        }
        self.with_state(|st| st.state_path = Some(path));
        Ok(())
    }
}

/// Points `link` at `target` (replaced atomically when it points elsewhere).
fn relink(link: &Path, target: &Path) -> crate::Result<()> {
    if std::fs::read_link(link).ok().as_deref() == Some(target) {
        return Ok(());
    }
    let tmp = link.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp).map_err(crate::Error::io("symlink", &tmp))?;
    std::fs::rename(&tmp, link).map_err(crate::Error::io("rename", link))
}
