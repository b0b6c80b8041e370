//! `storaged bench PATH`: sequential read/write MiB/s, random 4 KiB read/write IOPS and fsync
//! latency, with io_uring and direct I/O, printed as one JSON object.
//!
//! The jobs match `benches/storaged_fio.sh` (fio with `ioengine=io_uring`, `direct=1`):
//! sequential 1 MiB blocks at queue depth 16, random 4 KiB at queue depth 32, each time based
//! over the whole file; fsync: 4 KiB sequential writes each followed by an fsync, queue depth 1,
//! median fsync latency.

mod uring;

use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use uring::Pattern;

/// Benchmark settings.
#[derive(Debug, Clone)]
pub struct Options {
    /// File size (ignored for a block device).
    pub size: u64,
    /// Duration of each job.
    pub runtime: Duration,
    /// Allow writing to a block device (destroys its content).
    pub destructive: bool,
    /// Run only these jobs (names as the report fields); empty = all.
    pub only: Vec<Job>,
}

/// One benchmark job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Job {
    /// Sequential read.
    SeqRead,
    /// Sequential write.
    SeqWrite,
    /// Random 4 KiB read.
    RandRead,
    /// Random 4 KiB write.
    RandWrite,
    /// fsync latency.
    Fsync,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            size: 256 << 20,
            runtime: Duration::from_secs(3),
            destructive: false,
            only: Vec::new(),
        }
    }
}

/// The result, as printed (a job left out with `--only` is absent).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Sequential read, MiB/s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq_read_mib_s: Option<f64>,
    /// Sequential write, MiB/s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq_write_mib_s: Option<f64>,
    /// Random 4 KiB read IOPS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rand_read_iops: Option<f64>,
    /// Random 4 KiB write IOPS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rand_write_iops: Option<f64>,
    /// Median fsync latency after a 4 KiB write, microseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fsync_p50_us: Option<f64>,
    /// File or device measured.
    pub path: PathBuf,
    /// Bytes covered.
    pub size: u64,
    /// Seconds per job.
    pub runtime_s: f64,
}

/// A benchmark failure.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Setting up the file failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// Step.
        what: &'static str,
        /// Path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// An I/O in a job failed.
    #[error("{job} on {path}: {source}")]
    Job {
        /// Job name.
        job: &'static str,
        /// Path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Refused to write a block device.
    #[error("{0} is a block device: pass --destructive to overwrite it")]
    BlockDevice(PathBuf),
}

struct Target {
    path: PathBuf,
    size: u64,
    remove: bool,
}

fn prepare(path: &Path, opts: &Options) -> Result<Target, BenchError> {
    let io = |what, p: &Path| {
        let path = p.to_path_buf();
        move |source| BenchError::Io { what, path, source }
    };
    let meta = std::fs::metadata(path).ok();
    if meta
        .as_ref()
        .is_some_and(|m| m.file_type().is_block_device())
    {
        if !opts.destructive {
            return Err(BenchError::BlockDevice(path.into()));
        }
        let name = crate::disk::kernel_name(path);
        let size =
            crate::disk::discover::device_size(Path::new("/sys"), &name).unwrap_or(opts.size);
        return Ok(Target {
            path: path.into(),
            size: size / (1 << 20) * (1 << 20),
            remove: false,
        });
    }
    let (file, remove) = if meta.as_ref().is_some_and(|m| m.is_dir()) {
        (path.join(".storaged-bench.tmp"), true)
    } else {
        (path.to_path_buf(), false)
    };
    let size = opts.size / (1 << 20) * (1 << 20);
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&file)
        .map_err(io("create", &file))?;
    let cur = f.metadata().map_err(io("stat", &file))?.len();
    if cur < size {
        // Lay the file out once (as fio does), so reads hit real blocks.
        uring::fill(&file, size).map_err(io("lay out", &file))?;
    }
    Ok(Target {
        path: file,
        size,
        remove,
    })
}

fn open(path: &Path, write: bool) -> Result<File, BenchError> {
    let mut o = OpenOptions::new();
    o.read(true).write(write).custom_flags(libc::O_DIRECT);
    o.open(path).map_err(|source| BenchError::Io {
        what: "open (O_DIRECT)",
        path: path.into(),
        source,
    })
}

/// Runs the five jobs on `path` (a file, a folder to put a temp file in, or a block device).
pub fn run(path: &Path, opts: &Options) -> Result<Report, BenchError> {
    let t = prepare(path, opts)?;
    let res = run_jobs(&t, opts);
    if t.remove {
        let _ = std::fs::remove_file(&t.path);
    }
    res
}

fn run_jobs(t: &Target, opts: &Options) -> Result<Report, BenchError> {
    let job = |job: &'static str| {
        let path = t.path.clone();
        move |source| BenchError::Job { job, path, source }
    };
    let rt = opts.runtime;
    let mib = |bytes: u64, d: Duration| bytes as f64 / (1u64 << 20) as f64 / d.as_secs_f64();
    let iops = |ops: u64, d: Duration| ops as f64 / d.as_secs_f64();
    let f = open(&t.path, true)?;
    let on = |j: Job| opts.only.is_empty() || opts.only.contains(&j);
    let mut rep = Report {
        seq_read_mib_s: None,
        seq_write_mib_s: None,
        rand_read_iops: None,
        rand_write_iops: None,
        fsync_p50_us: None,
        path: t.path.clone(),
        size: t.size,
        runtime_s: rt.as_secs_f64(),
    };
    if on(Job::SeqWrite) {
        let w = uring::run(&f, Pattern::Sequential, true, 1 << 20, 16, t.size, rt)
            .map_err(job("seq write"))?;
        rep.seq_write_mib_s = Some(mib(w.bytes, w.elapsed));
    }
    if on(Job::SeqRead) {
        let r = uring::run(&f, Pattern::Sequential, false, 1 << 20, 16, t.size, rt)
            .map_err(job("seq read"))?;
        rep.seq_read_mib_s = Some(mib(r.bytes, r.elapsed));
    }
    if on(Job::RandRead) {
        let r = uring::run(&f, Pattern::Random, false, 4096, 32, t.size, rt)
            .map_err(job("rand read"))?;
        rep.rand_read_iops = Some(iops(r.ops, r.elapsed));
    }
    if on(Job::RandWrite) {
        let w = uring::run(&f, Pattern::Random, true, 4096, 32, t.size, rt)
            .map_err(job("rand write"))?;
        rep.rand_write_iops = Some(iops(w.ops, w.elapsed));
    }
    if on(Job::Fsync) {
        let l = uring::fsync_latency(&f, t.size, rt).map_err(job("fsync"))?;
        rep.fsync_p50_us = Some(l.as_secs_f64() * 1e6);
    }
    Ok(rep)
}
