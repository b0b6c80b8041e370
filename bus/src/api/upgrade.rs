//! Upgrades of the daemons node-init supervises, on its bus socket (`node-init.sock`): `zos
//! upgrade SERVICE --from PATH` and `zos upgrade --rollback SERVICE`.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Parameters of [`Upgrade`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpgradeRequest {
    /// The service (a definition's name).
    pub service: String,
    /// The new binary, read by node-init (same machine).
    pub from: PathBuf,
    /// How long the new one may take to be ready (default: its definition's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_timeout_secs: Option<u64>,
}

/// Parameters of [`Rollback`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    /// The service.
    pub service: String,
    /// How long the previous one may take to be ready (default: its definition's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_timeout_secs: Option<u64>,
}

/// How an upgrade or a rollback ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The new version runs and is ready.
    Upgraded,
    /// The previous version runs again (asked for, by `--rollback`).
    RolledBack,
    /// The new version failed (see `detail`); node-init put the old binary and state back and
    /// the old version runs.
    Reverted,
    /// The binary is the one running already; nothing was done.
    Unchanged,
    /// node-init itself: the new binary passed its self-check and node-init re-executes it in
    /// place now (same pid); the outcome is written to `<node>/upgrade/node-init.result.json`
    /// under the reply's `attempt` once the new one is ready or the old one is back.
    Restarting,
}

/// Reply of [`Upgrade`] and [`Rollback`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpgradeReply {
    /// The service.
    pub service: String,
    /// What happened.
    pub outcome: Outcome,
    /// Version (`b3:...`) before.
    pub from_version: String,
    /// Version asked for.
    pub to_version: String,
    /// Version running now.
    pub running_version: String,
    /// Its pid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Whether a state migration ran.
    #[serde(default)]
    pub migrated: bool,
    /// The new process took the running one's work over live (its tunnels, sockets): nothing
    /// was stopped and made again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub taken_over: bool,
    /// Why the new version was reverted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// `zdb`: each server's hand-over.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub zdb: Vec<ZdbHandover>,
    /// node-init's own upgrade: names this attempt in its result file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<String>,
    /// `flist`: each shared flist mount's hand-over.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flist: Vec<FlistMountHandover>,
}

impl UpgradeReply {
    /// A reply with the outcome and versions only: no pid, migration, detail or per-process
    /// hand-overs (a caller sets those that apply).
    pub fn new(
        service: &str,
        outcome: Outcome,
        from_version: String,
        to_version: String,
        running_version: String,
    ) -> Self {
        UpgradeReply {
            service: service.into(),
            outcome,
            from_version,
            to_version,
            running_version,
            pid: None,
            migrated: false,
            taken_over: false,
            detail: None,
            zdb: Vec::new(),
            attempt: None,
            flist: Vec::new(),
        }
    }
}

crate::method!(
    /// Installs a new binary for a service side by side, migrates a copy of its state, switches
    /// it and restarts only that daemon; reverts by itself when the new one fails.
    Upgrade, "node.upgrade" @ 1, UpgradeRequest => UpgradeReply
);

crate::method!(
    /// Switches a service back to the version (and state) it ran before its last upgrade.
    Rollback, "node.upgrade.rollback" @ 1, RollbackRequest => UpgradeReply
);

/// Parameters of [`UpgradeZdb`] (storaged's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZdbUpgrade {
    /// The new zdb binary (installed by node-init; storaged runs it from there).
    pub binary: PathBuf,
}

/// One zdb server's live hand-over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZdbHandover {
    /// Its disk.
    pub disk: String,
    /// The process before.
    pub old_pid: u32,
    /// The process serving now.
    pub pid: u32,
    /// Handed over to the new binary.
    pub upgraded: bool,
    /// Why not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Reply of [`UpgradeZdb`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZdbUpgradeReport {
    /// The binary storaged ran its servers from before.
    pub previous: PathBuf,
    /// Every server, in disk order.
    pub servers: Vec<ZdbHandover>,
}

crate::method!(
    /// Hands every zdb server over to a new binary, live (listeners and client connections
    /// pass to the new process; a failed hand-over leaves the old one serving). The binary
    /// becomes the one restarts use when every server took it.
    UpgradeZdb, "storage.zdb.upgrade" @ 1, ZdbUpgrade => ZdbUpgradeReport
);

/// Parameters of [`UpgradeFlistMounts`] (computed's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlistMountsUpgrade {
    /// The new `flist` binary (installed by node-init; computed runs it from there).
    pub binary: PathBuf,
}

/// One shared flist mount's live hand-over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlistMountHandover {
    /// The flist's identity (hex).
    pub identity: String,
    /// The process serving it now, when the new one took it over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Handed over to the new binary.
    pub upgraded: bool,
    /// Why not (the old process serves on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Reply of [`UpgradeFlistMounts`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlistMountsReport {
    /// The binary computed ran `flist` from before.
    pub previous: PathBuf,
    /// Every live shared mount, in identity order.
    pub mounts: Vec<FlistMountHandover>,
}

crate::method!(
    /// Hands every shared flist mount of computed's containers over to a new `flist` binary,
    /// live (`flist container upgrade`: the new process takes over `/dev/fuse`; a failed
    /// hand-over leaves the old one serving). The binary becomes the one new mounts use
    /// when every mount took it.
    UpgradeFlistMounts, "compute.flist.upgrade" @ 1, FlistMountsUpgrade => FlistMountsReport
);

/// Parameters of [`UpgradeFlist`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlistUpgradeRequest {
    /// The release flist: a path or `file://` URL, read by node-init.
    pub url: String,
    /// How long each new daemon may take to be ready (default: its definition's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_timeout_secs: Option<u64>,
}

/// Reply of [`UpgradeFlist`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlistUpgradeReply {
    /// The release key that signed it.
    pub signer: String,
    /// Each daemon of the release, in upgrade order (it stops at the first one reverted).
    pub services: Vec<UpgradeReply>,
}

crate::method!(
    /// Upgrades the daemons whose binaries a signed release flist holds; refused, with nothing
    /// changed, unless it verifies with the node's pinned release key.
    UpgradeFlist, "node.upgrade.flist" @ 1, FlistUpgradeRequest => FlistUpgradeReply
);
