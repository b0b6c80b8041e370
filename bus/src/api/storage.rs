//! storaged's API (socket `storaged.sock`): disks, capacity, zdb namespaces and volumes.
//!
//! All mutating methods are idempotent, so node-init can replay them after a crash:
//! * `storage.zdb.allocate` on an existing namespace of the same mode sets its password and
//!   public flag, grows it if `size` is larger (never shrinks) and returns it; a different mode is
//!   a `conflict`.
//! * `storage.volume.create` on an existing volume grows it if `size` is larger and returns it.
//! * `delete` of something absent succeeds.
//!
//! Errors: `not_found` (get/grow/pause/resume of an unknown name), `conflict` (mode change,
//! shrink), `no_capacity` (no disk has the room), `invalid_argument` (bad name or size).
//! Names are `[a-zA-Z0-9_-]{1,128}`; sizes are bytes. Events: topic `storage.disk`, `storage.zdb`
//! and `storage.volume`, with the object as data (never a password).

use super::{Empty, Secret};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Kind of a disk, measured (seek latency), not taken from the rotational flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiskClass {
    /// Solid state.
    Ssd,
    /// Spinning.
    Hdd,
}

/// One disk and its pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disk {
    /// Stable name (e.g. `loop0`, `sda`, or the dev disk file name).
    pub name: String,
    /// Block device path.
    pub device: PathBuf,
    /// Measured class.
    pub class: DiskClass,
    /// Size in bytes.
    pub size: u64,
    /// Bytes reserved by volumes and namespaces on it.
    pub reserved: u64,
    /// Where its pool is mounted, when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mountpoint: Option<PathBuf>,
    /// Why the disk is out of service (failed, missing, could not be set up); absent when
    /// it serves. Optional on the wire, so older readers and writers still agree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// Reply of `storage.disk.list@1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskList {
    /// All disks storaged manages.
    pub disks: Vec<Disk>,
}

/// Capacity of one disk class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassCapacity {
    /// The class.
    pub class: DiskClass,
    /// Number of disks.
    pub disks: u32,
    /// Total bytes.
    pub total: u64,
    /// Bytes reserved.
    pub reserved: u64,
    /// Bytes free (`total - reserved`).
    pub free: u64,
}

/// Reply of `storage.capacity@1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capacity {
    /// Per disk class.
    pub classes: Vec<ClassCapacity>,
    /// Largest namespace that can be allocated now (room on the best eligible disk).
    pub max_zdb: u64,
    /// Largest volume that can be created now.
    pub max_volume: u64,
}

/// Namespace mode, fixed at creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ZdbMode {
    /// Key-value with user keys.
    User,
    /// Sequential (keys assigned by zdb).
    Seq,
}

/// Request of `storage.zdb.allocate@1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZdbAllocate {
    /// Namespace name (node-init passes `<owner>-<deployment>-<workload>`).
    pub name: String,
    /// Maximum size in bytes.
    pub size: u64,
    /// Mode.
    pub mode: ZdbMode,
    /// Password; `None` for none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    /// Public namespaces can be read without the password.
    #[serde(default)]
    pub public: bool,
}

/// A namespace: reply of allocate, grow, pause, resume and get.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZdbNamespace {
    /// Namespace name.
    pub namespace: String,
    /// Address clients connect to (IP or host name).
    pub address: String,
    /// TCP port of the zdb instance serving it.
    pub port: u16,
    /// Maximum size in bytes.
    pub size: u64,
    /// Mode.
    pub mode: ZdbMode,
    /// Public flag.
    pub public: bool,
    /// Frozen (paused) by `storage.zdb.pause`.
    #[serde(default)]
    pub paused: bool,
    /// Disk holding it.
    #[serde(default)]
    pub disk: String,
}

/// Request of `storage.zdb.grow@1` and `storage.volume.grow@1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resize {
    /// Object name.
    pub name: String,
    /// New size in bytes; smaller than the current one is a `conflict`.
    pub size: u64,
}

/// Request naming one object (get, pause, resume, delete).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Name {
    /// Object name.
    pub name: String,
}

/// Request of `storage.volume.create@1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeCreate {
    /// Volume name.
    pub name: String,
    /// Quota in bytes.
    pub size: u64,
}

/// A volume: reply of create, grow and get.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    /// Volume name.
    pub name: String,
    /// Where it is mounted (a btrfs subvolume).
    pub path: PathBuf,
    /// Quota in bytes.
    pub size: u64,
}

crate::method!(
    /// Lists disks and their pools.
    ListDisks, "storage.disk.list" @ 1, Empty => DiskList
);
crate::method!(
    /// Capacity per disk class and the largest allocations possible now.
    GetCapacity, "storage.capacity" @ 1, Empty => Capacity
);
crate::method!(
    /// Creates (or converges) a zdb namespace.
    AllocateZdb, "storage.zdb.allocate" @ 1, ZdbAllocate => ZdbNamespace
);
crate::method!(
    /// Reads a namespace.
    GetZdb, "storage.zdb.get" @ 1, Name => ZdbNamespace
);
crate::method!(
    /// Grows a namespace.
    GrowZdb, "storage.zdb.grow" @ 1, Resize => ZdbNamespace
);
crate::method!(
    /// Freezes a namespace (reads and writes refused).
    PauseZdb, "storage.zdb.pause" @ 1, Name => ZdbNamespace
);
crate::method!(
    /// Unfreezes a namespace.
    ResumeZdb, "storage.zdb.resume" @ 1, Name => ZdbNamespace
);
crate::method!(
    /// Deletes a namespace and its data; absent is fine.
    DeleteZdb, "storage.zdb.delete" @ 1, Name => Empty
);
crate::method!(
    /// Creates (or converges) a volume.
    CreateVolume, "storage.volume.create" @ 1, VolumeCreate => Volume
);
crate::method!(
    /// Reads a volume.
    GetVolume, "storage.volume.get" @ 1, Name => Volume
);
crate::method!(
    /// Grows a volume.
    GrowVolume, "storage.volume.grow" @ 1, Resize => Volume
);
crate::method!(
    /// Deletes a volume and its data; absent is fine.
    DeleteVolume, "storage.volume.delete" @ 1, Name => Empty
);
