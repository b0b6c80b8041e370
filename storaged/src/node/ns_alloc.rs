//! `storage.zdb.allocate`: a namespace on a disk with unreserved room; idempotent (an existing
//! namespace of the same mode converges to the request, and one recorded but missing on its
//! zdb server is made again: node-init's drift repair relies on it). Nothing is half-created: any failure
//! after NSNEW deletes the namespace again.

use super::pool_op::Placed;
use super::{Kind, Storage};
use crate::policy::{self, Choice};
use crate::state::NsRecord;
use crate::zdbs::{Admin, ZdbError, valid_name};
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

/// Why no disk can take a namespace: no zdb host at all, or hosts whose servers do not serve
/// yet (starting, loading: worth retrying).
fn no_server(views: &[crate::policy::PoolView]) -> Error {
    let class = policy::zdb_class(views);
    if views.iter().any(|v| v.healthy && v.class == class) {
        Error::Unavailable("the zdb servers are starting or loading; retry shortly".into())
    } else {
        Error::NoCapacity("no disk can host zdb namespaces".into())
    }
}

fn check(req: &ZdbAllocate) -> Result<()> {
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
    Ok(())
}

impl Storage {
    /// The reply shape for namespace `name`.
    pub(super) fn ns_reply(&self, name: &str) -> Result<ZdbNamespace> {
        self.with_state(|st| {
            let not_found = || Error::NotFound {
                kind: "namespace",
                name: name.into(),
            };
            let disk = st.disk_of(Kind::Namespace, name).ok_or_else(not_found)?;
            let p = st
                .disks
                .get(disk)
                .and_then(|d| d.pool.as_ref())
                .ok_or_else(not_found)?;
            let ns = p.record.namespaces.get(name).ok_or_else(not_found)?;
            Ok(ZdbNamespace {
                namespace: name.into(),
                address: st.cfg.zdb.address.clone(),
                port: p.record.zdb_port.unwrap_or(0),
                size: ns.size,
                mode: ns.mode,
                public: ns.public,
                paused: ns.paused,
                disk: disk.into(),
            })
        })
    }

    /// Allocates (or converges) a namespace.
    pub async fn ns_allocate(&self, req: ZdbAllocate) -> Result<ZdbNamespace> {
        check(&req)?;
        let placed = self
            .reserve(Kind::Namespace, &req.name, req.size, |st| {
                match policy::place_namespace(&st.views(), req.size) {
                    Choice::Disk(d) => Ok(d),
                    Choice::NoRoom { largest_free } => Err(Error::NoCapacity(format!(
                        "no disk has {} bytes unreserved for namespace {} (largest free: {largest_free})",
                        req.size, req.name
                    ))),
                    Choice::NoDisk => Err(no_server(&st.views())),
                }
            })
            .await?;
        let (disk, _pool) = match placed {
            Placed::Existing(disk, guard) => (disk, guard),
            Placed::New(reservation) => {
                let guard = self.lock_pool(&reservation.disk).await;
                let reply = self.ns_create(&reservation.disk, &req).await;
                drop(reservation);
                drop(guard);
                return reply;
            }
        };
        let cur = self.ns_reply(&req.name)?;
        if cur.mode != req.mode {
            return Err(Error::Conflict(format!(
                "namespace {} exists with mode {:?}, mode cannot change",
                req.name, cur.mode
            )));
        }
        let mut a = self.endpoint(&disk)?.admin().await?;
        if a.nsinfo(&req.name).await?.is_none() {
            // Recorded but gone from the server (an NSDEL behind our back, a lost folder):
            // make it again with the recorded size and mode; its data is gone.
            tracing::warn!(namespace = %req.name, disk = %disk, "namespace missing on its zdb: recreating it");
            a.nsnew(&req.name).await?;
            a.nsset(&req.name, "maxsize", &cur.size.to_string()).await?;
            if cur.mode == ZdbMode::Seq {
                a.nsset(&req.name, "mode", "seq").await?;
            }
        }
        set_access(&mut a, &req).await?;
        let (name, public) = (req.name.clone(), req.public);
        let was = cur.public;
        self.commit(
            &disk,
            |r| {
                if let Some(ns) = r.namespaces.get_mut(&name) {
                    ns.public = public;
                }
            },
            |r| {
                if let Some(ns) = r.namespaces.get_mut(&req.name) {
                    ns.public = was;
                }
            },
        )
        .await?;
        if req.size > cur.size {
            return self.ns_grow_locked(&disk, &req.name, req.size).await;
        }
        self.ns_reply(&req.name)
    }

    /// NSNEW and its settings on `disk` (placed and reserved, pool locked), then the record.
    async fn ns_create(&self, disk: &str, req: &ZdbAllocate) -> Result<ZdbNamespace> {
        let endpoint = self.endpoint(disk)?;
        let mut a = endpoint.admin().await?;
        a.nsnew(&req.name).await.map_err(|e| match e {
            ZdbError::Refused { message, .. } if message.contains("not available") => {
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
            set_access(&mut a, req).await
        };
        let rec = NsRecord {
            size: req.size,
            mode: req.mode,
            public: req.public,
            paused: false,
        };
        let done = match setup.await {
            Ok(()) => {
                self.commit(
                    disk,
                    |r| r.namespaces.insert(req.name.clone(), rec),
                    |r| {
                        r.namespaces.remove(&req.name);
                    },
                )
                .await
            }
            Err(e) => Err(e),
        };
        if let Err(e) = done {
            let undone = match endpoint.admin().await {
                Ok(mut a) => a.nsdel(&req.name).await.map_err(Error::from),
                Err(e) => Err(e.into()),
            };
            if let Err(u) = undone {
                tracing::error!(namespace = %req.name, disk, error = %u, "cannot remove half-created namespace");
            }
            return Err(e);
        }
        tracing::info!(namespace = %req.name, disk, size = req.size, "namespace allocated");
        let reply = self.ns_reply(&req.name)?;
        self.publish("storage.zdb", &reply);
        Ok(reply)
    }
}
