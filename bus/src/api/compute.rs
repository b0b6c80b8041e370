//! computed's API (socket `computed.sock`): containers booted from flists.
//!
//! A container is named `[a-zA-Z0-9_-]{1,100}` (node-init passes `<owner>-<deployment>-<name>`).
//! Mutating methods are idempotent:
//! * `compute.container.create` of an existing container with the same spec returns it (starting
//!   it again if it was stopped); a different spec replaces it (stop, fresh writable layer, start).
//! * `delete` of something absent succeeds; it releases the overlay, the network namespace and
//!   the logs, never the volumes passed in (they belong to storaged).
//!
//! Errors: `not_found`, `invalid_argument` (bad name, spec or flist identity), `no_capacity`
//! (memory). Events: topic `compute.container`, the [`Container`] as data, on every state change
//! computed notices.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// When the shim starts the entrypoint again after it exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "policy")]
pub enum RestartPolicy {
    /// Never: the container stays exited.
    #[default]
    Never,
    /// After a non-zero exit or a signal, at most `max_retries` times in a row.
    OnFailure {
        /// Cap on consecutive restarts.
        max_retries: u32,
    },
    /// After every exit, until stopped.
    Always,
}

/// A bind mount of a host folder (a volume) into the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    /// Host folder.
    pub source: PathBuf,
    /// Absolute path inside the container.
    pub target: String,
    /// Read-only.
    #[serde(default)]
    pub readonly: bool,
}

/// What to run: request of `compute.container.create@1`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerSpec {
    /// Container name.
    pub name: String,
    /// The flist: a local path or an `http(s)://` URL.
    pub flist: String,
    /// The flist's identity (64 hex digits): refused when the flist is not this one.
    pub identity: String,
    /// Block stores replacing the flist's routes (URLs, as `flist mount --store`).
    #[serde(default)]
    pub stores: Vec<String>,
    /// Entrypoint and arguments (`argv`); absolute, or found in the container's `PATH`.
    pub entrypoint: Vec<String>,
    /// Environment (`PATH` defaults to the usual folders).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Working directory inside the container.
    #[serde(default = "default_workdir")]
    pub workdir: String,
    /// Host name (defaults to the container name, cut to 63 characters).
    #[serde(default)]
    pub hostname: Option<String>,
    /// CPU limit in cores (CFS quota); 0 = no limit.
    #[serde(default)]
    pub cpu: f64,
    /// Memory limit in bytes (swap included).
    pub memory: u64,
    /// Limit on tasks (processes and threads).
    #[serde(default = "default_pids")]
    pub pids: u64,
    /// Host folder holding the writable layer (`upper/`, `work/`); a storaged volume.
    pub rw: PathBuf,
    /// Extra bind mounts.
    #[serde(default)]
    pub mounts: Vec<Mount>,
    /// Restart policy.
    #[serde(default)]
    pub restart: RestartPolicy,
    /// Seconds between SIGTERM and SIGKILL on stop.
    #[serde(default = "default_grace")]
    pub stop_grace_secs: u32,
    /// Bound of the captured output in bytes (two rotating files of half this size).
    #[serde(default = "default_log_max")]
    pub log_max_bytes: u64,
}

/// Working directory when none is given.
pub const DEFAULT_WORKDIR: &str = "/";
/// Task limit when none is given.
pub const DEFAULT_PIDS: u64 = 1024;
/// Seconds from SIGTERM to SIGKILL when none are given.
pub const DEFAULT_STOP_GRACE_SECS: u32 = 10;
/// Bound of the captured output when none is given.
pub const DEFAULT_LOG_MAX_BYTES: u64 = 4 << 20;

fn default_workdir() -> String {
    DEFAULT_WORKDIR.into()
}
fn default_pids() -> u64 {
    DEFAULT_PIDS
}
fn default_grace() -> u32 {
    DEFAULT_STOP_GRACE_SECS
}
fn default_log_max() -> u64 {
    DEFAULT_LOG_MAX_BYTES
}

/// Life of a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContainerState {
    /// Being set up (rootfs, network, runtime).
    Creating,
    /// The entrypoint runs.
    Running,
    /// Exited; the shim starts it again after a backoff.
    Restarting,
    /// Exited and stays so (policy, or retries used up).
    Exited,
    /// Stopped on request.
    Stopped,
    /// Could not be started (see `message`).
    Failed,
}

impl ContainerState {
    /// No shim works on it any more.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Exited | Self::Stopped | Self::Failed)
    }
}

/// Time spent starting, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StartTimings {
    /// Flist fetched/checked, read-only mount and overlay (`flist container start`).
    pub rootfs_ms: u64,
    /// Network namespace with loopback.
    pub network_ms: u64,
    /// Runtime: namespaces, cgroups, pivot_root, exec (libcontainer create + start).
    pub runtime_ms: u64,
}

/// A container: reply of create, get, stop and start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Container {
    /// Name.
    pub name: String,
    /// State.
    pub state: ContainerState,
    /// Host pid of the entrypoint while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    /// Exit code of the last run that exited normally.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Signal that ended the last run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    /// The memory limit killed a process of the last run.
    #[serde(default)]
    pub oom_killed: bool,
    /// Restarts since it was created.
    pub restarts: u32,
    /// Unix seconds of the last start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<u64>,
    /// Unix seconds of the last exit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<u64>,
    /// Why it failed, when it did.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// Identity of its flist.
    pub identity: String,
    /// Network namespace (a file under `/run/netns`), for the network daemon to attach to.
    pub netns: String,
    /// Start timings of the last creation.
    #[serde(default)]
    pub timings: StartTimings,
}

/// Reply of `compute.container.list@1`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerList {
    /// Every container.
    pub containers: Vec<Container>,
}

/// Request of `compute.container.logs@1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogsRequest {
    /// Container name.
    pub name: String,
    /// Absolute byte offset in the container's output (0 = oldest kept).
    #[serde(default)]
    pub offset: u64,
    /// At most this many bytes (capped by the server at 256 KiB).
    #[serde(default = "default_chunk")]
    pub max: u64,
}

fn default_chunk() -> u64 {
    64 << 10
}

/// Reply of `compute.container.logs@1`: output bytes from `offset` (lossy UTF-8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogsChunk {
    /// Where `data` starts (later than asked when older output was rotated away).
    pub offset: u64,
    /// The output.
    pub data: String,
    /// Offset to ask for next.
    pub next: u64,
    /// The container has no shim any more: nothing will be appended.
    pub finished: bool,
}

/// Memory and CPU of the node, for admission checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComputeCapacity {
    /// Logical CPUs.
    pub cpus: u32,
    /// Physical memory in bytes.
    pub memory_total: u64,
    /// Kept for the node's own daemons.
    pub memory_system: u64,
    /// Sum of the memory limits of existing containers.
    pub memory_reserved: u64,
}

impl ComputeCapacity {
    /// Memory still free for new containers.
    pub fn memory_free(&self) -> u64 {
        self.memory_total
            .saturating_sub(self.memory_system)
            .saturating_sub(self.memory_reserved)
    }
}

/// Names a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Name {
    /// Container name.
    pub name: String,
}

crate::method!(
    /// Creates (or converges) a container and starts it.
    CreateContainer, "compute.container.create" @ 1, ContainerSpec => Container
);
crate::method!(
    /// Reads a container.
    GetContainer, "compute.container.get" @ 1, Name => Container
);
crate::method!(
    /// Lists containers.
    ListContainers, "compute.container.list" @ 1, super::Empty => ContainerList
);
crate::method!(
    /// Stops a container (SIGTERM, SIGKILL after its grace period); it stays stopped.
    StopContainer, "compute.container.stop" @ 1, Name => Container
);
crate::method!(
    /// Starts a stopped or exited container again.
    StartContainer, "compute.container.start" @ 1, Name => Container
);
crate::method!(
    /// Stops and removes a container; absent is fine.
    DeleteContainer, "compute.container.delete" @ 1, Name => super::Empty
);
crate::method!(
    /// Reads captured output.
    ContainerLogs, "compute.container.logs" @ 1, LogsRequest => LogsChunk
);
crate::method!(
    /// CPU and memory for admission checks.
    GetComputeCapacity, "compute.capacity" @ 1, super::Empty => ComputeCapacity
);

/// Writes a container's output, from the oldest byte kept, to `out`; with `follow`, polls for
/// more until the container has no shim any more. The one reader behind `computed logs` and
/// `zos logs`.
pub async fn copy_logs(
    client: &crate::Client,
    name: &str,
    follow: bool,
    out: &mut (impl std::io::Write + Send),
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut offset = 0;
    loop {
        let chunk = client
            .call::<ContainerLogs>(&LogsRequest {
                name: name.to_string(),
                offset,
                max: 256 << 10,
            })
            .await?;
        out.write_all(chunk.data.as_bytes())?;
        out.flush()?;
        if chunk.next != offset {
            offset = chunk.next;
            continue;
        }
        if !follow || chunk.finished {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
