//! The object pipeline end to end without a network: objects of awkward sizes and 100 MiB
//! stream through encode and back, with any m shards lost, and no corrupted byte comes out.

use bytes::Bytes;
use farm::codec::Params;
use farm::codec::seal::{ObjectKey, StoreKey};
use farm::codec::shard::Verified;
use farm::codec::stream::StripeReader;
use farm::codec::stripe::{Shape, StripeCodec, StripeError};
use farm::ids::ObjectId;
use std::io::Read;

fn codec(params: Params) -> StripeCodec {
    let id = ObjectId::random();
    StripeCodec::new(
        Shape::new(id, params).expect("shape"),
        ObjectKey::derive(&StoreKey::generate(), id),
    )
}

/// Deterministic bytes, cheap to make even in a debug build (blake3's output stream, every
/// other 4 KiB block zeroed so both zstd paths run), readable as a stream.
struct Pattern {
    left: u64,
    xof: blake3::OutputReader,
    at: u64,
}

impl Pattern {
    fn new(size: u64) -> Self {
        Pattern {
            left: size,
            xof: blake3::Hasher::new()
                .update(b"farm codec test")
                .finalize_xof(),
            at: 0,
        }
    }
}

impl Read for Pattern {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX))
            .min(4096 - (self.at % 4096) as usize);
        let out = &mut buf[..n];
        self.xof.fill(out);
        if (self.at / 4096) % 2 == 1 {
            out.fill(0);
        }
        self.left -= n as u64;
        self.at += n as u64;
        Ok(n)
    }
}

fn verify_all(c: &StripeCodec, stripe: u64, shards: &[Bytes]) -> Vec<Option<Verified>> {
    shards
        .iter()
        .enumerate()
        .map(|(i, s)| Some(c.shape().verify(stripe, i as u8, s).expect("verify")))
        .collect()
}

/// Encodes `size` bytes stripe by stripe, loses the shard positions `lost(stripe)` of each
/// stripe, decodes, and compares the blake3 of what came out with what went in.
fn round_trip(params: Params, size: u64, lost: impl Fn(u64) -> Vec<usize>) {
    let c = codec(params);
    let mut input = StripeReader::new(Pattern::new(size), params.stripe as usize, c.reserve());
    let (mut sent, mut got) = (blake3::Hasher::new(), blake3::Hasher::new());
    let mut stripes = 0;
    while let Some((i, buf)) = input.next_stripe().expect("read") {
        let plain = &buf[farm::codec::seal::PREFIX..];
        sent.update(plain);
        let shards = c.encode(i, plain).expect("encode");
        assert_eq!(shards.len(), params.shards());
        let mut v = verify_all(&c, i, &shards);
        for p in lost(i) {
            v[p] = None;
        }
        let out = c.decode(i, params.stripe_len(size, i), v).expect("decode");
        got.update(&out);
        stripes += 1;
    }
    assert_eq!(stripes, params.stripes(size));
    assert_eq!(input.total(), size);
    assert_eq!(sent.finalize(), got.finalize(), "size {size}");
}

#[test]
fn awkward_sizes_round_trip() {
    let p = Params {
        stripe: 64 * 1024,
        ..Params::default()
    };
    let s = u64::from(p.stripe);
    for size in [0, 1, s - 1, s, s + 1, 3 * s + 7] {
        round_trip(p, size, |_| vec![]);
        round_trip(p, size, |i| vec![(i % 6) as usize, ((i + 3) % 6) as usize]);
    }
}

#[test]
fn hundred_mib_streams_with_two_shards_lost_per_stripe() {
    // Default shape (4+2, 4 MiB stripes): 25 stripes, each missing a different pair.
    round_trip(Params::default(), 100 << 20, |i| {
        vec![(i % 6) as usize, ((i / 6 + i + 1) % 6) as usize]
    });
}

#[test]
fn every_choice_of_m_lost_shards_reads_back() {
    for (k, m) in [(4u8, 2u8), (10, 4), (2, 1)] {
        let p = Params {
            k,
            m,
            stripe: 10_000,
            ..Params::default()
        };
        let c = codec(p);
        let plain: Vec<u8> = (0..9_999u32).map(|i| (i * 7 % 251) as u8).collect();
        let shards = c.encode(0, &plain).expect("encode");
        let n = p.shards();
        // Every subset of exactly m positions.
        for mask in 0u32..(1 << n) {
            if mask.count_ones() != u32::from(m) {
                continue;
            }
            let mut v = verify_all(&c, 0, &shards);
            for (p, slot) in v.iter_mut().enumerate() {
                if mask & (1 << p) != 0 {
                    *slot = None;
                }
            }
            assert_eq!(
                c.decode(0, plain.len(), v).expect("decode"),
                plain,
                "{k}+{m} mask {mask:b}"
            );
        }
        // One more lost: an error, never bytes.
        let mut v = verify_all(&c, 0, &shards);
        for slot in v.iter_mut().take(usize::from(m) + 1) {
            *slot = None;
        }
        assert!(matches!(
            c.decode(0, plain.len(), v),
            Err(StripeError::TooFew { .. })
        ));
    }
}

#[test]
fn flipped_bytes_are_detected_and_read_around() {
    let p = Params {
        stripe: 4096,
        ..Params::default()
    };
    let c = codec(p);
    let plain: Vec<u8> = (0..4096u32).map(|i| (i % 13) as u8).collect();
    let shards = c.encode(2, &plain).expect("encode");
    for (pos, shard) in shards.iter().enumerate() {
        for at in [0, 5, 39, 40, 71, 72, shard.len() / 2, shard.len() - 1] {
            let mut bad = shard.to_vec();
            bad[at] ^= 0x80;
            assert!(
                c.shape().verify(2, pos as u8, &Bytes::from(bad)).is_err(),
                "flip at {at} of shard {pos} passed"
            );
        }
    }
    // A stripe with two shards failing verification still reads from the other four.
    let mut v = verify_all(&c, 2, &shards);
    for p in [0usize, 4] {
        let mut bad = shards[p].to_vec();
        bad[100] ^= 1;
        v[p] = c.shape().verify(2, p as u8, &Bytes::from(bad)).ok();
        assert!(v[p].is_none());
    }
    assert_eq!(c.decode(2, plain.len(), v).expect("decode"), plain);
}
