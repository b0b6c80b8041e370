//! The stored bytes of one shard: a header naming what the shard is, a blake3 checksum of the
//! header and the payload, then the payload (one Reed-Solomon shard of a sealed stripe).
//!
//! ```text
//! 0  magic "ZSH1"          4
//! 4  k, m, index, flags    4 x u8 (flags: 0)
//! 8  object id             16
//! 24 stripe                u64 LE
//! 32 sealed stripe length  u32 LE (the stripe before padding, to cut the joined shards)
//! 36 payload length        u32 LE
//! 40 blake3(bytes 0..40 ++ payload)   32
//! 72 payload
//! ```
//! The checksum covers the identity, so a shard written under another key, for another object
//! version, stripe or position, fails verification as surely as a flipped bit. Scrub needs no
//! key: it checks this framing only.

use crate::ids::ShardId;
use bytes::{BufMut, Bytes, BytesMut};

const MAGIC: &[u8; 4] = b"ZSH1";
/// Bytes before the payload.
pub const HEADER: usize = 72;
const HASHED_HEADER: usize = 40;

/// Why stored bytes are not the expected shard.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ShardError {
    /// Too short, wrong magic, or a length that does not match.
    #[error("shard {0} is not a farm shard")]
    Format(String),
    /// The checksum does not hold: bitrot or tampering.
    #[error("shard {0} fails its checksum")]
    Checksum(String),
    /// A sound shard, but of another object, stripe, position or shape.
    #[error("shard {0} holds another shard")]
    Identity(String),
}

/// What a verified shard carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Length of the sealed stripe the shards of this stripe join into.
    pub sealed_len: usize,
    /// The Reed-Solomon shard (shares the stored buffer).
    pub payload: Bytes,
}

fn name(id: &ShardId) -> String {
    format!("{}/{}/{}", id.object, id.stripe, id.index)
}

fn header(
    id: &ShardId,
    k: u8,
    m: u8,
    sealed_len: usize,
    payload_len: usize,
) -> [u8; HASHED_HEADER] {
    let mut h = [0u8; HASHED_HEADER];
    let mut w = &mut h[..];
    w.put_slice(MAGIC);
    w.put_slice(&[k, m, id.index, 0]);
    w.put_slice(&id.object.0);
    w.put_u64_le(id.stripe);
    w.put_u32_le(sealed_len as u32);
    w.put_u32_le(payload_len as u32);
    h
}

fn checksum(header: &[u8], payload: &[u8]) -> blake3::Hash {
    let mut hasher = blake3::Hasher::new();
    hasher.update(header);
    hasher.update(payload);
    hasher.finalize()
}

/// Frames `payload` as shard `id` of a stripe of shape k+m whose sealed form is `sealed_len`
/// bytes.
pub fn frame(id: &ShardId, k: u8, m: u8, sealed_len: usize, payload: &[u8]) -> Bytes {
    let h = head(id, k, m, sealed_len, payload);
    let mut out = BytesMut::with_capacity(HEADER + payload.len());
    out.put_slice(&h);
    out.put_slice(payload);
    out.freeze()
}

/// The header [`frame`] puts before `payload` (checksum included): a store that can send the
/// two parts as one value needs no joined copy.
pub fn head(id: &ShardId, k: u8, m: u8, sealed_len: usize, payload: &[u8]) -> [u8; HEADER] {
    let h = header(id, k, m, sealed_len, payload.len());
    let mut out = [0u8; HEADER];
    let (a, b) = out.split_at_mut(HASHED_HEADER);
    a.copy_from_slice(&h);
    b.copy_from_slice(checksum(&h, payload).as_bytes());
    out
}

/// Checks stored bytes against the shard they should be (`id` of a k+m stripe) and returns
/// its payload. Never trusts a length before the checksum holds.
pub fn verify(stored: &Bytes, id: &ShardId, k: u8, m: u8) -> Result<Verified, ShardError> {
    let head: &[u8; HEADER] = stored
        .get(..HEADER)
        .and_then(|h| h.try_into().ok())
        .ok_or_else(|| ShardError::Format(name(id)))?;
    let payload = stored.slice(HEADER..);
    let sealed_len = verify_parts(head, &payload, id, k, m)?;
    Ok(Verified {
        sealed_len,
        payload,
    })
}

/// [`verify`] of a shard read as its header and its payload apart (the payload straight into
/// a stripe's buffer); returns the sealed stripe length the header records.
pub fn verify_parts(
    head: &[u8; HEADER],
    payload: &[u8],
    id: &ShardId,
    k: u8,
    m: u8,
) -> Result<usize, ShardError> {
    let (fields, sum) = head.split_at(HASHED_HEADER);
    magic(fields, id)?;
    if checksum(fields, payload).as_bytes() != sum {
        return Err(ShardError::Checksum(name(id)));
    }
    identity(fields, payload.len(), id, k, m)
}

/// The header checks of [`verify_parts`] without the checksum: for data shards whose
/// payloads the stripe's AEAD tag authenticates right after (a healthy read), where hashing
/// them again would cost half the read's CPU. The sealed length it returns is only bounded,
/// not proven: a wrong one makes the tag fail.
pub fn identify_parts(
    head: &[u8; HEADER],
    payload: &[u8],
    id: &ShardId,
    k: u8,
    m: u8,
) -> Result<usize, ShardError> {
    let (fields, _) = head.split_at(HASHED_HEADER);
    magic(fields, id)?;
    identity(fields, payload.len(), id, k, m)
}

/// Not a farm shard at all unless the header starts with the magic.
fn magic(fields: &[u8], id: &ShardId) -> Result<(), ShardError> {
    if fields.get(..4) == Some(&MAGIC[..]) {
        Ok(())
    } else {
        Err(ShardError::Format(name(id)))
    }
}

/// The header `fields` name shard `id` of a k+m stripe with a payload of `payload_len`
/// bytes; the sealed stripe length they record.
fn identity(
    fields: &[u8],
    payload_len: usize,
    id: &ShardId,
    k: u8,
    m: u8,
) -> Result<usize, ShardError> {
    let bad = || ShardError::Format(name(id));
    let u32_at = |at: usize| -> Result<usize, ShardError> {
        let b: [u8; 4] = fields
            .get(at..at + 4)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(bad)?;
        Ok(u32::from_le_bytes(b) as usize)
    };
    let (sealed_len, recorded_len) = (u32_at(32)?, u32_at(36)?);
    if recorded_len != payload_len {
        return Err(bad());
    }
    if fields != header(id, k, m, sealed_len, payload_len) {
        return Err(ShardError::Identity(name(id)));
    }
    Ok(sealed_len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::ObjectId;

    fn id() -> ShardId {
        ShardId {
            object: ObjectId::random(),
            stripe: 9,
            index: 2,
        }
    }

    #[test]
    fn frames_and_verifies() {
        let id = id();
        let stored = frame(&id, 4, 2, 1234, b"payload bytes");
        let v = verify(&stored, &id, 4, 2).expect("verify");
        assert_eq!(v.sealed_len, 1234);
        assert_eq!(&v.payload[..], b"payload bytes");
        let empty = frame(&id, 4, 2, 0, b"");
        assert_eq!(verify(&empty, &id, 4, 2).expect("verify").payload.len(), 0);
        let h = head(&id, 4, 2, 1234, b"payload bytes");
        assert_eq!(&stored[..HEADER], &h[..]);
        assert_eq!(verify_parts(&h, b"payload bytes", &id, 4, 2), Ok(1234));
        assert!(verify_parts(&h, b"payload byteS", &id, 4, 2).is_err());
    }

    #[test]
    fn every_flipped_byte_is_detected() {
        let id = id();
        let stored = frame(&id, 4, 2, 99, &[5u8; 40]);
        for i in 0..stored.len() {
            let mut b = stored.to_vec();
            b[i] ^= 0x10;
            let r = verify(&Bytes::from(b), &id, 4, 2);
            assert!(r.is_err(), "flip at {i} passed");
        }
        for cut in 0..stored.len() {
            assert!(
                verify(&stored.slice(..cut), &id, 4, 2).is_err(),
                "cut at {cut} passed"
            );
        }
    }

    #[test]
    fn another_shard_is_refused() {
        let id = id();
        let stored = frame(&id, 4, 2, 99, b"x");
        let other = ShardId { index: 3, ..id };
        assert_eq!(
            verify(&stored, &other, 4, 2),
            Err(ShardError::Identity(name(&other)))
        );
        let other = ShardId { stripe: 8, ..id };
        assert!(matches!(
            verify(&stored, &other, 4, 2),
            Err(ShardError::Identity(_))
        ));
        assert!(matches!(
            verify(&stored, &id, 10, 4),
            Err(ShardError::Identity(_))
        ));
    }
}
