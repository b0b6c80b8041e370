//! The engine's persistent state: one JSON file per deployment, written atomically.
//!
//! ```text
//! <state>/deployments/<owner hex>/<id>.json     Record (mode 0600: holds passwords)
//! ```
//!
//! A record holds the deployment, its lifecycle state (which is also its pending job: `active`
//! means "keep it real", `deleting` means "remove its workloads") and each workload's last
//! applied spec and result, so one atomic rename commits a deployment and its job together.

use bus::api::node::{Deployment, DeploymentState, Workload, WorkloadResult};
use nodeutil::fs::{WriteError, create_private_dir, sync_dir, write_durable};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Most history entries kept per deployment.
pub const MAX_HISTORY: usize = 200;

/// Store failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Reading a record failed.
    #[error("cannot read {}", path.display())]
    Read {
        /// File.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// A record does not parse.
    #[error("corrupt record {}: {reason}", path.display())]
    Corrupt {
        /// File.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Writing failed.
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// One workload as the node knows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkloadEntry {
    /// Type.
    pub kind: String,
    /// The spec last applied successfully (needed to remove it).
    #[serde(default)]
    pub applied: Option<Workload>,
    /// Latest result.
    pub result: WorkloadResult,
}

/// One recorded change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// Unix time.
    pub at: u64,
    /// Deployment version.
    pub version: u64,
    /// Workload, or none for the deployment itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<String>,
    /// What happened (`accepted`, `ok`, `error`, `deleted`, ...).
    pub event: String,
    /// Message.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

/// A deployment's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Owner key.
    pub owner: String,
    /// Id.
    pub id: String,
    /// Lifecycle (and pending job).
    pub state: DeploymentState,
    /// Current version.
    pub version: u64,
    /// Hash of the current version (hex).
    pub hash: String,
    /// The signed deployment; `None` once deleted (tombstone).
    #[serde(default)]
    pub deployment: Option<Deployment>,
    /// Workloads by name: those of the deployment and those still to remove.
    #[serde(default)]
    pub workloads: BTreeMap<String, WorkloadEntry>,
    /// Recent changes, oldest first.
    #[serde(default)]
    pub history: Vec<Change>,
}

impl Record {
    /// Appends to the history, keeping it bounded.
    pub fn log(&mut self, workload: Option<&str>, event: &str, message: &str) {
        self.history.push(Change {
            at: now(),
            version: self.version,
            workload: workload.map(str::to_string),
            event: event.to_string(),
            message: message.to_string(),
        });
        if self.history.len() > MAX_HISTORY {
            let extra = self.history.len() - MAX_HISTORY;
            self.history.drain(..extra);
        }
    }
}

/// Unix time in seconds.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The record folder.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Opens (creating) the store under `state_dir`.
    pub fn open(state_dir: &Path) -> Result<Self, StoreError> {
        let root = state_dir.join("deployments");
        create_private_dir(&root).map_err(|source| StoreError::Read {
            path: root.clone(),
            source,
        })?;
        Ok(Store { root })
    }

    fn path(&self, owner: &str, id: &str) -> PathBuf {
        self.root.join(owner).join(format!("{id}.json"))
    }

    /// Loads a record; `None` when absent. Owner and id must have been validated (hex, ident).
    pub fn load(&self, owner: &str, id: &str) -> Result<Option<Record>, StoreError> {
        let path = self.path(owner, id);
        match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| StoreError::Corrupt {
                    path,
                    reason: e.to_string(),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StoreError::Read { path, source }),
        }
    }

    /// Saves a record durably.
    pub fn save(&self, rec: &Record) -> Result<(), StoreError> {
        let body = serde_json::to_vec_pretty(rec).map_err(|e| StoreError::Corrupt {
            path: self.path(&rec.owner, &rec.id),
            reason: e.to_string(),
        })?;
        let path = self.path(&rec.owner, &rec.id);
        let dir = self.root.join(&rec.owner);
        if !dir.exists() {
            // A new owner's folder: its entry in the root must be durable too.
            let err = |step, source| WriteError {
                path: path.clone(),
                step,
                source,
            };
            create_private_dir(&dir).map_err(|e| err("create folder", e))?;
            sync_dir(&self.root).map_err(|e| err("fsync folder", e))?;
        }
        write_durable(&path, &body, 0o600)?;
        Ok(())
    }

    /// Owners that have a deployment `id`.
    pub fn owners_of(&self, id: &str) -> Result<Vec<String>, StoreError> {
        Ok(self
            .owners()?
            .into_iter()
            .filter(|o| self.path(o, id).exists())
            .collect())
    }

    fn owners(&self) -> Result<Vec<String>, StoreError> {
        let rd = std::fs::read_dir(&self.root).map_err(|source| StoreError::Read {
            path: self.root.clone(),
            source,
        })?;
        let mut v: Vec<String> = rd
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        Ok(v)
    }

    /// Every record, sorted by owner then id. Corrupt records are reported, not skipped.
    pub fn all(&self) -> Result<Vec<Record>, StoreError> {
        let mut out = Vec::new();
        for owner in self.owners()? {
            let dir = self.root.join(&owner);
            let rd = std::fs::read_dir(&dir).map_err(|source| StoreError::Read {
                path: dir.clone(),
                source,
            })?;
            let mut ids: Vec<String> = rd
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .filter_map(|n| n.strip_suffix(".json").map(str::to_string))
                .collect();
            ids.sort();
            for id in ids {
                if let Some(r) = self.load(&owner, &id)? {
                    out.push(r);
                }
            }
        }
        Ok(out)
    }
}
