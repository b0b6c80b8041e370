//! The node daemon: prepare the node folder, bring up storaged (dev mode), establish the
//! identity, start the engine and serve the node API on the bus.
//!
//! Node folder layout:
//! ```text
//! <node>/identity.key          node key (copies in <pool mountpoint>/.zos/node.key)
//! <node>/run/<service>.sock    bus sockets (folder 0700, sockets 0600)
//! <node>/state/                engine records
//! <node>/storaged.json         storaged's config written by node-init (node id, disks, zdb)
//! <node>/storaged/, disks/     storaged's root and, in dev mode, its file-backed disks
//! <node>/storaged.log          log of the storaged node-init started
//! <node>/computed/             computed's root (containers, pinned flists, block cache)
//! <node>/computed.log          log of the computed node-init started
//! <node>/netd/                 netd's state (networks and their private keys)
//! <node>/netd.log              log of the netd node-init started
//! ```
//! With `state_on_volume` (the node image, whose node folder is a tmpfs) the engine records
//! and netd's state live on storaged's state volume instead: `<node>/storaged/state/node-init/`
//! and `<node>/storaged/state/netd/`.

use crate::engine::{Backoff, Engine, EngineError};
use crate::handlers::{Daemons, NodeCapacity, node_handlers};
use crate::identity::{IDENTITY_IN_POOL, IdentityError, NodeIdentity};
use bus::api::health::HealthStatus;
use bus::api::storage::ListDisks;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::process::{Child, Command};

/// Bus service name (socket `node-init.sock`).
pub const SERVICE: &str = "node-init";

/// Daemon failures.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// Preparing a folder failed.
    #[error("cannot prepare {}", path.display())]
    Folder {
        /// Folder.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// storaged or computed could not be started.
    #[error("cannot start {service} ({}): {reason}", bin.display())]
    Service {
        /// Which daemon.
        service: &'static str,
        /// Binary.
        bin: PathBuf,
        /// Why.
        reason: String,
    },
    /// Identity.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// Engine.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// Bus.
    #[error(transparent)]
    Bus(#[from] bus::BusError),
}

/// How to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// The node folder.
    pub node_dir: PathBuf,
    /// Start storaged as a child (dev mode), unless one already answers on its socket.
    pub start_storaged: bool,
    /// Dev mode: storaged gets file-backed disks in `<node>/disks`.
    pub dev: bool,
    /// storaged binary.
    pub storaged_bin: PathBuf,
    /// Start computed as a child (dev mode), unless one already answers on its socket.
    pub start_computed: bool,
    /// computed binary.
    pub computed_bin: PathBuf,
    /// Start netd as a child (dev mode), unless one already answers on its socket.
    pub start_netd: bool,
    /// netd binary.
    pub netd_bin: PathBuf,
    /// Prefix of the network namespaces of the netd it starts (several dev nodes share a
    /// machine's `/run/netns`).
    pub netd_netns_prefix: String,
    /// How long to wait for storaged's (and computed's, netd's) health.
    pub storaged_timeout: Duration,
    /// Retry timing.
    pub backoff: Backoff,
    /// Keep the engine records and netd's state on storaged's state volume (waited for), not in
    /// the node folder: the node image's folder does not survive a reboot.
    pub state_on_volume: bool,
}

impl Config {
    /// The run folder.
    pub fn run_dir(&self) -> PathBuf {
        self.node_dir.join("run")
    }
}

/// The binary `name` next to the running executable, else `name` from PATH.
pub fn default_bin(name: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join(name)))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from(name))
}

fn folder(path: &Path) -> Result<(), DaemonError> {
    nodeutil::fs::create_private_dir(path).map_err(|source| DaemonError::Folder {
        path: path.to_path_buf(),
        source,
    })
}

/// Runs the node until `shutdown` completes. `ready` is called once the API is served.
pub async fn run(
    cfg: Config,
    shutdown: impl Future<Output = ()>,
    ready: impl FnOnce(&str, &Path),
) -> Result<(), DaemonError> {
    let run_dir = cfg.run_dir();
    for d in [&cfg.node_dir, &run_dir] {
        folder(d)?;
    }
    let storaged = bus::Client::new(bus::service_socket(&run_dir, "storaged"));
    // The identity comes first: storaged needs the node id in its config (it labels its pools
    // with it). Known copies before storaged runs: the pools of a storaged already running, else
    // copies in pool folders that are still mounted.
    let primary = cfg.node_dir.join("identity.key");
    let early = if storaged.health().await.is_ok() {
        pool_copies(&storaged).await
    } else {
        mounted_copies(&cfg.node_dir.join("storaged").join("pools"))
    };
    let identity = Arc::new(NodeIdentity::load_or_create(&primary, &early)?);
    let computed = bus::Client::new(bus::service_socket(&run_dir, "computed"));
    let mut children = Vec::new();
    if cfg.start_storaged {
        children.extend(start_storaged(&cfg, &storaged, &identity.node_id()).await?);
    }
    let state_root = if cfg.state_on_volume {
        state_volume(&cfg).await?
    } else {
        cfg.node_dir.clone()
    };
    let (engine_dir, netd_dir) = if cfg.state_on_volume {
        (state_root.join("node-init"), state_root.join("netd"))
    } else {
        (state_root.join("state"), state_root.join("netd"))
    };
    folder(&engine_dir)?;
    if cfg.start_computed {
        let root = cfg.node_dir.join("computed");
        folder(&root)?;
        let args = [
            "--root".into(),
            root.into_os_string(),
            "--run".into(),
            run_dir.clone().into_os_string(),
        ];
        children
            .extend(start_service(&cfg, "computed", &cfg.computed_bin, &args, &computed).await?);
    }
    // netd's bus calls (a network apply sets up namespaces and links) get a longer timeout
    let netd = bus::Client::new(bus::service_socket(&run_dir, "netd"))
        .call_timeout(Duration::from_secs(60));
    if cfg.start_netd {
        children.extend(start_netd(&cfg, &netd, netd_dir).await?);
    }
    // then the key goes to every pool storaged reports
    let copies = pool_copies(&storaged).await;
    identity.spread(&primary, &copies)?;
    tracing::info!(node_id = %identity.node_id(), copies = copies.len(), "node identity ready");

    let mut server = bus::Server::new(SERVICE);
    let engine = Engine::start(
        &engine_dir,
        node_handlers(&Daemons {
            storaged: storaged.clone(),
            computed: computed.clone(),
            netd,
        }),
        Arc::new(NodeCapacity {
            storaged: storaged.clone(),
            computed: computed.clone(),
        }),
        server.publisher(),
        cfg.backoff,
    )?;
    crate::api::register(&mut server, &engine, &identity);
    let e = engine.clone();
    server.health_check(Arc::new(move || {
        if e.is_poisoned() {
            (
                HealthStatus::Degraded,
                Some("state store write failed; restart after fixing the disk".into()),
            )
        } else {
            (HealthStatus::Ok, None)
        }
    }));
    let socket = bus::service_socket(&run_dir, SERVICE);
    let listener = bus::bind(&socket).await?;
    ready(&identity.node_id(), &socket);
    server.serve(listener, shutdown).await;

    for mut c in children {
        stop_child(&mut c).await;
    }
    Ok(())
}

/// Identity copy paths on every mounted pool (empty when storaged is unreachable).
async fn pool_copies(storaged: &bus::Client) -> Vec<PathBuf> {
    match storaged.call::<ListDisks>(&bus::api::Empty {}).await {
        Ok(list) => list
            .disks
            .into_iter()
            .filter_map(|d| d.mountpoint)
            .map(|m| m.join(IDENTITY_IN_POOL))
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot list pools: identity kept only in the node folder");
            Vec::new()
        }
    }
}

/// Identity copies in the pool folders under `pools` that exist now (mounted pools).
fn mounted_copies(pools: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(pools)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join(IDENTITY_IN_POOL))
        .filter(|p| p.exists())
        .collect();
    out.sort();
    out
}

/// Starts storaged (`storaged --config <node>/storaged.json --root <node>/storaged --run
/// <node>/run`) unless one already answers (adopted after a node-init restart).
async fn start_storaged(
    cfg: &Config,
    client: &bus::Client,
    node_id: &str,
) -> Result<Option<Child>, DaemonError> {
    let config = crate::dev::write_config(&cfg.node_dir, node_id, cfg.dev).map_err(|source| {
        DaemonError::Folder {
            path: crate::dev::config_path(&cfg.node_dir),
            source,
        }
    })?;
    let root = cfg.node_dir.join("storaged");
    folder(&root)?;
    let args = [
        "--config".into(),
        config.into_os_string(),
        "--root".into(),
        root.into_os_string(),
        "--run".into(),
        cfg.run_dir().into_os_string(),
    ];
    start_service(cfg, "storaged", &cfg.storaged_bin, &args, client).await
}

/// storaged's state volume (`<node>/storaged/state`, a link storaged makes once the volume is
/// mounted), waited for as long as storaged's health.
async fn state_volume(cfg: &Config) -> Result<PathBuf, DaemonError> {
    let link = cfg.node_dir.join("storaged").join("state");
    let deadline = tokio::time::Instant::now() + cfg.storaged_timeout;
    while !link.is_dir() {
        if tokio::time::Instant::now() > deadline {
            return Err(DaemonError::Service {
                service: "storaged",
                bin: cfg.storaged_bin.clone(),
                reason: format!(
                    "no state volume at {} after {:?}",
                    link.display(),
                    cfg.storaged_timeout
                ),
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tracing::info!(path = %link.display(), "node state on storaged's state volume");
    Ok(link)
}

/// Starts netd (`netd --state STATE --run <node>/run --netns-prefix P`) unless one already
/// answers.
async fn start_netd(
    cfg: &Config,
    client: &bus::Client,
    state: PathBuf,
) -> Result<Option<Child>, DaemonError> {
    folder(&state)?;
    let args = [
        "--state".into(),
        state.into_os_string(),
        "--run".into(),
        cfg.run_dir().into_os_string(),
        "--netns-prefix".into(),
        cfg.netd_netns_prefix.clone().into(),
    ];
    start_service(cfg, "netd", &cfg.netd_bin, &args, client).await
}

/// Starts `bin args` (log in `<node>/<service>.log`) unless the service already answers, then
/// waits until its health leaves `starting`. It runs in its own process group, so it (and the
/// zdb servers or containers it keeps) outlives node-init.
async fn start_service(
    cfg: &Config,
    service: &'static str,
    bin: &Path,
    args: &[std::ffi::OsString],
    client: &bus::Client,
) -> Result<Option<Child>, DaemonError> {
    let fail = |reason: String| DaemonError::Service {
        service,
        bin: bin.to_path_buf(),
        reason,
    };
    let log_path = cfg.node_dir.join(format!("{service}.log"));
    let mut child = None;
    if let Ok(h) = client.health().await {
        tracing::info!(pid = h.pid, service, "already running: adopting it");
    } else {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|source| DaemonError::Folder {
                path: log_path.clone(),
                source,
            })?;
        let log2 = log.try_clone().map_err(|e| fail(e.to_string()))?;
        let mut cmd = Command::new(bin);
        cmd.args(args)
            // Its output goes to a file: plain text (JSON when node-init logs JSON).
            .env(nodeutil::log::ENV, nodeutil::log::for_children())
            .process_group(0)
            .stdin(std::process::Stdio::null())
            .stdout(log)
            .stderr(log2);
        let c = cmd.spawn().map_err(|e| fail(e.to_string()))?;
        tracing::info!(pid = ?c.id(), service, log = %log_path.display(), "started");
        child = Some(c);
    }
    let deadline = tokio::time::Instant::now() + cfg.storaged_timeout;
    loop {
        match client.health().await {
            Ok(h) if h.status != HealthStatus::Starting => {
                tracing::info!(service, status = ?h.status, detail = ?h.detail, "up");
                return Ok(child);
            }
            _ => {}
        }
        if let Some(c) = child.as_mut()
            && let Ok(Some(status)) = c.try_wait()
        {
            return Err(fail(format!(
                "exited with {status} before becoming healthy (log: {})",
                log_path.display()
            )));
        }
        if tokio::time::Instant::now() > deadline {
            if let Some(c) = child.as_mut() {
                stop_child(c).await;
            }
            return Err(fail(format!(
                "not healthy after {:?} (log: {})",
                cfg.storaged_timeout,
                log_path.display()
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// SIGTERM, then SIGKILL after 10 s.
async fn stop_child(child: &mut Child) {
    if let Some(pid) = child
        .id()
        .and_then(|p| rustix::process::Pid::from_raw(p as i32))
    {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        if tokio::time::timeout(Duration::from_secs(10), child.wait())
            .await
            .is_ok()
        {
            return;
        }
    }
    let _ = child.kill().await;
}
