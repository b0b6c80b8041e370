//! `storage.volume.delete`: removes the subvolume and its data; absent is fine.

use super::{Kind, Storage};
use crate::{Error, Result, volume};

impl Storage {
    /// Deletes a volume.
    pub async fn vol_delete(&self, name: &str) -> Result<()> {
        crate::zdbs::valid_name(name).map_err(Error::Invalid)?;
        let Some((disk, _pool)) = self.locate(Kind::Volume, name).await else {
            return Ok(());
        };
        let path = self.vol_reply(name)?.path;
        let old = self.with_state(|st| {
            st.disks
                .get(&disk)
                .and_then(|d| d.pool.as_ref())
                .and_then(|p| p.record.volumes.get(name).copied())
        });
        // The pool must serve: a volume on a failed disk stays until the disk is back.
        self.with_state(|st| st.ready_pool_mut(&disk).map(drop))?;
        let sys = self.sys();
        let step = self.limits().step;
        self.blocking(&disk, "deleting a volume", step, move || {
            volume::delete_at(sys.as_ref(), &path)
        })
        .await?;
        self.commit(
            &disk,
            |r| r.volumes.remove(name),
            |r| {
                if let Some(size) = old {
                    r.volumes.insert(name.to_string(), size);
                }
            },
        )
        .await?;
        tracing::info!(volume = name, disk = %disk, "volume deleted");
        self.publish(
            "storage.volume",
            &serde_json::json!({"name": name, "deleted": true}),
        );
        Ok(())
    }
}
