//! One zdb server process: its layout in a pool, starting it, adopting it after a storaged
//! restart, asking it whether it serves, stopping it.
//!
//! Layout in a pool: `<pool>/zdb` is a NOCOW btrfs subvolume holding `data/`, `index/`, `admin`
//! (the admin password, mode 0600, passed to zdb with `--admin-file`, never on a command line),
//! `zdb.pid` and `zdb.log`. The server runs in its own process group so it outlives storaged;
//! a restarted storaged adopts a live one (pid alive and running zdb on our socket) whatever it
//! answers: a server replaying a big namespace is loading, not dead ([`super::watch`] decides).
//! zdb holds an exclusive lock on both roots, so a second server on one pool can never start.
//!
//! Starting only spawns the process: nothing here waits for it to answer.

use super::{Admin, ZdbError};
use crate::system::System;
use bus::api::Secret;
use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

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
    /// Its hand-over socket (`--handover`): `<run>/zdb-<disk>.handover`, next to its socket.
    pub fn handover_socket(&self) -> PathBuf {
        self.socket.with_extension("handover")
    }
}

fn io_err(disk: &str, what: &str, e: std::io::Error) -> ZdbError {
    ZdbError::Start {
        disk: disk.into(),
        message: format!("{what}: {e}"),
    }
}

/// Creates the NOCOW `zdb` subvolume, its folders and the admin password file when missing.
/// Blocking: file and btrfs work on the pool.
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

/// Where and how to reach a server's admin interface, cheap to clone out of the node's state
/// so that nothing waits for zdb under a lock.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Unix socket.
    pub socket: PathBuf,
    password: Secret,
}

/// What a server said when asked whether it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// It answered `AUTH` and `PING`.
    Up,
    /// It listens but is still loading its namespaces (`-LOADING ...`, as redis says it).
    Loading(String),
    /// No usable answer (not listening, refused, timed out); why.
    Silent(String),
}

/// Longest wait for one health answer.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Whether an error reply means "loading": zdb answers `-LOADING <progress>` while it replays
/// its namespaces.
fn is_loading(e: &ZdbError) -> Option<String> {
    match e {
        ZdbError::Refused { message, .. } if message.starts_with("LOADING") => {
            Some(message.clone())
        }
        _ => None,
    }
}

impl Endpoint {
    /// An authenticated admin connection.
    pub async fn admin(&self) -> Result<Admin, ZdbError> {
        Admin::connect(&self.socket, self.password.expose()).await
    }

    /// Asks the server whether it serves (AUTH + PING, within [`PROBE_TIMEOUT`]).
    pub async fn probe(&self) -> Answer {
        let ask = async {
            let mut a = self.admin().await?;
            a.ping().await
        };
        match tokio::time::timeout(PROBE_TIMEOUT, ask).await {
            Ok(Ok(())) => Answer::Up,
            Ok(Err(e)) => match is_loading(&e) {
                Some(progress) => Answer::Loading(progress),
                None => Answer::Silent(e.to_string()),
            },
            Err(_) => Answer::Silent(format!("no answer within {PROBE_TIMEOUT:?}")),
        }
    }
}

/// A zdb server process storaged started or adopted. Its `Debug` never shows the password.
#[derive(Debug)]
pub struct ZdbProc {
    /// How it runs.
    pub spec: ZdbSpec,
    /// Its pid.
    pub pid: u32,
    child: Option<Child>,
    password: Secret,
    /// Whether this storaged adopted it (true) or started it (false).
    pub adopted: bool,
}

/// Whether process `pid` is alive (not a zombie) and runs zdb with our socket.
pub fn runs_zdb(pid: u32, socket: &Path) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat.rsplit_once(") ").and_then(|(_, r)| r.chars().next());
    if matches!(state, None | Some('Z') | Some('X')) {
        return false;
    }
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let sock = socket.as_os_str().as_encoded_bytes();
    cmdline.split(|b| *b == 0).any(|a| a == sock)
}

/// The last error zdb logged (`Error: ...` plus its first cause), else its last line.
pub fn log_tail(path: &Path) -> String {
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

fn read_password(spec: &ZdbSpec) -> Result<Secret, ZdbError> {
    Ok(Secret(
        std::fs::read_to_string(spec.admin_file())
            .map_err(|e| io_err(&spec.disk, "read admin password", e))?
            .lines()
            .next()
            .unwrap_or_default()
            .to_string(),
    ))
}

impl ZdbProc {
    /// Adopts the server already running for `spec` (pid file names a live zdb on our socket),
    /// or starts one. Blocking (files, fork/exec); never waits for the server to answer.
    pub fn adopt_or_start(spec: ZdbSpec) -> Result<ZdbProc, ZdbError> {
        let password = read_password(&spec)?;
        let old_pid = std::fs::read_to_string(spec.pid_file())
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok());
        if let Some(pid) = old_pid
            && runs_zdb(pid, &spec.socket)
        {
            tracing::info!(disk = %spec.disk, pid, "adopted running zdb");
            return Ok(ZdbProc {
                spec,
                pid,
                child: None,
                password,
                adopted: true,
            });
        }
        Self::start(spec, password)
    }

    fn start(spec: ZdbSpec, password: Secret) -> Result<ZdbProc, ZdbError> {
        let disk = spec.disk.clone();
        let _ = std::fs::remove_file(&spec.socket);
        let _ = std::fs::remove_file(spec.handover_socket());
        if let Some(parent) = spec.socket.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io_err(&disk, "create run folder", e))?;
        }
        Self::spawn(spec, password, false)
    }

    /// Starts a server for `spec` (its binary may be new) that takes over the listeners and
    /// client connections of the one running now (`--take-over`, see zdb's `handover`). The
    /// old one exits once the new one is ready; if the new one fails first, the old one serves
    /// on. Blocking (fork/exec); the pid file is written by the caller on success.
    pub fn take_over(&self, spec: ZdbSpec) -> Result<ZdbProc, ZdbError> {
        Self::spawn(spec, self.password.clone(), true)
    }

    /// Whether it was started with a hand-over socket (a server started by an older storaged
    /// was not, and cannot be upgraded live).
    pub fn can_hand_over(&self) -> bool {
        let cmdline = std::fs::read(format!("/proc/{}/cmdline", self.pid)).unwrap_or_default();
        cmdline.split(|b| *b == 0).any(|a| a == b"--handover")
    }

    /// Records its pid in the pool's pid file (after a take-over).
    pub fn write_pid_file(&self) -> Result<(), ZdbError> {
        nodeutil::fs::write_durable(
            &self.spec.pid_file(),
            format!("{}\n", self.pid).as_bytes(),
            0o644,
        )
        .map_err(|e| io_err(&self.spec.disk, "write pid file", e.into()))
    }

    fn spawn(spec: ZdbSpec, password: Secret, take_over: bool) -> Result<ZdbProc, ZdbError> {
        let disk = spec.disk.clone();
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
            .arg("--handover")
            .arg(spec.handover_socket());
        if take_over {
            cmd.arg("--take-over").arg(spec.handover_socket());
        }
        cmd.env_remove("ZDB_ADMIN")
            .env_remove("RUST_BACKTRACE")
            // Its output goes to zdb.log: plain text (or JSON when storaged logs JSON).
            .env(nodeutil::log::ENV, nodeutil::log::for_children())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            // Own process group: survives storaged and its terminal's signals.
            .process_group(0);
        let child = cmd
            .spawn()
            .map_err(|e| io_err(&disk, &format!("spawn {}", spec.binary.display()), e))?;
        let pid = child.id();
        let z = ZdbProc {
            spec,
            pid,
            child: Some(child),
            password,
            adopted: false,
        };
        if take_over {
            tracing::info!(disk = %disk, pid, "started zdb taking over");
        } else {
            z.write_pid_file()?;
            tracing::info!(disk = %disk, pid, port = z.spec.port, "started zdb");
        }
        Ok(z)
    }

    /// Whether the process is gone (reaping it when it is our child). Never blocks.
    pub fn exited(&mut self) -> bool {
        match &mut self.child {
            Some(c) => !matches!(c.try_wait(), Ok(None)),
            None => !runs_zdb(self.pid, &self.spec.socket),
        }
    }

    /// Where to reach it.
    pub fn endpoint(&self) -> Endpoint {
        Endpoint {
            socket: self.spec.socket.clone(),
            password: self.password.clone(),
        }
    }

    /// Why it exited, from its log, when it did.
    pub fn exit_reason(&mut self) -> Option<String> {
        let status = self
            .child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten());
        if !self.exited() {
            return None;
        }
        let tail = log_tail(&self.spec.log_file());
        Some(match status {
            Some(s) => format!("exited ({s}): {tail}"),
            None => format!("exited: {tail}"),
        })
    }

    /// Stops it (SIGTERM, SIGKILL after 5 s) and reaps it. Waits: call it off any lock.
    pub async fn stop(mut self, sys: Arc<dyn System>) {
        terminate(sys, self.pid, &self.spec.socket).await;
        if let Some(mut c) = self.child.take() {
            // Gone after SIGKILL at the latest; try_wait until reaped so no thread blocks.
            for _ in 0..50 {
                if !matches!(c.try_wait(), Ok(None)) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// SIGTERM, then SIGKILL once 5 s have passed (signals sent from a blocking thread: the
/// system's `kill` may run a command).
pub async fn terminate(sys: Arc<dyn System>, pid: u32, socket: &Path) {
    let signal = |sig: &'static str| {
        let sys = sys.clone();
        tokio::task::spawn_blocking(move || {
            let _ = sys.kill(pid, sig);
        })
    };
    let _ = signal("TERM").await;
    for _ in 0..50 {
        if !runs_zdb(pid, socket) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = signal("KILL").await;
}

/// A figure that grows while process `pid` works: CPU ticks plus bytes it read and wrote
/// (`/proc/<pid>/stat` and `/proc/<pid>/io`). A server replaying its index before it listens
/// moves it; a stuck one does not.
pub fn activity(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(") ")?;
    // Fields after the name: state is field 3, utime 14, stime 15 (1-based in proc(5)).
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap_or_default();
    let bytes: u64 = io
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            matches!(k, "rchar" | "wchar")
                .then(|| v.trim().parse::<u64>().ok())
                .flatten()
        })
        .sum();
    Some(ticks.saturating_add(bytes))
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn debug_never_shows_the_admin_password() {
        let spec = ZdbSpec {
            disk: "d".into(),
            binary: "zdb".into(),
            root: "/nonexistent".into(),
            socket: "/nonexistent.sock".into(),
            datasize: 1,
            listen: "::".into(),
            port: 1,
        };
        let p = ZdbProc {
            spec,
            pid: 1,
            child: None,
            password: Secret("0123456789abcdef-admin".into()),
            adopted: true,
        };
        let shown = format!("{p:?} {:?}", p.endpoint());
        assert!(!shown.contains("0123456789abcdef-admin"), "{shown}");
    }

    /// A zdb stand-in on a unix socket: answers each request with the next of `replies`.
    async fn fake_zdb(socket: &Path, replies: &'static [&'static str]) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::UnixListener::bind(socket).unwrap_or_else(|e| panic!("bind: {e}"));
        tokio::spawn(async move {
            while let Ok((mut c, _)) = l.accept().await {
                let mut buf = [0u8; 256];
                for r in replies {
                    if c.read(&mut buf).await.unwrap_or(0) == 0 {
                        break;
                    }
                    let _ = c.write_all(r.as_bytes()).await;
                }
            }
        });
    }

    #[tokio::test]
    async fn a_loading_answer_is_told_apart_from_silence() {
        let d = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let endpoint = |name: &str| Endpoint {
            socket: d.path().join(name),
            password: Secret("pw".into()),
        };
        fake_zdb(
            &d.path().join("loading.sock"),
            &["-LOADING namespace 3/7\r\n"],
        )
        .await;
        fake_zdb(
            &d.path().join("late.sock"),
            &["+OK\r\n", "-LOADING 10%\r\n"],
        )
        .await;
        fake_zdb(&d.path().join("up.sock"), &["+OK\r\n", "+PONG\r\n"]).await;
        fake_zdb(&d.path().join("refuses.sock"), &["-Access denied\r\n"]).await;
        assert_eq!(
            endpoint("loading.sock").probe().await,
            Answer::Loading("LOADING namespace 3/7".into())
        );
        assert_eq!(
            endpoint("late.sock").probe().await,
            Answer::Loading("LOADING 10%".into())
        );
        assert_eq!(endpoint("up.sock").probe().await, Answer::Up);
        assert!(matches!(
            endpoint("refuses.sock").probe().await,
            Answer::Silent(_)
        ));
        assert!(matches!(
            endpoint("absent.sock").probe().await,
            Answer::Silent(_)
        ));
    }

    #[test]
    fn activity_moves_while_a_process_works() {
        let me = std::process::id();
        let a = activity(me).unwrap_or_default();
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_add(i ^ (x >> 3));
        }
        std::fs::write("/dev/null", x.to_le_bytes()).unwrap_or_default();
        assert!(activity(me).unwrap_or_default() > a);
        assert_eq!(activity(u32::MAX), None);
    }
}
