//! `storage.volume.create` and `get`: a subvolume with a quota on the disk the policy picks;
//! idempotent (an existing volume grows to a larger size).

use super::Storage;
use crate::policy::{self, Choice};
use crate::{Error, Result, volume};
use bus::api::storage::{Volume, VolumeCreate};

impl Storage {
    pub(super) fn vol_reply(&self, name: &str) -> Result<Volume> {
        let not_found = || Error::NotFound {
            kind: "volume",
            name: name.into(),
        };
        let disk = self.volume_disk(name).ok_or_else(not_found)?;
        let p = self
            .disks
            .get(disk)
            .and_then(|d| d.pool.as_ref())
            .ok_or_else(not_found)?;
        let size = *p.record.volumes.get(name).ok_or_else(not_found)?;
        Ok(Volume {
            name: name.into(),
            path: volume::path(&p.mountpoint, name),
            size,
        })
    }

    /// Reads a volume.
    pub fn vol_get(&self, name: &str) -> Result<Volume> {
        self.vol_reply(name)
    }

    /// Creates (or converges) a volume.
    pub fn vol_create(&mut self, req: VolumeCreate) -> Result<Volume> {
        crate::zdbs::valid_name(&req.name).map_err(Error::Invalid)?;
        if req.size == 0 {
            return Err(Error::Invalid("size must be above 0".into()));
        }
        if self.volume_disk(&req.name).is_some() {
            let cur = self.vol_reply(&req.name)?;
            return if req.size > cur.size {
                self.vol_grow(&req.name, req.size)
            } else {
                Ok(cur)
            };
        }
        let disk = match policy::place_volume(&self.views(), req.size) {
            Choice::Disk(d) => d,
            Choice::NoRoom { largest_free } => {
                return Err(Error::NoCapacity(format!(
                    "no disk has {} bytes unreserved for volume {} (largest free: {largest_free})",
                    req.size, req.name
                )));
            }
            Choice::NoDisk => return Err(Error::NoCapacity("no healthy disk".into())),
        };
        let sys = self.sys.clone();
        let p = self
            .disks
            .get_mut(&disk)
            .and_then(|d| d.pool.as_mut())
            .ok_or_else(|| Error::Unavailable(format!("disk {disk} is gone")))?;
        let path = volume::path(&p.mountpoint, &req.name);
        volume::create_at(sys.as_ref(), &path, req.size)?;
        p.record.volumes.insert(req.name.clone(), req.size);
        if let Err(e) = p.save() {
            p.record.volumes.remove(&req.name);
            let _ = volume::delete_at(sys.as_ref(), &path);
            return Err(e);
        }
        tracing::info!(volume = %req.name, disk = %disk, size = req.size, "volume created");
        let reply = self.vol_reply(&req.name)?;
        self.publish("storage.volume", &reply);
        Ok(reply)
    }
}
