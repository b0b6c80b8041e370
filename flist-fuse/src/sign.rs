//! ed25519 signatures over an flist's identity, kept in the trailer.

use std::path::Path;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

use crate::error::{Error, IoContext, Result};
use crate::format::{Flist, SignatureRec, hex};

/// Create a new secret key (32 random bytes from the OS).
pub fn generate() -> Result<SigningKey> {
    Ok(SigningKey::from_bytes(&nodeutil::random::bytes()))
}

/// Read a secret key file (64 hex digits).
pub fn read_key(p: &Path) -> Result<SigningKey> {
    let s = std::fs::read_to_string(p).ctx(p)?;
    let b =
        nodeutil::hex::decode(s.trim()).map_err(|_| Error::invalid(p, "key file is not hex"))?;
    let seed: [u8; 32] = b
        .try_into()
        .map_err(|_| Error::invalid(p, "key must be 32 bytes (64 hex digits)"))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Parse a public key given as hex.
pub fn parse_public(s: &str, ctx: &Path) -> Result<VerifyingKey> {
    let b: [u8; 32] = nodeutil::hex::decode(s.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| Error::invalid(ctx, "public key must be 64 hex digits"))?;
    VerifyingKey::from_bytes(&b).map_err(|e| Error::invalid(ctx, format!("bad public key: {e}")))
}

/// Add (or replace) this key's signature in the trailer.
pub fn sign(fl: &mut Flist, key: &SigningKey) {
    let sig = key.sign(&fl.signed_message());
    let pk = key.verifying_key().to_bytes();
    fl.trailer.signatures.retain(|s| s.public_key != pk);
    fl.trailer.signatures.push(SignatureRec {
        public_key: pk,
        signature: sig.to_bytes(),
    });
}

/// Check every signature; with `required`, one must be by that key. Returns the signers.
pub fn verify(fl: &Flist, file: &Path, required: Option<&VerifyingKey>) -> Result<Vec<String>> {
    let msg = fl.signed_message();
    let mut signers = Vec::new();
    for s in &fl.trailer.signatures {
        let vk = VerifyingKey::from_bytes(&s.public_key).map_err(|e| Error::Signature {
            path: file.to_path_buf(),
            msg: format!("bad public key {}: {e}", hex(&s.public_key)),
        })?;
        vk.verify(&msg, &Signature::from_bytes(&s.signature))
            .map_err(|_| Error::Signature {
                path: file.to_path_buf(),
                msg: format!("signature by {} does not verify", hex(&s.public_key)),
            })?;
        signers.push(hex(&s.public_key));
    }
    if let Some(k) = required
        && !fl
            .trailer
            .signatures
            .iter()
            .any(|s| s.public_key == k.to_bytes())
    {
        return Err(Error::Signature {
            path: file.to_path_buf(),
            msg: format!("not signed by {}", hex(&k.to_bytes())),
        });
    }
    Ok(signers)
}
