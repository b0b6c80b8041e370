//! `storage.volume.create` and `get`: a subvolume with a quota on the disk the policy picks;
//! idempotent (an existing volume grows to a larger size).

use super::pool_op::Placed;
use super::{Kind, Storage};
use crate::policy::{self, Choice};
use crate::{Error, Result, volume};
use bus::api::storage::{Volume, VolumeCreate};

impl Storage {
    pub(super) fn vol_reply(&self, name: &str) -> Result<Volume> {
        self.with_state(|st| {
            let not_found = || Error::NotFound {
                kind: "volume",
                name: name.into(),
            };
            let disk = st.disk_of(Kind::Volume, name).ok_or_else(not_found)?;
            let p = st
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
        })
    }

    /// Reads a volume.
    pub fn vol_get(&self, name: &str) -> Result<Volume> {
        self.vol_reply(name)
    }

    /// Makes a recorded volume's subvolume again when it is gone (deleted behind storaged's
    /// back): an apply of the workload, such as node-init's drift repair, then converges it.
    /// Its data is lost with it; what comes back is an empty volume of the recorded size.
    async fn vol_restore(&self, disk: &str, cur: &Volume) -> Result<()> {
        let (sys, p, size) = (self.sys(), cur.path.clone(), cur.size);
        let step = self.limits().step;
        let made = self
            .blocking(disk, "restoring a volume", step, move || {
                volume::restore_at(sys.as_ref(), &p, size)
            })
            .await?;
        if made {
            tracing::warn!(volume = %cur.name, disk = %disk, "volume's subvolume was gone: made again, empty");
            self.publish("storage.volume", cur);
        }
        Ok(())
    }

    /// Creates (or converges) a volume.
    pub async fn vol_create(&self, req: VolumeCreate) -> Result<Volume> {
        crate::zdbs::valid_name(&req.name).map_err(Error::Invalid)?;
        if req.size == 0 {
            return Err(Error::Invalid("size must be above 0".into()));
        }
        let placed = self
            .reserve(Kind::Volume, &req.name, req.size, |st| {
                match policy::place_volume(&st.views(), req.size) {
                    Choice::Disk(d) => Ok(d),
                    Choice::NoRoom { largest_free } => Err(Error::NoCapacity(format!(
                        "no disk has {} bytes unreserved for volume {} (largest free: {largest_free})",
                        req.size, req.name
                    ))),
                    Choice::NoDisk => Err(Error::NoCapacity("no healthy disk".into())),
                }
            })
            .await?;
        let reservation = match placed {
            Placed::Existing(disk, _pool) => {
                let cur = self.vol_reply(&req.name)?;
                self.vol_restore(&disk, &cur).await?;
                return if req.size > cur.size {
                    self.vol_grow_locked(&disk, &req.name, req.size).await
                } else {
                    Ok(cur)
                };
            }
            Placed::New(r) => r,
        };
        let disk = reservation.disk.clone();
        let _pool = self.lock_pool(&disk).await;
        let mnt =
            self.with_state(|st| Ok::<_, Error>(st.ready_pool_mut(&disk)?.mountpoint.clone()))?;
        let path = volume::path(&mnt, &req.name);
        let (sys, p, size) = (self.sys(), path.clone(), req.size);
        let step = self.limits().step;
        self.blocking(&disk, "creating a volume", step, move || {
            volume::create_at(sys.as_ref(), &p, size)
        })
        .await?;
        let committed = self
            .commit(
                &disk,
                |r| r.volumes.insert(req.name.clone(), req.size),
                |r| {
                    r.volumes.remove(&req.name);
                },
            )
            .await;
        if let Err(e) = committed {
            let sys = self.sys();
            let _ = self
                .blocking(&disk, "removing a volume", step, move || {
                    volume::delete_at(sys.as_ref(), &path)
                })
                .await;
            return Err(e);
        }
        drop(reservation);
        tracing::info!(volume = %req.name, disk = %disk, size = req.size, "volume created");
        let reply = self.vol_reply(&req.name)?;
        self.publish("storage.volume", &reply);
        Ok(reply)
    }
}
