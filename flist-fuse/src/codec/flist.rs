//! Our blocks. Plain block `P` -> `Z = zstd(P)`; without encryption the stored bytes are `Z`;
//! with convergent encryption `key = blake3::derive_key(KEY_CONTEXT, P)` and the stored bytes
//! are `ChaCha20-Poly1305(key, nonce 0, Z)` (a key is never reused for different plaintexts,
//! so a fixed nonce is safe). The id is always `blake3(stored bytes)`: identical blocks dedup,
//! a store can check what it holds, and it never sees plaintext when encryption is on.

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

use super::BlockCodec;
use crate::error::StoreError;
use crate::format::{BlockRef, Hash, Params};

/// Context string of the convergent key derivation.
pub const KEY_CONTEXT: &str = "flist v1 convergent block key";

/// A block ready for the store.
#[derive(Debug, Clone)]
pub struct Encoded {
    /// blake3 of `stored`.
    pub id: Hash,
    /// Convergent key (zero without encryption).
    pub key: Hash,
    /// What the store keeps.
    pub stored: Vec<u8>,
    /// Bytes of the plain block.
    pub plain_len: u32,
}

/// Encode one plain block.
pub fn encode(plain: &[u8], p: &Params) -> Result<Encoded, String> {
    let z = zstd::bulk::compress(plain, p.level).map_err(|e| format!("zstd: {e}"))?;
    let (stored, key) = if p.encrypted {
        let key = blake3::derive_key(KEY_CONTEXT, plain);
        let c = ChaCha20Poly1305::new(Key::from_slice(&key));
        let s = c
            .encrypt(Nonce::from_slice(&[0u8; 12]), z.as_slice())
            .map_err(|_| "encryption failed".to_string())?;
        (s, key)
    } else {
        (z, [0u8; 32])
    };
    Ok(Encoded {
        id: *blake3::hash(&stored).as_bytes(),
        key,
        stored,
        plain_len: u32::try_from(plain.len()).map_err(|_| "block too large")?,
    })
}

/// Verify that stored bytes hash (blake3) to the id.
pub fn check(id: &Hash, stored: &[u8]) -> Result<(), StoreError> {
    if blake3::hash(stored).as_bytes() == id {
        Ok(())
    } else {
        Err(StoreError::Mismatch)
    }
}

/// The codec of our format's blocks.
#[derive(Debug, Clone, Copy)]
pub struct FlistCodec {
    encrypted: bool,
    level: i32,
}

impl FlistCodec {
    /// The codec of blocks written with `p`.
    pub fn new(p: &Params) -> Self {
        FlistCodec {
            encrypted: p.encrypted,
            level: p.level,
        }
    }
}

impl BlockCodec for FlistCodec {
    fn check(&self, id: &Hash, stored: &[u8]) -> Result<(), StoreError> {
        check(id, stored)
    }

    fn decode(&self, stored: &[u8], b: &BlockRef) -> Result<Vec<u8>, StoreError> {
        check(&b.id, stored)?;
        let z;
        let z_ref: &[u8] = if self.encrypted {
            let c = ChaCha20Poly1305::new(Key::from_slice(&b.key));
            z = c
                .decrypt(Nonce::from_slice(&[0u8; 12]), stored)
                .map_err(|_| StoreError::Decode("decryption failed (wrong key)".into()))?;
            &z
        } else {
            stored
        };
        let plain = zstd::bulk::decompress(z_ref, b.plain_len as usize)
            .map_err(|e| StoreError::Decode(format!("zstd: {e}")))?;
        if plain.len() != b.plain_len as usize {
            return Err(StoreError::Decode(format!(
                "block is {} bytes, expected {}",
                plain.len(),
                b.plain_len
            )));
        }
        if self.encrypted && blake3::derive_key(KEY_CONTEXT, &plain) != b.key {
            return Err(StoreError::Decode(
                "plaintext does not match its key".into(),
            ));
        }
        Ok(plain)
    }

    fn describe(&self) -> String {
        format!(
            "hash blake3; compression zstd level {}; encryption {}",
            self.level,
            if self.encrypted {
                "convergent chacha20poly1305"
            } else {
                "none"
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_convergence() {
        let data = b"hello hello hello hello".repeat(100);
        for enc in [false, true] {
            let p = Params {
                encrypted: enc,
                ..Params::default()
            };
            let codec = FlistCodec::new(&p);
            let (Ok(a), Ok(b)) = (encode(&data, &p), encode(&data, &p)) else {
                panic!("encode failed");
            };
            assert_eq!(a.id, b.id);
            if enc {
                assert!(!a.stored.windows(5).any(|w| w == b"hello"));
            }
            let r = BlockRef::whole(a.id, a.key, 0, a.plain_len, a.stored.len() as u32);
            assert_eq!(codec.decode(&a.stored, &r).ok(), Some(data.clone()));
            let mut t = a.stored.clone();
            if let Some(x) = t.get_mut(3) {
                *x ^= 1;
            }
            assert!(codec.decode(&t, &r).is_err());
        }
    }
}
