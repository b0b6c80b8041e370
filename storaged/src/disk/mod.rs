//! Disks: real block devices from sysfs and file-backed disks from the config (image files on
//! loop devices), what they hold, and their class.

pub mod classify;
pub mod discover;
pub mod probe;

use crate::config::FileDisk;
use crate::system::{SysError, System};
use bus::api::storage::DiskClass;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where a disk's class came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClassSource {
    /// Measured seek latency.
    Measured,
    /// Given in the config (file-backed disks, overrides).
    Config,
}

/// A disk candidate found by a scan, before its pool is looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Stable name: kernel name for real disks, image file stem for file-backed ones.
    pub name: String,
    /// Block device.
    pub device: PathBuf,
    /// Backing image for file-backed disks.
    pub backing: Option<PathBuf>,
    /// Size in bytes.
    pub size: u64,
    /// Class from the config, if given there.
    pub class: Option<DiskClass>,
}

/// Name of a file-backed disk: the image's file stem, reduced to `[A-Za-z0-9_-]`.
pub fn file_disk_name(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Kernel name of a device node (`/dev/loop3` -> `loop3`).
pub fn kernel_name(dev: &Path) -> String {
    dev.file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Makes sure the image of a file-backed disk exists (sparse) and is attached; returns its
/// loop device. An already attached image is found again (after a restart).
pub fn attach_file_disk(sys: &dyn System, d: &FileDisk) -> Result<PathBuf, SysError> {
    let io = |op| {
        let path = d.path.clone();
        move |source| SysError::Io { op, path, source }
    };
    if !d.path.exists() {
        if let Some(parent) = d.path.parent() {
            std::fs::create_dir_all(parent).map_err(io("mkdir"))?;
        }
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&d.path)
            .map_err(io("create image"))?;
        f.set_len(d.size).map_err(io("size image"))?;
        f.sync_all().map_err(io("fsync image"))?;
    }
    if let Some(dev) = sys.loop_find(&d.path)? {
        return Ok(dev);
    }
    sys.loop_attach(&d.path)
}
