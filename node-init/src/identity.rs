//! Node identity: an ed25519 key made on first boot, kept in the node folder and copied to every
//! pool, so that losing a disk (or the node folder) does not lose the node's identity.
//!
//! Load order: the primary file, then each pool copy in the order given; the first valid one
//! wins and is written back to every place that lacks it or disagrees.

use crate::keys::{KeyError, KeyPair};
use nodeutil::hex;
use std::path::{Path, PathBuf};

/// Identity file name inside a pool: `<mountpoint>/IDENTITY_IN_POOL`.
pub const IDENTITY_IN_POOL: &str = ".zos/node.key";

/// Failure to establish the identity.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Writing the identity (primary) failed.
    #[error("cannot store the node identity")]
    Store(#[source] KeyError),
}

/// The node's identity.
#[derive(Debug)]
pub struct NodeIdentity {
    key: KeyPair,
}

/// Node id of a public key: hex of the first 16 bytes of blake3(public key bytes).
pub fn node_id_of(public_hex: &str) -> String {
    let bytes = hex::decode(public_hex).unwrap_or_default();
    let h = blake3::hash(&bytes);
    hex::encode(h.as_bytes().get(..16).unwrap_or_default())
}

impl NodeIdentity {
    /// Public key (hex).
    pub fn public_hex(&self) -> String {
        self.key.public_hex()
    }

    /// Node id.
    pub fn node_id(&self) -> String {
        node_id_of(&self.public_hex())
    }

    /// Loads the identity from `primary` or any of `copies`, or makes a new one; then makes sure
    /// `primary` and every copy hold it. A copy that cannot be written is logged, not fatal.
    pub fn load_or_create(primary: &Path, copies: &[PathBuf]) -> Result<Self, IdentityError> {
        let mut found = None;
        for path in std::iter::once(primary).chain(copies.iter().map(|p| p.as_path())) {
            if !path.exists() {
                continue;
            }
            match KeyPair::load(path) {
                Ok(k) => {
                    found = Some(k);
                    break;
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "ignoring unreadable identity copy")
                }
            }
        }
        let key = match found {
            Some(k) => k,
            None => {
                tracing::info!("no identity found: creating a new node key");
                KeyPair::generate()
            }
        };
        let me = NodeIdentity { key };
        me.spread(primary, copies)?;
        Ok(me)
    }

    /// Writes the key to `primary` (fatal on failure) and to each copy (best effort).
    pub fn spread(&self, primary: &Path, copies: &[PathBuf]) -> Result<(), IdentityError> {
        let public = self.public_hex();
        let holds = |p: &Path| {
            KeyPair::load(p)
                .map(|k| k.public_hex() == public)
                .unwrap_or(false)
        };
        if !holds(primary) {
            self.key.save(primary).map_err(IdentityError::Store)?;
        }
        for copy in copies {
            if !holds(copy)
                && let Err(e) = self.key.save(copy)
            {
                tracing::warn!(path = %copy.display(), error = %e, "cannot copy the identity to a pool");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod test {
    #![expect(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn survives_losing_any_copy() {
        let d = tempfile::tempdir().unwrap();
        let primary = d.path().join("node/identity.key");
        let copies = vec![
            d.path().join("p1").join(IDENTITY_IN_POOL),
            d.path().join("p2").join(IDENTITY_IN_POOL),
        ];
        let a = NodeIdentity::load_or_create(&primary, &copies).unwrap();
        assert!(copies.iter().all(|c| c.exists()));
        assert_eq!(a.node_id().len(), 32);
        // lose the primary and one pool
        std::fs::remove_file(&primary).unwrap();
        std::fs::remove_file(&copies[0]).unwrap();
        let b = NodeIdentity::load_or_create(&primary, &copies).unwrap();
        assert_eq!(a.node_id(), b.node_id());
        assert!(primary.exists() && copies[0].exists());
        // a corrupt primary is skipped in favour of a copy
        std::fs::write(&primary, b"garbage").unwrap();
        let c = NodeIdentity::load_or_create(&primary, &copies).unwrap();
        assert_eq!(a.public_hex(), c.public_hex());
    }
}
