//! Does io_uring beat plain syscalls on zdb's two disk patterns? Page-cached files, as in
//! the redis-benchmark runs:
//!
//! - `get16`: a 16-deep pipeline of GETs = 16 reads of one 134-byte data entry (18-byte
//!   header, 16-byte key, 100-byte value) at random offsets of a 64 MiB data file.
//!   `pread` x16 against one `io_uring_enter` submitting all 16 (and waiting for them), with
//!   and without a registered file.
//! - `append`: one acknowledged SET = a 134-byte data append plus a 50-byte index append.
//!   `pwrite` x2 against one `io_uring_enter` for both.
//!
//! `cargo bench -p benches --bench zdb_io` (figures in BENCHMARKS.md, zdb section).
#![expect(clippy::unwrap_used, reason = "a benchmark that fails stops")]
// Submitting an entry hands the kernel raw buffer pointers; every buffer here outlives the
// `submit_and_wait` that completes its operations.
#![expect(
    unsafe_code,
    reason = "io_uring submissions hand the kernel raw buffer pointers"
)]

use criterion::{Criterion, Throughput, black_box, criterion_group, criterion_main};
use io_uring::{IoUring, opcode, types};
use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::time::Duration;

const ENTRY: usize = 134;
const FILE: u64 = 64 << 20;
const DEPTH: usize = 16;

fn data_file(dir: &std::path::Path) -> File {
    let path = dir.join("d0");
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    let chunk = vec![0x5au8; 1 << 20];
    for i in 0..FILE / (1 << 20) {
        f.write_all_at(&chunk, i << 20).unwrap();
    }
    // Warm: every page in the page cache.
    let mut buf = vec![0u8; 1 << 20];
    for i in 0..FILE / (1 << 20) {
        f.read_exact_at(&mut buf, i << 20).unwrap();
    }
    f
}

/// Random entry offsets (xorshift), the same sequence for every variant.
fn offsets(n: usize) -> Vec<u64> {
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s % (FILE / ENTRY as u64 - 1)) * ENTRY as u64
        })
        .collect()
}

fn ring() -> IoUring {
    IoUring::builder()
        .setup_coop_taskrun()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .build(64)
        .or_else(|_| IoUring::new(64))
        .unwrap()
}

/// Submits what is queued, waits for `n` completions and checks them.
fn complete(ring: &mut IoUring, n: usize) {
    ring.submit_and_wait(n).unwrap();
    let mut got = 0;
    for c in ring.completion() {
        assert!(c.result() >= 0, "io_uring op failed: {}", c.result());
        got += 1;
    }
    assert_eq!(got, n);
}

fn get16(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let f = data_file(dir.path());
    let offs = offsets(1 << 16);
    let mut bufs = vec![[0u8; ENTRY]; DEPTH];
    let mut g = c.benchmark_group("get16");
    g.throughput(Throughput::Elements(DEPTH as u64));
    g.measurement_time(Duration::from_secs(3));

    let mut i = 0usize;
    g.bench_function("pread", |b| {
        b.iter(|| {
            for buf in bufs.iter_mut() {
                f.read_exact_at(buf, offs[i % offs.len()]).unwrap();
                i += 1;
            }
            black_box(&bufs);
        })
    });

    for registered in [false, true] {
        let mut ring = ring();
        let fd = if registered {
            ring.submitter().register_files(&[f.as_raw_fd()]).unwrap();
            None
        } else {
            Some(types::Fd(f.as_raw_fd()))
        };
        let name = if registered {
            "io_uring_registered_file"
        } else {
            "io_uring"
        };
        g.bench_function(name, |b| {
            b.iter(|| {
                for buf in bufs.iter_mut() {
                    let off = offs[i % offs.len()];
                    i += 1;
                    let e = match fd {
                        Some(fd) => opcode::Read::new(fd, buf.as_mut_ptr(), ENTRY as u32),
                        None => opcode::Read::new(types::Fixed(0), buf.as_mut_ptr(), ENTRY as u32),
                    }
                    .offset(off)
                    .build();
                    // SAFETY: `bufs` outlives `complete`, which reaps every read pushed here.
                    unsafe { ring.submission().push(&e) }.unwrap();
                }
                complete(&mut ring, DEPTH);
                black_box(&bufs);
            })
        });
    }
    g.finish();
}

fn append(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let open = |name: &str| {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.path().join(name))
            .unwrap()
    };
    let (data, index) = (open("d0"), open("i0"));
    let value = [0x42u8; ENTRY];
    let entry = [0x17u8; 50];
    let mut g = c.benchmark_group("append");
    g.throughput(Throughput::Elements(1));
    g.measurement_time(Duration::from_secs(3));
    // Both variants wrap at 64 MiB so the files (and their page cache) stay bounded.
    let wrap = FILE / ENTRY as u64;

    let mut n = 0u64;
    g.bench_function("pwrite_x2", |b| {
        b.iter(|| {
            let k = n % wrap;
            n += 1;
            data.write_all_at(&value, k * ENTRY as u64).unwrap();
            index.write_all_at(&entry, k * 50).unwrap();
        })
    });

    let mut ring = ring();
    let (dfd, ifd) = (types::Fd(data.as_raw_fd()), types::Fd(index.as_raw_fd()));
    g.bench_function("io_uring_x2", |b| {
        b.iter(|| {
            let k = n % wrap;
            n += 1;
            let w1 = opcode::Write::new(dfd, value.as_ptr(), ENTRY as u32)
                .offset(k * ENTRY as u64)
                .build();
            let w2 = opcode::Write::new(ifd, entry.as_ptr(), 50)
                .offset(k * 50)
                .build();
            // SAFETY: `value` and `entry` outlive `complete`, which reaps both writes.
            unsafe {
                ring.submission().push(&w1).unwrap();
                ring.submission().push(&w2).unwrap();
            }
            complete(&mut ring, 2);
        })
    });
    g.finish();
}

criterion_group!(benches, get16, append);
criterion_main!(benches);
