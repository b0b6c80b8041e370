//! Signature rules (pure): who must sign a creation, an update and a delete.

use super::{BlueprintError, delete_hash, deployment_hash};
use crate::keys::{parse_public, verify};
use bus::api::node::{DeleteRequest, Deployment, Signature, Signers};
use std::collections::HashSet;

/// Verifies every signature over `hash` (any bad one refuses the whole document, so a forged or
/// stale signature is never silently ignored) and returns the keys that signed.
fn valid_signers(hash: &[u8; 32], sigs: &[Signature]) -> Result<HashSet<String>, BlueprintError> {
    let mut keys = HashSet::new();
    for s in sigs {
        let key = s.key.to_ascii_lowercase();
        let pk = parse_public(&key)?;
        if !verify(&pk, hash, &s.signature)? {
            return Err(BlueprintError::BadSignature { key });
        }
        if !keys.insert(key.clone()) {
            return Err(BlueprintError::DuplicateSignature { key });
        }
    }
    Ok(keys)
}

/// Sum of the weights of `signers` keys present in `signed`.
fn weight(signers: &Signers, signed: &HashSet<String>) -> u64 {
    signers
        .keys
        .iter()
        .filter(|k| signed.contains(&k.key))
        .map(|k| u64::from(k.weight))
        .sum()
}

fn require(
    set: &'static str,
    signers: &Signers,
    signed: &HashSet<String>,
) -> Result<(), BlueprintError> {
    let have = weight(signers, signed);
    let need = u64::from(signers.threshold);
    if have < need {
        return Err(BlueprintError::NotEnoughWeight { set, have, need });
    }
    Ok(())
}

/// Weight of valid signatures over `hash` from `signers` (errors on any bad signature).
pub fn signed_weight(
    hash: &[u8; 32],
    sigs: &[Signature],
    signers: &Signers,
) -> Result<u64, BlueprintError> {
    Ok(weight(signers, &valid_signers(hash, sigs)?))
}

/// A creation: version 0, signed by its signer set, and by the owner key.
pub fn check_create(new: &Deployment) -> Result<[u8; 32], BlueprintError> {
    if new.version != 0 {
        return Err(BlueprintError::WrongVersion {
            expected: 0,
            got: new.version,
        });
    }
    let hash = deployment_hash(new)?;
    let signed = valid_signers(&hash, &new.signatures)?;
    require("new", &new.signers, &signed)?;
    if !signed.contains(&new.owner) {
        return Err(BlueprintError::OwnerMustSign);
    }
    Ok(hash)
}

/// An update: exactly one version up, signed by both the previous and the new signer sets.
pub fn check_update(old: &Deployment, new: &Deployment) -> Result<[u8; 32], BlueprintError> {
    let expected = old.version.saturating_add(1);
    if new.version != expected {
        return Err(BlueprintError::WrongVersion {
            expected,
            got: new.version,
        });
    }
    let hash = deployment_hash(new)?;
    let signed = valid_signers(&hash, &new.signatures)?;
    require("previous", &old.signers, &signed)?;
    require("new", &new.signers, &signed)?;
    Ok(hash)
}

/// A delete: names the current version and is signed by the current signer set.
pub fn check_delete(current: &Deployment, req: &DeleteRequest) -> Result<(), BlueprintError> {
    if req.version != current.version {
        return Err(BlueprintError::WrongVersion {
            expected: current.version,
            got: req.version,
        });
    }
    let hash = delete_hash(&req.owner, &req.id, req.version)?;
    let signed = valid_signers(&hash, &req.signatures)?;
    require("current", &current.signers, &signed)
}
