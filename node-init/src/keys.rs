//! ed25519 keys: hex encoding and the key file format shared by `zos key new` and the node key.
//!
//! Key file (mode 0600): `{"type":"ed25519","public":"<64 hex>","secret":"<64 hex seed>"}`.

use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use nodeutil::fs::{WriteError, write_durable_creating};
use nodeutil::hex;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Problems with keys and key files.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Not 64 hex characters of a valid ed25519 point.
    #[error("invalid public key {0:?}: expected 64 hex characters of an ed25519 key")]
    BadPublicKey(String),
    /// Not 128 hex characters.
    #[error("invalid signature encoding: expected 128 hex characters")]
    BadSignature,
    /// Reading the key file failed.
    #[error("cannot read key file {}", path.display())]
    Read {
        /// File.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The key file is not a valid key file.
    #[error("{} is not a valid key file: {reason}", path.display())]
    Invalid {
        /// File.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Refusing to overwrite.
    #[error("{} exists already; not overwriting a key", .0.display())]
    Exists(PathBuf),
    /// Writing the key file failed.
    #[error(transparent)]
    Write(#[from] WriteError),
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    #[serde(rename = "type")]
    kind: String,
    public: String,
    secret: String,
}

/// An ed25519 key pair.
pub struct KeyPair {
    key: SigningKey,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyPair({})", self.public_hex())
    }
}

impl KeyPair {
    /// A fresh random key from the OS.
    pub fn generate() -> Self {
        KeyPair::from_seed(nodeutil::random::bytes())
    }

    /// From a 32-byte seed.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        KeyPair {
            key: SigningKey::from_bytes(&seed),
        }
    }

    /// Public key, hex.
    pub fn public_hex(&self) -> String {
        hex::encode(self.key.verifying_key().as_bytes())
    }

    /// Signs `msg`; returns the signature in hex.
    pub fn sign_hex(&self, msg: &[u8]) -> String {
        hex::encode(self.key.sign(msg).to_bytes())
    }

    /// Reads a key file.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let text = std::fs::read(path).map_err(|source| KeyError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let invalid = |reason: String| KeyError::Invalid {
            path: path.to_path_buf(),
            reason,
        };
        let file: KeyFile = serde_json::from_slice(&text).map_err(|e| invalid(e.to_string()))?;
        if file.kind != "ed25519" {
            return Err(invalid(format!("unknown key type {:?}", file.kind)));
        }
        let mut seed = [0u8; 32];
        hex::decode_to_slice(&file.secret, &mut seed)
            .map_err(|_| invalid("secret is not 64 hex characters".into()))?;
        let pair = KeyPair::from_seed(seed);
        if pair.public_hex() != file.public.to_ascii_lowercase() {
            return Err(invalid("public key does not match the secret".into()));
        }
        Ok(pair)
    }

    /// Writes a key file atomically and durably (mode 0600), creating its folder when missing
    /// (a pool's `.zos/`); a bare file name lives in the working folder.
    pub fn save(&self, path: &Path) -> Result<(), KeyError> {
        let file = KeyFile {
            kind: "ed25519".into(),
            public: self.public_hex(),
            secret: hex::encode(self.key.to_bytes()),
        };
        let mut text = serde_json::to_vec_pretty(&file).map_err(|e| KeyError::Invalid {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        text.push(b'\n');
        write_durable_creating(path, &text, 0o600)?;
        Ok(())
    }

    /// Writes a new key file; refuses to overwrite an existing one.
    pub fn create(path: &Path) -> Result<Self, KeyError> {
        if path.exists() {
            return Err(KeyError::Exists(path.to_path_buf()));
        }
        let pair = KeyPair::generate();
        pair.save(path)?;
        Ok(pair)
    }
}

/// Parses a hex public key.
pub fn parse_public(hex_key: &str) -> Result<VerifyingKey, KeyError> {
    let mut b = [0u8; 32];
    hex::decode_to_slice(hex_key, &mut b).map_err(|_| KeyError::BadPublicKey(hex_key.into()))?;
    VerifyingKey::from_bytes(&b).map_err(|_| KeyError::BadPublicKey(hex_key.into()))
}

/// Verifies a hex signature of `msg` by `key`; false when it does not verify.
pub fn verify(key: &VerifyingKey, msg: &[u8], sig_hex: &str) -> Result<bool, KeyError> {
    let mut b = [0u8; 64];
    hex::decode_to_slice(sig_hex, &mut b).map_err(|_| KeyError::BadSignature)?;
    let sig = ed25519_dalek::Signature::from_bytes(&b);
    Ok(key.verify_strict(msg, &sig).is_ok() && key.verify(msg, &sig).is_ok())
}

#[cfg(test)]
mod test {
    #![expect(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn round_trip_and_verify() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("k.json");
        let k = KeyPair::create(&p).unwrap();
        assert!(matches!(KeyPair::create(&p), Err(KeyError::Exists(_))));
        let k2 = KeyPair::load(&p).unwrap();
        assert_eq!(k.public_hex(), k2.public_hex());
        let sig = k.sign_hex(b"msg");
        let pk = parse_public(&k.public_hex()).unwrap();
        assert!(verify(&pk, b"msg", &sig).unwrap());
        assert!(!verify(&pk, b"other", &sig).unwrap());
        assert!(parse_public("zz").is_err());
    }
}
