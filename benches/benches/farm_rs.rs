//! Reed-Solomon for the farm: encode, and decode with two data shards lost, for 4+2 and 10+4
//! with 1 MiB shards, `reed-solomon-erasure` 6.0 with its `simd-accel` feature and 5.0.3
//! without it (the same pure-Rust GF(2^8) path; Cargo builds a crate version with one feature
//! set per binary) against `reed-solomon-simd`, in one run, on one thread.
//!
//! Throughput counts the data bytes of a stripe (k MiB), so figures compare with the object
//! bytes a put or a degraded get moves. `cargo bench -p benches --bench farm_rs`.

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

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
        $group.bench_function(BenchmarkId::new(concat!("encode/", $label), format!("{k}+{m}")), |b| {
            b.iter(|| rs.encode(black_box(&mut shards)).expect("encode"))
        });
        rs.encode(&mut shards).expect("encode");
        let full = shards.clone();
        $group.bench_function(BenchmarkId::new(concat!("decode/", $label), format!("{k}+{m}")), |b| {
            // The copy of the surviving shards is setup, outside the timing.
            b.iter_batched(
                || {
                    let mut opt: Vec<Option<Vec<u8>>> = full.iter().cloned().map(Some).collect();
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
        });
    }};
}

fn simd(c: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>, k: usize, m: usize) {
    let original = data(k);
    let mut enc = reed_solomon_simd::ReedSolomonEncoder::new(k, m, SHARD).expect("shape");
    c.bench_function(BenchmarkId::new("encode/rs-simd", format!("{k}+{m}")), |b| {
        b.iter(|| {
            for s in &original {
                enc.add_original_shard(s).expect("add");
            }
            let r = enc.encode().expect("encode");
            black_box(r.recovery(0).map(|s| s[0]));
        })
    });
    let recovery: Vec<Vec<u8>> = reed_solomon_simd::encode(k, m, &original).expect("encode");
    let mut dec = reed_solomon_simd::ReedSolomonDecoder::new(k, m, SHARD).expect("shape");
    c.bench_function(BenchmarkId::new("decode/rs-simd", format!("{k}+{m}")), |b| {
        b.iter(|| {
            for (i, s) in original.iter().enumerate().filter(|(i, _)| !LOST.contains(i)) {
                dec.add_original_shard(i, s).expect("add");
            }
            for (i, s) in recovery.iter().enumerate().take(LOST.len()) {
                dec.add_recovery_shard(i, s).expect("add");
            }
            let r = dec.decode().expect("decode");
            black_box(r.restored_original(LOST[0]).map(|s| s[0]));
        })
    });
}

fn bench(c: &mut Criterion) {
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

criterion_group!(benches, bench);
criterion_main!(benches);
