//! node-init's API (socket `node-init.sock`): identity and deployments (blueprints).
//!
//! The blueprint types are plain data; hashing, signature checks and validation live in
//! node-init (`node_init::blueprint`). The schema is documented in
//! `node-init/docs/blueprint.schema.json`. Events: topic `node.deployment`, data
//! [`DeploymentEvent`].

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One weighted owner key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignerKey {
    /// ed25519 public key, 64 lower-case hex characters.
    pub key: String,
    /// Weight counted towards the threshold (at least 1).
    pub weight: u32,
}

/// The owner keys allowed to sign a deployment and the weight needed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signers {
    /// Sum of the weights of valid signatures needed (at least 1).
    pub threshold: u32,
    /// The keys.
    pub keys: Vec<SignerKey>,
}

/// One signature over the deployment hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    /// Signer public key (hex).
    pub key: String,
    /// ed25519 signature of the 32-byte hash (128 hex characters).
    pub signature: String,
}

/// State of a workload on the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkloadState {
    /// Accepted, not applied yet.
    Init,
    /// Applied.
    Ok,
    /// The last attempt failed; it is retried with backoff.
    Error,
    /// Removed.
    Deleted,
    /// Paused.
    Paused,
}

/// What the node made of a workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkloadResult {
    /// State.
    pub state: WorkloadState,
    /// Error or progress message.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// Outputs (e.g. namespace, address, port); never a password.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub data: Value,
    /// Unix time of the change.
    pub updated: u64,
    /// Workload version this result is for.
    pub version: u64,
}

/// One workload of a deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    /// Unique in the deployment, `^[a-zA-Z0-9_]{1,36}$`.
    pub name: String,
    /// `zdb` or `volume` (later `container`, `network`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Deployment version in which this workload last changed.
    pub version: u64,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Type-specific data (see the schema).
    pub data: Value,
    /// Filled by the node; ignored when hashing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<WorkloadResult>,
}

/// A deployment: what an owner asks a node to make real.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deployment {
    /// Id, unique per owner, `^[a-zA-Z0-9_-]{1,36}$`.
    pub id: String,
    /// 0 when created, then exactly +1 per update.
    pub version: u64,
    /// The account key (hex) that scopes `id`; fixed for the life of the deployment and must
    /// sign its creation.
    pub owner: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Owner keys, weights and threshold.
    pub signers: Signers,
    /// The workloads.
    pub workloads: Vec<Workload>,
    /// Signatures over the hash; ignored when hashing.
    #[serde(default)]
    pub signatures: Vec<Signature>,
}

/// Lifecycle of a deployment on the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentState {
    /// Being made real and kept real.
    Active,
    /// A signed delete was accepted; workloads are being removed.
    Deleting,
    /// Gone; a tombstone keeps its last version so old versions cannot be replayed.
    Deleted,
}

/// A deployment as the node shows it: passwords redacted, workload results filled in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentView {
    /// Owner key (hex).
    pub owner: String,
    /// Id.
    pub id: String,
    /// Current version.
    pub version: u64,
    /// blake3 hash (hex) of the current version.
    pub hash: String,
    /// Lifecycle state.
    pub state: DeploymentState,
    /// The deployment (absent for a tombstone), passwords replaced by `<redacted>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<Deployment>,
}

/// Reply of `node.deploy@1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployReply {
    /// Owner key.
    pub owner: String,
    /// Id.
    pub id: String,
    /// Accepted version.
    pub version: u64,
    /// Its hash.
    pub hash: String,
    /// False when this exact version was already accepted (a retried submit).
    pub changed: bool,
}

/// Request of `node.deploy@1`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeployRequest {
    /// The signed deployment.
    pub deployment: Deployment,
}

/// Request of `node.get@1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetRequest {
    /// Id.
    pub id: String,
    /// Owner key; may be omitted when only one owner has a deployment with this id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

/// Request of `node.list@1`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListRequest {
    /// Only this owner's deployments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Include tombstones.
    #[serde(default)]
    pub deleted: bool,
}

/// One line of `node.list@1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentSummary {
    /// Owner key.
    pub owner: String,
    /// Id.
    pub id: String,
    /// Version.
    pub version: u64,
    /// State.
    pub state: DeploymentState,
    /// Workloads: (name, type, state).
    pub workloads: Vec<(String, String, WorkloadState)>,
}

/// Reply of `node.list@1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentList {
    /// Deployments, sorted by owner then id.
    pub deployments: Vec<DeploymentSummary>,
}

/// Request of `node.delete@1`: signed by the current signer set.
///
/// The signed hash is blake3 over the JCS form of `{"op":"delete","owner":..,"id":..,
/// "version":..}` where version is the current version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteRequest {
    /// Owner key.
    pub owner: String,
    /// Id.
    pub id: String,
    /// Current version.
    pub version: u64,
    /// Signatures over the delete hash.
    pub signatures: Vec<Signature>,
}

/// Reply of `node.identity@1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// Node id: hex of the first 16 bytes of blake3(public key).
    pub node_id: String,
    /// Node public key (hex).
    pub public_key: String,
}

/// Data of `node.deployment` events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentEvent {
    /// Owner key.
    pub owner: String,
    /// Id.
    pub id: String,
    /// Version.
    pub version: u64,
    /// Workload name, when the event is about one workload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<String>,
    /// New deployment state.
    pub state: DeploymentState,
    /// New workload state, when about a workload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_state: Option<WorkloadState>,
    /// Message (errors).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

crate::method!(
    /// Submits a signed deployment (create or update). Returns once it is durably stored.
    Deploy, "node.deploy" @ 1, DeployRequest => DeployReply
);
crate::method!(
    /// Reads a deployment (passwords redacted).
    Get, "node.get" @ 1, GetRequest => DeploymentView
);
crate::method!(
    /// Lists deployments.
    List, "node.list" @ 1, ListRequest => DeploymentList
);
crate::method!(
    /// Deletes a deployment (signed); returns once the delete is durably accepted.
    Delete, "node.delete" @ 1, DeleteRequest => DeploymentView
);
crate::method!(
    /// The node's identity.
    GetIdentity, "node.identity" @ 1, super::Empty => Identity
);
