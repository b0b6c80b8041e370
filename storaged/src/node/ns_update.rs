//! `storage.zdb.{get,grow,pause,resume}`: size only grows, within the disk's unreserved room;
//! pause freezes the namespace (volatile in zdb, so recorded and re-applied on restarts).

use super::Storage;
use crate::policy;
use crate::{Error, Result};
use bus::api::storage::ZdbNamespace;

impl Storage {
    fn ns_locate(&self, name: &str) -> Result<String> {
        self.ns_disk(name)
            .map(str::to_string)
            .ok_or_else(|| Error::NotFound {
                kind: "namespace",
                name: name.into(),
            })
    }

    /// Reads a namespace.
    pub fn ns_get(&self, name: &str) -> Result<ZdbNamespace> {
        self.ns_reply(name)
    }

    /// Grows a namespace.
    pub async fn ns_grow(&mut self, name: &str, size: u64) -> Result<ZdbNamespace> {
        let disk = self.ns_locate(name)?;
        let cur = self.ns_reply(name)?;
        if size < cur.size {
            return Err(Error::Conflict(format!(
                "namespace {name} cannot shrink from {} to {size} bytes",
                cur.size
            )));
        }
        if size == cur.size {
            return Ok(cur);
        }
        let view = self
            .views()
            .into_iter()
            .find(|v| v.disk == disk)
            .ok_or_else(|| Error::Unavailable(format!("disk {disk} is gone")))?;
        if !policy::can_resize(&view, cur.size, size) {
            return Err(Error::NoCapacity(format!(
                "disk {disk} has {} bytes unreserved, namespace {name} needs {} more",
                view.free(),
                size - cur.size
            )));
        }
        let mut a = self.admin(&disk).await?;
        a.nsset(name, "maxsize", &size.to_string()).await?;
        let rec = self.ns_record_mut(&disk, name)?;
        rec.size = size;
        if let Err(e) = self.save_pool(&disk) {
            self.ns_record_mut(&disk, name)?.size = cur.size;
            let _ = a.nsset(name, "maxsize", &cur.size.to_string()).await;
            return Err(e);
        }
        let reply = self.ns_reply(name)?;
        self.publish("storage.zdb", &reply);
        Ok(reply)
    }

    /// Freezes (`true`) or unfreezes a namespace.
    pub async fn ns_set_paused(&mut self, name: &str, paused: bool) -> Result<ZdbNamespace> {
        let disk = self.ns_locate(name)?;
        // Record first: if zdb restarts in between, the supervisor re-applies the record.
        self.ns_record_mut(&disk, name)?.paused = paused;
        self.save_pool(&disk)?;
        let mut a = self.admin(&disk).await?;
        a.nsset(name, "freeze", if paused { "1" } else { "0" })
            .await?;
        let reply = self.ns_reply(name)?;
        self.publish("storage.zdb", &reply);
        Ok(reply)
    }
}
