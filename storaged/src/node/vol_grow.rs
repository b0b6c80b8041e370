//! `storage.volume.grow`: raises the quota within the disk's unreserved room; never shrinks.

use super::{Kind, Storage};
use crate::{Error, Result, policy, volume};
use bus::api::storage::Volume;

impl Storage {
    /// Grows a volume.
    pub async fn vol_grow(&self, name: &str, size: u64) -> Result<Volume> {
        let (disk, _pool) =
            self.locate(Kind::Volume, name)
                .await
                .ok_or_else(|| Error::NotFound {
                    kind: "volume",
                    name: name.into(),
                })?;
        self.vol_grow_locked(&disk, name, size).await
    }

    /// Grows volume `name` on `disk`, whose pool lock the caller holds.
    pub(super) async fn vol_grow_locked(
        &self,
        disk: &str,
        name: &str,
        size: u64,
    ) -> Result<Volume> {
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
        let _more = self.reserve_more(disk, size - cur.size, |st| {
            let view = st
                .views()
                .into_iter()
                .find(|v| v.disk == disk && v.healthy)
                .ok_or_else(|| Error::Unavailable(format!("disk {disk} is not healthy")))?;
            if policy::can_resize(&view, cur.size, size) {
                Ok(())
            } else {
                Err(Error::NoCapacity(format!(
                    "disk {disk} has {} bytes unreserved, volume {name} needs {} more",
                    view.free(),
                    size - cur.size
                )))
            }
        })?;
        let (sys, p) = (self.sys(), cur.path.clone());
        let step = self.limits().step;
        self.blocking(disk, "resizing a volume", step, move || {
            volume::resize_at(sys.as_ref(), &p, size)
        })
        .await?;
        let set = |s: u64| {
            move |r: &mut crate::state::PoolRecord| {
                r.volumes.insert(name.to_string(), s);
            }
        };
        if let Err(e) = self.commit(disk, set(size), set(cur.size)).await {
            let (sys, p, old) = (self.sys(), cur.path.clone(), cur.size);
            let _ = self
                .blocking(disk, "resizing a volume", step, move || {
                    volume::resize_at(sys.as_ref(), &p, old)
                })
                .await;
            return Err(e);
        }
        let reply = self.vol_reply(name)?;
        self.publish("storage.volume", &reply);
        Ok(reply)
    }
}
