//! `storage.zdb.{get,grow,pause,resume}`: size only grows, within the disk's unreserved room;
//! pause freezes the namespace (volatile in zdb, so recorded and re-applied on restarts).

use super::{Kind, Storage};
use crate::policy;
use crate::{Error, Result};
use bus::api::storage::ZdbNamespace;

fn not_found(name: &str) -> Error {
    Error::NotFound {
        kind: "namespace",
        name: name.into(),
    }
}

impl Storage {
    /// Reads a namespace.
    pub fn ns_get(&self, name: &str) -> Result<ZdbNamespace> {
        self.ns_reply(name)
    }

    /// Grows a namespace.
    pub async fn ns_grow(&self, name: &str, size: u64) -> Result<ZdbNamespace> {
        let (disk, _pool) = self
            .locate(Kind::Namespace, name)
            .await
            .ok_or_else(|| not_found(name))?;
        self.ns_grow_locked(&disk, name, size).await
    }

    /// Grows namespace `name` on `disk`, whose pool lock the caller holds.
    pub(super) async fn ns_grow_locked(
        &self,
        disk: &str,
        name: &str,
        size: u64,
    ) -> Result<ZdbNamespace> {
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
        let _more = self.reserve_more(disk, size - cur.size, |st| {
            let view = st
                .views()
                .into_iter()
                .find(|v| v.disk == disk)
                .ok_or_else(|| Error::Unavailable(format!("disk {disk} is gone")))?;
            if policy::can_resize(&view, cur.size, size) {
                Ok(())
            } else {
                Err(Error::NoCapacity(format!(
                    "disk {disk} has {} bytes unreserved, namespace {name} needs {} more",
                    view.free(),
                    size - cur.size
                )))
            }
        })?;
        let endpoint = self.endpoint(disk)?;
        let mut a = endpoint.admin().await?;
        a.nsset(name, "maxsize", &size.to_string()).await?;
        let set = |s: u64| {
            move |r: &mut crate::state::PoolRecord| {
                if let Some(ns) = r.namespaces.get_mut(name) {
                    ns.size = s;
                }
            }
        };
        if let Err(e) = self.commit(disk, set(size), set(cur.size)).await {
            let _ = a.nsset(name, "maxsize", &cur.size.to_string()).await;
            return Err(e);
        }
        let reply = self.ns_reply(name)?;
        self.publish("storage.zdb", &reply);
        Ok(reply)
    }

    /// Freezes (`true`) or unfreezes a namespace.
    pub async fn ns_set_paused(&self, name: &str, paused: bool) -> Result<ZdbNamespace> {
        let (disk, _pool) = self
            .locate(Kind::Namespace, name)
            .await
            .ok_or_else(|| not_found(name))?;
        let was = self.ns_reply(name)?.paused;
        let set = |p: bool| {
            move |r: &mut crate::state::PoolRecord| {
                if let Some(ns) = r.namespaces.get_mut(name) {
                    ns.paused = p;
                }
            }
        };
        // Record first: if zdb restarts in between, the supervisor re-applies the record.
        self.commit(&disk, set(paused), set(was)).await?;
        let mut a = self.endpoint(&disk)?.admin().await?;
        a.nsset(name, "freeze", if paused { "1" } else { "0" })
            .await?;
        let reply = self.ns_reply(name)?;
        self.publish("storage.zdb", &reply);
        Ok(reply)
    }
}
