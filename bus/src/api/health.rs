//! `health@1`, answered by every server.

use serde::{Deserialize, Serialize};

/// Overall state of a daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// Serving normally.
    Ok,
    /// Serving, but something is wrong (see detail).
    Degraded,
    /// Up but not yet able to serve its API (still starting).
    Starting,
}

/// Reply of `health@1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// Service name.
    pub service: String,
    /// Status.
    pub status: HealthStatus,
    /// Optional explanation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Process id of the daemon.
    pub pid: u32,
    /// Seconds since the server started.
    pub uptime_secs: u64,
    /// Every `name@version` the server answers.
    #[serde(default)]
    pub methods: Vec<String>,
}

crate::method!(
    /// Liveness and status of a daemon.
    GetHealth, "health" @ 1, super::Empty => Health
);
