//! The supervisor: runs the node's daemons from their definitions (`service.rs`), in order,
//! restarting a crashed one after a backoff until its crash limit (`policy.rs`, pure), with
//! their output in bounded, rotated log files (`logs.rs`). Process effects go through
//! [`process::Processes`]; exit statuses come from the one process-wide [`reaper`].
//!
//! One task owns all state; watchers (exit, readiness) send it messages, and it publishes a
//! snapshot for the API after every change. A daemon answering its bus health when node-init
//! starts is adopted (watched through a pidfd), not started twice. Shutdown stops services in
//! reverse start order, each with SIGTERM and, after its `stop_timeout_secs`, SIGKILL.

pub mod api;
pub mod defaults;
mod handle;
pub mod logs;
pub mod pid1;
pub mod policy;
pub mod process;
pub mod reaper;
mod restart;
pub mod service;
mod succeed;

pub use handle::Handle;

#[cfg(test)]
mod test;

use policy::{OrderError, State};
use process::{Probe, Processes, Sig};
use reaper::Exit;
use service::{Readiness, Service};
use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::AbortHandle;

/// How often a starting service's readiness test runs.
const PROBE_EVERY: Duration = Duration::from_millis(100);

/// One service as the supervisor last published it.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Name.
    pub name: String,
    /// State.
    pub state: State,
    /// When its current process was started or adopted.
    pub since: Option<Instant>,
    /// Restarts after crashes.
    pub restarts: u32,
    /// Version of its binary.
    pub version: Option<String>,
    /// Why it failed or how it last ended.
    pub detail: Option<String>,
    /// Adopted at start.
    pub adopted: bool,
    /// Its readiness test.
    pub ready: Readiness,
}

enum Msg {
    Exited {
        name: String,
        pid: u32,
        exit: Exit,
    },
    Ready {
        name: String,
        pid: u32,
    },
    NotReady {
        name: String,
        pid: u32,
    },
    Version {
        name: String,
        pid: u32,
        version: Option<String>,
    },
    Shutdown(oneshot::Sender<()>),
    /// Stop one service; then run it from `def` (an upgrade's switch) or keep it stopped.
    Replace {
        name: String,
        def: Option<service::ServiceDef>,
        ack: oneshot::Sender<Result<(), String>>,
    },
    /// An operator's restart (`restart.rs`).
    Restart {
        name: String,
        ack: oneshot::Sender<Result<(), String>>,
    },
    /// The stop timeout of a restart passed.
    StopTimeout {
        name: String,
        pid: u32,
    },
    /// Start a successor beside the running process (`succeed.rs`).
    Succeed {
        name: String,
        def: service::ServiceDef,
        extra: Vec<String>,
        ack: oneshot::Sender<Result<u32, String>>,
    },
}

/// Per-service bookkeeping besides its [`State`].
#[derive(Default)]
struct Unit {
    crashes: VecDeque<Instant>,
    restarts: u32,
    since: Option<Instant>,
    version: Option<String>,
    detail: Option<String>,
    adopted: bool,
    started_once: bool,
    prober: Option<AbortHandle>,
    /// Stopping for an operator's restart: start again once it exited.
    restarting: bool,
    /// Its process as the previous image of this node-init left it (a re-exec in place):
    /// adopted at the first start whatever its readiness test.
    handed: Option<u32>,
    /// The process a starting successor takes over from (`succeed.rs`).
    predecessor: Option<succeed::Predecessor>,
}

/// Starts supervising `services` (output in `<log_dir>/<name>.log`); refused when their
/// `after` lists name unknown services or form a cycle.
pub fn start<P: Processes>(
    procs: P,
    services: Vec<Service>,
    log_dir: PathBuf,
) -> Result<Handle, OrderError> {
    start_handed(procs, services, log_dir, &BTreeMap::new())
}

/// [`start`], adopting the processes in `handed` (service name -> pid: our children, left
/// running by the previous image of this node-init, which re-executed itself) instead of
/// starting those services.
pub fn start_handed<P: Processes>(
    procs: P,
    services: Vec<Service>,
    log_dir: PathBuf,
    handed: &BTreeMap<String, u32>,
) -> Result<Handle, OrderError> {
    let order = policy::start_order(&services)?;
    let (tx, rx) = mpsc::channel(256);
    let states: BTreeMap<String, State> =
        order.iter().map(|n| (n.clone(), State::Waiting)).collect();
    let units = order
        .iter()
        .map(|n| {
            let u = Unit {
                handed: handed.get(n).copied(),
                ..Unit::default()
            };
            (n.clone(), u)
        })
        .collect();
    let (status, status_rx) = watch::channel(Vec::new());
    let (defs, defs_rx) = watch::channel(services.clone());
    let sup = Supervisor {
        defs,
        procs: Arc::new(procs),
        services,
        order,
        states,
        units,
        log_dir,
        tx: tx.clone(),
        rx,
        status,
        stopping: false,
        acks: Vec::new(),
    };
    sup.publish();
    rotate_logs(&sup.services, &sup.log_dir);
    tokio::spawn(sup.run());
    Ok(Handle {
        status: status_rx,
        defs: defs_rx,
        cmd: tx,
    })
}

/// Checks every service's log size each second (on a blocking thread) and rotates it.
fn rotate_logs(services: &[Service], log_dir: &std::path::Path) {
    let logs: Vec<_> = services
        .iter()
        .map(|s| (logs::log_path(log_dir, &s.name), s.def.log))
        .collect();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            let l = logs.clone();
            let _ = tokio::task::spawn_blocking(move || {
                for (path, policy) in &l {
                    if let Err(e) = logs::rotate_if_over(path, policy) {
                        tracing::warn!(log = %path.display(), error = %e, "cannot rotate");
                    }
                }
            })
            .await;
        }
    });
}

struct Supervisor<P> {
    procs: Arc<P>,
    defs: watch::Sender<Vec<Service>>,
    services: Vec<Service>,
    order: Vec<String>,
    states: BTreeMap<String, State>,
    units: BTreeMap<String, Unit>,
    log_dir: PathBuf,
    tx: mpsc::Sender<Msg>,
    rx: mpsc::Receiver<Msg>,
    status: watch::Sender<Vec<Snapshot>>,
    stopping: bool,
    acks: Vec<oneshot::Sender<()>>,
}

impl<P: Processes> Supervisor<P> {
    async fn run(mut self) {
        loop {
            let now = Instant::now();
            let due = policy::startable(
                &self.order,
                &self.services,
                &self.states,
                now,
                self.stopping,
            );
            for name in due {
                self.start_one(&name).await;
            }
            self.publish();
            let wake = policy::next_deadline(&self.states)
                .map(tokio::time::Instant::from_std)
                .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
            let msg = tokio::select! {
                m = self.rx.recv() => m,
                _ = tokio::time::sleep_until(wake) => continue,
            };
            match msg {
                Some(Msg::Shutdown(ack)) => {
                    self.acks.push(ack);
                    return self.finish().await;
                }
                Some(Msg::Succeed {
                    name,
                    def,
                    extra,
                    ack,
                }) => {
                    let r = self.succeed(&name, def, extra).await;
                    self.publish();
                    let _ = ack.send(r);
                }
                Some(Msg::Replace { name, def, ack }) => {
                    let r = self.replace(&name, def).await;
                    self.publish();
                    let _ = ack.send(r);
                    if !self.acks.is_empty() {
                        // a shutdown asked for while that service stopped
                        return self.finish().await;
                    }
                }
                Some(m) => self.handle(m),
                None => return,
            }
        }
    }

    /// Shutdown: stops everything, answers the shutdown requests (later ones at once).
    async fn finish(mut self) {
        self.stop_all().await;
        self.publish();
        for a in self.acks.drain(..) {
            let _ = a.send(());
        }
        while let Some(m) = self.rx.recv().await {
            match m {
                Msg::Shutdown(a) => {
                    let _ = a.send(());
                }
                Msg::Replace { ack, .. } => {
                    let _ = ack.send(Err("node-init is shutting down".into()));
                }
                Msg::Succeed { ack, .. } => {
                    let _ = ack.send(Err("node-init is shutting down".into()));
                }
                _ => {}
            }
        }
    }

    /// [`Handle::replace`].
    async fn replace(
        &mut self,
        name: &str,
        def: Option<service::ServiceDef>,
    ) -> Result<(), String> {
        if self.stopping {
            return Err("node-init is shutting down".into());
        }
        if self.service(name).is_none() {
            return Err(format!("no service {name}"));
        }
        self.stop_one(name).await;
        if self.stopping {
            return Err("node-init is shutting down".into());
        }
        if let Some(def) = def {
            if let Some(s) = self.services.iter_mut().find(|s| s.name == name) {
                s.def = def;
            }
            self.defs.send_replace(self.services.clone());
            let u = self.unit(name);
            u.crashes.clear();
            u.detail = None;
            u.version = None;
            u.started_once = true;
            self.set(name, State::Waiting);
        }
        Ok(())
    }

    fn service(&self, name: &str) -> Option<Service> {
        self.services.iter().find(|s| s.name == name).cloned()
    }

    fn unit(&mut self, name: &str) -> &mut Unit {
        self.units.entry(name.to_string()).or_default()
    }

    fn set(&mut self, name: &str, state: State) {
        self.states.insert(name.to_string(), state);
    }

    async fn start_one(&mut self, name: &str) {
        let Some(svc) = self.service(name) else {
            return;
        };
        let first = !std::mem::replace(&mut self.unit(name).started_once, true);
        let handed = self.unit(name).handed.take().filter(|_| first);
        if first && (handed.is_some() || matches!(svc.def.ready, Readiness::Bus(_))) {
            let probe = match handed {
                Some(pid) => Probe {
                    ready: true,
                    pid: Some(pid),
                },
                None => self.procs.probe(&svc.def.ready).await,
            };
            if let (true, Some(pid)) = (probe.ready, probe.pid) {
                match self.procs.adopt(pid) {
                    Ok(exit) => {
                        tracing::info!(service = name, pid, "already running: adopted");
                        let u = self.unit(name);
                        u.adopted = true;
                        u.since = Some(Instant::now());
                        self.set(name, State::Running { pid });
                        self.find_version(&svc, pid, true);
                        self.watch_exit(name, pid, exit);
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(service = name, pid, error = %e, "cannot adopt; starting one")
                    }
                }
            }
        }
        let log = logs::log_path(&self.log_dir, name);
        if let Err(e) = nodeutil::fs::create_private_dir(&self.log_dir) {
            self.crashed(name, format!("cannot make {}: {e}", self.log_dir.display()));
            return;
        }
        match self.procs.spawn(&svc, &log).await {
            Ok(r) => {
                tracing::info!(service = name, pid = r.pid, exec = %svc.def.exec.display(), "started");
                let u = self.unit(name);
                u.since = Some(Instant::now());
                u.adopted = false;
                self.set(name, State::Starting { pid: r.pid });
                self.find_version(&svc, r.pid, false);
                self.watch_exit(name, r.pid, r.exit);
                self.watch_ready(&svc, r.pid, false);
            }
            Err(e) => self.crashed(
                name,
                format!("cannot start {}: {e}", svc.def.exec.display()),
            ),
        }
    }

    /// Hashes the binary (of the running process when adopted) off the loop: a restart must
    /// not wait for it.
    fn find_version(&self, svc: &Service, pid: u32, adopted: bool) {
        let (tx, procs, svc) = (self.tx.clone(), self.procs.clone(), svc.clone());
        tokio::spawn(async move {
            let version = procs.version(&svc, adopted.then_some(pid)).await;
            let _ = tx
                .send(Msg::Version {
                    name: svc.name,
                    pid,
                    version,
                })
                .await;
        });
    }

    fn watch_exit(&self, name: &str, pid: u32, exit: oneshot::Receiver<Exit>) {
        let tx = self.tx.clone();
        let name = name.to_string();
        tokio::spawn(async move {
            let exit = exit.await.unwrap_or(Exit::Unknown);
            let _ = tx.send(Msg::Exited { name, pid, exit }).await;
        });
    }

    /// Probes `svc`'s readiness until it passes or its timeout; with `own`, a bus answer
    /// counts only from `pid` itself (a successor's predecessor answers on the same socket).
    fn watch_ready(&mut self, svc: &Service, pid: u32, own: bool) {
        let tx = self.tx.clone();
        let procs = self.procs.clone();
        let (name, ready, timeout) = (
            svc.name.clone(),
            svc.def.ready.clone(),
            svc.def.ready_timeout(),
        );
        let task = tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + timeout;
            loop {
                let p = procs.probe(&ready).await;
                if p.ready && (!own || p.pid.is_none_or(|p| p == pid)) {
                    let _ = tx.send(Msg::Ready { name, pid }).await;
                    return;
                }
                if tokio::time::Instant::now() >= deadline {
                    let _ = tx.send(Msg::NotReady { name, pid }).await;
                    return;
                }
                tokio::time::sleep(PROBE_EVERY).await;
            }
        });
        if let Some(old) = self.unit(&svc.name).prober.replace(task.abort_handle()) {
            old.abort();
        }
    }

    fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Exited { name, pid, exit } => {
                if self.states.get(&name).and_then(State::pid) != Some(pid) {
                    self.predecessor_exited(&name, pid);
                    return;
                }
                if let Some(p) = self.unit(&name).prober.take() {
                    p.abort();
                }
                if self.unit(&name).predecessor.is_some() {
                    return self.successor_exited(&name, pid, exit);
                }
                if std::mem::take(&mut self.unit(&name).restarting) && !self.stopping {
                    tracing::info!(service = %name, pid, %exit, "stopped for a restart: starting it");
                    self.unit(&name).detail = Some("restarted on request".into());
                    self.set(
                        &name,
                        State::Backoff {
                            until: Instant::now(),
                        },
                    );
                } else if matches!(self.states.get(&name), Some(State::Stopping { .. })) {
                    tracing::info!(service = %name, pid, %exit, "service stopped");
                    self.unit(&name).detail = Some(exit.to_string());
                    self.set(&name, State::Stopped);
                } else {
                    let why = match self.unit(&name).detail.take() {
                        Some(d) if d.starts_with("not ready") => format!("{d}; {exit}"),
                        _ => exit.to_string(),
                    };
                    self.crashed(&name, why);
                }
            }
            Msg::Ready { name, pid } => {
                if self.states.get(&name) == Some(&State::Starting { pid }) {
                    tracing::info!(service = %name, pid, "ready");
                    self.unit(&name).predecessor = None;
                    self.set(&name, State::Running { pid });
                }
            }
            Msg::NotReady { name, pid } => {
                if self.states.get(&name) == Some(&State::Starting { pid }) {
                    let t = self.service(&name).map(|s| s.def.ready_timeout());
                    tracing::warn!(service = %name, pid, "not ready in time: killing it");
                    self.unit(&name).detail = Some(format!("not ready within {t:?}"));
                    self.procs.signal(pid, Sig::Kill);
                }
            }
            Msg::Version { name, pid, version } => {
                if self.states.get(&name).and_then(State::pid) == Some(pid) {
                    self.unit(&name).version = version;
                }
            }
            Msg::Shutdown(ack) => self.acks.push(ack),
            Msg::Replace { ack, .. } => {
                let _ = ack.send(Err("busy stopping a service".into()));
            }
            Msg::Succeed { ack, .. } => {
                let _ = ack.send(Err("busy stopping a service".into()));
            }
            Msg::Restart { name, ack } => {
                let r = self.restart(&name);
                // published before the answer: a caller waiting for ready sees the restart
                self.publish();
                let _ = ack.send(r);
            }
            Msg::StopTimeout { name, pid } => {
                if self.states.get(&name) == Some(&State::Stopping { pid }) {
                    tracing::warn!(service = %name, pid, "did not stop in time: SIGKILL");
                    self.procs.signal(pid, Sig::Kill);
                }
            }
        }
    }

    /// A crash (or a failed start): restart after the backoff, or `failed`.
    fn crashed(&mut self, name: &str, why: String) {
        if self.stopping {
            self.set(name, State::Stopped);
            return;
        }
        let Some(svc) = self.service(name) else {
            return;
        };
        let now = Instant::now();
        let u = self.unit(name);
        u.detail = Some(why.clone());
        u.since = None;
        match policy::on_crash(&svc.def.restart, &mut u.crashes, now) {
            policy::Decision::Restart(after) => {
                u.restarts += 1;
                tracing::warn!(service = name, reason = %why, ?after, "crashed: restarting");
                self.set(name, State::Backoff { until: now + after });
            }
            policy::Decision::Fail => {
                let reason = format!(
                    "crashed more than {} times in {} s; last: {why}",
                    svc.def.restart.limit, svc.def.restart.window_secs
                );
                tracing::error!(service = name, %reason, "failed: not restarting");
                self.set(name, State::Failed { reason });
            }
        }
    }

    /// Stops every service, last started first.
    async fn stop_all(&mut self) {
        self.stopping = true;
        for name in self.order.clone().into_iter().rev() {
            self.stop_one(&name).await;
        }
    }

    /// Stops one service: SIGTERM, SIGKILL after its stop timeout; returns once it exited.
    /// Messages meanwhile are handled (a shutdown request is queued).
    async fn stop_one(&mut self, name: &str) {
        if let Some(p) = self.unit(name).prober.take() {
            p.abort();
        }
        self.stop_predecessor(name);
        let pid = match self.states.get(name) {
            Some(State::Starting { pid } | State::Running { pid }) => *pid,
            _ => {
                self.set(name, State::Stopped);
                return;
            }
        };
        let timeout = self
            .service(name)
            .map_or(Duration::from_secs(10), |s| s.def.stop_timeout());
        tracing::info!(service = %name, pid, "stopping");
        self.procs.signal(pid, Sig::Term);
        self.set(name, State::Stopping { pid });
        self.publish();
        let mut deadline = tokio::time::Instant::now() + timeout;
        let mut killed = false;
        while self.states.get(name) == Some(&State::Stopping { pid }) {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(Msg::Replace { ack, .. })) => {
                    let _ = ack.send(Err("busy stopping a service".into()));
                }
                Ok(Some(m)) => self.handle(m),
                Ok(None) => return,
                Err(_) if !killed => {
                    tracing::warn!(service = %name, pid, "did not stop in time: SIGKILL");
                    self.procs.signal(pid, Sig::Kill);
                    killed = true;
                    deadline = tokio::time::Instant::now() + Duration::from_secs(5);
                }
                Err(_) => {
                    tracing::error!(service = %name, pid, "still there after SIGKILL");
                    self.set(name, State::Stopped);
                }
            }
        }
    }

    fn publish(&self) {
        let snap = self
            .order
            .iter()
            .filter_map(|n| {
                let s = self.service(n)?;
                let u = self.units.get(n)?;
                Some(Snapshot {
                    name: n.clone(),
                    state: self.states.get(n).cloned().unwrap_or(State::Waiting),
                    since: u.since,
                    restarts: u.restarts,
                    version: u.version.clone(),
                    detail: u.detail.clone(),
                    adopted: u.adopted,
                    ready: s.def.ready,
                })
            })
            .collect();
        self.status.send_replace(snap);
    }
}
