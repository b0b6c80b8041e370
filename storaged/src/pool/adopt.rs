//! Adopting a disk's pool: mount an existing pool of ours, format a blank disk, and refuse
//! anything else (another node's pool, any other data). Nothing that holds data is formatted.

use super::Pool;
use crate::config::Paths;
use crate::disk::probe::{Content, probe};
use crate::disk::{ClassSource, Found, classify};
use crate::state::PoolRecord;
use crate::system::System;
use crate::{Error, Result};
use bus::api::storage::DiskClass;
use std::time::Duration;

const LABEL_PREFIX: &str = "storaged:";

/// The btrfs label of this node's pools.
pub fn label(node_id: &str) -> String {
    format!("{LABEL_PREFIX}{node_id}")
}

/// What adopting a disk gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Mounted and ours (`formatted` when it was blank).
    Ready {
        /// The pool.
        pool: Pool,
        /// Whether it was formatted now.
        formatted: bool,
    },
    /// A pool of another node: reported, never adopted.
    Foreign {
        /// That node's id.
        node: String,
    },
    /// Holds something else; left alone.
    HasData(String),
}

fn class_for(
    found: &Found,
    override_: Option<DiskClass>,
) -> Result<(DiskClass, ClassSource, Option<u64>)> {
    if let Some(c) = override_.or(found.class) {
        return Ok((c, ClassSource::Config, None));
    }
    let median = classify::measure_seek(&found.device, found.size)
        .map_err(Error::io("measure seek latency of", &found.device))?;
    let us = u64::try_from(median.as_micros()).unwrap_or(u64::MAX);
    tracing::info!(disk = %found.name, seek_us = us, "measured disk");
    Ok((classify::class_of(median), ClassSource::Measured, Some(us)))
}

/// Adopts the pool on `found`, formatting it only when blank.
pub fn adopt(
    sys: &dyn System,
    paths: &Paths,
    node_id: &str,
    found: &Found,
    override_: Option<DiskClass>,
) -> Result<Outcome> {
    let mnt = paths.pool(&found.name);
    let dev = found.device.display().to_string();
    let mounts = sys.mounts()?;
    let here = mounts.iter().find(|m| m.target == mnt);
    if here.is_none()
        && let Some(m) = mounts.iter().find(|m| m.source == dev)
    {
        return Ok(Outcome::HasData(format!(
            "in use, mounted at {}",
            m.target.display()
        )));
    }
    let mut formatted = false;
    if here.is_none() {
        let content = probe(&found.device).map_err(Error::io("probe", &found.device))?;
        match content {
            Content::Blank => {
                sys.mkfs_btrfs(&found.device, &label(node_id))?;
                formatted = true;
            }
            Content::Btrfs { label: l, .. } if l == label(node_id) => {}
            Content::Btrfs { label: l, .. } if l.starts_with(LABEL_PREFIX) => {
                return Ok(Outcome::Foreign {
                    node: l.trim_start_matches(LABEL_PREFIX).to_string(),
                });
            }
            Content::Btrfs { label: l, fsid } => {
                return Ok(Outcome::HasData(format!(
                    "btrfs filesystem {fsid} labelled {l:?}, not ours"
                )));
            }
            Content::Other(kind) => return Ok(Outcome::HasData(kind)),
        }
        sys.mount_btrfs(&found.device, &mnt)?;
    }
    sys.quota_enable(&mnt)?;
    let mut record = match PoolRecord::load(&mnt).map_err(Error::state(PoolRecord::path(&mnt)))? {
        Some(r) if r.node_id != node_id => {
            let _ = sys.umount(&mnt);
            return Ok(Outcome::Foreign { node: r.node_id });
        }
        Some(r) => r,
        None => {
            let (class, source, seek) = class_for(found, override_)?;
            let mut r = PoolRecord::new(node_id, &found.name, found.size, class, source);
            r.seek_us = seek;
            r
        }
    };
    if let Some(c) = override_.or(found.class) {
        record.class = c;
        record.class_source = ClassSource::Config;
    } else if let Some(us) = record.seek_us {
        // The override that beat the measurement is gone: the measurement counts again.
        record.class = classify::class_of(Duration::from_micros(us));
        record.class_source = ClassSource::Measured;
    }
    record.size = record.size.max(found.size);
    let pool = Pool {
        mountpoint: mnt,
        record,
    };
    pool.save()?;
    Ok(Outcome::Ready { pool, formatted })
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::system::{Call, Fake};

    fn found(dir: &std::path::Path, content: &[u8]) -> Found {
        let dev = dir.join("dev.img");
        let mut b = vec![0u8; 1 << 20];
        b.get_mut(..content.len())
            .expect("fits")
            .copy_from_slice(content);
        std::fs::write(&dev, &b).expect("write");
        Found {
            name: "hdd0".into(),
            device: dev,
            backing: None,
            size: 1 << 30,
            class: Some(DiskClass::Hdd),
        }
    }

    #[test]
    fn blank_disk_is_formatted_and_recorded() {
        let d = tempfile::tempdir().expect("tempdir");
        let paths = Paths::new(d.path().join("root"), None);
        let f = found(d.path(), &[]);
        let sys = Fake::new();
        let out = adopt(&sys, &paths, "n1", &f, None).expect("adopt");
        let Outcome::Ready { pool, formatted } = out else {
            panic!("{out:?}")
        };
        assert!(formatted);
        assert_eq!(pool.record.class, DiskClass::Hdd);
        let calls = sys.calls();
        assert_eq!(calls[0], Call::Mkfs(f.device.clone(), "storaged:n1".into()));
        assert!(matches!(calls[1], Call::Mount(..)));
        assert!(PoolRecord::load(&pool.mountpoint).expect("load").is_some());
        // Adopting again (already mounted) formats nothing.
        let again = adopt(&sys, &paths, "n1", &f, Some(DiskClass::Ssd)).expect("adopt");
        let Outcome::Ready { pool, formatted } = again else {
            panic!()
        };
        assert!(!formatted);
        assert_eq!(pool.record.class, DiskClass::Ssd);
        assert_eq!(
            sys.calls()
                .iter()
                .filter(|c| matches!(c, Call::Mkfs(..)))
                .count(),
            1
        );
    }

    #[test]
    fn data_is_never_formatted() {
        let d = tempfile::tempdir().expect("tempdir");
        let paths = Paths::new(d.path().join("root"), None);
        let mut ext4 = vec![0u8; 0x43a];
        ext4[0x438] = 0x53;
        ext4[0x439] = 0xef;
        let sys = Fake::new();
        let out = adopt(&sys, &paths, "n1", &found(d.path(), &ext4), None).expect("adopt");
        assert_eq!(out, Outcome::HasData("ext2/3/4 filesystem".into()));
        assert!(sys.calls().is_empty());
    }

    #[test]
    fn another_nodes_pool_is_reported() {
        let d = tempfile::tempdir().expect("tempdir");
        let paths = Paths::new(d.path().join("root"), None);
        let mut sb = vec![0u8; 0x10200];
        sb[0x10040..0x10048].copy_from_slice(b"_BHRfS_M");
        sb[0x1012b..0x1012b + 11].copy_from_slice(b"storaged:n2");
        let sys = Fake::new();
        let out = adopt(&sys, &paths, "n1", &found(d.path(), &sb), None).expect("adopt");
        assert_eq!(out, Outcome::Foreign { node: "n2".into() });
        assert!(sys.calls().is_empty());
    }
}
