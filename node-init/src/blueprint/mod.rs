//! Blueprints (deployments): hashing, signing, verification, validation and redaction.
//!
//! The data types are in [`bus::api::node`]; the schema is `node-init/docs/blueprint.schema.json`.
//!
//! * Hash: blake3 over the RFC 8785 canonical JSON of the deployment without `signatures` and
//!   without each workload's `result`.
//! * Signature: ed25519 over the 32 hash bytes, by a key of `signers`.
//! * Everything here is pure: it decides, the engine acts.

mod network;
mod spec;
mod validate;
mod verify;

pub use network::{NetworkPeer, NetworkSpec};
pub use spec::{ContainerMount, ContainerSpec, Pool, StoreSpec, VolumeSpec, WorkloadSpec, ZdbSpec};
pub use validate::{validate_deployment, validate_update};
pub use verify::{check_create, check_delete, check_update, signed_weight};

use crate::jcs::{JcsError, canonicalize};
use crate::keys::{KeyError, KeyPair};
use bus::api::node::{Deployment, Signature};
use bus::{ErrorCode, RemoteError};

/// Redaction marker shown in place of a password.
pub const REDACTED: &str = "<redacted>";

/// Why a blueprint or a delete request is refused.
#[derive(Debug, thiserror::Error)]
pub enum BlueprintError {
    /// A field is invalid.
    #[error("invalid blueprint: {0}")]
    Invalid(String),
    /// A workload's data is invalid.
    #[error("invalid workload {name:?}: {reason}")]
    InvalidWorkload {
        /// Workload name.
        name: String,
        /// Why.
        reason: String,
    },
    /// A key or signature is malformed.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// Cannot be canonicalized.
    #[error("blueprint cannot be canonicalized: {0}")]
    Canonical(#[from] JcsError),
    /// A signature does not verify: the blueprint was altered or the signature forged.
    #[error(
        "signature by {key} does not verify: the blueprint was altered after signing or the signature is forged"
    )]
    BadSignature {
        /// Claimed signer.
        key: String,
    },
    /// Two signatures by one key.
    #[error("key {key} signed twice")]
    DuplicateSignature {
        /// Signer.
        key: String,
    },
    /// Not enough signed weight for a signer set.
    #[error("not enough signatures from the {set} signer set: weight {have} of {need} needed")]
    NotEnoughWeight {
        /// `current`, `previous` or `new`.
        set: &'static str,
        /// Signed weight.
        have: u64,
        /// Threshold.
        need: u64,
    },
    /// The owner key did not sign the creation.
    #[error("the owner key must sign the creation of a deployment")]
    OwnerMustSign,
    /// The version is not the one expected.
    #[error(
        "version {got} refused: expected {expected} (a new deployment is version 0, each update exactly +1)"
    )]
    WrongVersion {
        /// Expected version.
        expected: u64,
        /// Submitted version.
        got: u64,
    },
    /// A deleted deployment id cannot be reused.
    #[error("deployment {id} was deleted; its id cannot be used again by this owner")]
    Tombstoned {
        /// Id.
        id: String,
    },
    /// Being deleted.
    #[error("deployment {id} is being deleted")]
    Deleting {
        /// Id.
        id: String,
    },
    /// An update changes something that cannot change.
    #[error("workload {name:?} cannot be updated: {reason}")]
    ImmutableChange {
        /// Workload name.
        name: String,
        /// Why.
        reason: String,
    },
}

impl BlueprintError {
    /// The error to send to the caller.
    pub fn to_remote(&self) -> RemoteError {
        let code = match self {
            BlueprintError::Invalid(_)
            | BlueprintError::InvalidWorkload { .. }
            | BlueprintError::Key(_)
            | BlueprintError::Canonical(_) => ErrorCode::InvalidArgument,
            BlueprintError::BadSignature { .. }
            | BlueprintError::DuplicateSignature { .. }
            | BlueprintError::NotEnoughWeight { .. }
            | BlueprintError::OwnerMustSign => ErrorCode::Refused,
            BlueprintError::WrongVersion { .. }
            | BlueprintError::Tombstoned { .. }
            | BlueprintError::Deleting { .. }
            | BlueprintError::ImmutableChange { .. } => ErrorCode::Conflict,
        };
        RemoteError::new(code, self.to_string())
    }
}

/// The hash a deployment's signatures cover.
pub fn deployment_hash(d: &Deployment) -> Result<[u8; 32], BlueprintError> {
    let mut v = serde_json::to_value(d).map_err(|e| BlueprintError::Invalid(e.to_string()))?;
    if let Some(obj) = v.as_object_mut() {
        obj.remove("signatures");
        if let Some(wls) = obj.get_mut("workloads").and_then(|w| w.as_array_mut()) {
            for wl in wls {
                if let Some(w) = wl.as_object_mut() {
                    w.remove("result");
                }
            }
        }
    }
    Ok(*blake3::hash(canonicalize(&v)?.as_bytes()).as_bytes())
}

/// The hash a delete request's signatures cover.
pub fn delete_hash(owner: &str, id: &str, version: u64) -> Result<[u8; 32], BlueprintError> {
    let v = serde_json::json!({"op": "delete", "owner": owner, "id": id, "version": version});
    Ok(*blake3::hash(canonicalize(&v)?.as_bytes()).as_bytes())
}

/// Adds (or replaces) `key`'s signature over `hash` in `signatures`.
pub fn add_signature(signatures: &mut Vec<Signature>, hash: &[u8; 32], key: &KeyPair) {
    let public = key.public_hex();
    signatures.retain(|s| s.key.to_ascii_lowercase() != public);
    signatures.push(Signature {
        key: public,
        signature: key.sign_hex(hash),
    });
}

/// Signs a deployment in place.
pub fn sign(d: &mut Deployment, key: &KeyPair) -> Result<[u8; 32], BlueprintError> {
    let hash = deployment_hash(d)?;
    add_signature(&mut d.signatures, &hash, key);
    Ok(hash)
}

/// A copy fit to show: passwords replaced by [`REDACTED`].
pub fn redacted(d: &Deployment) -> Deployment {
    let mut d = d.clone();
    for wl in &mut d.workloads {
        if let Some(p) = wl.data.get_mut("password").filter(|p| !p.is_null()) {
            *p = serde_json::Value::String(REDACTED.into());
        }
    }
    d
}

#[cfg(test)]
mod test;
