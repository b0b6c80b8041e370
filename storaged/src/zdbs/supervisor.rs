//! Starting, adopting and watching one zdb server.
//!
//! Layout in a pool: `<pool>/zdb` is a NOCOW btrfs subvolume holding `data/`, `index/`, `admin`
//! (the admin password, mode 0600, passed to zdb with `--admin-file`, never on a command line),
//! `zdb.pid` and `zdb.log`. The server runs in its own process group so it outlives storaged;
//! a restarted storaged adopts a live server (pid alive and running zdb on our socket, and the
//! socket answers PING after AUTH). zdb holds an exclusive lock on both roots, so a second
//! server on the same pool can never start.

use super::{Admin, ZdbError};
use crate::system::System;
use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How to run the zdb server of one pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZdbSpec {
    /// Disk name.
    pub disk: String,
    /// zdb binary.
    pub binary: PathBuf,
    /// `<pool>/zdb`.
    pub root: PathBuf,
    /// Unix socket.
    pub socket: PathBuf,
    /// `--datasize` in bytes.
    pub datasize: u64,
    /// `--listen`.
    pub listen: String,
    /// `--port`.
    pub port: u16,
}

impl ZdbSpec {
    fn admin_file(&self) -> PathBuf {
        self.root.join("admin")
    }
    fn pid_file(&self) -> PathBuf {
        self.root.join("zdb.pid")
    }
    /// The server's log file.
    pub fn log_file(&self) -> PathBuf {
        self.root.join("zdb.log")
    }
}

fn io_err(disk: &str, what: &str, e: std::io::Error) -> ZdbError {
    ZdbError::Start {
        disk: disk.into(),
        message: format!("{what}: {e}"),
    }
}

/// Creates the NOCOW `zdb` subvolume, its folders and the admin password file when missing.
pub fn ensure_layout(sys: &dyn System, spec: &ZdbSpec) -> Result<(), crate::Error> {
    if !spec.root.exists() {
        sys.subvolume_create(&spec.root)?;
        // Before any file exists: data and index files inherit NOCOW from their folders.
        sys.set_nocow(&spec.root)?;
    }
    for d in ["data", "index"] {
        let p = spec.root.join(d);
        std::fs::create_dir_all(&p).map_err(crate::Error::io("mkdir", &p))?;
    }
    let f = spec.admin_file();
    if !f.exists() {
        let pw = nodeutil::random::hex(24);
        nodeutil::fs::write_durable(&f, format!("{pw}\n").as_bytes(), 0o600)
            .map_err(|e| crate::Error::state(&f)(e.into()))?;
    }
    Ok(())
}

/// A supervised zdb server.
#[derive(Debug)]
pub struct ZdbProc {
    /// How it runs.
    pub spec: ZdbSpec,
    /// Its pid.
    pub pid: u32,
    child: Option<Child>,
    password: String,
    /// Whether this storaged adopted it (true) or started it (false).
    pub adopted: bool,
}

/// Whether process `pid` is alive (not a zombie) and runs zdb with our socket.
fn runs_zdb(pid: u32, socket: &Path) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat.rsplit_once(") ").and_then(|(_, r)| r.chars().next());
    if matches!(state, None | Some('Z') | Some('X')) {
        return false;
    }
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let sock = socket.as_os_str().as_encoded_bytes();
    cmdline.split(|b| *b == 0).any(|a| a == sock)
}

async fn answers(socket: &Path, password: &str) -> bool {
    match Admin::connect(socket, password).await {
        Ok(mut a) => a.ping().await.is_ok(),
        Err(_) => false,
    }
}

/// The last error zdb logged (`Error: ...` plus its first cause), else its last line.
fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    match lines.iter().rposition(|l| l.starts_with("Error:")) {
        Some(i) => {
            let mut msg = lines.get(i).copied().unwrap_or_default().to_string();
            if lines.get(i + 1) == Some(&"Caused by:")
                && let Some(cause) = lines.get(i + 2)
            {
                msg.push_str(": ");
                msg.push_str(cause);
            }
            msg
        }
        None => lines.last().copied().unwrap_or_default().to_string(),
    }
}

impl ZdbProc {
    /// Adopts the server already running for `spec`, or starts one.
    pub async fn adopt_or_start(spec: ZdbSpec, sys: &dyn System) -> Result<ZdbProc, ZdbError> {
        let password = std::fs::read_to_string(spec.admin_file())
            .map_err(|e| io_err(&spec.disk, "read admin password", e))?
            .lines()
            .next()
            .unwrap_or_default()
            .to_string();
        let old_pid = std::fs::read_to_string(spec.pid_file())
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok());
        if let Some(pid) = old_pid
            && runs_zdb(pid, &spec.socket)
        {
            for _ in 0..20 {
                if answers(&spec.socket, &password).await {
                    tracing::info!(disk = %spec.disk, pid, "adopted running zdb");
                    return Ok(ZdbProc {
                        spec,
                        pid,
                        child: None,
                        password,
                        adopted: true,
                    });
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            tracing::warn!(disk = %spec.disk, pid, "zdb does not answer, restarting it");
            terminate(sys, pid, &spec.socket).await;
        }
        Self::start(spec, password).await
    }

    async fn start(spec: ZdbSpec, password: String) -> Result<ZdbProc, ZdbError> {
        let disk = spec.disk.clone();
        let _ = std::fs::remove_file(&spec.socket);
        if let Some(parent) = spec.socket.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io_err(&disk, "create run folder", e))?;
        }
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(spec.log_file())
            .map_err(|e| io_err(&disk, "open log", e))?;
        let log2 = log.try_clone().map_err(|e| io_err(&disk, "open log", e))?;
        let mut cmd = Command::new(&spec.binary);
        cmd.arg("--socket")
            .arg(&spec.socket)
            .arg("--data")
            .arg(spec.root.join("data"))
            .arg("--index")
            .arg(spec.root.join("index"))
            .arg("--datasize")
            .arg(spec.datasize.to_string())
            .arg("--admin-file")
            .arg(spec.admin_file())
            .arg("--dualnet")
            .arg("--listen")
            .arg(&spec.listen)
            .arg("--port")
            .arg(spec.port.to_string())
            .env_remove("ZDB_ADMIN")
            .env_remove("RUST_BACKTRACE")
            // Its output goes to zdb.log: plain text (or JSON when storaged logs JSON).
            .env(nodeutil::log::ENV, nodeutil::log::for_children())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            // Own process group: survives storaged and its terminal's signals.
            .process_group(0);
        let mut child = cmd
            .spawn()
            .map_err(|e| io_err(&disk, &format!("spawn {}", spec.binary.display()), e))?;
        let pid = child.id();
        nodeutil::fs::write_durable(&spec.pid_file(), format!("{pid}\n").as_bytes(), 0o644)
            .map_err(|e| io_err(&disk, "write pid file", e.into()))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(ZdbError::Start {
                    disk,
                    message: format!("exited ({status}): {}", log_tail(&spec.log_file())),
                });
            }
            if answers(&spec.socket, &password).await {
                tracing::info!(disk = %disk, pid, port = spec.port, "started zdb");
                return Ok(ZdbProc {
                    spec,
                    pid,
                    child: Some(child),
                    password,
                    adopted: false,
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        Err(ZdbError::Start {
            disk,
            message: "no answer on its socket within 10 s".into(),
        })
    }

    /// Whether the process is gone (reaping it when it is our child).
    pub fn exited(&mut self) -> bool {
        match &mut self.child {
            Some(c) => !matches!(c.try_wait(), Ok(None)),
            None => !runs_zdb(self.pid, &self.spec.socket),
        }
    }

    /// An authenticated admin connection.
    pub async fn admin(&self) -> Result<Admin, ZdbError> {
        Admin::connect(&self.spec.socket, &self.password).await
    }

    /// Whether it answers PING.
    pub async fn healthy(&self) -> bool {
        answers(&self.spec.socket, &self.password).await
    }

    /// Restarts a dead or hung server in place.
    pub async fn restart(&mut self, sys: &dyn System) -> Result<(), ZdbError> {
        if !self.exited() {
            terminate(sys, self.pid, &self.spec.socket).await;
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.wait();
        }
        let fresh = Self::start(self.spec.clone(), self.password.clone()).await?;
        *self = fresh;
        Ok(())
    }

    /// Stops the server (SIGTERM, then SIGKILL after 5 s).
    pub async fn stop(mut self, sys: &dyn System) {
        terminate(sys, self.pid, &self.spec.socket).await;
        if let Some(mut c) = self.child.take() {
            let _ = c.wait();
        }
    }
}

async fn terminate(sys: &dyn System, pid: u32, socket: &Path) {
    let _ = sys.kill(pid, "TERM");
    for _ in 0..50 {
        if !runs_zdb(pid, socket) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = sys.kill(pid, "KILL");
}
