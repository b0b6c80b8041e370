//! The node config storaged reads (JSON or TOML-like JSON; JSON only for now).
//!
//! ```json
//! {
//!   "node_id": "a1b2...",
//!   "disks": [{"path": "/var/disks/hdd0.img", "size": 314572800, "class": "hdd"}],
//!   "real_disks": false,
//!   "zdb": {"listen": "127.0.0.1", "address": "127.0.0.1", "base_port": 9900},
//!   "state_volume_size": 104857600
//! }
//! ```

use bus::api::storage::DiskClass;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A file-backed disk: an image file attached as a loop device. Its class normally comes from
/// here, since files on one virtual disk all measure alike.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDisk {
    /// Image file (created sparse when missing).
    pub path: PathBuf,
    /// Size in bytes of a newly created image.
    pub size: u64,
    /// Class to report. Omitted: measured like a real disk's (seek latency), which is only
    /// meaningful when the image sits on a disk of its own (or a deliberately slow one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<DiskClass>,
}

/// zdb server settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ZdbConfig {
    /// zdb binary; default: `zdb` next to the storaged binary, else from `PATH`.
    pub binary: Option<PathBuf>,
    /// TCP listen address of the servers.
    pub listen: String,
    /// Address reported to clients.
    pub address: String,
    /// First TCP port; each server takes the next free one.
    pub base_port: u16,
}

impl Default for ZdbConfig {
    fn default() -> Self {
        ZdbConfig {
            binary: None,
            listen: "::".into(),
            address: "::1".into(),
            base_port: 9900,
        }
    }
}

/// The node config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// This node's identity, written into every pool's label; a pool with another identity is
    /// reported and never adopted.
    pub node_id: String,
    /// File-backed disks.
    #[serde(default)]
    pub disks: Vec<FileDisk>,
    /// Also manage real block devices found in sysfs (blank ones are formatted!).
    #[serde(default)]
    pub real_disks: bool,
    /// Class overrides by disk name (beat the measurement).
    #[serde(default)]
    pub class_overrides: BTreeMap<String, DiskClass>,
    /// zdb settings.
    #[serde(default)]
    pub zdb: ZdbConfig,
    /// Quota of the node's state volume.
    #[serde(default = "default_state_size")]
    pub state_volume_size: u64,
    /// Seconds between disk rescans and health probes.
    #[serde(default = "default_refresh")]
    pub refresh_secs: u64,
    /// sysfs root (tests point it elsewhere).
    #[serde(default = "default_sys")]
    pub sys_root: PathBuf,
}

fn default_state_size() -> u64 {
    1 << 30
}
fn default_refresh() -> u64 {
    5
}
fn default_sys() -> PathBuf {
    PathBuf::from("/sys")
}

impl Config {
    /// Reads a JSON config file.
    pub fn load(path: &Path) -> Result<Config, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let c: Config =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        c.validate()?;
        Ok(c)
    }

    /// Checks values that serde cannot.
    pub fn validate(&self) -> Result<(), String> {
        if self.node_id.is_empty() || self.node_id.len() > 200 {
            return Err("node_id must be 1..200 bytes".into());
        }
        if !self
            .node_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err("node_id must be [A-Za-z0-9_-]".into());
        }
        Ok(())
    }
}

/// Folders under the state root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// State root.
    pub root: PathBuf,
    /// Run folder (sockets).
    pub run: PathBuf,
}

impl Paths {
    /// `root` with the run folder at `run` (default `root/run`).
    pub fn new(root: PathBuf, run: Option<PathBuf>) -> Paths {
        let run = run.unwrap_or_else(|| root.join("run"));
        Paths { root, run }
    }
    /// Where pools are mounted.
    pub fn pools(&self) -> PathBuf {
        self.root.join("pools")
    }
    /// Mountpoint of the pool on `disk`.
    pub fn pool(&self, disk: &str) -> PathBuf {
        self.pools().join(disk)
    }
    /// Link to the node's state volume.
    pub fn state_link(&self) -> PathBuf {
        self.root.join("state")
    }
    /// storaged's bus socket.
    pub fn socket(&self) -> PathBuf {
        bus::service_socket(&self.run, "storaged")
    }
    /// zdb unix socket of the pool on `disk`.
    pub fn zdb_socket(&self, disk: &str) -> PathBuf {
        self.run.join(format!("zdb-{disk}.sock"))
    }
}
