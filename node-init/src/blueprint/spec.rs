//! Typed workload data per workload type, with its own rules: validity, what may change in an
//! update, the capacity it needs and its place in the dependency order.

use super::BlueprintError;
use bus::api::node::Workload;
use bus::api::storage::ZdbMode;
use serde::{Deserialize, Serialize};

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
    pub password: Option<String>,
    /// Readable without the password.
    #[serde(default)]
    pub public: bool,
}

/// `volume` workload data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeSpec {
    /// Quota in bytes; can grow, never shrink.
    pub size: u64,
}

/// Where a workload's bytes come from, for the capacity check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Pool {
    /// zdb namespaces (HDD by storaged's policy).
    Zdb,
    /// Volumes (SSD by storaged's policy).
    Volume,
}

/// A workload's data, parsed by type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkloadSpec {
    /// `zdb`.
    Zdb(ZdbSpec),
    /// `volume`.
    Volume(VolumeSpec),
}

/// Known workload types.
pub const KINDS: &[&str] = &["zdb", "volume"];

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
        if let WorkloadSpec::Zdb(z) = &spec
            && let Some(p) = &z.password
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
        }
    }

    /// Which capacity it draws on.
    pub fn pool(&self) -> Pool {
        match self {
            WorkloadSpec::Zdb(_) => Pool::Zdb,
            WorkloadSpec::Volume(_) => Pool::Volume,
        }
    }

    /// Dependency rank: lower ranks are installed first and removed last (storage 0, later
    /// network 1, containers 2).
    pub fn rank(kind: &str) -> u8 {
        match kind {
            "zdb" | "volume" => 0,
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
            _ if self.size() < old.size() => Err(refuse(format!(
                "size cannot shrink ({} -> {} bytes)",
                old.size(),
                self.size()
            ))),
            _ => Ok(self.size() - old.size()),
        }
    }
}
