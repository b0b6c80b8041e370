//! Shared harness for the zdb black-box tests: start/stop the server binary,
//! a minimal exact RESP client, and small helpers for the on-disk layout.
#![allow(dead_code, clippy::unwrap_used)]

use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const MIB8: usize = 8 * 1024 * 1024;

pub fn zdb_bin() -> &'static str {
    env!("CARGO_BIN_EXE_zdb")
}

// ---------------------------------------------------------------------------
// RESP replies
// ---------------------------------------------------------------------------

#[derive(Clone, PartialEq, Eq)]
pub enum Reply {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reply::Simple(s) => write!(f, "+{s}"),
            Reply::Error(s) => write!(f, "-{s}"),
            Reply::Int(i) => write!(f, ":{i}"),
            Reply::Bulk(None) => write!(f, "$-1"),
            Reply::Bulk(Some(b)) => {
                if b.len() > 80 {
                    write!(
                        f,
                        "${}<{:?}...>",
                        b.len(),
                        String::from_utf8_lossy(&b[..80])
                    )
                } else {
                    write!(f, "${:?}", String::from_utf8_lossy(b))
                }
            }
            Reply::Array(None) => write!(f, "*-1"),
            Reply::Array(Some(v)) => f.debug_list().entries(v.iter()).finish(),
        }
    }
}

impl Reply {
    pub fn ok() -> Reply {
        Reply::Simple("OK".into())
    }
    pub fn simple(s: &str) -> Reply {
        Reply::Simple(s.into())
    }
    pub fn err(s: &str) -> Reply {
        Reply::Error(s.into())
    }
    pub fn bulk(b: impl AsRef<[u8]>) -> Reply {
        Reply::Bulk(Some(b.as_ref().to_vec()))
    }
    pub fn nil() -> Reply {
        Reply::Bulk(None)
    }
    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            Reply::Bulk(Some(b)) => b.clone(),
            other => panic!("expected a bulk string, got {other:?}"),
        }
    }
    pub fn text(&self) -> String {
        match self {
            Reply::Bulk(Some(b)) => String::from_utf8_lossy(b).into_owned(),
            Reply::Simple(s) => s.clone(),
            other => panic!("expected a string reply, got {other:?}"),
        }
    }
    pub fn int(&self) -> i64 {
        match self {
            Reply::Int(i) => *i,
            other => panic!("expected an integer, got {other:?}"),
        }
    }
    pub fn array(&self) -> Vec<Reply> {
        match self {
            Reply::Array(Some(v)) => v.clone(),
            other => panic!("expected an array, got {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------

pub struct Client {
    pub reader: BufReader<TcpStream>,
    pub stream: TcpStream,
}

pub fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

impl Client {
    pub fn connect(port: u16) -> io::Result<Client> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(15)))?;
        stream.set_write_timeout(Some(Duration::from_secs(15)))?;
        stream.set_nodelay(true)?;
        let reader = BufReader::new(stream.try_clone()?);
        Ok(Client { reader, stream })
    }

    pub fn set_timeout(&self, d: Duration) {
        self.stream.set_read_timeout(Some(d)).unwrap();
    }

    /// Sends one command and reads its reply; panics on I/O failure.
    pub fn cmd(&mut self, args: &[&[u8]]) -> Reply {
        self.try_cmd(args)
            .unwrap_or_else(|e| panic!("command {:?}: {e}", show_args(args)))
    }

    /// Same as `cmd` but with `&str` arguments.
    pub fn c(&mut self, args: &[&str]) -> Reply {
        let v: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.cmd(&v)
    }

    pub fn try_cmd(&mut self, args: &[&[u8]]) -> io::Result<Reply> {
        self.send(args)?;
        self.read_reply()
    }

    pub fn send(&mut self, args: &[&[u8]]) -> io::Result<()> {
        self.stream.write_all(&encode(args))
    }

    pub fn send_raw(&mut self, raw: &[u8]) -> io::Result<()> {
        self.stream.write_all(raw)
    }

    pub fn read_reply(&mut self) -> io::Result<Reply> {
        read_reply(&mut self.reader)
    }

    /// True if the server closed the connection (EOF or reset) within `wait`.
    pub fn is_closed(&mut self, wait: Duration) -> bool {
        self.stream.set_read_timeout(Some(wait)).unwrap();
        let mut buf = [0u8; 64];
        let r = self.reader.read(&mut buf);
        self.stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        match r {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => matches!(
                e.kind(),
                io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
            ),
        }
    }

    pub fn shutdown(&self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    // Convenience wrappers --------------------------------------------------
    pub fn set(&mut self, k: &[u8], v: &[u8]) -> Reply {
        self.cmd(&[b"SET", k, v])
    }
    pub fn get(&mut self, k: &[u8]) -> Reply {
        self.cmd(&[b"GET", k])
    }
    pub fn del(&mut self, k: &[u8]) -> Reply {
        self.cmd(&[b"DEL", k])
    }
    pub fn dbsize(&mut self) -> i64 {
        self.c(&["DBSIZE"]).int()
    }
    pub fn select(&mut self, ns: &str) {
        assert_eq!(self.c(&["SELECT", ns]), Reply::ok(), "SELECT {ns}");
    }
    /// NSINFO as a key → value map.
    pub fn nsinfo(&mut self, ns: &str) -> Vec<(String, String)> {
        parse_info(&self.c(&["NSINFO", ns]).text())
    }
}

pub fn show_args(args: &[&[u8]]) -> Vec<String> {
    args.iter()
        .map(|a| {
            if a.len() > 60 {
                format!("<{} bytes>", a.len())
            } else {
                String::from_utf8_lossy(a).into_owned()
            }
        })
        .collect()
}

pub fn parse_info(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

pub fn info_get(info: &[(String, String)], key: &str) -> Option<String> {
    info.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
}

fn read_line<R: BufRead>(r: &mut R) -> io::Result<Vec<u8>> {
    let mut line = Vec::new();
    let n = r.read_until(b'\n', &mut line)?;
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed by server",
        ));
    }
    if !line.ends_with(b"\r\n") {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("line without CRLF: {:?}", String::from_utf8_lossy(&line)),
        ));
    }
    line.truncate(line.len() - 2);
    Ok(line)
}

pub fn read_reply<R: BufRead>(r: &mut R) -> io::Result<Reply> {
    let line = read_line(r)?;
    let bad = |l: &[u8]| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("bad reply line {:?}", String::from_utf8_lossy(l)),
        )
    };
    if line.is_empty() {
        return Err(bad(&line));
    }
    let rest = String::from_utf8_lossy(&line[1..]).into_owned();
    match line[0] {
        b'+' => Ok(Reply::Simple(rest)),
        b'-' => Ok(Reply::Error(rest)),
        b':' => rest.parse().map(Reply::Int).map_err(|_| bad(&line)),
        b'$' => {
            let n: i64 = rest.parse().map_err(|_| bad(&line))?;
            if n < 0 {
                return Ok(Reply::Bulk(None));
            }
            let mut buf = vec![0u8; n as usize + 2];
            r.read_exact(&mut buf)?;
            if &buf[n as usize..] != b"\r\n" {
                return Err(bad(&line));
            }
            buf.truncate(n as usize);
            Ok(Reply::Bulk(Some(buf)))
        }
        b'*' => {
            let n: i64 = rest.parse().map_err(|_| bad(&line))?;
            if n < 0 {
                return Ok(Reply::Array(None));
            }
            let mut v = Vec::with_capacity(n as usize);
            for _ in 0..n {
                v.push(read_reply(r)?);
            }
            Ok(Reply::Array(Some(v)))
        }
        _ => Err(bad(&line)),
    }
}

// ---------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------

pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Owns the temp dir (unless an explicit root is given) and the child process.
pub struct Server {
    pub child: Option<Child>,
    pub port: u16,
    pub root: PathBuf,
    pub data: PathBuf,
    pub index: PathBuf,
    pub args: Vec<String>,
    pub envs: Vec<(String, String)>,
    pub log: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    starts: u32,
}

impl Server {
    /// Fresh temp dir, `--data ROOT/data --index ROOT/index` plus `args`.
    pub fn start(args: &[&str]) -> Server {
        Self::start_env(args, &[])
    }

    pub fn start_env(args: &[&str], envs: &[(&str, &str)]) -> Server {
        let tmp = tempfile::Builder::new()
            .prefix("zdbtest")
            .tempdir()
            .unwrap();
        let root = tmp.path().to_path_buf();
        let mut s = Self::new_at(&root, args, envs);
        s._tmp = Some(tmp);
        s.launch();
        s
    }

    /// Use an existing root dir (`ROOT/data`, `ROOT/index`); the caller owns it.
    pub fn start_at(root: &Path, args: &[&str]) -> Server {
        let mut s = Self::new_at(root, args, &[]);
        s.launch();
        s
    }

    /// Build without launching (to test startup failures, or custom roots).
    pub fn new_at(root: &Path, args: &[&str], envs: &[(&str, &str)]) -> Server {
        Server {
            child: None,
            port: 0,
            root: root.to_path_buf(),
            data: root.join("data"),
            index: root.join("index"),
            args: args.iter().map(|s| s.to_string()).collect(),
            envs: envs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            log: root.join("zdb.log"),
            _tmp: None,
            starts: 0,
        }
    }

    fn spawn(&mut self) -> Child {
        self.starts += 1;
        let logf = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut cmd = Command::new(zdb_bin());
        cmd.arg("--listen")
            .arg("127.0.0.1")
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--data")
            .arg(&self.data)
            .arg("--index")
            .arg(&self.index)
            .args(&self.args)
            .env_remove("ZDB_ADMIN")
            .stdin(Stdio::null())
            .stdout(logf.try_clone().unwrap())
            .stderr(logf);
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        cmd.spawn().expect("spawn zdb")
    }

    /// Start (or restart) the process and wait for PING. Retries with another
    /// port if the process dies before answering (port race).
    pub fn launch(&mut self) {
        for attempt in 0..3 {
            self.port = free_port();
            let mut child = self.spawn();
            match wait_ready(self.port, &mut child, Duration::from_secs(10)) {
                Ok(()) => {
                    self.child = Some(child);
                    return;
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    if attempt == 2 {
                        panic!(
                            "zdb did not become ready: {e}\nargs: {:?}\nlog:\n{}",
                            self.args,
                            self.log_text()
                        );
                    }
                }
            }
        }
    }

    /// Kill (SIGKILL) and start again on the same dirs, args and port (for peers that
    /// reconnect to it).
    pub fn restart_same_port(&mut self) {
        self.kill();
        let mut child = self.spawn();
        match wait_ready(self.port, &mut child, Duration::from_secs(10)) {
            Ok(()) => self.child = Some(child),
            Err(e) => panic!(
                "zdb did not come back on port {}: {e}\n{}",
                self.port,
                self.log_text()
            ),
        }
    }

    /// Launch and return the exit status if the process exits within `wait`
    /// (used for "must refuse to start" tests). Returns None if it is serving.
    pub fn launch_expect_exit(&mut self, wait: Duration) -> Option<ExitStatus> {
        self.port = free_port();
        let mut child = self.spawn();
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            if let Ok(Some(st)) = child.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        self.child = Some(child);
        None
    }

    pub fn client(&self) -> Client {
        Client::connect(self.port).unwrap()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server not running").id()
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for a clean exit (falls back to SIGKILL after 10 s).
    pub fn term(&mut self) -> Option<ExitStatus> {
        let mut c = self.child.take()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = c.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        let _ = c.wait();
        None
    }

    /// Wait for the process to exit by itself.
    pub fn wait_exit(&mut self, wait: Duration) -> Option<ExitStatus> {
        let c = self.child.as_mut()?;
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            if let Ok(Some(st)) = c.try_wait() {
                self.child = None;
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Kill (SIGKILL) and start again on the same dirs with the same args.
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    /// Graceful stop (SIGTERM) and start again.
    pub fn restart_graceful(&mut self) {
        self.term();
        self.launch();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            let log = self.log_text();
            let tail: String = log
                .lines()
                .rev()
                .take(40)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n");
            eprintln!("---- zdb log tail ({}) ----\n{tail}", self.log.display());
        }
    }
}

fn wait_ready(port: u16, child: &mut Child, wait: Duration) -> Result<(), String> {
    let deadline = Instant::now() + wait;
    loop {
        if let Ok(Some(st)) = child.try_wait() {
            return Err(format!("process exited: {st}"));
        }
        if let Ok(mut c) = Client::connect(port) {
            c.set_timeout(Duration::from_millis(500));
            if matches!(c.try_cmd(&[b"PING"]), Ok(Reply::Simple(ref s)) if s == "PONG") {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            return Err("timeout waiting for PING".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------
// Misc helpers
// ---------------------------------------------------------------------------

/// CRC-32C (Castagnoli) with init 0 and no final xor, as stored on disk.
pub fn crc32c_zdb(data: &[u8]) -> u32 {
    let mut crc: u32 = 0;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    crc
}

pub fn sha1_hex(s: &str) -> String {
    use sha1::{Digest, Sha1};
    hex::encode(Sha1::digest(s.as_bytes()))
}

/// Deterministic pseudo-random bytes (xorshift), seeded.
pub fn pseudo_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

pub fn seq_id(n: u64) -> Vec<u8> {
    n.to_le_bytes().to_vec()
}

/// Copy a directory tree (files and dirs), making copies writable.
pub fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        let d = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&p, &d);
        } else {
            std::fs::copy(&p, &d).unwrap();
            let mut perm = std::fs::metadata(&d).unwrap().permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            perm.set_readonly(false);
            std::fs::set_permissions(&d, perm).unwrap();
        }
    }
}

/// Highest N such that `dir/<prefix>N` exists (files numbered from 0).
pub fn last_file(dir: &Path, prefix: &str) -> Option<u32> {
    let mut n = None;
    let mut i = 0;
    while dir.join(format!("{prefix}{i}")).exists() {
        n = Some(i);
        i += 1;
    }
    n
}

/// One data-file entry, parsed from disk (reference §8.3).
#[derive(Debug, Clone)]
pub struct DataEntry {
    pub offset: u64,
    pub end: u64,
    pub key: Vec<u8>,
    pub flags: u8,
    pub value_len: u32,
}

/// Walk a data file's entries (stops at the first torn one).
pub fn parse_data_file(path: &Path) -> Vec<DataEntry> {
    let raw = std::fs::read(path).unwrap();
    let mut out = Vec::new();
    let mut off = 28usize;
    while off + 18 <= raw.len() {
        let idlen = raw[off] as usize;
        let dlen = u32::from_le_bytes(raw[off + 1..off + 5].try_into().unwrap());
        let flags = raw[off + 13];
        let end = off + 18 + idlen + dlen as usize;
        if end > raw.len() {
            break;
        }
        out.push(DataEntry {
            offset: off as u64,
            end: end as u64,
            key: raw[off + 18..off + 18 + idlen].to_vec(),
            flags,
            value_len: dlen,
        });
        off = end;
    }
    out
}

/// One index-file entry (reference §8.2).
#[derive(Debug, Clone)]
pub struct IndexEntry {
    pub offset: u64,
    pub end: u64,
    pub key: Vec<u8>,
    pub data_offset: u32,
    pub length: u32,
    pub flags: u8,
    pub dataid: u32,
}

pub fn parse_index_file(path: &Path) -> Vec<IndexEntry> {
    let raw = std::fs::read(path).unwrap();
    let mut out = Vec::new();
    let mut off = 29usize;
    let u32at = |o: usize| u32::from_le_bytes(raw[o..o + 4].try_into().unwrap());
    while off + 34 <= raw.len() {
        let idlen = raw[off] as usize;
        let end = off + 34 + idlen;
        if end > raw.len() {
            break;
        }
        out.push(IndexEntry {
            offset: off as u64,
            end: end as u64,
            key: raw[off + 34..end].to_vec(),
            data_offset: u32at(off + 1),
            length: u32at(off + 5),
            flags: raw[off + 13],
            dataid: u32at(off + 14),
        });
        off = end;
    }
    out
}

pub fn truncate_file(path: &Path, len: u64) {
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.set_len(len).unwrap();
}

pub fn append_file(path: &Path, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(bytes).unwrap();
}

/// Paths of `dir` entries (non-recursive) whose name starts with `prefix`.
pub fn files_with_prefix(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
            .map(|e| e.path())
            .collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

/// True if `needle` occurs anywhere in `hay`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// Skip-or-fail rule for tests that need privileges or tools.
pub fn skip_or_fail(reason: &str) {
    if std::env::var("CI").map(|v| v == "true").unwrap_or(false) {
        panic!("required capability missing under CI=true: {reason}");
    }
    eprintln!("SKIPPED: {reason}");
}
