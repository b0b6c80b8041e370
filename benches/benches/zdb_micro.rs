//! Criterion micro-benchmarks for zdb's RESP parser and in-memory key index.
//!
//! `cargo bench -p benches --bench zdb_micro`
#![expect(clippy::unwrap_used, reason = "a benchmark that fails stops")]

use bytes::BytesMut;
use criterion::{BatchSize, Criterion, Throughput, black_box, criterion_group, criterion_main};
use zdb::engine::{KeyMap, Loc};

/// `n` pipelined `SET key:<12 digits> <100 bytes>` frames, as redis-benchmark sends them.
fn set_frames(n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..n {
        let key = format!("key:{i:012}");
        out.extend_from_slice(
            format!("*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n$100\r\n", key.len()).as_bytes(),
        );
        out.extend_from_slice(&[b'x'; 100]);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn parser(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    for (name, frames) in [("set100x16", set_frames(16)), ("set100x1", set_frames(1))] {
        let n = frames.windows(4).filter(|w| w == b"*3\r\n").count();
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(name, |b| {
            b.iter_batched_ref(
                || BytesMut::from(&frames[..]),
                |buf| {
                    let mut k = 0;
                    while let Some(args) = zdb::protocol::parse(buf).unwrap() {
                        k += args.len();
                    }
                    black_box(k)
                },
                BatchSize::SmallInput,
            )
        });
    }
    // A 1 MiB value arriving whole.
    let mut big = b"*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$1048576\r\n".to_vec();
    big.extend(std::iter::repeat_n(b'v', 1 << 20));
    big.extend_from_slice(b"\r\n");
    g.throughput(Throughput::Bytes(big.len() as u64));
    g.bench_function("set1MiB", |b| {
        b.iter_batched_ref(
            || BytesMut::from(&big[..]),
            |buf| black_box(zdb::protocol::parse(buf).unwrap()),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn loc(i: u32) -> Loc {
    Loc {
        file: i >> 20,
        idx_off: i.wrapping_mul(27),
        data_off: i.wrapping_mul(134),
        len: 100,
    }
}

fn keymap(c: &mut Criterion) {
    const N: u32 = 1_000_000;
    let keys: Vec<[u8; 16]> = (0..N)
        .map(|i| {
            let mut k = [0u8; 16];
            k.copy_from_slice(format!("k{i:015}").as_bytes());
            k
        })
        .collect();
    let mut g = c.benchmark_group("keymap");
    g.sample_size(10);
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("insert_1M_new_16B", |b| {
        b.iter(|| {
            let mut m = KeyMap::default();
            for (i, k) in keys.iter().enumerate() {
                let _ = m.insert(k, loc(i as u32));
            }
            black_box(m.len())
        })
    });
    let mut full = KeyMap::default();
    for (i, k) in keys.iter().enumerate() {
        let _ = full.insert(k, loc(i as u32));
    }
    g.bench_function("overwrite_1M_16B", |b| {
        b.iter(|| {
            for (i, k) in keys.iter().enumerate() {
                let _ = black_box(full.insert(k, loc(i as u32 + 1)));
            }
        })
    });
    g.finish();

    let mut g = c.benchmark_group("keymap_get");
    g.throughput(Throughput::Elements(1));
    let mut i = 0usize;
    g.bench_function("hit_1M_16B", |b| {
        b.iter(|| {
            i = (i + 7919) % keys.len();
            black_box(full.get(&keys[i]))
        })
    });
    g.bench_function("miss_1M_16B", |b| {
        b.iter(|| {
            i = (i + 7919) % keys.len();
            let mut k = keys[i];
            k[0] = b'm';
            black_box(full.get(&k))
        })
    });
    g.finish();
}

criterion_group!(benches, parser, keymap);
criterion_main!(benches);
