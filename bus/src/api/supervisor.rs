//! node-init's supervisor on its bus socket (`node-init.sock`): the daemons it runs, for
//! `zos services` and `zos version`.

use serde::{Deserialize, Serialize};

/// One supervised daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceStatus {
    /// Service name (its definition file's stem).
    pub name: String,
    /// `waiting`, `starting`, `running`, `backoff`, `failed`, `stopping` or `stopped`.
    pub state: String,
    /// Its process, while there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Seconds since it was started (or adopted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uptime_secs: Option<u64>,
    /// Restarts after crashes since node-init started.
    pub restarts: u32,
    /// `b3:` + 12 hex digits of its binary's blake3 (two builds differ).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Live readiness: the daemon's health status (`ok`, `degraded`, `starting`), `no answer`,
    /// or for other readiness tests `ready` / `not ready`.
    pub readiness: String,
    /// Why it failed, or how it last ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Found running when node-init started and adopted (not node-init's child until its
    /// first restart).
    #[serde(default)]
    pub adopted: bool,
}

/// Reply of [`ListServices`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceList {
    /// node-init's version (crate version and binary hash).
    pub node_init_version: String,
    /// Services in start order.
    pub services: Vec<ServiceStatus>,
}

crate::method!(
    /// The supervised daemons and node-init's version.
    ListServices, "node.services" @ 1, super::Empty => ServiceList
);

/// Request of [`RestartService`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartRequest {
    /// Service name.
    pub name: String,
    /// How long to wait for it to be ready again (seconds).
    pub timeout_secs: u64,
}

crate::method!(
    /// Restarts one supervised daemon (stop, start, wait until ready); answers its status.
    RestartService, "node.services.restart" @ 1, RestartRequest => ServiceStatus
);
