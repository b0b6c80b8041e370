//! Typed workload data per workload type, with its own rules: validity, what may change in an
//! update, the capacity it needs and its place in the dependency order.

use super::BlueprintError;
use super::network::{NetworkSpec, check_network, check_network_update};
use bus::api::Secret;
use bus::api::compute::RestartPolicy;
use bus::api::node::Workload;
use bus::api::storage::ZdbMode;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Smallest zdb namespace or volume, in bytes.
pub const MIN_SIZE: u64 = 1 << 20;
/// Largest, in bytes (1 PiB).
pub const MAX_SIZE: u64 = 1 << 50;
/// zdb refuses longer passwords.
pub const MAX_PASSWORD: usize = 63;

/// `zdb` workload data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZdbSpec {
    /// Maximum size in bytes; can grow, never shrink.
    pub size: u64,
    /// Mode, fixed at creation.
    pub mode: ZdbMode,
    /// Password (printable ASCII without spaces, at most 63 characters).
    #[serde(default)]
    pub password: Option<Secret>,
    /// Readable without the password.
    #[serde(default)]
    pub public: bool,
}

/// `store` workload data: the owner's authorisation for a storage farm to keep shards of its
/// objects on the farm's nodes (farm/README.md, "Who owns the shard namespaces"). Every node of
/// `farm` that sees it provisions one zdb namespace (user mode) of at most `size` bytes for it
/// and advertises it in its farm registration; the repair leader may then place replacement
/// shards on any of them while the owner is offline, within exactly these limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSpec {
    /// The farm's name (as in `node-init --farm NAME`).
    pub farm: String,
    /// Bytes of shards per node at most (the namespace's size); can grow, never shrink.
    pub size: u64,
    /// The shard namespaces' password: who may write or delete shards (shards are encrypted
    /// and authenticated with keys only the owner holds, so this guards availability).
    pub password: Secret,
}

/// `volume` workload data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeSpec {
    /// Quota in bytes; can grow, never shrink.
    pub size: u64,
}

/// A `volume` workload of the same deployment mounted into a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerMount {
    /// Name of the `volume` workload.
    pub volume: String,
    /// Absolute path inside the container.
    pub path: String,
    /// Read-only.
    #[serde(default)]
    pub readonly: bool,
}

/// `container` workload data. Only `rootfs_size` can change in place (it grows); any other
/// change replaces the container: stop, fresh writable layer, start (volumes are kept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerSpec {
    /// Flist path on the node or `http(s)://` URL.
    pub flist: String,
    /// Its identity (64 hex digits): another flist under the same name is refused.
    pub identity: String,
    /// Block stores replacing the flist's routes.
    #[serde(default)]
    pub stores: Vec<String>,
    /// Entrypoint and arguments.
    pub entrypoint: Vec<String>,
    /// Environment.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Working directory.
    #[serde(default)]
    pub workdir: Option<String>,
    /// Host name (default: the workload name).
    #[serde(default)]
    pub hostname: Option<String>,
    /// CPU cores (CFS quota); 0 = no limit.
    #[serde(default)]
    pub cpu: u32,
    /// Memory limit in bytes (swap included), reserved on the node.
    pub memory: u64,
    /// Task limit.
    #[serde(default)]
    pub pids: Option<u64>,
    /// Size of the writable layer in bytes (a volume on the node's SSDs).
    pub rootfs_size: u64,
    /// Volumes of this deployment mounted into the container.
    #[serde(default)]
    pub mounts: Vec<ContainerMount>,
    /// Restart policy.
    #[serde(default)]
    pub restart: RestartPolicy,
    /// Name of a `network` workload of this deployment: the container gets an interface in it
    /// (an address in the node's subnet, default route via `.1`); none = loopback only.
    #[serde(default)]
    pub network: Option<String>,
    /// Its address in the node's subnet (default: the next free one); needs `network`.
    #[serde(default)]
    pub address: Option<std::net::Ipv4Addr>,
}

/// Where a workload's bytes come from, for the capacity check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Pool {
    /// zdb namespaces (HDD by storaged's policy).
    Zdb,
    /// Volumes (SSD by storaged's policy).
    Volume,
    /// Memory of containers.
    Memory,
}

/// A workload's data, parsed by type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkloadSpec {
    /// `zdb`.
    Zdb(ZdbSpec),
    /// `volume`.
    Volume(VolumeSpec),
    /// `container`.
    Container(ContainerSpec),
    /// `network`.
    Network(NetworkSpec),
    /// `store`.
    Store(StoreSpec),
}

/// Known workload types.
pub const KINDS: &[&str] = &["zdb", "volume", "container", "network", "store"];

impl WorkloadSpec {
    /// Parses and checks the data of `wl`.
    pub fn parse(wl: &Workload) -> Result<Self, BlueprintError> {
        let invalid = |reason: String| BlueprintError::InvalidWorkload {
            name: wl.name.clone(),
            reason,
        };
        let spec = match wl.kind.as_str() {
            "zdb" => WorkloadSpec::Zdb(
                serde_json::from_value(wl.data.clone()).map_err(|e| invalid(e.to_string()))?,
            ),
            "volume" => WorkloadSpec::Volume(
                serde_json::from_value(wl.data.clone()).map_err(|e| invalid(e.to_string()))?,
            ),
            "container" => {
                let c: ContainerSpec =
                    serde_json::from_value(wl.data.clone()).map_err(|e| invalid(e.to_string()))?;
                check_container(&c).map_err(invalid)?;
                WorkloadSpec::Container(c)
            }
            "network" => {
                let n: NetworkSpec =
                    serde_json::from_value(wl.data.clone()).map_err(|e| invalid(e.to_string()))?;
                check_network(&n).map_err(invalid)?;
                return Ok(WorkloadSpec::Network(n));
            }
            "store" => {
                let st: StoreSpec =
                    serde_json::from_value(wl.data.clone()).map_err(|e| invalid(e.to_string()))?;
                if farm::meta::keys::Keys::new(&st.farm).is_err() {
                    return Err(invalid(format!("farm name {:?} is not valid", st.farm)));
                }
                WorkloadSpec::Store(st)
            }
            other => {
                return Err(invalid(format!(
                    "unknown type {other:?} (known: {KINDS:?})"
                )));
            }
        };
        let size = spec.size();
        if !(MIN_SIZE..=MAX_SIZE).contains(&size) {
            return Err(invalid(format!(
                "size {size} out of range {MIN_SIZE}..={MAX_SIZE} bytes"
            )));
        }
        let password = match &spec {
            WorkloadSpec::Zdb(z) => z.password.as_ref(),
            WorkloadSpec::Store(st) => Some(&st.password),
            _ => None,
        };
        if let Some(p) = password.map(Secret::expose)
            && (p.is_empty()
                || p.len() > MAX_PASSWORD
                || !p.bytes().all(|b| (0x21..=0x7e).contains(&b)))
        {
            return Err(invalid(format!(
                "password must be 1 to {MAX_PASSWORD} printable ASCII characters without spaces"
            )));
        }
        Ok(spec)
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        match self {
            WorkloadSpec::Zdb(z) => z.size,
            WorkloadSpec::Volume(v) => v.size,
            WorkloadSpec::Container(c) => c.rootfs_size,
            WorkloadSpec::Network(_) => 0,
            WorkloadSpec::Store(st) => st.size,
        }
    }

    /// Memory it reserves.
    pub fn memory(&self) -> u64 {
        match self {
            WorkloadSpec::Container(c) => c.memory,
            _ => 0,
        }
    }

    /// Which capacity it draws on (a network takes no bytes: [`Self::size`] is 0).
    pub fn pool(&self) -> Pool {
        match self {
            WorkloadSpec::Zdb(_) | WorkloadSpec::Store(_) => Pool::Zdb,
            WorkloadSpec::Volume(_) | WorkloadSpec::Container(_) | WorkloadSpec::Network(_) => {
                Pool::Volume
            }
        }
    }

    /// Dependency rank: lower ranks are installed first and removed last (storage 0,
    /// network 1, containers 2).
    pub fn rank(kind: &str) -> u8 {
        match kind {
            "zdb" | "volume" | "store" => 0,
            "network" => 1,
            _ => 2,
        }
    }

    /// Checks that `self` may replace `old`; returns the extra bytes it needs.
    pub fn check_update(&self, name: &str, old: &WorkloadSpec) -> Result<u64, BlueprintError> {
        let refuse = |reason: String| BlueprintError::ImmutableChange {
            name: name.to_string(),
            reason,
        };
        match (self, old) {
            (WorkloadSpec::Zdb(n), WorkloadSpec::Zdb(o)) if n.mode != o.mode => Err(refuse(
                "the mode of a zdb namespace is fixed at creation".into(),
            )),
            (WorkloadSpec::Store(n), WorkloadSpec::Store(o)) if n.farm != o.farm => {
                Err(refuse("the farm of a store is fixed at creation".into()))
            }
            (WorkloadSpec::Network(n), WorkloadSpec::Network(o)) => {
                check_network_update(n, o).map_err(refuse)?;
                Ok(0)
            }
            _ if self.size() < old.size() => Err(refuse(format!(
                "size cannot shrink ({} -> {} bytes)",
                old.size(),
                self.size()
            ))),
            _ => Ok(self.size() - old.size()),
        }
    }
}

/// Smallest container memory limit.
pub const MIN_MEMORY: u64 = 4 << 20;

/// Static checks of a container workload (the rest is checked by computed).
fn check_container(c: &ContainerSpec) -> Result<(), String> {
    if c.identity.len() != 64 || !c.identity.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("identity must be the flist's 64 hex digit identity".into());
    }
    if c.flist.is_empty() {
        return Err("flist is empty".into());
    }
    if c.entrypoint.first().is_none_or(|e| e.is_empty()) {
        return Err("entrypoint is empty".into());
    }
    if c.memory < MIN_MEMORY {
        return Err(format!("memory must be at least {MIN_MEMORY} bytes"));
    }
    if c.address.is_some() && c.network.is_none() {
        return Err("address needs a network".into());
    }
    for m in &c.mounts {
        if !m.path.starts_with('/') || m.path == "/" || m.path.split('/').any(|p| p == "..") {
            return Err(format!("mount path {:?} must be absolute, below /", m.path));
        }
    }
    Ok(())
}
