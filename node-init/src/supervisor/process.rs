//! The supervisor's effects on the system, behind [`Processes`] so its loop is tested with a
//! fake: starting a daemon (own process group, output into its rotated log, its exit reported
//! by the [`reaper`](super::reaper)), watching an adopted one (a pidfd: it is not our child),
//! signalling, and the readiness tests.

use super::logs;
use super::reaper::{self, Exit};
use super::service::{Readiness, Service};
use bus::api::health::HealthStatus;
use std::future::Future;
use std::io;
use std::path::Path;
use std::time::Duration;
use tokio::sync::oneshot;

/// Signals the supervisor sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sig {
    /// Please stop.
    Term,
    /// Stop now.
    Kill,
}

/// A readiness test's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Probe {
    /// Ready.
    pub ready: bool,
    /// The pid the daemon reports (bus readiness), for adoption.
    pub pid: Option<u32>,
}

/// A started process: its pid and its exit.
pub struct Running {
    /// Its pid.
    pub pid: u32,
    /// Resolves when it ends.
    pub exit: oneshot::Receiver<Exit>,
}

/// The system as the supervisor sees it.
pub trait Processes: Send + Sync + 'static {
    /// Starts `svc`, its output appended to `log`.
    fn spawn(&self, svc: &Service, log: &Path) -> impl Future<Output = io::Result<Running>> + Send;
    /// Watches a process that is not our child (adopted at start).
    fn adopt(&self, pid: u32) -> io::Result<oneshot::Receiver<Exit>>;
    /// Sends `sig` to `pid`.
    fn signal(&self, pid: u32, sig: Sig);
    /// Runs the readiness test once.
    fn probe(&self, ready: &Readiness) -> impl Future<Output = Probe> + Send;
    /// A short version of the binary (`pid`'s when given), for `zos services`.
    fn version(
        &self,
        svc: &Service,
        pid: Option<u32>,
    ) -> impl Future<Output = Option<String>> + Send;
}

/// The real system.
#[derive(Debug, Clone, Copy, Default)]
pub struct System;

impl Processes for System {
    async fn spawn(&self, svc: &Service, log: &Path) -> io::Result<Running> {
        let (svc, log) = (svc.clone(), log.to_path_buf());
        let pid = tokio::task::spawn_blocking(move || spawn_now(&svc, &log))
            .await
            .map_err(io::Error::other)??;
        // registered right after the spawn: the reaper leaves an unregistered child alone
        let exit = reaper::global().watch(pid);
        Ok(Running { pid, exit })
    }

    fn adopt(&self, pid: u32) -> io::Result<oneshot::Receiver<Exit>> {
        // still our child (node-init re-executed itself in place): the reaper waits for it,
        // which also collects it (a pidfd would leave a zombie)
        if reaper::is_our_child(pid) {
            return Ok(reaper::global().watch(pid));
        }
        let p =
            rustix::process::Pid::from_raw(pid as i32).ok_or_else(|| io::Error::other("pid 0"))?;
        let fd = rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty())?;
        let (tx, rx) = oneshot::channel();
        // a pidfd becomes readable when the process ends; one small thread per adopted
        // daemon (tokio's AsyncFd constructors for a raw fd are deprecated as unsound)
        std::thread::Builder::new()
            .name(format!("adopted-{pid}"))
            .spawn(move || {
                let mut fds = [rustix::event::PollFd::new(
                    &fd,
                    rustix::event::PollFlags::IN,
                )];
                while let Err(rustix::io::Errno::INTR) = rustix::event::poll(&mut fds, None) {}
                let _ = tx.send(Exit::Unknown);
            })?;
        Ok(rx)
    }

    fn signal(&self, pid: u32, sig: Sig) {
        let s = match sig {
            Sig::Term => rustix::process::Signal::TERM,
            Sig::Kill => rustix::process::Signal::KILL,
        };
        if let Some(p) = rustix::process::Pid::from_raw(pid as i32) {
            let _ = rustix::process::kill_process(p, s);
        }
    }

    async fn probe(&self, ready: &Readiness) -> Probe {
        match ready {
            Readiness::Bus(socket) => {
                let c = bus::Client::new(socket)
                    .connect_timeout(Duration::from_millis(500))
                    .call_timeout(Duration::from_secs(1));
                match c.health().await {
                    Ok(h) => Probe {
                        ready: h.status != HealthStatus::Starting,
                        pid: Some(h.pid),
                    },
                    Err(_) => Probe::default(),
                }
            }
            Readiness::Tcp(addr) => Probe {
                ready: tokio::time::timeout(
                    Duration::from_secs(1),
                    tokio::net::TcpStream::connect(addr),
                )
                .await
                .is_ok_and(|r| r.is_ok()),
                pid: None,
            },
            Readiness::Path(p) => Probe {
                ready: tokio::fs::try_exists(p).await.unwrap_or(false),
                pid: None,
            },
            Readiness::Started => Probe {
                ready: true,
                pid: None,
            },
        }
    }

    async fn version(&self, svc: &Service, pid: Option<u32>) -> Option<String> {
        let path = match pid {
            Some(p) => format!("/proc/{p}/exe").into(),
            None => svc.def.exec.clone(),
        };
        tokio::task::spawn_blocking(move || binary_version(&path))
            .await
            .ok()
            .flatten()
    }
}

/// `b3:` and the first 12 hex digits of the binary's blake3: tells two builds apart (the
/// daemons share the workspace's version number, so that alone would not).
pub fn binary_version(path: &Path) -> Option<String> {
    let mut h = blake3::Hasher::new();
    h.update_reader(std::fs::File::open(path).ok()?).ok()?;
    Some(format!("b3:{}", &h.finalize().to_hex()[..12]))
}

/// Starts the process (blocking: fork and exec), its output appended to `log`; its pid.
fn spawn_now(svc: &Service, log: &Path) -> io::Result<u32> {
    use std::os::unix::process::CommandExt;
    let out = logs::open_append(log)?;
    let child = std::process::Command::new(&svc.def.exec)
        .args(&svc.def.args)
        // its output goes to a file: plain text (JSON when node-init logs JSON)
        .env(nodeutil::log::ENV, nodeutil::log::for_children())
        .envs(&svc.def.env)
        // own process group: a terminal's Ctrl-C reaches node-init only, which stops the
        // services in order; and the daemon outlives a node-init killed in dev mode
        .process_group(0)
        .stdin(std::process::Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .spawn()?;
    // std's Child does not wait on drop: the reaper collects it
    Ok(child.id())
}
