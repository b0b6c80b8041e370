//! The io_uring job loop. `unsafe` is confined here: submitting an entry hands the kernel raw
//! buffer pointers, so every buffer outlives its operation (the loop always drains all
//! in-flight operations before returning, also on errors).
#![expect(
    unsafe_code,
    reason = "io_uring submissions hand the kernel raw buffer pointers"
)]

use io_uring::{IoUring, opcode, types};
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

/// `IORING_ENTER_GETEVENTS`.
const ENTER_GETEVENTS: u32 = 1;

/// Offset pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    /// Consecutive blocks, wrapping at the end.
    Sequential,
    /// Uniformly random blocks.
    Random,
}

/// Counts of one job.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    /// Completed operations.
    pub ops: u64,
    /// Bytes moved.
    pub bytes: u64,
    /// Wall time.
    pub elapsed: Duration,
}

/// Page-aligned buffers for direct I/O, carved out of one allocation.
struct Buffers {
    raw: Vec<u8>,
    off: usize,
    bs: usize,
}

impl Buffers {
    fn new(n: usize, bs: usize) -> Buffers {
        let mut raw = vec![0u8; n * bs + 4096];
        let off = raw.as_ptr().align_offset(4096);
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for b in raw.iter_mut() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            *b = seed as u8;
        }
        Buffers { raw, off, bs }
    }
    fn ptr(&mut self, i: usize) -> *mut u8 {
        let start = self.off + i * self.bs;
        self.raw
            .get_mut(start..start + self.bs)
            .map(|s| s.as_mut_ptr())
            .unwrap_or(std::ptr::null_mut())
    }
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// A ring set up as fio sets up its own (cooperative, deferred task running for a single
/// issuer: completions are processed when we wait, not by interrupting us), falling back to a
/// plain ring on kernels without these flags.
fn ring(entries: u32) -> io::Result<IoUring> {
    IoUring::builder()
        .setup_coop_taskrun()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .build(entries)
        .or_else(|_| IoUring::new(entries))
}

/// Runs one time-based job over `size` bytes of `f` with `qd` operations in flight.
pub fn run(
    f: &File,
    pattern: Pattern,
    write: bool,
    bs: usize,
    qd: usize,
    size: u64,
    runtime: Duration,
) -> io::Result<Outcome> {
    let blocks = (size / bs as u64).max(1);
    let mut ring = ring(u32::try_from(qd).unwrap_or(64))?;
    let mut bufs = Buffers::new(qd, bs);
    let fd = types::Fd(f.as_raw_fd());
    let len = u32::try_from(bs).map_err(|_| io::Error::other("block too large"))?;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ size);
    let mut next_seq = 0u64;
    let mut next_off = |rng: &mut Rng| -> u64 {
        let b = match pattern {
            Pattern::Sequential => {
                let b = next_seq % blocks;
                next_seq += 1;
                b
            }
            Pattern::Random => rng.next() % blocks,
        };
        b * bs as u64
    };
    let start = Instant::now();
    let mut inflight = 0usize;
    let mut ops = 0u64;
    let mut bytes = 0u64;
    // Queues one operation and hands it to the kernel at once, as fio does by default
    // (`iodepth_batch_submit=1`): on a virtual disk, batching submissions delays the device
    // by up to a batch and cost 15-25% of random 4 KiB IOPS. GETEVENTS also runs the deferred
    // completion work, so finished operations show up in the completion queue.
    let submit =
        |ring: &mut IoUring, slot: usize, off: u64, bufs: &mut Buffers| -> io::Result<()> {
            let p = bufs.ptr(slot);
            let e = if write {
                opcode::Write::new(fd, p, len).offset(off).build()
            } else {
                opcode::Read::new(fd, p, len).offset(off).build()
            }
            .user_data(slot as u64);
            // SAFETY: the buffer slot belongs to this operation only until its completion is
            // reaped, and `bufs` lives until every in-flight operation completed (see below).
            unsafe { ring.submission().push(&e) }
                .map_err(|_| io::Error::other("submission queue full"))?;
            enter(ring, 1, 0).map(drop)
        };
    let mut err: Option<io::Error> = None;
    for slot in 0..qd {
        let off = next_off(&mut rng);
        if let Err(e) = submit(&mut ring, slot, off, &mut bufs) {
            err = Some(e);
            break;
        }
        inflight += 1;
    }
    while inflight > 0 {
        let done: Vec<(u64, i32)> = ring
            .completion()
            .map(|c| (c.user_data(), c.result()))
            .collect();
        if done.is_empty() {
            if let Err(e) = enter(&mut ring, 0, 1) {
                // Cannot wait any more: leak the buffers rather than free memory the kernel
                // may still write to.
                std::mem::forget(bufs);
                return Err(e);
            }
            continue;
        }
        for (slot, res) in done {
            inflight -= 1;
            if res < 0 {
                err.get_or_insert(io::Error::from_raw_os_error(-res));
                continue;
            }
            ops += 1;
            bytes += u64::try_from(res).unwrap_or(0);
            if err.is_none() && start.elapsed() < runtime {
                let off = next_off(&mut rng);
                let slot = usize::try_from(slot).unwrap_or(0);
                match submit(&mut ring, slot, off, &mut bufs) {
                    Ok(()) => inflight += 1,
                    Err(e) => {
                        err.get_or_insert(e);
                    }
                }
            }
        }
    }
    let elapsed = start.elapsed();
    match err {
        Some(e) => Err(e),
        None => Ok(Outcome {
            ops,
            bytes,
            elapsed,
        }),
    }
}

/// `io_uring_enter` with GETEVENTS, retried when interrupted; returns how many entries the
/// kernel took.
fn enter(ring: &mut IoUring, to_submit: u32, min_complete: u32) -> io::Result<usize> {
    loop {
        // SAFETY: submits only entries pushed (and synced) by the caller; no extra argument.
        let res = unsafe {
            ring.submitter()
                .enter::<libc::sigset_t>(to_submit, min_complete, ENTER_GETEVENTS, None)
        };
        match res {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Median latency of an fsync after each 4 KiB sequential write, queue depth 1.
pub fn fsync_latency(f: &File, size: u64, runtime: Duration) -> io::Result<Duration> {
    let mut ring = ring(4)?;
    let mut bufs = Buffers::new(1, 4096);
    let fd = types::Fd(f.as_raw_fd());
    let blocks = (size / 4096).max(1);
    let start = Instant::now();
    let mut lat = Vec::new();
    let mut i = 0u64;
    let cycle = |ring: &mut IoUring, bufs: &mut Buffers, i: u64| -> io::Result<Duration> {
        let w = opcode::Write::new(fd, bufs.ptr(0), 4096)
            .offset((i % blocks) * 4096)
            .build()
            .user_data(0);
        one(ring, &w)?;
        let f = opcode::Fsync::new(fd).build().user_data(1);
        // SAFETY: fsync carries no buffer.
        unsafe { ring.submission().push(&f) }
            .map_err(|_| io::Error::other("submission queue full"))?;
        ring.submit()?;
        // Like fio's completion latency: from the moment the fsync was submitted.
        let t = Instant::now();
        wait_one(ring)?;
        Ok(t.elapsed())
    };
    while start.elapsed() < runtime || lat.is_empty() {
        match cycle(&mut ring, &mut bufs, i) {
            Ok(l) => lat.push(l),
            Err(e) => {
                // The write may still be in flight: never free its buffer.
                std::mem::forget(bufs);
                return Err(e);
            }
        }
        i += 1;
    }
    drop(bufs);
    lat.sort();
    Ok(lat.get(lat.len() / 2).copied().unwrap_or_default())
}

/// Submits one entry and waits for its completion.
fn one(ring: &mut IoUring, e: &io_uring::squeue::Entry) -> io::Result<()> {
    // SAFETY: the caller's buffer (if any) lives across this call, which returns only after
    // the completion was reaped.
    unsafe { ring.submission().push(e) }.map_err(|_| io::Error::other("submission queue full"))?;
    wait_one(ring)
}

/// Submits what is queued and waits for one completion.
fn wait_one(ring: &mut IoUring) -> io::Result<()> {
    loop {
        match ring.submit_and_wait(1) {
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    let res = ring.completion().next().map(|c| c.result()).unwrap_or(0);
    if res < 0 {
        Err(io::Error::from_raw_os_error(-res))
    } else {
        Ok(())
    }
}

/// Writes `size` bytes of data into `path` (buffered, then fsync).
pub fn fill(path: &Path, size: u64) -> io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
    let mut bufs = Buffers::new(1, 1 << 20);
    let chunk = bufs
        .raw
        .get_mut(bufs.off..bufs.off + (1 << 20))
        .unwrap_or(&mut [])
        .to_vec();
    let mut done = 0u64;
    while done < size {
        f.write_all(&chunk)?;
        done += chunk.len() as u64;
    }
    f.sync_all()
}
