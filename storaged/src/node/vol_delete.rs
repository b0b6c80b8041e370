//! `storage.volume.delete`: removes the subvolume and its data; absent is fine.

use super::Storage;
use crate::{Error, Result, volume};

impl Storage {
    /// Deletes a volume.
    pub fn vol_delete(&mut self, name: &str) -> Result<()> {
        crate::zdbs::valid_name(name).map_err(Error::Invalid)?;
        let Some(disk) = self.volume_disk(name).map(str::to_string) else {
            return Ok(());
        };
        let sys = self.sys.clone();
        let p = self
            .disks
            .get_mut(&disk)
            .and_then(|d| d.pool.as_mut())
            .ok_or_else(|| Error::Unavailable(format!("disk {disk} is gone")))?;
        volume::delete_at(sys.as_ref(), &volume::path(&p.mountpoint, name))?;
        p.record.volumes.remove(name);
        p.save()?;
        tracing::info!(volume = name, disk = %disk, "volume deleted");
        self.publish(
            "storage.volume",
            &serde_json::json!({"name": name, "deleted": true}),
        );
        Ok(())
    }
}
