//! One redis-benchmark run against a server, with the server's CPU time per request.

use std::path::Path;
use std::process::{Command, Stdio};

use super::R;
use super::opts::Opts;
use super::servers::Server;
use super::util::{clk_tck, dir_bytes};

#[derive(Clone, Copy, Default)]
pub(crate) struct Sample {
    pub(crate) ops: f64,
    pub(crate) cpu_us: f64,
    /// Bytes appended to the data and index folders per request (zdb SET only).
    pub(crate) bytes: Option<f64>,
}

pub(crate) fn redis_benchmark(
    o: &Opts,
    port: u16,
    test: &str,
    n: u64,
    r: u64,
    pipeline: u32,
) -> R<f64> {
    let (n, r, p) = (n.to_string(), r.to_string(), pipeline.to_string());
    #[rustfmt::skip]
    let args = [
        "-c", &o.client_cpu, "redis-benchmark", "-h", "127.0.0.1", "-p", &port.to_string(),
        "-c", "50", "-n", &n, "-d", "100", "-r", &r, "-t", test, "-P", &p, "-q", "--csv",
    ];
    let out = Command::new("taskset")
        .args(args)
        .stderr(Stdio::null())
        .output()?;
    let s = String::from_utf8_lossy(&out.stdout);
    let tag = format!("\"{}\"", test.to_uppercase());
    let line = s
        .lines()
        .find(|l| l.starts_with(&tag))
        .ok_or_else(|| format!("no {tag} line in {s:?}"))?;
    let rps = line
        .split(',')
        .nth(1)
        .ok_or("bad csv")?
        .trim_matches('"')
        .parse::<f64>()?;
    Ok(rps)
}

/// One measured redis-benchmark run against `srv`, with its CPU time per request.
pub(crate) fn measured(
    o: &Opts,
    srv: &Server,
    test: &str,
    n: u64,
    r: u64,
    p: u32,
    dir: Option<&Path>,
) -> R<Sample> {
    let b0 = dir.map(dir_bytes);
    let t0 = srv.cpu_ticks()?;
    let ops = redis_benchmark(o, srv.port, test, n, r, p)?;
    let t1 = srv.cpu_ticks()?;
    let bytes = dir.map(|d| (dir_bytes(d) - b0.unwrap_or(0)) as f64 / n as f64);
    let cpu_us = (t1 - t0) as f64 * 1e6 / clk_tck() / n as f64;
    Ok(Sample { ops, cpu_us, bytes })
}
