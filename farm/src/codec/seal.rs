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
use bytes::{Bytes, BytesMut};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use std::fmt;

/// Bytes of the authentication tag.
const TAG: usize = 16;
/// Bytes a sealed stripe adds to its body: the flag byte and the tag.
pub const OVERHEAD: usize = PREFIX + TAG;

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
    cipher: LessSafeKey,
    id: ObjectId,
}

/// Bytes a plain stripe buffer holds before the plain bytes (see [`ObjectKey::seal_buf`]).
pub const PREFIX: usize = 1;

impl ObjectKey {
    /// Derives the key of object `id` from the owner's store key.
    pub fn derive(store: &StoreKey, id: ObjectId) -> Self {
        let mut h = blake3::Hasher::new_derive_key("zos farm object key v1");
        h.update(&store.0);
        h.update(&id.0);
        Self::from_bytes(h.finalize().as_bytes(), id)
    }

    fn from_bytes(key: &[u8; 32], id: ObjectId) -> Self {
        // A 32-byte key is always a valid AES-256 key.
        let key = UnboundKey::new(&AES_256_GCM, key).unwrap_or_else(|_| unreachable!());
        ObjectKey {
            cipher: LessSafeKey::new(key),
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
        let mut buf = Vec::with_capacity(PREFIX + plain.len() + TAG + reserve);
        buf.push(FLAG_STORED);
        buf.extend_from_slice(plain);
        self.seal_buf(stripe, buf, level, reserve)
    }

    /// Seals the plain stripe that follows [`PREFIX`] spare bytes in `buf`, in place when it
    /// is stored as is (the common case for large objects: their bytes are compressed or
    /// encrypted already), so a stripe read straight into its buffer is never copied before
    /// it becomes shards. Give `buf` the capacity for the tag and `reserve` more.
    pub fn seal_buf(
        &self,
        stripe: u64,
        mut buf: Vec<u8>,
        level: i32,
        reserve: usize,
    ) -> Result<Vec<u8>, SealError> {
        let plain = buf.get(PREFIX..).unwrap_or_default();
        let plain_len = plain.len();
        // Into a buffer no larger than the plain stripe: a stripe zstd cannot shrink fails
        // here and is stored instead; a large stripe whose samples do not shrink is stored
        // without compressing it all.
        if worth_compressing(plain, level) {
            let mut out = Vec::with_capacity(PREFIX + plain_len + TAG + reserve);
            out.resize(PREFIX + plain_len, FLAG_ZSTD);
            let body = out.get_mut(PREFIX..).unwrap_or_default();
            if let Ok(n) = zstd::bulk::compress_to_buffer(plain, body, level)
                && n < plain_len
            {
                out.truncate(PREFIX + n);
                buf = out;
            }
        }
        if buf.is_empty() {
            buf.push(FLAG_STORED);
        } else if buf.len() == PREFIX + plain_len {
            buf[0] = FLAG_STORED;
        }
        let tag = self
            .cipher
            .seal_in_place_separate_tag(
                nonce(stripe),
                Aad::from(self.aad(stripe, plain_len)),
                &mut buf,
            )
            .map_err(|_| SealError(std::io::Error::other("stripe too large to seal")))?;
        buf.extend_from_slice(tag.as_ref());
        Ok(buf)
    }

    /// Decrypts and decompresses stripe `stripe`, which must hold exactly `plain_len` bytes.
    /// A stored stripe is returned in place (the buffer shared, past the flag byte).
    pub fn open(
        &self,
        stripe: u64,
        mut sealed: BytesMut,
        plain_len: usize,
    ) -> Result<Bytes, OpenError> {
        let body_len = self
            .cipher
            .open_in_place(
                nonce(stripe),
                Aad::from(self.aad(stripe, plain_len)),
                &mut sealed,
            )
            .map_err(|_| OpenError::Tag(stripe))?
            .len();
        sealed.truncate(body_len);
        let (flag, body) = sealed.split_first().ok_or(OpenError::Body(stripe))?;
        let plain = match *flag {
            FLAG_STORED => sealed.freeze().slice(PREFIX..),
            FLAG_ZSTD => zstd::bulk::decompress(body, plain_len)
                .map_err(|_| OpenError::Body(stripe))?
                .into(),
            _ => return Err(OpenError::Body(stripe)),
        };
        if plain.len() != plain_len {
            return Err(OpenError::Body(stripe));
        }
        Ok(plain)
    }
}

fn nonce(stripe: u64) -> Nonce {
    let mut n = [0u8; NONCE_LEN];
    n[..8].copy_from_slice(&stripe.to_le_bytes());
    // Each key seals each stripe index once (see the module's doc).
    Nonce::assume_unique_for_key(n)
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
        assert_eq!(
            k.open(3, sealed.as_slice().into(), text.len())
                .expect("open"),
            text
        );
        let mut random = vec![0u8; 10_000];
        nodeutil::random::fill(&mut random);
        let sealed = k.seal(0, &random, 1, 0).expect("seal");
        assert_eq!(sealed.len(), random.len() + OVERHEAD);
        assert_eq!(
            k.open(0, sealed.as_slice().into(), random.len())
                .expect("open"),
            random
        );
        let sealed = k.seal(0, &[], 1, 0).expect("seal");
        assert_eq!(
            k.open(0, sealed.as_slice().into(), 0).expect("open"),
            Vec::<u8>::new()
        );
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
        assert_eq!(
            k.open(2, sealed.as_slice().into(), random.len())
                .expect("open"),
            random
        );
    }

    #[test]
    fn refuses_moved_changed_or_foreign_stripes() {
        let store = StoreKey::generate();
        let id = ObjectId::random();
        let k = ObjectKey::derive(&store, id);
        let plain = b"some stripe".to_vec();
        let sealed = k.seal(7, &plain, 1, 0).expect("seal");
        assert_eq!(
            k.open(8, sealed.as_slice().into(), plain.len()),
            Err(OpenError::Tag(8))
        );
        assert_eq!(
            k.open(7, sealed.as_slice().into(), plain.len() - 1),
            Err(OpenError::Tag(7))
        );
        let mut flipped = sealed.clone();
        flipped[2] ^= 1;
        assert_eq!(
            k.open(7, flipped.as_slice().into(), plain.len()),
            Err(OpenError::Tag(7))
        );
        let other = ObjectKey::derive(&store, ObjectId::random());
        assert_eq!(
            other.open(7, sealed.as_slice().into(), plain.len()),
            Err(OpenError::Tag(7))
        );
        let same = ObjectKey::derive(&store, id);
        assert_eq!(
            same.open(7, sealed.as_slice().into(), plain.len())
                .expect("open"),
            plain
        );
    }

    #[test]
    fn the_sealed_format_is_standard_aes_256_gcm() {
        // Shards written with the RustCrypto `aes-gcm` crate (before ring) must stay readable:
        // the expected bytes come from another implementation (Python's `cryptography`, AESGCM
        // with nonce = stripe LE ++ 4 zero bytes and aad = id ++ stripe LE ++ plain length LE).
        let id = ObjectId(std::array::from_fn(|i| 100 + i as u8));
        let k = ObjectKey::from_bytes(&std::array::from_fn(|i| i as u8), id);
        let sealed = k.seal(3, b"farm stripe", 1, 0).expect("seal");
        assert_eq!(
            hex::encode(&sealed),
            "90ea39eb347141ac8a51ffc13e9bbebb1a921a809ac662022cb3b1e0"
        );
        assert_eq!(
            k.open(3, sealed.as_slice().into(), 11).expect("open"),
            &b"farm stripe"[..]
        );
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
