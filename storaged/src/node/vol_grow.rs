//! `storage.volume.grow`: raises the quota within the disk's unreserved room; never shrinks.

use super::Storage;
use crate::{Error, Result, policy, volume};
use bus::api::storage::Volume;

impl Storage {
    /// Grows a volume.
    pub fn vol_grow(&mut self, name: &str, size: u64) -> Result<Volume> {
        let cur = self.vol_reply(name)?;
        if size < cur.size {
            return Err(Error::Conflict(format!(
                "volume {name} cannot shrink from {} to {size} bytes",
                cur.size
            )));
        }
        if size == cur.size {
            return Ok(cur);
        }
        let disk = self
            .volume_disk(name)
            .map(str::to_string)
            .ok_or_else(|| Error::NotFound {
                kind: "volume",
                name: name.into(),
            })?;
        let view = self
            .views()
            .into_iter()
            .find(|v| v.disk == disk && v.healthy)
            .ok_or_else(|| Error::Unavailable(format!("disk {disk} is not healthy")))?;
        if !policy::can_resize(&view, cur.size, size) {
            return Err(Error::NoCapacity(format!(
                "disk {disk} has {} bytes unreserved, volume {name} needs {} more",
                view.free(),
                size - cur.size
            )));
        }
        let sys = self.sys.clone();
        let p = self
            .disks
            .get_mut(&disk)
            .and_then(|d| d.pool.as_mut())
            .ok_or_else(|| Error::Unavailable(format!("disk {disk} is gone")))?;
        volume::resize_at(sys.as_ref(), &cur.path, size)?;
        p.record.volumes.insert(name.into(), size);
        if let Err(e) = p.save() {
            p.record.volumes.insert(name.into(), cur.size);
            let _ = volume::resize_at(sys.as_ref(), &cur.path, cur.size);
            return Err(e);
        }
        let reply = self.vol_reply(name)?;
        self.publish("storage.volume", &reply);
        Ok(reply)
    }
}
