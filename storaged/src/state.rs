//! State persisted inside each pool (`<pool>/storaged.json`), so it travels with its disk and is
//! adopted again after a restart or a reboot. Written atomically (temp + fsync + rename + dir
//! fsync) after every change.

use crate::disk::ClassSource;
use bus::api::storage::{DiskClass, ZdbMode};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// File name of the pool state, at the pool root.
pub const POOL_STATE: &str = "storaged.json";

/// A namespace as storaged accounts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NsRecord {
    /// maxsize in bytes (the reservation).
    pub size: u64,
    /// Mode.
    pub mode: ZdbMode,
    /// Public flag.
    pub public: bool,
    /// Frozen by pause; re-applied whenever its zdb (re)starts, since zdb forgets it.
    #[serde(default)]
    pub paused: bool,
}

/// Everything storaged keeps about one pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolRecord {
    /// Format version (1).
    pub version: u32,
    /// Node that formatted it (also in the btrfs label).
    pub node_id: String,
    /// Disk name.
    pub disk: String,
    /// Device size in bytes (largest seen).
    pub size: u64,
    /// Class.
    pub class: DiskClass,
    /// Where the class came from.
    pub class_source: ClassSource,
    /// Measured median seek latency, microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seek_us: Option<u64>,
    /// TCP port of this pool's zdb server, once it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zdb_port: Option<u16>,
    /// Quota of the node's state volume, when it lives here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_volume: Option<u64>,
    /// Volumes: name -> quota bytes.
    #[serde(default)]
    pub volumes: BTreeMap<String, u64>,
    /// zdb namespaces.
    #[serde(default)]
    pub namespaces: BTreeMap<String, NsRecord>,
}

impl PoolRecord {
    /// A fresh record.
    pub fn new(
        node_id: &str,
        disk: &str,
        size: u64,
        class: DiskClass,
        class_source: ClassSource,
    ) -> PoolRecord {
        PoolRecord {
            version: 1,
            node_id: node_id.into(),
            disk: disk.into(),
            size,
            class,
            class_source,
            seek_us: None,
            zdb_port: None,
            state_volume: None,
            volumes: BTreeMap::new(),
            namespaces: BTreeMap::new(),
        }
    }

    /// Bytes reserved: volume quotas, the state volume and namespace maxsizes.
    pub fn reserved(&self) -> u64 {
        let v: u64 = self.volumes.values().sum();
        let n: u64 = self.namespaces.values().map(|n| n.size).sum();
        v + n + self.state_volume.unwrap_or(0)
    }

    /// Path of the state file of the pool mounted at `mnt`.
    pub fn path(mnt: &Path) -> PathBuf {
        mnt.join(POOL_STATE)
    }

    /// Loads the record of the pool mounted at `mnt`.
    pub fn load(mnt: &Path) -> std::io::Result<Option<PoolRecord>> {
        nodeutil::fs::read_json(&Self::path(mnt))
    }

    /// Saves it atomically.
    pub fn save(&self, mnt: &Path) -> std::io::Result<()> {
        Ok(nodeutil::fs::write_json(&Self::path(mnt), self)?)
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn roundtrip_and_reserved() {
        let d = tempfile::tempdir().expect("tempdir");
        let mut r = PoolRecord::new("n1", "hdd0", 1000, DiskClass::Hdd, ClassSource::Config);
        r.volumes.insert("v".into(), 100);
        r.state_volume = Some(50);
        r.namespaces.insert(
            "ns".into(),
            NsRecord {
                size: 200,
                mode: ZdbMode::Seq,
                public: true,
                paused: true,
            },
        );
        assert_eq!(r.reserved(), 350);
        r.save(d.path()).expect("save");
        assert_eq!(PoolRecord::load(d.path()).expect("load"), Some(r));
        assert_eq!(PoolRecord::load(&d.path().join("x")).expect("load"), None);
    }
}
