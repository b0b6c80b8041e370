//! Disk scan: find disks (config images and, if enabled, real devices), adopt new ones, probe
//! the health of adopted ones, and notice removed ones. Runs at start and periodically, so
//! disks added or removed while running are noticed.

use super::{DiskEntry, DiskStatus, Storage};
use crate::disk::{self, Found, discover};
use crate::pool::{self, Outcome};
use serde::Serialize;

#[derive(Serialize)]
struct DiskEvent<'a> {
    name: &'a str,
    device: &'a std::path::Path,
    #[serde(flatten)]
    status: &'a DiskStatus,
}

impl Storage {
    fn find_disks(&self) -> Vec<(Found, Option<String>)> {
        let mut out = Vec::new();
        for fd in &self.cfg.disks {
            let name = disk::file_disk_name(&fd.path);
            match disk::attach_file_disk(self.sys.as_ref(), fd) {
                Ok(dev) => {
                    let size = discover::device_size(&self.cfg.sys_root, &disk::kernel_name(&dev))
                        .unwrap_or(fd.size);
                    out.push((
                        Found {
                            name,
                            device: dev,
                            backing: Some(fd.path.clone()),
                            size,
                            class: fd.class,
                        },
                        None,
                    ));
                }
                Err(e) => out.push((
                    Found {
                        name,
                        device: fd.path.clone(),
                        backing: Some(fd.path.clone()),
                        size: fd.size,
                        class: fd.class,
                    },
                    Some(e.to_string()),
                )),
            }
        }
        if self.cfg.real_disks {
            match discover::discover(&self.cfg.sys_root) {
                Ok(devs) => out.extend(devs.into_iter().map(|b| {
                    (
                        Found {
                            name: b.name,
                            device: b.device,
                            backing: None,
                            size: b.size,
                            class: None,
                        },
                        None,
                    )
                })),
                Err(e) => tracing::warn!(error = %e, "cannot list block devices"),
            }
        }
        out
    }

    fn set_status(&mut self, name: &str, status: DiskStatus) {
        let Some(d) = self.disks.get_mut(name) else {
            return;
        };
        if d.status == status {
            return;
        }
        match &status {
            DiskStatus::Ready => tracing::info!(disk = name, "disk ready"),
            other => tracing::warn!(disk = name, status = ?other, "disk state changed"),
        }
        d.status = status;
        let ev = DiskEvent {
            name,
            device: &d.found.device,
            status: &d.status,
        };
        if let (Some(e), Ok(v)) = (&self.events, serde_json::to_value(&ev)) {
            e.publish("storage.disk", v);
        }
    }

    fn reload_config(&mut self) {
        let Some((file, seen)) = &self.config_file else {
            return;
        };
        let mtime = std::fs::metadata(file).and_then(|m| m.modified()).ok();
        if mtime == *seen {
            return;
        }
        match crate::config::Config::load(file) {
            Ok(c) => {
                tracing::info!(config = %file.display(), disks = c.disks.len(), "config reloaded");
                self.cfg.disks = c.disks;
                self.cfg.class_overrides = c.class_overrides;
                self.cfg.real_disks = c.real_disks;
            }
            Err(e) => tracing::warn!(error = %e, "config not reloaded"),
        }
        if let Some((_, seen)) = &mut self.config_file {
            *seen = mtime;
        }
    }

    /// Scans disks, adopts new ones, checks adopted ones.
    pub async fn refresh(&mut self) {
        self.reload_config();
        let found = self.find_disks();
        let mounts = self.sys.mounts().unwrap_or_default();
        for (f, err) in &found {
            let known = self.disks.get(&f.name);
            let retry = known
                .is_none_or(|d| matches!(d.status, DiskStatus::Missing | DiskStatus::Error(_)));
            if let Some(e) = err {
                self.disks
                    .entry(f.name.clone())
                    .or_insert_with(|| new_entry(f.clone()));
                self.set_status(&f.name, DiskStatus::Error(e.clone()));
                continue;
            }
            if retry {
                let over = self.cfg.class_overrides.get(&f.name).copied();
                let (status, pool) = match pool::adopt(
                    self.sys.as_ref(),
                    &self.paths,
                    &self.cfg.node_id,
                    f,
                    over,
                ) {
                    Ok(Outcome::Ready { pool, formatted }) => {
                        tracing::info!(disk = %f.name, formatted, mountpoint = %pool.mountpoint.display(), "pool adopted");
                        (DiskStatus::Ready, Some(pool))
                    }
                    Ok(Outcome::Foreign { node }) => (DiskStatus::Foreign(node), None),
                    Ok(Outcome::HasData(what)) => (DiskStatus::HasData(what), None),
                    Err(e) => (DiskStatus::Error(e.to_string()), None),
                };
                let entry = self
                    .disks
                    .entry(f.name.clone())
                    .or_insert_with(|| new_entry(f.clone()));
                entry.found = f.clone();
                entry.pool = pool;
                self.set_status(&f.name, status);
                continue;
            }
            // Known and adopted: probe its health.
            let Some(d) = self.disks.get_mut(&f.name) else {
                continue;
            };
            d.found.size = f.size;
            if d.status == DiskStatus::Ready
                && let Some(p) = &d.pool
                && let Err(why) = pool::check(&self.cfg.sys_root, f, p, &mounts)
            {
                self.set_status(&f.name, DiskStatus::Failed(why));
            }
        }
        let gone: Vec<String> = self
            .disks
            .keys()
            .filter(|k| !found.iter().any(|(f, _)| &f.name == *k))
            .cloned()
            .collect();
        for name in gone {
            if let Some(d) = self.disks.get_mut(&name) {
                // The server stays up if it can; it is no longer supervised.
                d.zdb = None;
            }
            self.set_status(&name, DiskStatus::Missing);
        }
        self.ensure_zdbs().await;
        self.ensure_state_volume();
    }
}

fn new_entry(found: Found) -> DiskEntry {
    DiskEntry {
        found,
        status: DiskStatus::Missing,
        pool: None,
        zdb: None,
        zdb_error: None,
        zdb_retry: None,
    }
}
