//! One stripe's plain bytes to sealed bytes and back: zstd, then AES-256-GCM with the object's
//! own key.
//!
//! The object key is derived from the owner's store key and the object id (blake3 in key
//! derivation mode), so every object has its own key and the farm keeps no key material: a
//! farm operator who reads etcd and every shard learns sizes and names, never contents. The
//! nonce is the stripe index (each key seals each stripe once: an object id is never reused);
//! the additional data binds the object id, the stripe index and the plain length, so a stripe
//! moved, swapped or cut short fails the tag.
//!
//! Sealed layout: ciphertext of (1 flag byte: 0 = stored, 1 = zstd; then the body), then the
//! 16-byte tag. A stripe that zstd does not shrink is stored as is.

use crate::ids::ObjectId;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use std::fmt;

/// Bytes a sealed stripe adds to its body: the flag byte and the tag.
pub const OVERHEAD: usize = 1 + 16;

const FLAG_STORED: u8 = 0;
const FLAG_ZSTD: u8 = 1;

/// The owner's secret: every object key derives from it. Never printed.
#[derive(Clone)]
pub struct StoreKey([u8; 32]);

impl fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoreKey(<redacted>)")
    }
}

/// A store key that is not 64 hex digits.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("store key is not 64 hex digits")]
pub struct BadStoreKey;

impl StoreKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        StoreKey(nodeutil::random::bytes())
    }

    /// Reads the key from its hex form (surrounding whitespace ignored).
    pub fn from_hex(s: &str) -> Result<Self, BadStoreKey> {
        let mut k = [0u8; 32];
        hex::decode_to_slice(s.trim(), &mut k).map_err(|_| BadStoreKey)?;
        Ok(StoreKey(k))
    }

    /// The hex form, for writing the key to its file.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

/// Why a sealed stripe was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OpenError {
    /// The tag does not hold: wrong key, or bytes changed, moved or cut.
    #[error("stripe {0} failed authentication")]
    Tag(u64),
    /// Authentic, but the body does not decode to the expected length (a bug, not bitrot).
    #[error("stripe {0} does not decode to its recorded length")]
    Body(u64),
}

/// Compression failed (zstd out of memory, or a level it refuses).
#[derive(Debug, thiserror::Error)]
#[error("zstd: {0}")]
pub struct SealError(#[from] std::io::Error);

/// Bytes of each of the three samples [`worth_compressing`] tries.
const SAMPLE: usize = 16 * 1024;

/// Whether zstd is worth running on the whole of `plain`: small stripes always are; a large one
/// when any of three samples (start, middle, end) shrinks by 3 % or more. Costs about 1 % of
/// compressing the stripe; a stripe compressible only between the samples is stored as is.
fn worth_compressing(plain: &[u8], level: i32) -> bool {
    if plain.len() < 16 * SAMPLE {
        return true;
    }
    let mut out = vec![0u8; SAMPLE];
    let mid = plain.len() / 2;
    [0, mid, plain.len() - SAMPLE].iter().any(|&at| {
        plain
            .get(at..at + SAMPLE)
            .and_then(|s| zstd::bulk::compress_to_buffer(s, &mut out, level).ok())
            .is_some_and(|n| n < SAMPLE - SAMPLE / 32)
    })
}

/// The key of one object version.
pub struct ObjectKey {
    cipher: Aes256Gcm,
    id: ObjectId,
}

impl ObjectKey {
    /// Derives the key of object `id` from the owner's store key.
    pub fn derive(store: &StoreKey, id: ObjectId) -> Self {
        let mut h = blake3::Hasher::new_derive_key("zos farm object key v1");
        h.update(&store.0);
        h.update(&id.0);
        let key = h.finalize();
        ObjectKey {
            cipher: Aes256Gcm::new(key.as_bytes().into()),
            id,
        }
    }

    fn aad(&self, stripe: u64, plain_len: usize) -> [u8; 28] {
        let mut aad = [0u8; 28];
        let (id, rest) = aad.split_at_mut(16);
        id.copy_from_slice(&self.id.0);
        let (s, len) = rest.split_at_mut(8);
        s.copy_from_slice(&stripe.to_le_bytes());
        len.copy_from_slice(&(plain_len as u32).to_le_bytes());
        aad
    }

    /// Compresses and encrypts stripe `stripe`. `reserve` extra bytes of capacity are left at
    /// the end of the returned buffer, so the erasure coder can pad it without a copy.
    pub fn seal(
        &self,
        stripe: u64,
        plain: &[u8],
        level: i32,
        reserve: usize,
    ) -> Result<Vec<u8>, SealError> {
        let bound = zstd::zstd_safe::compress_bound(plain.len());
        let mut buf = Vec::with_capacity(1 + bound.max(plain.len()) + 16 + reserve);
        buf.push(FLAG_ZSTD);
        // Into a buffer no larger than the plain stripe: a stripe zstd cannot shrink fails
        // here and is stored instead; a large stripe whose samples do not shrink is stored
        // without compressing it all (encrypted or compressed input: the common large object).
        buf.resize(1 + plain.len(), 0);
        let body = buf.get_mut(1..).unwrap_or_default();
        let compressed = if worth_compressing(plain, level) {
            zstd::bulk::compress_to_buffer(plain, body, level).ok()
        } else {
            None
        };
        match compressed {
            Some(n) if n < plain.len() => buf.truncate(1 + n),
            _ => {
                buf.clear();
                buf.push(FLAG_STORED);
                buf.extend_from_slice(plain);
            }
        }
        let nonce = nonce(stripe);
        self.cipher
            .encrypt_in_place(&nonce, &self.aad(stripe, plain.len()), &mut buf)
            .map_err(|_| SealError(std::io::Error::other("stripe too large to seal")))?;
        Ok(buf)
    }

    /// Decrypts and decompresses stripe `stripe`, which must hold exactly `plain_len` bytes.
    pub fn open(
        &self,
        stripe: u64,
        mut sealed: Vec<u8>,
        plain_len: usize,
    ) -> Result<Vec<u8>, OpenError> {
        self.cipher
            .decrypt_in_place(&nonce(stripe), &self.aad(stripe, plain_len), &mut sealed)
            .map_err(|_| OpenError::Tag(stripe))?;
        let (flag, body) = sealed.split_first().ok_or(OpenError::Body(stripe))?;
        let plain = match *flag {
            FLAG_STORED => {
                sealed.remove(0);
                sealed
            }
            FLAG_ZSTD => {
                zstd::bulk::decompress(body, plain_len).map_err(|_| OpenError::Body(stripe))?
            }
            _ => return Err(OpenError::Body(stripe)),
        };
        if plain.len() != plain_len {
            return Err(OpenError::Body(stripe));
        }
        Ok(plain)
    }
}

fn nonce(stripe: u64) -> Nonce<aes_gcm::aead::consts::U12> {
    let mut n = [0u8; 12];
    n[..8].copy_from_slice(&stripe.to_le_bytes());
    n.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ObjectKey {
        ObjectKey::derive(&StoreKey::generate(), ObjectId::random())
    }

    #[test]
    fn round_trips_compressible_and_random() {
        let k = key();
        let text = b"hello hello hello hello hello hello".repeat(100);
        let sealed = k.seal(3, &text, 1, 0).expect("seal");
        assert!(sealed.len() < text.len());
        assert_eq!(k.open(3, sealed, text.len()).expect("open"), text);
        let mut random = vec![0u8; 10_000];
        nodeutil::random::fill(&mut random);
        let sealed = k.seal(0, &random, 1, 0).expect("seal");
        assert_eq!(sealed.len(), random.len() + OVERHEAD);
        assert_eq!(k.open(0, sealed, random.len()).expect("open"), random);
        let sealed = k.seal(0, &[], 1, 0).expect("seal");
        assert_eq!(k.open(0, sealed, 0).expect("open"), Vec::<u8>::new());
    }

    #[test]
    fn large_stripes_are_compressed_when_a_sample_shrinks() {
        let k = key();
        let mut random = vec![0u8; 4 << 20];
        nodeutil::random::fill(&mut random);
        assert!(!worth_compressing(&random, 1));
        let sealed = k.seal(1, &random, 1, 0).expect("seal");
        assert_eq!(sealed.len(), random.len() + OVERHEAD, "random: stored");
        // Compressible in the middle only: the middle sample finds it.
        let mid = random.len() / 2;
        random
            .get_mut(mid - (256 << 10)..mid + (256 << 10))
            .expect("middle")
            .fill(7);
        assert!(worth_compressing(&random, 1));
        let sealed = k.seal(2, &random, 1, 0).expect("seal");
        assert!(
            sealed.len() < random.len() - (400 << 10),
            "{}",
            sealed.len()
        );
        assert_eq!(k.open(2, sealed, random.len()).expect("open"), random);
    }

    #[test]
    fn refuses_moved_changed_or_foreign_stripes() {
        let store = StoreKey::generate();
        let id = ObjectId::random();
        let k = ObjectKey::derive(&store, id);
        let plain = b"some stripe".to_vec();
        let sealed = k.seal(7, &plain, 1, 0).expect("seal");
        assert_eq!(
            k.open(8, sealed.clone(), plain.len()),
            Err(OpenError::Tag(8))
        );
        assert_eq!(
            k.open(7, sealed.clone(), plain.len() - 1),
            Err(OpenError::Tag(7))
        );
        let mut flipped = sealed.clone();
        flipped[2] ^= 1;
        assert_eq!(k.open(7, flipped, plain.len()), Err(OpenError::Tag(7)));
        let other = ObjectKey::derive(&store, ObjectId::random());
        assert_eq!(
            other.open(7, sealed.clone(), plain.len()),
            Err(OpenError::Tag(7))
        );
        let same = ObjectKey::derive(&store, id);
        assert_eq!(same.open(7, sealed, plain.len()).expect("open"), plain);
    }

    #[test]
    fn store_key_hex_and_redaction() {
        let k = StoreKey::generate();
        let back = StoreKey::from_hex(&format!(" {}\n", k.to_hex())).expect("hex");
        assert_eq!(back.0, k.0);
        assert_eq!(StoreKey::from_hex("00").err(), Some(BadStoreKey));
        assert!(!format!("{k:?}").contains(&k.to_hex()));
    }
}
