//! One stripe through the whole pipeline. [`Shape`] needs no key: it verifies shards and
//! rebuilds lost ones (repair and scrub run with it on any farm node); [`StripeCodec`] adds the
//! object key to encode plain bytes and decode them back.

use crate::codec::erasure::{Erasure, ErasureError};
use crate::codec::params::{Params, ParamsError};
use crate::codec::seal::{OVERHEAD, ObjectKey, OpenError, PREFIX, SealError};
use crate::codec::shard::{self, HEADER, ShardError, Verified};
use crate::ids::{ObjectId, ShardId};
use bytes::Bytes;
use bytes::BytesMut;

/// A stripe could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum StripeError {
    /// Fewer than k shards verified.
    #[error("stripe {stripe}: {have} of {need} shards verified")]
    TooFew {
        /// Stripe index.
        stripe: u64,
        /// Verified shards.
        have: usize,
        /// Needed (k).
        need: usize,
    },
    /// The shards disagree with each other or the codec failed.
    #[error("stripe {0}: {1}")]
    Erasure(u64, ErasureError),
    /// The rebuilt stripe fails its tag (never returned as data).
    #[error(transparent)]
    Open(#[from] OpenError),
    /// Compression failed.
    #[error(transparent)]
    Seal(#[from] SealError),
    /// A shard read for the quick path failed verification (the caller reads the general way).
    #[error(transparent)]
    Shard(#[from] ShardError),
}

/// One encoded shard apart: its header (checksum included) and its payload (a region of the
/// sealed stripe, or a parity buffer). Stored, it is the header then the payload.
#[derive(Debug, Clone)]
pub struct Framed {
    /// The header.
    pub head: [u8; HEADER],
    /// The payload.
    pub payload: Bytes,
}

impl Framed {
    /// The stored bytes, joined (a copy).
    pub fn to_bytes(&self) -> Bytes {
        let mut out = Vec::with_capacity(HEADER + self.payload.len());
        out.extend_from_slice(&self.head);
        out.extend_from_slice(&self.payload);
        out.into()
    }
}

/// The shape of one object's stripes: verification and repair, without the key.
#[derive(Debug, Clone)]
pub struct Shape {
    object: ObjectId,
    params: Params,
    erasure: Erasure,
}

impl Shape {
    /// The shape of object `object`, encoded with `params`.
    pub fn new(object: ObjectId, params: Params) -> Result<Self, ParamsError> {
        params.validate()?;
        let erasure = Erasure::new(&params).map_err(|_| ParamsError::Shape {
            k: params.k,
            m: params.m,
        })?;
        Ok(Shape {
            object,
            params,
            erasure,
        })
    }

    /// The encoding parameters.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The id of shard `index` of stripe `stripe`.
    pub fn shard_id(&self, stripe: u64, index: u8) -> ShardId {
        ShardId {
            object: self.object,
            stripe,
            index,
        }
    }

    /// Verifies stored bytes as shard `index` of stripe `stripe`.
    pub fn verify(&self, stripe: u64, index: u8, stored: &Bytes) -> Result<Verified, ShardError> {
        shard::verify(
            stored,
            &self.shard_id(stripe, index),
            self.params.k,
            self.params.m,
        )
    }

    fn sealed_len(&self, stripe: u64, shards: &[Option<Verified>]) -> Result<usize, StripeError> {
        let mut lens = shards.iter().flatten().map(|v| v.sealed_len);
        let len = lens.next().unwrap_or(0);
        if lens.any(|l| l != len) {
            return Err(StripeError::Erasure(stripe, ErasureError::Mismatch));
        }
        Ok(len)
    }

    fn fill(
        &self,
        stripe: u64,
        shards: Vec<Option<Verified>>,
        parity: bool,
    ) -> Result<(usize, Vec<Option<Bytes>>), StripeError> {
        let need = usize::from(self.params.k);
        let have = shards.iter().flatten().count();
        if have < need {
            return Err(StripeError::TooFew { stripe, have, need });
        }
        let sealed_len = self.sealed_len(stripe, &shards)?;
        let mut payloads: Vec<Option<Bytes>> =
            shards.into_iter().map(|s| s.map(|v| v.payload)).collect();
        self.erasure
            .reconstruct(&mut payloads, parity)
            .map_err(|e| StripeError::Erasure(stripe, e))?;
        Ok((sealed_len, payloads))
    }

    /// Rebuilds the shards at positions `want` of stripe `stripe` from at least k verified
    /// ones (`shards` has k + m entries), framed and ready to store.
    pub fn rebuild(
        &self,
        stripe: u64,
        shards: Vec<Option<Verified>>,
        want: &[u8],
    ) -> Result<Vec<(u8, Bytes)>, StripeError> {
        let (sealed_len, payloads) = self.fill(stripe, shards, true)?;
        want.iter()
            .map(|&i| {
                let p = payloads
                    .get(usize::from(i))
                    .and_then(Option::as_ref)
                    .ok_or(StripeError::Erasure(stripe, ErasureError::Mismatch))?;
                let id = self.shard_id(stripe, i);
                Ok((
                    i,
                    shard::frame(&id, self.params.k, self.params.m, sealed_len, p),
                ))
            })
            .collect()
    }
}

/// A stripe coder for one object version: its shape and its key.
pub struct StripeCodec {
    shape: Shape,
    key: ObjectKey,
}

impl StripeCodec {
    /// The coder of the object `key` belongs to.
    pub fn new(shape: Shape, key: ObjectKey) -> Self {
        StripeCodec { shape, key }
    }

    /// The shape, for verification.
    pub fn shape(&self) -> &Shape {
        &self.shape
    }

    /// Spare capacity a stripe buffer needs after its plain bytes for [`Self::encode_buf`] to
    /// seal and pad it in place: the tag and the most erasure padding a stripe can need.
    pub fn reserve(&self) -> usize {
        OVERHEAD - PREFIX + self.shape.erasure.max_padding()
    }

    /// Encodes stripe `stripe` into k + m framed shards, by position.
    pub fn encode(&self, stripe: u64, plain: &[u8]) -> Result<Vec<Bytes>, StripeError> {
        let mut buf = Vec::with_capacity(PREFIX + plain.len() + self.reserve());
        buf.resize(PREFIX, 0);
        buf.extend_from_slice(plain);
        Ok(self
            .encode_buf(stripe, buf)?
            .iter()
            .map(Framed::to_bytes)
            .collect())
    }

    /// Encodes the stripe held in `buf` after [`PREFIX`] spare bytes (as
    /// [`crate::codec::stream::StripeReader`] reads it) into k + m shards apart, sealing it in
    /// place when it is stored uncompressed: the sealed bytes become the data shards' payloads
    /// without a copy.
    pub fn encode_buf(&self, stripe: u64, buf: Vec<u8>) -> Result<Vec<Framed>, StripeError> {
        let p = &self.shape.params;
        let plain_len = buf.len().saturating_sub(PREFIX);
        // Room for the erasure padding, so the sealed buffer becomes the data shards in place.
        let room = self.shape.erasure.padding(plain_len + OVERHEAD);
        let sealed = self.key.seal_buf(stripe, buf, i32::from(p.zstd), room)?;
        let sealed_len = sealed.len();
        let payloads = self
            .shape
            .erasure
            .encode(sealed)
            .map_err(|e| StripeError::Erasure(stripe, e))?;
        Ok(payloads
            .into_iter()
            .enumerate()
            .map(|(i, payload)| {
                let id = self.shape.shard_id(stripe, i as u8);
                Framed {
                    head: shard::head(&id, p.k, p.m, sealed_len, &payload),
                    payload,
                }
            })
            .collect())
    }

    /// The payload length of each shard of a stripe of `plain_len` bytes stored
    /// uncompressed (what a get expects; a compressed stripe's shards are shorter).
    pub fn expected_shard_len(&self, plain_len: usize) -> usize {
        self.shape.erasure.shard_len(plain_len + OVERHEAD)
    }

    /// Decodes stripe `stripe` from its k data shards read apart (header, payload), in
    /// position order; payloads split off one buffer in order join without a copy. Every
    /// header must name its shard and the tag must hold; any failure is an error (the caller
    /// then reads the general way, with parity, where each shard's checksum finds the bad
    /// one). The data shards' payloads are the sealed stripe itself, so the AEAD tag verifies
    /// them, byte for byte and with a key-dependent check, in the same pass as decryption:
    /// their blake3 sums, half the CPU of a healthy read, are left to the general path and
    /// the scrub. What this path does not notice is damage outside the sealed bytes (a stored
    /// checksum, the erasure padding of the last data shard): the bytes returned are right,
    /// and the scrub rewrites that shard.
    pub fn decode_parts(
        &self,
        stripe: u64,
        plain_len: usize,
        parts: Vec<([u8; HEADER], BytesMut)>,
    ) -> Result<Bytes, StripeError> {
        let p = &self.shape.params;
        let k = usize::from(p.k);
        if parts.len() != k {
            return Err(StripeError::TooFew {
                stripe,
                have: parts.len(),
                need: k,
            });
        }
        let mut joined: Option<BytesMut> = None;
        let mut lens = None;
        for (i, (head, payload)) in parts.into_iter().enumerate() {
            let id = self.shape.shard_id(stripe, i as u8);
            let sealed_len = shard::identify_parts(&head, &payload, &id, p.k, p.m)?;
            let these = (sealed_len, payload.len());
            if *lens.get_or_insert(these) != these {
                return Err(StripeError::Erasure(stripe, ErasureError::Mismatch));
            }
            match joined.as_mut() {
                Some(j) => j.unsplit(payload),
                None => joined = Some(payload),
            }
        }
        let (sealed_len, shard_len) = lens.unwrap_or_default();
        let mut sealed = joined.unwrap_or_default();
        if sealed_len > shard_len * k {
            return Err(StripeError::Erasure(stripe, ErasureError::Mismatch));
        }
        sealed.truncate(sealed_len);
        Ok(self.key.open(stripe, sealed, plain_len)?)
    }

    /// Decodes stripe `stripe` (`plain_len` bytes) from verified shards by position (k + m
    /// entries, at least k present). Returns the plain bytes only if the tag holds.
    pub fn decode(
        &self,
        stripe: u64,
        plain_len: usize,
        shards: Vec<Option<Verified>>,
    ) -> Result<Bytes, StripeError> {
        let (sealed_len, payloads) = self.shape.fill(stripe, shards, false)?;
        let sealed = self
            .shape
            .erasure
            .join(&payloads, sealed_len)
            .map_err(|e| StripeError::Erasure(stripe, e))?;
        // No copy: the Vec is unique.
        let sealed = BytesMut::from(Bytes::from(sealed));
        Ok(self.key.open(stripe, sealed, plain_len)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::seal::StoreKey;

    fn codec(params: Params) -> StripeCodec {
        let id = ObjectId::random();
        let shape = Shape::new(id, params).expect("shape");
        StripeCodec::new(shape, ObjectKey::derive(&StoreKey::generate(), id))
    }

    fn verified(c: &StripeCodec, stripe: u64, shards: &[Bytes]) -> Vec<Option<Verified>> {
        shards
            .iter()
            .enumerate()
            .map(|(i, s)| c.shape().verify(stripe, i as u8, s).ok())
            .collect()
    }

    #[test]
    fn round_trip_with_losses_and_rebuild() {
        let c = codec(Params::default());
        let mut plain = vec![0u8; 100_000];
        nodeutil::random::fill(&mut plain);
        let shards = c.encode(4, &plain).expect("encode");
        assert_eq!(shards.len(), 6);
        let mut v = verified(&c, 4, &shards);
        v[1] = None;
        v[4] = None;
        let rebuilt = c.shape().rebuild(4, v.clone(), &[1, 4]).expect("rebuild");
        assert_eq!(
            rebuilt,
            vec![(1, shards[1].clone()), (4, shards[4].clone())]
        );
        assert_eq!(c.decode(4, plain.len(), v).expect("decode"), plain);
    }

    #[test]
    fn a_forged_shard_that_passes_its_checksum_fails_the_tag() {
        // Someone who can write shards can frame garbage with a valid checksum: the tag is
        // what keeps it from being returned.
        let c = codec(Params::default());
        let plain = b"secret stripe".repeat(50);
        let shards = c.encode(0, &plain).expect("encode");
        let mut v = verified(&c, 0, &shards);
        let good = v[0].clone().expect("verified");
        let mut forged = good.payload.to_vec();
        forged[0] ^= 1;
        let stored = shard::frame(&c.shape().shard_id(0, 0), 4, 2, good.sealed_len, &forged);
        v[0] = Some(
            c.shape()
                .verify(0, 0, &stored)
                .expect("forged frame verifies"),
        );
        assert!(matches!(
            c.decode(0, plain.len(), v),
            Err(StripeError::Open(OpenError::Tag(0)))
        ));
    }

    #[test]
    fn too_few_shards_is_an_error_not_garbage() {
        let c = codec(Params::default());
        let shards = c.encode(1, b"abc").expect("encode");
        let mut v = verified(&c, 1, &shards);
        v[0] = None;
        v[2] = None;
        v[5] = None;
        assert!(matches!(
            c.decode(1, 3, v),
            Err(StripeError::TooFew {
                have: 3,
                need: 4,
                ..
            })
        ));
    }

    #[test]
    fn a_healthy_read_rests_on_the_tag_and_refuses_any_changed_byte() {
        let c = codec(Params::default());
        let mut plain = vec![0u8; 300_000];
        nodeutil::random::fill(&mut plain);
        let shards = c.encode(3, &plain).expect("encode");
        let parts = |flip: Option<(usize, usize)>| -> Vec<([u8; HEADER], BytesMut)> {
            shards[..4]
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let mut b = s.to_vec();
                    if let Some((shard, at)) = flip
                        && shard == i
                    {
                        b[at] ^= 0x40;
                    }
                    let mut head = [0u8; HEADER];
                    head.copy_from_slice(&b[..HEADER]);
                    (head, BytesMut::from(&b[HEADER..]))
                })
                .collect()
        };
        assert_eq!(
            c.decode_parts(3, plain.len(), parts(None))
                .expect("healthy"),
            plain
        );
        // A payload byte (first, middle, last shard), the sealed length, the stripe number.
        for flip in [
            (0, HEADER),
            (2, HEADER + 5000),
            (3, HEADER + 9),
            (1, 33),
            (1, 24),
        ] {
            assert!(
                c.decode_parts(3, plain.len(), parts(Some(flip))).is_err(),
                "{flip:?}"
            );
        }
        // A stored checksum, or the erasure padding after the sealed bytes: what is returned
        // is still right (the scrub finds that shard).
        for flip in [(1, 50), (3, shards[3].len() - 1)] {
            assert_eq!(
                c.decode_parts(3, plain.len(), parts(Some(flip)))
                    .expect("outside the sealed bytes"),
                plain
            );
        }
    }
}
