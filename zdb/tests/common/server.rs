//! Start, restart and stop the zdb binary on a fresh folder and a free port; its log tail is
//! printed when a test fails.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::disk::ADMIN;
use super::resp::{Client, Reply};

pub fn zdb_bin() -> &'static str {
    env!("CARGO_BIN_EXE_zdb")
}
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
            if matches!(c.try_cmd(&[b"PING"]), Ok(Reply::Simple(ref s)) if s == "PONG")
                && listens(child.id(), port)
            {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            return Err("timeout waiting for PING".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether process `pid` holds the socket listening on 127.0.0.1:`port`. Another test's zdb
/// that took the free port first answers PING too, while ours has yet to fail its bind and
/// exit (then `launch` retries on another port).
fn listens(pid: u32, port: u16) -> bool {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let local = format!(":{port:04X}");
    let sockets: Vec<String> = table
        .lines()
        .skip(1)
        .filter_map(|l| match l.split_whitespace().collect::<Vec<_>>()[..] {
            // local address, state (0A: listening), inode
            [_, addr, _, "0A", _, _, _, _, _, inode, ..] if addr.ends_with(&local) => {
                Some(format!("socket:[{inode}]"))
            }
            _ => None,
        })
        .collect();
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| {
            std::fs::read_link(e.path()).is_ok_and(|l| sockets.iter().any(|s| l == Path::new(s)))
        })
}

/// A client logged in with [`ADMIN`], the admin password tests start servers with.
pub fn admin(s: &Server) -> Client {
    let mut c = s.client();
    assert_eq!(c.c(&["AUTH", ADMIN]), Reply::ok());
    c
}
