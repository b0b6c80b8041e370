//! zdb vs redis-server (and fio) benchmark harness. See benches/README.md.
//!
//! ```text
//! cargo build --release -p zdb
//! cargo run --release -p benches --bin zdb-bench -- [--quick] [--only set,get,pipeline,sync,large,memory,reopen]
//! ```
//!
//! Servers run pinned to `--server-cpu` (default 0) with `taskset`; redis-benchmark, fio's
//! peer clients and this harness's own loaders run on `--client-cpu` (default 1). fio itself
//! is pinned to the server CPU (it is the writer being compared with zdb). Every server is
//! killed when the harness exits.
#![allow(clippy::unwrap_used)]

use std::fmt::Write as _;
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

type R<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

const SECTIONS: [&str; 7] = [
    "set", "get", "pipeline", "sync", "large", "memory", "reopen",
];
const MIB: u64 = 1 << 20;
/// C 0-db with `--sync` (from the issue): one fsync per write.
const C_ZDB_SYNC_OPS: f64 = 2500.0;

// ---------------------------------------------------------------------------------------------
// Options

#[derive(Clone)]
struct Opts {
    quick: bool,
    only: Vec<String>,
    runs: usize,
    zdb: PathBuf,
    workdir: PathBuf,
    out: PathBuf,
    server_cpu: String,
    client_cpu: String,
    keep: bool,
}

impl Opts {
    fn parse() -> R<Opts> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .to_path_buf();
        let mut o = Opts {
            quick: false,
            only: SECTIONS.iter().map(|s| s.to_string()).collect(),
            runs: 5,
            zdb: root.join("target/release/zdb"),
            workdir: std::env::temp_dir().join(format!("zdb-bench-{}", std::process::id())),
            out: root.join("target/zdb-bench.md"),
            server_cpu: "0".into(),
            client_cpu: "1".into(),
            keep: false,
        };
        let mut it = std::env::args().skip(1);
        while let Some(a) = it.next() {
            let mut val = || it.next().ok_or(format!("{a} needs a value"));
            match a.as_str() {
                "--quick" => o.quick = true,
                "--keep" => o.keep = true,
                "--only" => {
                    o.only = val()?.split(',').map(|s| s.trim().to_string()).collect();
                    for s in &o.only {
                        if !SECTIONS.contains(&s.as_str()) {
                            return Err(format!(
                                "unknown section {s}; known: {}",
                                SECTIONS.join(",")
                            )
                            .into());
                        }
                    }
                }
                "--runs" => o.runs = val()?.parse()?,
                "--zdb" => o.zdb = val()?.into(),
                "--workdir" => o.workdir = val()?.into(),
                "--out" => o.out = val()?.into(),
                "--server-cpu" => o.server_cpu = val()?,
                "--client-cpu" => o.client_cpu = val()?,
                "-h" | "--help" => {
                    println!(
                        "zdb-bench [--quick] [--only {}] [--runs N] [--zdb PATH] [--workdir DIR] \
                         [--out FILE] [--server-cpu N] [--client-cpu N] [--keep]",
                        SECTIONS.join(",")
                    );
                    std::process::exit(0);
                }
                _ => return Err(format!("unknown argument {a}").into()),
            }
        }
        Ok(o)
    }
    fn has(&self, s: &str) -> bool {
        self.only.iter().any(|x| x == s)
    }
    /// Requests per unpipelined redis-benchmark run.
    fn n_plain(&self) -> u64 {
        if self.quick { 50_000 } else { 500_000 }
    }
    /// Requests per pipelined (-P 16) run.
    fn n_pipe(&self) -> u64 {
        if self.quick { 500_000 } else { 4_000_000 }
    }
    fn n_sync(&self) -> u64 {
        if self.quick { 20_000 } else { 100_000 }
    }
    fn large_bytes(&self) -> u64 {
        if self.quick { 256 * MIB } else { 2048 * MIB }
    }
    fn mem_keys(&self) -> u64 {
        if self.quick { 1_000_000 } else { 10_000_000 }
    }
}

// ---------------------------------------------------------------------------------------------
// Small utilities

fn sh(cmd: &str, args: &[&str]) -> R<String> {
    let out = Command::new(cmd)
        .args(args)
        .stderr(Stdio::inherit())
        .output()?;
    if !out.status.success() {
        return Err(format!("{cmd} {args:?} failed: {}", out.status).into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn clk_tck() -> f64 {
    static T: OnceLock<f64> = OnceLock::new();
    *T.get_or_init(|| {
        sh("getconf", &["CLK_TCK"])
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Apparent size of every file under `p`.
fn dir_bytes(p: &Path) -> u64 {
    let mut n = 0;
    if let Ok(rd) = fs::read_dir(p) {
        for e in rd.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => n += dir_bytes(&e.path()),
                Ok(m) => n += m.size(),
                Err(_) => {}
            }
        }
    }
    n
}

fn free_disk(p: &Path) -> u64 {
    sh("df", &["-B1", "--output=avail", &p.display().to_string()])
        .ok()
        .and_then(|s| s.lines().nth(1).and_then(|l| l.trim().parse().ok()))
        .unwrap_or(0)
}

fn sync_disks() {
    let _ = Command::new("sync").status();
}

/// Between large-value runs: write back, drop the page cache (root only), let the disk settle,
/// so that each run starts from the same state whoever ran before it.
fn settle() {
    sync_disks();
    let _ = fs::write("/proc/sys/vm/drop_caches", "3");
    thread::sleep(Duration::from_secs(1));
}

#[derive(Clone, Copy, Debug)]
struct Stat {
    med: f64,
    min: f64,
    max: f64,
}

fn stat(v: &[f64]) -> Stat {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = s.len();
    let med = if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    };
    Stat {
        med,
        min: *s.first().unwrap_or(&f64::NAN),
        max: *s.last().unwrap_or(&f64::NAN),
    }
}

/// `12.3k (12.0k–12.9k)`-style rendering with a unit-specific scale.
fn fmt_stat(s: Option<Stat>, f: fn(f64) -> String) -> String {
    match s {
        Some(s) => format!("{} ({}–{})", f(s.med), f(s.min), f(s.max)),
        None => "–".into(),
    }
}
fn kops(v: f64) -> String {
    format!("{:.1}k", v / 1000.0)
}
fn us(v: f64) -> String {
    format!("{v:.2}")
}
fn mbs(v: f64) -> String {
    format!("{v:.0}")
}
fn secs(v: f64) -> String {
    format!("{v:.2}")
}

// ---------------------------------------------------------------------------------------------
// Servers

struct Server {
    name: String,
    child: Child,
    port: u16,
}

impl Server {
    fn pid(&self) -> u32 {
        self.child.id()
    }
    fn cpu_ticks(&self) -> R<u64> {
        let s = fs::read_to_string(format!("/proc/{}/stat", self.pid()))?;
        let rest = &s[s.rfind(')').ok_or("bad stat")? + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        // Fields 14 (utime) and 15 (stime); `rest` starts at field 3. Whole thread group.
        Ok(f[11].parse::<u64>()? + f[12].parse::<u64>()?)
    }
    fn rss_bytes(&self) -> R<u64> {
        let s = fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        let l = s
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .ok_or("no VmRSS")?;
        Ok(l.split_whitespace()
            .nth(1)
            .ok_or("bad VmRSS")?
            .parse::<u64>()?
            * 1024)
    }
    /// SIGTERM, then wait for a clean exit.
    fn stop(mut self) -> R<Duration> {
        let t = Instant::now();
        sh("kill", &["-TERM", &self.pid().to_string()])?;
        while t.elapsed() < Duration::from_secs(120) {
            if let Some(st) = self.child.try_wait()? {
                if !st.success() {
                    eprintln!("  {} exited with {st}", self.name);
                }
                return Ok(t.elapsed());
            }
            thread::sleep(Duration::from_millis(5));
        }
        Err(format!("{} did not stop within 120 s", self.name).into())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Poll until the server answers PING; returns the time since `since`.
fn wait_ready(srv: &mut Server, since: Instant, timeout: Duration) -> R<Duration> {
    loop {
        if let Some(st) = srv.child.try_wait()? {
            return Err(format!("{} exited during start-up: {st}", srv.name).into());
        }
        if let Ok(s) = TcpStream::connect(("127.0.0.1", srv.port)) {
            let mut c = Conn::new(s)?;
            if c.cmd(&[b"PING"]).ok().and_then(|r| r.ok()).as_deref() == Some(b"PONG") {
                return Ok(since.elapsed());
            }
        }
        if since.elapsed() > timeout {
            return Err(format!("{} not ready after {timeout:?}", srv.name).into());
        }
        thread::sleep(Duration::from_millis(2));
    }
}

struct Env {
    o: Opts,
    logs: PathBuf,
}

impl Env {
    fn spawn(&self, name: &str, prog: &str, args: &[String]) -> R<Server> {
        let port = args
            .iter()
            .position(|a| a == "--port")
            .and_then(|i| args.get(i + 1))
            .and_then(|p| p.parse().ok())
            .ok_or("no --port")?;
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.logs.join(format!("{name}.log")))?;
        let child = Command::new("taskset")
            .arg("-c")
            .arg(&self.o.server_cpu)
            .arg(prog)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        Ok(Server {
            name: name.into(),
            child,
            port,
        })
    }

    fn redis(&self, dir: &Path, durable: bool) -> R<Server> {
        fs::create_dir_all(dir)?;
        let port = free_port();
        let mut a: Vec<String> = vec![
            "--port".into(),
            port.to_string(),
            "--bind".into(),
            "127.0.0.1".into(),
            "--save".into(),
            "".into(),
            "--daemonize".into(),
            "no".into(),
            "--protected-mode".into(),
            "no".into(),
            "--dir".into(),
            dir.display().to_string(),
        ];
        if durable {
            a.extend(["--appendonly", "yes", "--appendfsync", "always"].map(String::from));
        } else {
            a.extend(["--appendonly", "no"].map(String::from));
        }
        let mut s = self.spawn("redis", "redis-server", &a)?;
        wait_ready(&mut s, Instant::now(), Duration::from_secs(30))?;
        Ok(s)
    }

    /// Start zdb on `dir/data` + `dir/index`; returns the server and the start-up time.
    fn zdb(&self, dir: &Path, extra: &[&str]) -> R<(Server, Duration)> {
        fs::create_dir_all(dir)?;
        let port = free_port();
        let mut a: Vec<String> = vec![
            "--listen".into(),
            "127.0.0.1".into(),
            "--port".into(),
            port.to_string(),
            "--data".into(),
            dir.join("data").display().to_string(),
            "--index".into(),
            dir.join("index").display().to_string(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        let t = Instant::now();
        let mut s = self.spawn("zdb", &self.o.zdb.display().to_string(), &a)?;
        let d = wait_ready(&mut s, t, Duration::from_secs(600))?;
        Ok((s, d))
    }

    fn fresh(&self, name: &str) -> PathBuf {
        let p = self.o.workdir.join(name);
        let _ = fs::remove_dir_all(&p);
        p
    }
}

// ---------------------------------------------------------------------------------------------
// RESP client (blocking, minimal)

struct Conn {
    s: TcpStream,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
}

fn push_cmd(out: &mut Vec<u8>, args: &[&[u8]]) {
    let _ = write!(VecW(out), "*{}\r\n", args.len());
    for a in args {
        let _ = write!(VecW(out), "${}\r\n", a.len());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// `fmt::Write` into a byte vector.
struct VecW<'a>(&'a mut Vec<u8>);
impl std::fmt::Write for VecW<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

impl Conn {
    fn new(s: TcpStream) -> R<Conn> {
        s.set_nodelay(true)?;
        Ok(Conn {
            s,
            buf: vec![0; 256 * 1024],
            pos: 0,
            end: 0,
        })
    }
    fn connect(port: u16) -> R<Conn> {
        Conn::new(TcpStream::connect(("127.0.0.1", port))?)
    }
    fn fill(&mut self) -> R<()> {
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
        }
        if self.end == self.buf.len() {
            self.buf.resize(self.buf.len() * 2, 0);
        }
        let n = self.s.read(&mut self.buf[self.end..])?;
        if n == 0 {
            return Err("connection closed".into());
        }
        self.end += n;
        Ok(())
    }
    fn line(&mut self) -> R<Vec<u8>> {
        loop {
            if let Some(i) = self.buf[self.pos..self.end]
                .windows(2)
                .position(|w| w == b"\r\n")
            {
                let l = self.buf[self.pos..self.pos + i].to_vec();
                self.pos += i + 2;
                return Ok(l);
            }
            self.fill()?;
        }
    }
    /// One reply: `Ok(payload)` (nil is empty), or `Err(error text)`. Arrays are not expected.
    fn reply(&mut self) -> R<Result<Vec<u8>, String>> {
        let l = self.line()?;
        match l.first() {
            Some(b'+' | b':') => Ok(Ok(l[1..].to_vec())),
            Some(b'-') => Ok(Err(String::from_utf8_lossy(&l[1..]).into_owned())),
            Some(b'$') => {
                let n: i64 = std::str::from_utf8(&l[1..])?.parse()?;
                if n < 0 {
                    return Ok(Ok(Vec::new()));
                }
                let n = n as usize;
                while self.end - self.pos < n + 2 {
                    self.fill()?;
                }
                let v = self.buf[self.pos..self.pos + n].to_vec();
                self.pos += n + 2;
                Ok(Ok(v))
            }
            _ => Err(format!("unexpected reply {:?}", String::from_utf8_lossy(&l)).into()),
        }
    }
    fn cmd(&mut self, args: &[&[u8]]) -> R<Result<Vec<u8>, String>> {
        let mut out = Vec::new();
        push_cmd(&mut out, args);
        self.s.write_all(&out)?;
        self.reply()
    }
}

/// Send `n` SETs of `key_of(i)` (i in `range`) with value `val`, fully pipelined (a writer
/// thread streams commands while this thread counts replies). Returns error replies seen.
fn pipelined_sets(
    port: u16,
    range: std::ops::Range<u64>,
    key_of: fn(u64) -> Vec<u8>,
    val: &'static [u8],
) -> R<u64> {
    let mut c = Conn::connect(port)?;
    let mut w = c.s.try_clone()?;
    let r2 = range.clone();
    let writer = thread::spawn(move || -> R<()> {
        let mut out = Vec::with_capacity(128 * 1024);
        for i in r2 {
            push_cmd(&mut out, &[b"SET", &key_of(i), val]);
            if out.len() >= 64 * 1024 {
                w.write_all(&out)?;
                out.clear();
            }
        }
        w.write_all(&out)?;
        Ok(())
    });
    let mut errors = 0;
    for _ in range {
        if let Err(e) = c.reply()? {
            if errors == 0 {
                eprintln!("  error reply: {e}");
            }
            errors += 1;
        }
    }
    writer.join().map_err(|_| "writer panicked")??;
    Ok(errors)
}

/// Load keys `0..n` over `conns` connections.
fn load(port: u16, n: u64, conns: u64, key_of: fn(u64) -> Vec<u8>, val: &'static [u8]) -> R<u64> {
    let hs: Vec<_> = (0..conns)
        .map(|c| {
            let r = n * c / conns..n * (c + 1) / conns;
            thread::spawn(move || pipelined_sets(port, r, key_of, val))
        })
        .collect();
    let mut errs = 0;
    for h in hs {
        errs += h.join().map_err(|_| "loader panicked")??;
    }
    Ok(errs)
}

/// redis-benchmark's key for `-r`: `key:` + 12 digits.
fn rb_key(i: u64) -> Vec<u8> {
    format!("key:{i:012}").into_bytes()
}
/// A 16-byte key.
fn key16(i: u64) -> Vec<u8> {
    format!("k{i:015}").into_bytes()
}

static VAL100: [u8; 100] = [b'x'; 100];

// ---------------------------------------------------------------------------------------------
// redis-benchmark

#[derive(Clone, Copy, Default)]
struct Sample {
    ops: f64,
    cpu_us: f64,
    /// Bytes appended to the data and index folders per request (zdb SET only).
    bytes: Option<f64>,
}

fn redis_benchmark(o: &Opts, port: u16, test: &str, n: u64, r: u64, pipeline: u32) -> R<f64> {
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
fn measured(
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

// ---------------------------------------------------------------------------------------------
// Report

struct Row {
    workload: String,
    peer_ops: Option<Stat>,
    zdb_ops: Option<Stat>,
    peer_cpu: Option<Stat>,
    zdb_cpu: Option<Stat>,
    target: String,
    met: Option<bool>,
    notes: String,
}

struct Other {
    item: String,
    reference: String,
    zdb: String,
    ratio: String,
    target: String,
    met: Option<bool>,
}

impl Other {
    /// A figure reported without a peer or a target.
    fn report(item: String, zdb: String) -> Other {
        Other {
            item,
            reference: "–".into(),
            zdb,
            ratio: "–".into(),
            target: "report".into(),
            met: None,
        }
    }
}

#[derive(Default)]
struct Report {
    rows: Vec<Row>,
    other: Vec<Other>,
    notes: Vec<String>,
}

fn yes(m: Option<bool>) -> &'static str {
    match m {
        Some(true) => "yes",
        Some(false) => "**no**",
        None => "–",
    }
}

fn ratio(a: Option<Stat>, b: Option<Stat>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if a.med > 0.0 => format!("{:.2}x", b.med / a.med),
        _ => "–".into(),
    }
}

impl Report {
    fn render(&self) -> String {
        let mut s = String::new();
        if !self.rows.is_empty() {
            s.push_str(
                "| workload | redis ops/s | zdb ops/s | ratio | redis CPU µs/req | zdb CPU µs/req | ratio | target | met? | notes |\n\
                 |---|---|---|---|---|---|---|---|---|---|\n",
            );
            for r in &self.rows {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    r.workload,
                    fmt_stat(r.peer_ops, kops),
                    fmt_stat(r.zdb_ops, kops),
                    ratio(r.peer_ops, r.zdb_ops),
                    fmt_stat(r.peer_cpu, us),
                    fmt_stat(r.zdb_cpu, us),
                    ratio(r.peer_cpu, r.zdb_cpu),
                    r.target,
                    yes(r.met),
                    r.notes
                );
            }
            s.push('\n');
        }
        if !self.other.is_empty() {
            s.push_str("| measure | reference | zdb | ratio | target | met? |\n|---|---|---|---|---|---|\n");
            for r in &self.other {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} | {} |",
                    r.item,
                    r.reference,
                    r.zdb,
                    r.ratio,
                    r.target,
                    yes(r.met)
                );
            }
            s.push('\n');
        }
        for n in &self.notes {
            let _ = writeln!(s, "- {n}");
        }
        s
    }
}

// ---------------------------------------------------------------------------------------------
// Sections

/// Runs `f(run, server_index)` for `runs` rounds over `k` servers, alternating the order.
fn alternate(runs: usize, k: usize, mut f: impl FnMut(usize, usize) -> R<()>) -> R<()> {
    for run in 0..runs {
        for j in 0..k {
            let which = if run % 2 == 0 { j } else { k - 1 - j };
            f(run, which)?;
        }
    }
    Ok(())
}

fn progress(what: &str, run: usize, who: &str, s: &Sample) {
    let b = s
        .bytes
        .map(|b| format!(", {b:.0} B appended/req"))
        .unwrap_or_default();
    eprintln!(
        "  {what} run {run} {who:>5}: {:>9.0} ops/s, {:.2} µs CPU/req{b}",
        s.ops, s.cpu_us
    );
}

fn vs_redis_row(workload: &str, r: &[Sample], z: &[Sample], ops_min: f64, cpu_max: f64) -> Row {
    let st = |v: &[Sample], f: fn(&Sample) -> f64| Some(stat(&v.iter().map(f).collect::<Vec<_>>()));
    let (po, zo, pc, zc) = (
        st(r, |s| s.ops),
        st(z, |s| s.ops),
        st(r, |s| s.cpu_us),
        st(z, |s| s.cpu_us),
    );
    let met = zo.unwrap().med >= ops_min * po.unwrap().med
        && zc.unwrap().med <= cpu_max * pc.unwrap().med;
    let bytes: Vec<f64> = z.iter().filter_map(|s| s.bytes).collect();
    let notes = if bytes.is_empty() {
        String::new()
    } else {
        let b = stat(&bytes);
        format!(
            "zdb appended {:.0} B/SET ({:.0}–{:.0})",
            b.med, b.min, b.max
        )
    };
    Row {
        workload: workload.into(),
        peer_ops: po,
        zdb_ops: zo,
        peer_cpu: pc,
        zdb_cpu: zc,
        target: format!("ops ≥{ops_min}x, CPU ≤{cpu_max}x"),
        met: Some(met),
        notes,
    }
}

fn bench_set(e: &Env, rep: &mut Report, pipeline: u32) -> R<()> {
    let o = &e.o;
    let n = if pipeline > 1 {
        o.n_pipe()
    } else {
        o.n_plain()
    };
    let (mut r, mut z) = (Vec::new(), Vec::new());
    let label = format!(
        "SET -c50 -d100 -r 1e8{}",
        if pipeline > 1 { " -P16" } else { "" }
    );
    eprintln!(
        "== {label}, n={n}, {} runs each, fresh server + folder per run",
        o.runs
    );
    alternate(o.runs, 2, |run, who| {
        if who == 0 {
            let d = e.fresh("redis-set");
            let s = e.redis(&d, false)?;
            let m = measured(o, &s, "set", n, 100_000_000, pipeline, None)?;
            progress("SET", run, "redis", &m);
            r.push(m);
        } else {
            let d = e.fresh("zdb-set");
            let (s, _) = e.zdb(&d, &[])?;
            let m = measured(o, &s, "set", n, 100_000_000, pipeline, Some(&d))?;
            progress("SET", run, "zdb", &m);
            s.stop()?;
            z.push(m);
        }
        Ok(())
    })?;
    let (ops, cpu) = if pipeline > 1 { (1.0, 0.8) } else { (1.1, 0.8) };
    rep.rows.push(vs_redis_row(&label, &r, &z, ops, cpu));
    Ok(())
}

fn bench_get(e: &Env, rep: &mut Report, pipeline: u32) -> R<()> {
    let o = &e.o;
    let n = if pipeline > 1 {
        o.n_pipe()
    } else {
        o.n_plain()
    };
    let label = format!("GET -c50 -r 1e5{}", if pipeline > 1 { " -P16" } else { "" });
    eprintln!(
        "== {label}, n={n}, {} runs each, after loading the 100k keys",
        o.runs
    );
    let rs = e.redis(&e.fresh("redis-get"), false)?;
    let (zs, _) = e.zdb(&e.fresh("zdb-get"), &[])?;
    for s in [&rs, &zs] {
        let errs = load(s.port, 100_000, 2, rb_key, &VAL100)?;
        if errs > 0 {
            return Err(format!("{}: {errs} errors while filling", s.name).into());
        }
    }
    let (mut r, mut z) = (Vec::new(), Vec::new());
    alternate(o.runs, 2, |run, who| {
        let (s, v, name) = if who == 0 {
            (&rs, &mut r, "redis")
        } else {
            (&zs, &mut z, "zdb")
        };
        let m = measured(o, s, "get", n, 100_000, pipeline, None)?;
        progress("GET", run, name, &m);
        v.push(m);
        Ok(())
    })?;
    let (ops, cpu) = if pipeline > 1 { (1.0, 0.8) } else { (1.1, 0.8) };
    rep.rows.push(vs_redis_row(&label, &r, &z, ops, cpu));
    zs.stop()?;
    Ok(())
}

/// System-wide count of fsync + fdatasync calls while `f` runs (via `perf stat -a`; None if perf
/// is unavailable). Other processes' fsyncs are counted too, so this is an upper bound.
fn count_fsyncs<T>(dir: &Path, f: impl FnOnce() -> R<T>) -> R<(T, Option<u64>)> {
    let out = dir.join("fsync-count.csv");
    let perf = Command::new("perf")
        .args([
            "stat",
            "-a",
            "-x,",
            "-e",
            "syscalls:sys_enter_fsync,syscalls:sys_enter_fdatasync",
            "-o",
        ])
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut perf) = perf else {
        return Ok((f()?, None));
    };
    thread::sleep(Duration::from_millis(300));
    let r = f();
    let _ = sh("kill", &["-INT", &perf.id().to_string()]);
    let _ = perf.wait();
    let n = fs::read_to_string(&out).ok().and_then(|t| {
        let v: Vec<u64> = t
            .lines()
            .filter(|l| l.contains("sys_enter_f"))
            .filter_map(|l| l.split(',').next()?.parse().ok())
            .collect();
        (v.len() == 2).then(|| v.iter().sum())
    });
    Ok((r?, n))
}

fn bench_sync(e: &Env, rep: &mut Report) -> R<()> {
    let o = &e.o;
    let n = o.n_sync();
    eprintln!("== SET --sync, n={n}: redis (appendfsync always), zdb --sync, zdb without --sync");
    let (mut r, mut z, mut zn, mut fsyncs) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    alternate(o.runs, 3, |run, who| {
        match who {
            0 => {
                let s = e.redis(&e.fresh("redis-sync"), true)?;
                let m = measured(o, &s, "set", n, 100_000_000, 1, None)?;
                progress("SET sync", run, "redis", &m);
                r.push(m);
            }
            1 => {
                let d = e.fresh("zdb-sync");
                let (s, _) = e.zdb(&d, &["--sync"])?;
                let (m, f) = count_fsyncs(&o.workdir, || {
                    measured(o, &s, "set", n, 100_000_000, 1, Some(&d))
                })?;
                progress("SET sync", run, "zdb", &m);
                if let Some(f) = f {
                    eprintln!(
                        "    {f} fsync+fdatasync calls system-wide ({:.3} per SET)",
                        f as f64 / n as f64
                    );
                    fsyncs.push(f as f64 / n as f64);
                }
                s.stop()?;
                z.push(m);
            }
            _ => {
                let d = e.fresh("zdb-nosync");
                let (s, _) = e.zdb(&d, &[])?;
                let m = measured(o, &s, "set", n, 100_000_000, 1, Some(&d))?;
                progress("SET nosync", run, "zdb", &m);
                s.stop()?;
                zn.push(m);
            }
        }
        Ok(())
    })?;
    let mut row = vs_redis_row(
        "SET -c50 durable (redis: appendfsync always; zdb: --sync)",
        &r,
        &z,
        0.0,
        f64::MAX,
    );
    let zo = row.zdb_ops.unwrap().med;
    row.target = format!(
        "zdb ≥ {:.0}k/s (20x C 0-db --sync)",
        20.0 * C_ZDB_SYNC_OPS / 1000.0
    );
    row.met = Some(zo >= 20.0 * C_ZDB_SYNC_OPS);
    if !fsyncs.is_empty() {
        let f = stat(&fsyncs).med;
        row.notes.push_str(&format!(
            "; {f:.3} fsync+fdatasync per SET (perf, system-wide); "
        ));
        if f < 1e-3 {
            row.notes
                .push_str("**zdb --sync made no fsync calls: not durable**; ");
            row.met = Some(false);
        }
    }
    let nos = stat(&zn.iter().map(|s| s.ops).collect::<Vec<_>>());
    row.notes = format!(
        "{:.1}x C 0-db --sync; zdb without --sync in the same runs: {}",
        zo / C_ZDB_SYNC_OPS,
        fmt_stat(Some(nos), kops)
    );
    row.notes = row.notes.trim_end_matches("; ").to_string();
    rep.rows.push(row);
    Ok(())
}

/// fio sequential 1 MiB writes of `bytes` into `dir`; returns MiB/s.
fn fio(o: &Opts, dir: &Path, bytes: u64, fsync: bool) -> R<f64> {
    fs::create_dir_all(dir)?;
    let size = format!("--size={}M", bytes / MIB);
    let d = format!("--directory={}", dir.display());
    let mut a = vec![
        "-c",
        &o.server_cpu,
        "fio",
        "--name=w",
        "--rw=write",
        "--bs=1M",
        &size,
        &d,
        "--output-format=json",
    ];
    if fsync {
        a.push("--fsync=1");
    }
    let out = Command::new("taskset")
        .args(&a)
        .stderr(Stdio::inherit())
        .output()?;
    let s = String::from_utf8_lossy(&out.stdout);
    let w = s
        .find("\"write\" : {")
        .ok_or("no write section in fio output")?;
    let b = s[w..].find("\"bw_bytes\"").ok_or("no bw_bytes")? + w;
    let num: String = s[b + 10..]
        .chars()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(|c| c.is_ascii_digit())
        .collect();
    Ok(num.parse::<f64>()? / MIB as f64)
}

/// Writes `bytes` of distinct 1 MiB values to zdb over 4 connections; returns MiB/s.
fn zdb_large(port: u16, bytes: u64, run: usize) -> R<f64> {
    const CONNS: u64 = 4;
    let count = bytes / MIB;
    let t = Instant::now();
    let hs: Vec<_> = (0..CONNS)
        .map(|c| {
            thread::spawn(move || -> R<()> {
                let mut conn = Conn::connect(port)?;
                let mut seed = 0x9e37_79b9_7f4a_7c15u64 ^ (c + 1) ^ ((run as u64) << 32);
                let val: Vec<u8> = (0..MIB / 8)
                    .flat_map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        seed.to_le_bytes()
                    })
                    .collect();
                let key = format!("big:{run:03}:{:08}", 0);
                let mut cmd = Vec::with_capacity(MIB as usize + 128);
                push_cmd(&mut cmd, &[b"SET", key.as_bytes(), &val]);
                let key_at = cmd
                    .windows(key.len())
                    .position(|w| w == key.as_bytes())
                    .unwrap();
                let val_at = cmd.len() - 2 - MIB as usize;
                for i in (c * count / CONNS)..((c + 1) * count / CONNS) {
                    let key = format!("big:{run:03}:{i:08}");
                    cmd[key_at..key_at + key.len()].copy_from_slice(key.as_bytes());
                    // Stamp every 4 KiB block so that no two values (or blocks) are equal.
                    for blk in (0..MIB as usize).step_by(4096) {
                        cmd[val_at + blk..val_at + blk + 8]
                            .copy_from_slice(&(i ^ ((run as u64) << 40)).to_le_bytes());
                    }
                    conn.s.write_all(&cmd)?;
                    if let Err(e) = conn.reply()? {
                        return Err(format!("SET big value: {e}").into());
                    }
                }
                Ok(())
            })
        })
        .collect();
    for h in hs {
        h.join().map_err(|_| "large writer panicked")??;
    }
    Ok(count as f64 / t.elapsed().as_secs_f64())
}

fn bench_large(e: &Env, rep: &mut Report) -> R<()> {
    let o = &e.o;
    let bytes = o.large_bytes();
    let need = bytes * 2 + 2048 * MIB;
    let free = free_disk(&o.workdir);
    if free < need {
        rep.notes.push(format!(
            "large values skipped: {} MiB free, {} MiB needed",
            free / MIB,
            need / MIB
        ));
        return Ok(());
    }
    for durable in [false, true] {
        let mode = if durable {
            "--sync vs fio --fsync=1"
        } else {
            "buffered vs fio (no fsync)"
        };
        eprintln!(
            "== 1 MiB values, {} MiB, {mode}, {} runs each",
            bytes / MIB,
            o.runs
        );
        let (mut f, mut z, mut zc) = (Vec::new(), Vec::new(), Vec::new());
        alternate(o.runs, 2, |run, who| {
            if who == 0 {
                let d = e.fresh("fio");
                let v = fio(o, &d, bytes, durable)?;
                eprintln!("  large run {run}   fio: {v:.0} MiB/s");
                f.push(v);
                let _ = fs::remove_dir_all(&d);
            } else {
                let d = e.fresh("zdb-large");
                let (s, _) = e.zdb(&d, if durable { &["--sync"] } else { &[] })?;
                let t0 = s.cpu_ticks()?;
                let v = zdb_large(s.port, bytes, run)?;
                let cpu = (s.cpu_ticks()? - t0) as f64 * 1e6 / clk_tck() / (bytes / MIB) as f64;
                zc.push(cpu);
                let written = dir_bytes(&d);
                eprintln!(
                    "  large run {run}   zdb: {v:.0} MiB/s ({} MiB on disk, {cpu:.0} µs CPU/SET)",
                    written / MIB
                );
                s.stop()?;
                z.push(v);
                let _ = fs::remove_dir_all(&d);
            }
            settle();
            Ok(())
        })?;
        let (fs_, zs) = (stat(&f), stat(&z));
        let r = zs.med / fs_.med;
        rep.other.push(Other {
            item: format!(
                "1 MiB SET, {} MiB distinct values, 4 conns, {mode} (MiB/s)",
                bytes / MIB
            ),
            reference: format!("fio {}", fmt_stat(Some(fs_), mbs)),
            zdb: format!(
                "{} ({:.0} µs CPU/SET)",
                fmt_stat(Some(zs), mbs),
                stat(&zc).med
            ),
            ratio: format!("{r:.2}x"),
            target: if durable {
                "report".into()
            } else {
                "≥0.6x fio (also of its fastest run)".into()
            },
            // fio's buffered runs are bimodal on a host whose writeback speed varies (page-cache
            // speed or disk speed): a median that fell in the slow mode must not count as met.
            met: if durable {
                None
            } else {
                Some(r >= 0.6 && zs.med >= 0.6 * fs_.max)
            },
        });
    }
    Ok(())
}

/// Memory (10M 16-byte keys, 1-byte values, user mode) and reopen times on the same folder.
fn bench_memory_reopen(e: &Env, rep: &mut Report) -> R<()> {
    let o = &e.o;
    let n = o.mem_keys();
    let d = e.fresh("zdb-mem");
    eprintln!("== memory: {n} 16-byte keys, 1-byte values, --mode user");
    let (s, _) = e.zdb(&d, &["--mode", "user"])?;
    let rss0 = s.rss_bytes()?;
    let t = Instant::now();
    let errs = load(s.port, n, 2, key16, b"v")?;
    let load_s = t.elapsed().as_secs_f64();
    if errs > 0 {
        return Err(format!("{errs} errors while loading").into());
    }
    thread::sleep(Duration::from_millis(200));
    let rss1 = s.rss_bytes()?;
    let per_key = (rss1 as f64 - rss0 as f64) / n as f64 - 16.0;
    eprintln!(
        "  loaded in {load_s:.1} s ({:.0} keys/s); RSS {} -> {} MiB: {per_key:.1} B/key beyond the key",
        n as f64 / load_s,
        rss0 / MIB,
        rss1 / MIB
    );
    if o.has("memory") {
        rep.other.push(Other {
            item: format!(
                "RSS per live key beyond the 16-byte key, {}M keys, user mode",
                n / 1_000_000
            ),
            reference: "C 0-db ≈170 B/key (3M keys in 490 MiB)".into(),
            zdb: format!("{per_key:.1} B (RSS {} → {} MiB)", rss0 / MIB, rss1 / MIB),
            ratio: format!("{:.2}x", (per_key + 16.0) / 170.0),
            target: "≤40 B + key".into(),
            met: Some(per_key <= 40.0),
        });
        rep.notes.push(format!(
            "memory load: {n} keys in {load_s:.1} s over 2 pipelined connections"
        ));
    }
    let stop = s.stop()?;
    eprintln!(
        "  stopped in {:.2} s; data+index {} MiB",
        stop.as_secs_f64(),
        dir_bytes(&d) / MIB
    );
    if !o.has("reopen") {
        return Ok(());
    }
    eprintln!("== reopen {n} keys");
    let check = |s: &Server| -> R<()> {
        let got = Conn::connect(s.port)?
            .cmd(&[b"DBSIZE"])?
            .map_err(|e| format!("DBSIZE: {e}"))?;
        let got: u64 = String::from_utf8_lossy(&got).parse()?;
        if got != n {
            return Err(format!("after reopen DBSIZE is {got}, expected {n}").into());
        }
        Ok(())
    };
    // The clean stop above saved the key map snapshot; without it (after a crash, or when
    // another program changed the files) the index is replayed.
    let snapshot = d.join("index/default/zdb-keymap.snapshot");
    let mut replay = Vec::new();
    let mut save = Vec::new();
    for run in 0..o.runs {
        let _ = fs::remove_file(&snapshot);
        let (s, t) = e.zdb(&d, &["--mode", "user"])?;
        check(&s)?;
        eprintln!(
            "  warm reopen without snapshot {run}: {:.3} s",
            t.as_secs_f64()
        );
        replay.push(t.as_secs_f64());
        // This stop writes a fresh snapshot.
        save.push(s.stop()?.as_secs_f64());
    }
    let mut warm = Vec::new();
    for run in 0..o.runs {
        let (s, t) = e.zdb(&d, &["--mode", "user"])?;
        check(&s)?;
        eprintln!("  warm reopen {run}: {:.3} s", t.as_secs_f64());
        warm.push(t.as_secs_f64());
        s.stop()?;
    }
    let mut cold = Vec::new();
    for run in 0..3.min(o.runs) {
        sync_disks();
        if let Err(err) = fs::write("/proc/sys/vm/drop_caches", "3") {
            rep.notes
                .push(format!("cold reopen skipped: cannot drop caches ({err})"));
            break;
        }
        let (s, t) = e.zdb(&d, &["--mode", "user"])?;
        check(&s)?;
        eprintln!("  cold reopen {run}: {:.3} s", t.as_secs_f64());
        cold.push(t.as_secs_f64());
        s.stop()?;
    }
    let w = stat(&warm);
    rep.other.push(Other {
        item: format!(
            "reopen {}M keys, warm page cache, after a clean stop (snapshot), start → PING (s)",
            n / 1_000_000
        ),
        reference: "C 0-db 2.5 s for 3M keys".into(),
        zdb: fmt_stat(Some(w), secs),
        ratio: "–".into(),
        target: "≤2 s".into(),
        met: Some(w.med <= 2.0),
    });
    rep.other.push(Other::report(
        format!(
            "reopen {}M keys, warm, no snapshot (index replay) (s)",
            n / 1_000_000
        ),
        fmt_stat(Some(stat(&replay)), secs),
    ));
    rep.other.push(Other::report(
        format!(
            "clean stop writing the {}M-key snapshot, SIGTERM → exit (s)",
            n / 1_000_000
        ),
        fmt_stat(Some(stat(&save)), secs),
    ));
    if !cold.is_empty() {
        rep.other.push(Other::report(
            format!(
                "reopen {}M keys, cold (drop_caches), after a clean stop, start → PING (s)",
                n / 1_000_000
            ),
            fmt_stat(Some(stat(&cold)), secs),
        ));
    }
    if !o.keep {
        let _ = fs::remove_dir_all(&d);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------

fn machine() -> String {
    let uname = sh("uname", &["-a"]).unwrap_or_default();
    let mem = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().next().map(str::to_string))
        .unwrap_or_default();
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let nproc = sh("nproc", &["--all"]).unwrap_or_default();
    let redis = sh("redis-server", &["--version"]).unwrap_or_default();
    let fio = sh("fio", &["--version"]).unwrap_or_default();
    format!(
        "{} vCPU ({cpu}), {}, {}\n{}{}",
        nproc.trim(),
        mem.split_whitespace().collect::<Vec<_>>().join(" "),
        uname.trim(),
        redis,
        fio
    )
}

fn main() {
    if let Err(e) = run() {
        eprintln!("zdb-bench: {e}");
        std::process::exit(1);
    }
}

struct Cleanup(PathBuf, bool);
impl Drop for Cleanup {
    fn drop(&mut self) {
        if !self.1 {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

fn run() -> R<()> {
    let o = Opts::parse()?;
    if !o.zdb.exists() {
        return Err(format!(
            "{} missing: run `cargo build --release -p zdb` first",
            o.zdb.display()
        )
        .into());
    }
    for (tool, pkg) in [
        ("redis-server", "redis-server"),
        ("redis-benchmark", "redis-tools"),
        ("fio", "fio"),
        ("taskset", "util-linux"),
    ] {
        if Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()?
            .success()
        {
            continue;
        }
        eprintln!("{tool} missing: apt-get install -y {pkg}");
        let ok = Command::new("apt-get")
            .args(["install", "-y", pkg])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            return Err(format!("{tool} missing; install the Debian package {pkg}").into());
        }
    }
    fs::create_dir_all(&o.workdir)?;
    let _cleanup = Cleanup(o.workdir.clone(), o.keep);
    let logs = o.workdir.join("logs");
    fs::create_dir_all(&logs)?;
    // This process (and the loader threads it starts) runs on the client CPU.
    sh(
        "taskset",
        &[
            "-a",
            "-p",
            "-c",
            &o.client_cpu,
            &std::process::id().to_string(),
        ],
    )?;
    let df = sh("df", &["-T", "-h", &o.workdir.display().to_string()]).unwrap_or_default();
    eprintln!(
        "workdir {} ({} MiB free)",
        o.workdir.display(),
        free_disk(&o.workdir) / MIB
    );
    let e = Env { o: o.clone(), logs };
    let mut rep = Report::default();
    let started = Instant::now();

    if o.has("set") {
        bench_set(&e, &mut rep, 1)?;
    }
    if o.has("get") {
        bench_get(&e, &mut rep, 1)?;
    }
    if o.has("pipeline") {
        bench_set(&e, &mut rep, 16)?;
        bench_get(&e, &mut rep, 16)?;
    }
    if o.has("sync") {
        bench_sync(&e, &mut rep)?;
    }
    if o.has("large") {
        bench_large(&e, &mut rep)?;
    }
    if o.has("memory") || o.has("reopen") {
        bench_memory_reopen(&e, &mut rep)?;
    }

    rep.notes.push(format!(
        "medians of {} runs (min–max in brackets), runs alternate between peers; servers pinned with \
         `taskset -c {}`, redis-benchmark and the harness's loaders with `taskset -c {}`; CPU = utime+stime \
         from /proc/PID/stat (CLK_TCK {}) over the measured requests",
        o.runs,
        o.server_cpu,
        o.client_cpu,
        clk_tck()
    ));
    let cmdline: Vec<String> = std::env::args().skip(1).collect();
    let mut md = format!(
        "### zdb-bench{} ({})\n\nCommand: `cargo run --release -p benches --bin zdb-bench --{}`, {:.0} s.\n\n\
         Machine: {}\n```\n{}```\n\n",
        if o.quick { " --quick" } else { "" },
        sh("date", &["-u", "+%Y-%m-%d %H:%M UTC"])
            .unwrap_or_default()
            .trim(),
        cmdline.iter().map(|a| format!(" {a}")).collect::<String>(),
        started.elapsed().as_secs_f64(),
        machine().replace('\n', "; ").trim_end_matches("; "),
        df
    );
    md.push_str(&rep.render());
    println!("{md}");
    if let Some(p) = o.out.parent() {
        fs::create_dir_all(p)?;
    }
    fs::write(&o.out, &md)?;
    eprintln!("written to {}", o.out.display());
    Ok(())
}
