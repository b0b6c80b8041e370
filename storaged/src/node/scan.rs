//! Disk scan: find disks (config images and, if enabled, real devices), adopt new ones, probe
//! the health of adopted ones, and notice removed ones. Runs at start and periodically, so
//! disks added or removed while running are noticed.
//!
//! Every adoption and probe runs on its own blocking thread with a deadline, all at once: a
//! hung disk is reported failed when its deadline passes and the others are done meanwhile.
//! While a probe of a disk has not returned, that disk gets no other.

use super::pool_op::bounded;
use super::{DiskEntry, DiskStatus, Storage};
use crate::config::{Config, FileDisk};
use crate::disk::{self, Found, discover};
use crate::pool::{self, Outcome, Pool};
use crate::system::System;
use bus::api::storage::DiskClass;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Disks found, each with why it could not be attached (if so).
type FoundDisks = Vec<(Found, Option<String>)>;

fn find_disks(sys: &dyn System, files: &[FileDisk], real: bool, sys_root: &Path) -> FoundDisks {
    let mut out = Vec::new();
    for fd in files {
        let name = disk::file_disk_name(&fd.path);
        let found = |device, size| Found {
            name: name.clone(),
            device,
            backing: Some(fd.path.clone()),
            size,
            class: fd.class,
        };
        match disk::attach_file_disk(sys, fd) {
            Ok(dev) => {
                let size =
                    discover::device_size(sys_root, &disk::kernel_name(&dev)).unwrap_or(fd.size);
                out.push((found(dev, size), None));
            }
            Err(e) => out.push((found(fd.path.clone(), fd.size), Some(e.to_string()))),
        }
    }
    if real {
        match discover::discover(sys_root) {
            Ok(devs) => out.extend(devs.into_iter().map(|b| {
                let f = Found {
                    name: b.name,
                    device: b.device,
                    backing: None,
                    size: b.size,
                    class: None,
                };
                (f, None)
            })),
            Err(e) => tracing::warn!(error = %e, "cannot list block devices"),
        }
    }
    out
}

/// What one disk's blocking step gave.
enum Step {
    Adopted(Result<Outcome, String>),
    Checked(Result<(), String>),
}

impl Storage {
    /// Re-reads the config file when it changed (disks, overrides, real disks).
    async fn reload_config(&self) {
        let Some((file, seen)) = self.with_state(|st| st.config_file.clone()) else {
            return;
        };
        let f = file.clone();
        let read = tokio::task::spawn_blocking(move || {
            let mtime = std::fs::metadata(&f).and_then(|m| m.modified()).ok();
            (mtime != seen).then(|| (mtime, Config::load(&f)))
        });
        let Ok(Some((mtime, loaded))) = read.await else {
            return;
        };
        self.with_state(|st| {
            match loaded {
                Ok(c) => {
                    tracing::info!(config = %file.display(), disks = c.disks.len(), "config reloaded");
                    st.cfg.disks = c.disks;
                    st.cfg.class_overrides = c.class_overrides;
                    st.cfg.real_disks = c.real_disks;
                }
                Err(e) => tracing::warn!(error = %e, "config not reloaded"),
            }
            st.config_file = Some((file, mtime));
        });
    }

    /// Scans disks, adopts new ones, checks adopted ones.
    pub async fn refresh(&self) {
        self.reload_config().await;
        let (files, real, sys_root, node_id) = self.with_state(|st| {
            (
                st.cfg.disks.clone(),
                st.cfg.real_disks,
                st.cfg.sys_root.clone(),
                st.cfg.node_id.clone(),
            )
        });
        let sys = self.sys();
        let limits = self.limits();
        let scan = bounded(Arc::default(), limits.scan, move || {
            let found = find_disks(sys.as_ref(), &files, real, &sys_root);
            let mounts = sys.mounts();
            (found, mounts, sys_root)
        });
        let Some((found, mounts, sys_root)) = scan.await else {
            tracing::error!(after = ?limits.scan, "disk scan hangs (losetup or sysfs): skipped");
            return;
        };
        let mounts = mounts.unwrap_or_default();
        let mut steps = tokio::task::JoinSet::new();
        let mut errors = Vec::new();
        let gone = self.with_state(|st| {
            for (f, err) in &found {
                let entry = st
                    .disks
                    .entry(f.name.clone())
                    .or_insert_with(|| DiskEntry::new(f.clone()));
                if let Some(e) = err {
                    errors.push((f.name.clone(), e.clone()));
                    continue;
                }
                if entry.busy.load(Ordering::Acquire) {
                    // Its last adoption or probe has not returned: it hangs; already reported.
                    continue;
                }
                let busy = entry.busy.clone();
                let (f, name) = (f.clone(), f.name.clone());
                if matches!(entry.status, DiskStatus::Missing | DiskStatus::Error(_)) {
                    entry.found = f.clone();
                    let over: Option<DiskClass> = st.cfg.class_overrides.get(&name).copied();
                    let (sys, paths, node_id) = (self.sys(), self.paths().clone(), node_id.clone());
                    steps.spawn(async move {
                        let step = bounded(busy, limits.adopt, move || {
                            pool::adopt(sys.as_ref(), &paths, &node_id, &f, over)
                                .map_err(|e| e.to_string())
                        });
                        let r = step.await.unwrap_or_else(|| {
                            Err(format!(
                                "adoption did not finish within {:?}: the disk hangs",
                                limits.adopt
                            ))
                        });
                        (name, Step::Adopted(r))
                    });
                } else if entry.status == DiskStatus::Ready
                    && let Some(p) = entry.pool.clone()
                {
                    entry.found.size = f.size;
                    let (sys_root, mounts) = (sys_root.clone(), mounts.clone());
                    steps.spawn(async move {
                        let step = bounded(busy, limits.probe, move || {
                            pool::check(&sys_root, &f, &p, &mounts)
                        });
                        let r = step.await.unwrap_or_else(|| {
                            Err(format!(
                                "health probe did not finish within {:?}: the disk hangs",
                                limits.probe
                            ))
                        });
                        (name, Step::Checked(r))
                    });
                }
            }
            let gone: Vec<String> = st
                .disks
                .keys()
                .filter(|k| !found.iter().any(|(f, _)| &f.name == *k))
                .cloned()
                .collect();
            for name in &gone {
                if let Some(d) = st.disks.get_mut(name) {
                    // The server stays up if it can; it is no longer supervised.
                    d.zdb = None;
                }
            }
            gone
        });
        for (name, e) in errors {
            self.set_status(&name, DiskStatus::Error(e));
        }
        for name in gone {
            self.set_status(&name, DiskStatus::Missing);
        }
        while let Some(done) = steps.join_next().await {
            let Ok((name, step)) = done else { continue };
            match step {
                Step::Adopted(r) => self.adopted(&name, r),
                Step::Checked(Ok(())) => {}
                Step::Checked(Err(why)) => self.fail_disk(&name, why),
            }
        }
        self.ensure_state_volume().await;
        self.with_state(|st| st.scanned = true);
    }

    fn adopted(&self, name: &str, r: Result<Outcome, String>) {
        let (status, pool): (DiskStatus, Option<Pool>) = match r {
            Ok(Outcome::Ready { pool, formatted }) => {
                tracing::info!(disk = %name, formatted, mountpoint = %pool.mountpoint.display(), "pool adopted");
                (DiskStatus::Ready, Some(pool))
            }
            Ok(Outcome::Foreign { node }) => (DiskStatus::Foreign(node), None),
            Ok(Outcome::HasData(what)) => (DiskStatus::HasData(what), None),
            Err(e) => (DiskStatus::Error(e), None),
        };
        self.with_state(|st| {
            if let Some(d) = st.disks.get_mut(name) {
                d.pool = pool;
                d.reconciled = false;
            }
        });
        self.set_status(name, status);
    }
}
