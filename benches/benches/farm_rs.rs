//! Reed-Solomon for the farm: encode, and decode with two data shards lost, for 4+2 and 10+4
//! with 1 MiB shards, `reed-solomon-erasure` 6.0 with its `simd-accel` feature and 5.0.3
//! without it (the same pure-Rust GF(2^8) path; Cargo builds a crate version with one feature
//! set per binary) against `reed-solomon-simd`, in one run, on one thread.
//!
//! Throughput counts the data bytes of a stripe (k MiB), so figures compare with the object
//! bytes a put or a degraded get moves. Time is the benchmark thread's CPU time, not wall
//! time: the target is per core, and the machine this runs on is shared with builds that
//! would otherwise set the figure. `cargo bench -p benches --bench farm_rs`.

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;

/// CPU time of the calling thread (criterion runs a benchmark's routine on one thread).
struct ThreadCpu;

fn cpu_now() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(t.tv_sec.unsigned_abs(), t.tv_nsec.unsigned_abs() as u32)
}

impl Measurement for ThreadCpu {
    type Intermediate = Duration;
    type Value = Duration;
    fn start(&self) -> Duration {
        cpu_now()
    }
    fn end(&self, start: Duration) -> Duration {
        cpu_now().saturating_sub(start)
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, v: &Duration) -> f64 {
        v.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &CpuFormatter
    }
}

/// Nanoseconds of CPU per iteration; throughput in bytes per CPU second.
struct CpuFormatter;

impl ValueFormatter for CpuFormatter {
    fn scale_values(&self, ns: f64, values: &mut [f64]) -> &'static str {
        let (factor, unit) = match ns {
            n if n < 1e3 => (1.0, "ns cpu"),
            n if n < 1e6 => (1e-3, "µs cpu"),
            n if n < 1e9 => (1e-6, "ms cpu"),
            _ => (1e-9, "s cpu"),
        };
        values.iter_mut().for_each(|v| *v *= factor);
        unit
    }

    fn scale_throughputs(
        &self,
        ns: f64,
        throughput: &Throughput,
        values: &mut [f64],
    ) -> &'static str {
        let per_iter = match *throughput {
            Throughput::Bytes(b) | Throughput::BytesDecimal(b) | Throughput::Elements(b) => {
                b as f64
            }
        };
        let per_sec = |ns: f64| per_iter * 1e9 / ns;
        let (factor, unit) = if per_sec(ns) >= f64::from(1u32 << 30) {
            (1.0 / f64::from(1u32 << 30), "GiB/s/core")
        } else {
            (1.0 / f64::from(1u32 << 20), "MiB/s/core")
        };
        values.iter_mut().for_each(|v| *v = per_sec(*v) * factor);
        unit
    }

    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

const SHARD: usize = 1 << 20;
const SHAPES: [(usize, usize); 2] = [(4, 2), (10, 4)];
/// The two data shards a decode has to rebuild.
const LOST: [usize; 2] = [0, 1];

fn data(k: usize) -> Vec<Vec<u8>> {
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    (0..k)
        .map(|_| {
            (0..SHARD)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect()
        })
        .collect()
}

macro_rules! erasure {
    ($group:expr, $krate:ident, $label:expr, $k:expr, $m:expr) => {{
        let (k, m) = ($k, $m);
        let rs = $krate::galois_8::ReedSolomon::new(k, m).expect("shape");
        let mut shards = data(k);
        shards.extend((0..m).map(|_| vec![0u8; SHARD]));
        $group.bench_function(
            BenchmarkId::new(concat!("encode/", $label), format!("{k}+{m}")),
            |b| b.iter(|| rs.encode(black_box(&mut shards)).expect("encode")),
        );
        rs.encode(&mut shards).expect("encode");
        let full = shards.clone();
        $group.bench_function(
            BenchmarkId::new(concat!("decode/", $label), format!("{k}+{m}")),
            |b| {
                // The copy of the surviving shards is setup, outside the timing.
                b.iter_batched(
                    || {
                        let mut opt: Vec<Option<Vec<u8>>> =
                            full.iter().cloned().map(Some).collect();
                        for i in LOST {
                            opt[i] = None;
                        }
                        opt
                    },
                    |mut opt| {
                        rs.reconstruct_data(black_box(&mut opt)).expect("decode");
                        opt
                    },
                    BatchSize::LargeInput,
                )
            },
        );
    }};
}

fn simd(c: &mut criterion::BenchmarkGroup<'_, ThreadCpu>, k: usize, m: usize) {
    let original = data(k);
    let mut enc = reed_solomon_simd::ReedSolomonEncoder::new(k, m, SHARD).expect("shape");
    c.bench_function(
        BenchmarkId::new("encode/rs-simd", format!("{k}+{m}")),
        |b| {
            b.iter(|| {
                for s in &original {
                    enc.add_original_shard(s).expect("add");
                }
                let r = enc.encode().expect("encode");
                black_box(r.recovery(0).map(|s| s[0]));
            })
        },
    );
    let recovery: Vec<Vec<u8>> = reed_solomon_simd::encode(k, m, &original).expect("encode");
    let mut dec = reed_solomon_simd::ReedSolomonDecoder::new(k, m, SHARD).expect("shape");
    c.bench_function(
        BenchmarkId::new("decode/rs-simd", format!("{k}+{m}")),
        |b| {
            b.iter(|| {
                for (i, s) in original
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| !LOST.contains(i))
                {
                    dec.add_original_shard(i, s).expect("add");
                }
                for (i, s) in recovery.iter().enumerate().take(LOST.len()) {
                    dec.add_recovery_shard(i, s).expect("add");
                }
                let r = dec.decode().expect("decode");
                black_box(r.restored_original(LOST[0]).map(|s| s[0]));
            })
        },
    );
}

/// The whole stripe pipeline of the farm (zstd level 1, AES-256-GCM, Reed-Solomon 4+2, shard
/// framing with blake3) on a 4 MiB stripe of random bytes, and back from the 4 data shards
/// verified (a healthy get): the CPU a put and a get spend per byte besides the network.
fn pipeline(c: &mut Criterion<ThreadCpu>) {
    use farm::codec::Params;
    use farm::codec::seal::{ObjectKey, StoreKey};
    use farm::codec::stripe::{Shape, StripeCodec};
    use farm::ids::ObjectId;
    let params = Params::default();
    let id = ObjectId::random();
    let codec = StripeCodec::new(
        Shape::new(id, params).expect("shape"),
        ObjectKey::derive(&StoreKey::generate(), id),
    );
    let plain: Vec<u8> = data(4).concat();
    let mut g = c.benchmark_group("farm_stripe_4+2");
    g.throughput(Throughput::Bytes(plain.len() as u64));
    g.sample_size(20);
    // As a put does it: the stripe copied once from its input into the buffer it is sealed
    // in, then shards apart (header, payload).
    g.bench_function("encode", |b| {
        b.iter(|| {
            let mut buf = Vec::with_capacity(1 + plain.len() + codec.reserve());
            buf.push(0);
            buf.extend_from_slice(black_box(&plain));
            codec.encode_buf(7, buf).expect("encode")
        })
    });
    let shards = codec.encode_buf(7, {
        let mut buf = vec![0u8];
        buf.extend_from_slice(&plain);
        buf
    });
    let shards = shards.expect("encode");
    // As a healthy get does it: the 4 data payloads already in their regions of one buffer
    // (the network put them there), verified, joined without a copy, decrypted in place.
    g.bench_function("verify+decode", |b| {
        b.iter_batched(
            || {
                let len = shards[0].payload.len();
                let mut rest = bytes::BytesMut::with_capacity(4 * len);
                let mut parts = Vec::new();
                for s in &shards[..4] {
                    let tail = rest.split_off(len);
                    let mut body = std::mem::replace(&mut rest, tail);
                    body.extend_from_slice(&s.payload);
                    parts.push((s.head, body));
                }
                parts
            },
            |parts| codec.decode_parts(7, plain.len(), parts).expect("decode"),
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

/// The authenticated encryption of a 4 MiB stripe in place, AES-256-GCM from `aes-gcm` (RustCrypto,
/// AES-NI and PCLMULQDQ detected at run time) against `ring` (BoringSSL's assembly, VAES and
/// VPCLMULQDQ with AVX2 where the CPU has them), and blake3 of a 1 MiB shard: the per-byte
/// costs of a put and a get besides Reed-Solomon and the network.
fn primitives(c: &mut Criterion<ThreadCpu>) {
    use aes_gcm::aead::{AeadInPlace, KeyInit};
    let mut buf: Vec<u8> = data(4).concat();
    let mut g = c.benchmark_group("farm_aead_4MiB");
    g.throughput(Throughput::Bytes(buf.len() as u64));
    g.sample_size(20);
    let key = [7u8; 32];
    let rc = aes_gcm::Aes256Gcm::new(&key.into());
    g.bench_function("aes-gcm seal", |b| {
        b.iter(|| {
            let tag = rc
                .encrypt_in_place_detached(&[1u8; 12].into(), b"aad", black_box(&mut buf))
                .expect("seal");
            let _ = black_box(tag);
        })
    });
    let rk = ring::aead::LessSafeKey::new(
        ring::aead::UnboundKey::new(&ring::aead::AES_256_GCM, &key).expect("key"),
    );
    g.bench_function("ring seal", |b| {
        b.iter(|| {
            let tag = rk
                .seal_in_place_separate_tag(
                    ring::aead::Nonce::assume_unique_for_key([1u8; 12]),
                    ring::aead::Aad::from(b"aad"),
                    black_box(&mut buf),
                )
                .expect("seal");
            let _ = black_box(tag);
        })
    });
    g.finish();
    let shard = &buf[..SHARD];
    let mut g = c.benchmark_group("farm_hash_1MiB");
    g.throughput(Throughput::Bytes(SHARD as u64));
    g.sample_size(20);
    g.bench_function("blake3", |b| b.iter(|| blake3::hash(black_box(shard))));
    g.bench_function("memcpy", |b| b.iter(|| black_box(shard.to_vec())));
    g.finish();
}

fn bench(c: &mut Criterion<ThreadCpu>) {
    for (k, m) in SHAPES {
        let mut g = c.benchmark_group(format!("farm_rs_{k}+{m}"));
        g.throughput(Throughput::Bytes((k * SHARD) as u64));
        g.sample_size(20);
        erasure!(g, reed_solomon_erasure, "rse-simd-accel", k, m);
        erasure!(g, reed_solomon_erasure_plain, "rse-plain", k, m);
        simd(&mut g, k, m);
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(ThreadCpu);
    targets = bench, pipeline, primitives
}
criterion_main!(benches);
