//! rfs blocks: `key = BLAKE2b-256(plain)`, stored bytes = AES-256-GCM(key, nonce =
//! key[0..12], snappy_raw(plain)), `id = BLAKE2b-256(stored)`. Decoding checks both the id
//! and the key, so a store cannot serve other bytes than the `.fl` names.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use blake2::Blake2b;
use blake2::digest::Digest;
use blake2::digest::consts::U32;

use super::BlockCodec;
use crate::error::StoreError;
use crate::format::{BlockRef, Hash};

/// BLAKE2b with a 256-bit output.
pub fn blake2b256(data: &[u8]) -> Hash {
    let mut h = Blake2b::<U32>::new();
    h.update(data);
    h.finalize().into()
}

/// Check stored bytes against an rfs block id.
pub fn check(id: &Hash, stored: &[u8]) -> Result<(), StoreError> {
    if &blake2b256(stored) == id {
        Ok(())
    } else {
        Err(StoreError::Mismatch)
    }
}

/// The AES-256-GCM nonce of a key: its first 12 bytes.
fn nonce(key: &Hash) -> &Nonce<aes_gcm::aead::consts::U12> {
    let (n, _) = key.split_at(12);
    Nonce::from_slice(n)
}

/// An rfs block as rfs writes it: `(id, key, stored bytes)`.
pub fn encode_block(plain: &[u8]) -> Result<(Hash, Hash, Vec<u8>), String> {
    let key = blake2b256(plain);
    let z = snap::raw::Encoder::new()
        .compress_vec(plain)
        .map_err(|e| format!("snappy: {e}"))?;
    let c = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&key));
    let stored = c
        .encrypt(nonce(&key), z.as_slice())
        .map_err(|_| "encryption failed".to_string())?;
    Ok((blake2b256(&stored), key, stored))
}

/// Decode the stored bytes of an rfs block: check BLAKE2b(stored) == id, decrypt with the
/// key (nonce key[0..12]), snappy-decompress, check the length and BLAKE2b(plain) == key.
pub fn decode_block(stored: &[u8], b: &BlockRef) -> Result<Vec<u8>, StoreError> {
    check(&b.id, stored)?;
    let c = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&b.key));
    let z = c
        .decrypt(nonce(&b.key), stored)
        .map_err(|_| StoreError::Decode("decryption failed (wrong key)".into()))?;
    let n =
        snap::raw::decompress_len(&z).map_err(|e| StoreError::Decode(format!("snappy: {e}")))?;
    if n != b.plain_len as usize {
        return Err(StoreError::Decode(format!(
            "block is {n} bytes, expected {}",
            b.plain_len
        )));
    }
    let plain = snap::raw::Decoder::new()
        .decompress_vec(&z)
        .map_err(|e| StoreError::Decode(format!("snappy: {e}")))?;
    if plain.len() != b.plain_len as usize {
        return Err(StoreError::Decode(format!(
            "block is {} bytes, expected {}",
            plain.len(),
            b.plain_len
        )));
    }
    if blake2b256(&plain) != b.key {
        return Err(StoreError::Decode(
            "plaintext does not match its key".into(),
        ));
    }
    Ok(plain)
}

/// The codec of rfs blocks.
#[derive(Debug, Clone, Copy)]
pub struct RfsCodec;

impl BlockCodec for RfsCodec {
    fn check(&self, id: &Hash, stored: &[u8]) -> Result<(), StoreError> {
        check(id, stored)
    }

    fn decode(&self, stored: &[u8], b: &BlockRef) -> Result<Vec<u8>, StoreError> {
        decode_block(stored, b)
    }

    fn describe(&self) -> String {
        "BLAKE2b-256 ids and keys, snappy, AES-256-GCM".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_roundtrip_checks_id_and_key() {
        let plain = b"rfs block rfs block rfs block".repeat(50);
        let Ok((id, key, stored)) = encode_block(&plain) else {
            panic!("encode failed");
        };
        let b = BlockRef::whole(id, key, 0, plain.len() as u32, stored.len() as u32);
        assert_eq!(decode_block(&stored, &b).ok(), Some(plain));
        let mut t = stored.clone();
        if let Some(x) = t.get_mut(5) {
            *x ^= 1;
        }
        assert!(matches!(decode_block(&t, &b), Err(StoreError::Mismatch)));
        let wrong_key = BlockRef { key: [7; 32], ..b };
        assert!(decode_block(&stored, &wrong_key).is_err());
        let wrong_len = BlockRef { plain_len: 3, ..b };
        assert!(decode_block(&stored, &wrong_len).is_err());
    }
}
