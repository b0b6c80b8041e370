//! The one shape of every change to a pool, written once: find the object's disk and take
//! that pool's lock ([`Storage::locate`]), or place a new object and reserve its bytes
//! ([`Storage::reserve`]); do the I/O on a blocking thread with a deadline
//! ([`Storage::blocking`]) or over zdb's socket ([`Storage::endpoint`]); then change the
//! pool's record in memory and save it ([`Storage::commit`]), undoing the memory change when
//! the save fails.

use super::{DiskStatus, Kind, Pending, State, Storage};
use crate::state::PoolRecord;
use crate::zdbs::Endpoint;
use crate::{Error, Result};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::OwnedMutexGuard;

/// Deadlines of blocking work. A step that misses its deadline marks its disk failed.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// One system command or record save on a pool (btrfs subvolume, qgroup, fsync).
    pub step: Duration,
    /// The periodic health probe of a pool (a 4 KiB write + fsync + read back).
    pub probe: Duration,
    /// Adopting a disk: content probe, seek measurement, mkfs, mount, quota.
    pub adopt: Duration,
    /// Finding disks (loop devices, sysfs) and reading the mount table.
    pub scan: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            step: Duration::from_secs(20),
            probe: Duration::from_secs(10),
            adopt: Duration::from_secs(300),
            scan: Duration::from_secs(60),
        }
    }
}

/// Runs `f` on a blocking thread, waiting at most `limit`; `None` when it did not return in
/// time (it keeps running: a thread stuck on a dead disk cannot be stopped) or panicked. `busy`
/// is set until `f` really returns.
pub(crate) async fn bounded<T: Send + 'static>(
    busy: Arc<AtomicBool>,
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    struct Clear(Arc<AtomicBool>);
    impl Drop for Clear {
        fn drop(&mut self) {
            self.0.store(false, Ordering::Release);
        }
    }
    busy.store(true, Ordering::Release);
    let task = tokio::task::spawn_blocking(move || {
        let _clear = Clear(busy);
        f()
    });
    tokio::time::timeout(limit, task).await.ok()?.ok()
}

/// Bytes (and a name) promised to one operation in flight; released when dropped, whatever
/// way the operation ends.
pub(crate) struct Reservation {
    storage: Storage,
    id: u64,
    /// The disk the bytes are reserved on.
    pub disk: String,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.storage.with_state(|st| st.pending.remove(&self.id));
    }
}

/// What [`Storage::reserve`] found.
pub(crate) enum Placed {
    /// A new object goes to this disk; its bytes are reserved.
    New(Reservation),
    /// The object exists on this disk (its pool's lock is held).
    Existing(String, OwnedMutexGuard<()>),
}

impl Storage {
    /// The deadlines in use.
    pub(crate) fn limits(&self) -> Limits {
        self.inner.limits
    }

    /// Takes the lock of `disk`'s pool: every change to that pool holds it around its I/O.
    pub(crate) async fn lock_pool(&self, disk: &str) -> OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self
                .inner
                .pool_locks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            locks.entry(disk.to_string()).or_default().clone()
        };
        lock.lock_owned().await
    }

    /// Marks `disk` failed for `why` (a step on it missed its deadline or failed its probe).
    pub(crate) fn fail_disk(&self, disk: &str, why: String) {
        self.set_status(disk, DiskStatus::Failed(why));
    }

    /// Runs blocking work for `disk` within `limit`. A miss marks the disk failed (it hangs)
    /// and answers [`Error::Hung`], so the caller and the caller's caller stop waiting.
    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        disk: &str,
        what: &'static str,
        limit: Duration,
        f: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let busy = Arc::new(AtomicBool::new(false));
        match bounded(busy, limit, f).await {
            Some(r) => r,
            None => {
                let why = format!("{what} did not finish within {limit:?}: the disk hangs");
                tracing::error!(disk, what, ?limit, "disk operation hangs");
                self.fail_disk(disk, why.clone());
                Err(Error::Hung(format!("disk {disk}: {why}")))
            }
        }
    }

    /// Finds the disk holding `name` and takes its pool's lock; waits for a creation of that
    /// name in flight to end first. `None` when there is no such object.
    pub(crate) async fn locate(
        &self,
        kind: Kind,
        name: &str,
    ) -> Option<(String, OwnedMutexGuard<()>)> {
        loop {
            let (found, creating) = self.with_state(|st| {
                (
                    st.disk_of(kind, name).map(str::to_string),
                    st.creating(kind, name).is_some(),
                )
            });
            if creating {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            let disk = found?;
            let guard = self.lock_pool(&disk).await;
            // It may have moved or gone while we waited for the lock.
            if self.with_state(|st| st.disk_of(kind, name) == Some(disk.as_str())) {
                return Some((disk, guard));
            }
        }
    }

    /// For a new object: the existing one of that name (locked), or a placement by `place`
    /// (over the state, pending reservations included) with `bytes` reserved there until the
    /// returned [`Reservation`] drops.
    pub(crate) async fn reserve(
        &self,
        kind: Kind,
        name: &str,
        bytes: u64,
        place: impl Fn(&State) -> Result<String>,
    ) -> Result<Placed> {
        loop {
            if let Some((disk, guard)) = self.locate(kind, name).await {
                return Ok(Placed::Existing(disk, guard));
            }
            let placed = self.with_state(|st| {
                if st.disk_of(kind, name).is_some() || st.creating(kind, name).is_some() {
                    return Ok::<_, Error>(None);
                }
                let disk = place(st)?;
                let id = st.next_pending;
                st.next_pending += 1;
                st.pending.insert(
                    id,
                    Pending {
                        disk: disk.clone(),
                        bytes,
                        name: Some((kind, name.to_string())),
                    },
                );
                Ok(Some((id, disk)))
            })?;
            if let Some((id, disk)) = placed {
                return Ok(Placed::New(Reservation {
                    storage: self.clone(),
                    id,
                    disk,
                }));
            }
        }
    }

    /// Reserves `bytes` more on `disk` if `fits` says the pool has the room, atomically with
    /// every other placement (growth of an existing object, whose pool lock the caller holds).
    pub(crate) fn reserve_more(
        &self,
        disk: &str,
        bytes: u64,
        fits: impl FnOnce(&State) -> Result<()>,
    ) -> Result<Reservation> {
        let id = self.with_state(|st| {
            fits(st)?;
            let id = st.next_pending;
            st.next_pending += 1;
            st.pending.insert(
                id,
                Pending {
                    disk: disk.to_string(),
                    bytes,
                    name: None,
                },
            );
            Ok::<_, Error>(id)
        })?;
        Ok(Reservation {
            storage: self.clone(),
            id,
            disk: disk.to_string(),
        })
    }

    /// Changes `disk`'s record in memory with `change` and saves it; when the save fails the
    /// memory change is undone with `revert`. The caller holds the pool's lock, so records of a
    /// pool are saved one at a time and the last save holds the last change.
    pub(crate) async fn commit<T>(
        &self,
        disk: &str,
        change: impl FnOnce(&mut PoolRecord) -> T,
        revert: impl FnOnce(&mut PoolRecord),
    ) -> Result<T> {
        let (out, record, mnt) = self.with_state(|st| {
            let p = st.ready_pool_mut(disk)?;
            let out = change(&mut p.record);
            Ok::<_, Error>((out, p.record.clone(), p.mountpoint.clone()))
        })?;
        let step = self.limits().step;
        let saved = self
            .blocking(disk, "saving the pool record", step, move || {
                record
                    .save(&mnt)
                    .map_err(Error::state(PoolRecord::path(&mnt)))
            })
            .await;
        if let Err(e) = saved {
            self.with_state(|st| {
                if let Some(p) = st.disks.get_mut(disk).and_then(|d| d.pool.as_mut()) {
                    revert(&mut p.record);
                }
            });
            return Err(e);
        }
        Ok(out)
    }

    /// How to reach the zdb server of `disk`, which must serve.
    pub(crate) fn endpoint(&self, disk: &str) -> Result<Endpoint> {
        self.with_state(|st| {
            let d = st
                .disks
                .get(disk)
                .ok_or_else(|| Error::Unavailable(format!("disk {disk} is gone")))?;
            match (&d.zdb, &d.watch.state) {
                (Some(z), crate::zdbs::ZdbState::Up) => Ok(z.endpoint()),
                (_, state) => Err(Error::Unavailable(format!(
                    "zdb server of disk {disk} does not serve yet ({})",
                    serde_json::to_value(state)
                        .ok()
                        .map(|v| v.to_string())
                        .unwrap_or_default()
                ))),
            }
        })
    }
}
