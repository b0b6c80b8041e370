//! `storage.zdb.allocate`: a namespace on a disk with unreserved room; idempotent (an existing
//! namespace of the same mode converges to the request). Nothing is half-created: any failure
//! after NSNEW deletes the namespace again.

use super::Storage;
use crate::policy::{self, Choice};
use crate::state::NsRecord;
use crate::zdbs::{Admin, valid_name};
use crate::{Error, Result};
use bus::api::storage::{ZdbAllocate, ZdbMode, ZdbNamespace};

/// Sets password and public flag (the converging part of allocate).
async fn set_access(a: &mut Admin, req: &ZdbAllocate) -> Result<()> {
    match &req.password {
        Some(pw) if !pw.expose().is_empty() => a.nsset(&req.name, "password", pw.expose()).await?,
        _ => a.nsset(&req.name, "password", "*").await?,
    }
    a.nsset(&req.name, "public", if req.public { "1" } else { "0" })
        .await?;
    Ok(())
}

impl Storage {
    /// The reply shape for namespace `name`.
    pub(super) fn ns_reply(&self, name: &str) -> Result<ZdbNamespace> {
        let not_found = || Error::NotFound {
            kind: "namespace",
            name: name.into(),
        };
        let disk = self.ns_disk(name).ok_or_else(not_found)?;
        let p = self
            .disks
            .get(disk)
            .and_then(|d| d.pool.as_ref())
            .ok_or_else(not_found)?;
        let ns = p.record.namespaces.get(name).ok_or_else(not_found)?;
        Ok(ZdbNamespace {
            namespace: name.into(),
            address: self.cfg.zdb.address.clone(),
            port: p.record.zdb_port.unwrap_or(0),
            size: ns.size,
            mode: ns.mode,
            public: ns.public,
            paused: ns.paused,
            disk: disk.into(),
        })
    }

    /// An admin connection to the zdb server of `disk`.
    pub(super) async fn admin(&self, disk: &str) -> Result<Admin> {
        let z = self
            .disks
            .get(disk)
            .and_then(|d| d.zdb.as_ref())
            .ok_or_else(|| {
                Error::Unavailable(format!("zdb server of disk {disk} is not running"))
            })?;
        Ok(z.admin().await?)
    }

    /// Allocates (or converges) a namespace.
    pub async fn ns_allocate(&mut self, req: ZdbAllocate) -> Result<ZdbNamespace> {
        valid_name(&req.name).map_err(Error::Invalid)?;
        if req.size == 0 {
            return Err(Error::Invalid("size must be above 0".into()));
        }
        if let Some(pw) = &req.password {
            // zdb takes NSSET values up to 63 bytes; "*" would mean "no password".
            let p = pw.expose();
            if p.len() > 63 || p == "*" || p.bytes().any(|b| b.is_ascii_control()) {
                return Err(Error::Invalid(
                    "password must be 1..63 bytes without control characters, not \"*\"".into(),
                ));
            }
        }
        if let Some(disk) = self.ns_disk(&req.name).map(str::to_string) {
            let cur = self.ns_reply(&req.name)?;
            if cur.mode != req.mode {
                return Err(Error::Conflict(format!(
                    "namespace {} exists with mode {:?}, mode cannot change",
                    req.name, cur.mode
                )));
            }
            let mut a = self.admin(&disk).await?;
            set_access(&mut a, &req).await?;
            let rec = self.ns_record_mut(&disk, &req.name)?;
            rec.public = req.public;
            self.save_pool(&disk)?;
            if req.size > cur.size {
                return self.ns_grow(&req.name, req.size).await;
            }
            return self.ns_reply(&req.name);
        }
        let disk = match policy::place_namespace(&self.views(), req.size) {
            Choice::Disk(d) => d,
            Choice::NoRoom { largest_free } => {
                return Err(Error::NoCapacity(format!(
                    "no disk has {} bytes unreserved for namespace {} (largest free: {largest_free})",
                    req.size, req.name
                )));
            }
            Choice::NoDisk => {
                return Err(Error::NoCapacity("no disk can host zdb namespaces".into()));
            }
        };
        let mut a = self.admin(&disk).await?;
        a.nsnew(&req.name).await.map_err(|e| match e {
            crate::zdbs::ZdbError::Refused { message, .. } if message.contains("not available") => {
                Error::Conflict(format!(
                    "namespace {} already exists on disk {disk}",
                    req.name
                ))
            }
            other => other.into(),
        })?;
        let setup = async {
            a.nsset(&req.name, "maxsize", &req.size.to_string()).await?;
            if req.mode == ZdbMode::Seq {
                a.nsset(&req.name, "mode", "seq").await?;
            }
            set_access(&mut a, &req).await
        };
        if let Err(e) = setup.await {
            self.undo_nsnew(&disk, &req.name).await;
            return Err(e);
        }
        let rec = NsRecord {
            size: req.size,
            mode: req.mode,
            public: req.public,
            paused: false,
        };
        let saved = match self.disks.get_mut(&disk).and_then(|d| d.pool.as_mut()) {
            Some(p) => {
                p.record.namespaces.insert(req.name.clone(), rec);
                let r = p.save();
                if r.is_err() {
                    p.record.namespaces.remove(&req.name);
                }
                r
            }
            None => Err(Error::Unavailable(format!("disk {disk} is gone"))),
        };
        if let Err(e) = saved {
            self.undo_nsnew(&disk, &req.name).await;
            return Err(e);
        }
        tracing::info!(namespace = %req.name, disk = %disk, size = req.size, "namespace allocated");
        let reply = self.ns_reply(&req.name)?;
        self.publish("storage.zdb", &reply);
        Ok(reply)
    }

    async fn undo_nsnew(&self, disk: &str, name: &str) {
        let res = match self.admin(disk).await {
            Ok(mut a) => a.nsdel(name).await.map_err(Error::from),
            Err(e) => Err(e),
        };
        if let Err(e) = res {
            tracing::error!(namespace = name, disk, error = %e, "cannot remove half-created namespace");
        }
    }

    pub(super) fn ns_record_mut(&mut self, disk: &str, name: &str) -> Result<&mut NsRecord> {
        self.disks
            .get_mut(disk)
            .and_then(|d| d.pool.as_mut())
            .and_then(|p| p.record.namespaces.get_mut(name))
            .ok_or_else(|| Error::NotFound {
                kind: "namespace",
                name: name.into(),
            })
    }

    pub(super) fn save_pool(&self, disk: &str) -> Result<()> {
        match self.disks.get(disk).and_then(|d| d.pool.as_ref()) {
            Some(p) => p.save(),
            None => Err(Error::Unavailable(format!("disk {disk} is gone"))),
        }
    }
}
