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
//! <node>/computed/             computed's root (containers, pinned flists, block cache)
//! <node>/netd/                 netd's state (networks and their private keys)
//! <node>/services/<name>.json  definitions of the daemons node-init supervises
//! <node>/log/<name>.log        their output, rotated (`.1`, `.2`, ...)
//! ```
//! With `state_on_volume` (the node image, whose node folder is a tmpfs) the engine records
//! and netd's state live on storaged's state volume instead: `<node>/storaged/state/node-init/`
//! and `<node>/storaged/state/netd/`.

use crate::engine::{Backoff, Engine, EngineError};
use crate::handlers::{Daemons, NodeCapacity, node_handlers};
use crate::identity::{IDENTITY_IN_POOL, IdentityError, NodeIdentity};
use bus::api::storage::ListDisks;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

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
    /// Prefix of the containers' network namespaces of the computed it starts, and their
    /// cgroup parent (several dev nodes share a machine's `/run/netns` and cgroup tree, and
    /// the same blueprint on two of them names its containers alike).
    pub computed_netns_prefix: String,
    /// See `computed_netns_prefix`.
    pub computed_cgroup_parent: String,
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
    /// Period of the drift check that repairs what runs against the deployments
    /// (`engine/drift.rs`).
    pub reconcile_every: Duration,
    /// Keep the engine records and netd's state on storaged's state volume (waited for), not in
    /// the node folder: the node image's folder does not survive a reboot.
    pub state_on_volume: bool,
    /// The release key (hex ed25519 public key) a `zos upgrade --flist` release must be
    /// signed with; none: such upgrades are refused.
    pub release_key: Option<String>,
    /// Supervised processes (service -> pid) the previous image of this node-init left
    /// running when it re-executed itself: adopted, not started again.
    pub handed: std::collections::BTreeMap<String, u32>,
}

impl Config {
    /// The run folder.
    pub fn run_dir(&self) -> PathBuf {
        self.node_dir.join("run")
    }

    /// storaged's state volume as it appears in the node folder (a link storaged makes once
    /// the volume is mounted).
    pub fn state_volume_link(&self) -> PathBuf {
        self.node_dir.join("storaged").join("state")
    }

    /// Where the engine keeps its records.
    pub fn engine_dir(&self) -> PathBuf {
        if self.state_on_volume {
            self.state_volume_link().join("node-init")
        } else {
            self.node_dir.join("state")
        }
    }

    /// Where netd keeps its networks.
    pub fn netd_dir(&self) -> PathBuf {
        if self.state_on_volume {
            self.state_volume_link().join("netd")
        } else {
            self.node_dir.join("netd")
        }
    }
}

/// Where node-init's own binary was installed: a node-init upgraded in place runs from
/// `<node>/versions/` and finds its daemons' binaries through this variable, set at the
/// re-exec (`upgrade/reexec.rs`), so its default definitions do not change.
pub const BIN_DIR_ENV: &str = "ZOS_BIN_DIR";

/// The binary `name` next to the running executable (or in `ZOS_BIN_DIR`), else `name` from
/// PATH.
pub fn default_bin(name: &str) -> PathBuf {
    std::env::var_os(BIN_DIR_ENV)
        .map(PathBuf::from)
        .or_else(|| {
            std::env::current_exe()
                .ok()?
                .parent()
                .map(Path::to_path_buf)
        })
        .map(|d| d.join(name))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from(name))
}

fn folder(path: &Path) -> Result<(), DaemonError> {
    nodeutil::fs::create_private_dir(path).map_err(|source| DaemonError::Folder {
        path: path.to_path_buf(),
        source,
    })
}

/// How often the state disk is probed (`engine/disk.rs`).
const DISK_PROBE_EVERY: Duration = Duration::from_secs(2);

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
    // netd's bus calls (a network apply sets up namespaces and links) get a longer timeout
    let netd = bus::Client::new(bus::service_socket(&run_dir, "netd"))
        .call_timeout(Duration::from_secs(60));
    let supervisor = start_services(&cfg, &identity.node_id()).await?;
    let engine_dir = cfg.engine_dir();
    folder(&engine_dir)?;
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
    engine.watch_drift(cfg.reconcile_every);
    crate::api::register(&mut server, &engine, &identity);
    if let Some(h) = &supervisor {
        crate::supervisor::api::register(&mut server, h.clone());
        crate::upgrade::api::register(
            &mut server,
            crate::upgrade::Upgrader::new(&cfg.node_dir, h.clone(), cfg.release_key.clone()),
        );
    }
    engine.watch_disk(DISK_PROBE_EVERY);
    let e = engine.clone();
    server.health_check(Arc::new(move || e.health()));
    let socket = bus::service_socket(&run_dir, SERVICE);
    let listener = bus::bind(&socket).await?;
    ready(&identity.node_id(), &socket);
    server.serve(listener, shutdown).await;

    if let Some(h) = supervisor {
        h.shutdown().await;
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

/// Writes storaged's config (it needs the node id) and the service definitions, starts the
/// supervisor and waits until storaged, computed and netd (those node-init runs) are ready, so
/// the engine finds them. None when there is nothing to supervise.
async fn start_services(
    cfg: &Config,
    node_id: &str,
) -> Result<Option<crate::supervisor::Handle>, DaemonError> {
    use crate::supervisor::{defaults, process::System};
    let storaged_config = if cfg.start_storaged {
        folder(&cfg.node_dir.join("storaged"))?;
        crate::dev::write_config(&cfg.node_dir, node_id, cfg.dev).map_err(|source| {
            DaemonError::Folder {
                path: crate::dev::config_path(&cfg.node_dir),
                source,
            }
        })?
    } else {
        crate::dev::config_path(&cfg.node_dir)
    };
    if cfg.start_computed {
        folder(&cfg.node_dir.join("computed"))?;
    }
    if cfg.start_netd && !cfg.state_on_volume {
        // on the state volume netd makes its folder itself, once the volume is there
        folder(&cfg.netd_dir())?;
    }
    let wanted = defaults::node_defaults(cfg, &storaged_config);
    let services_dir = cfg.node_dir.join("services");
    // an upgrade node-init did not live to end is undone before the definitions are read
    let (node, sdir) = (cfg.node_dir.clone(), services_dir.clone());
    let recovered = tokio::task::spawn_blocking(move || {
        crate::upgrade::journal::recover(&node, &sdir, &crate::upgrade::stop_processes_of)
    })
    .await
    .map_err(std::io::Error::other)
    .and_then(|r| r)
    .map_err(|source| DaemonError::Folder {
        path: crate::upgrade::journal::dir(&cfg.node_dir),
        source,
    })?;
    for r in recovered {
        tracing::warn!(upgrade = %r, "recovered");
    }
    let services =
        defaults::load_all(&services_dir, &wanted).map_err(|e| DaemonError::Service {
            service: "supervisor",
            bin: services_dir.clone(),
            reason: e.to_string(),
        })?;
    if services.is_empty() {
        return Ok(None);
    }
    let defs: Vec<_> = services
        .iter()
        .map(|s| (s.name.clone(), s.def.exec.clone()))
        .collect();
    let handle =
        crate::supervisor::start_handed(System, services, cfg.node_dir.join("log"), &cfg.handed)
            .map_err(|e| DaemonError::Service {
                service: "supervisor",
                bin: services_dir.clone(),
                reason: e.to_string(),
            })?;
    for &(service, _) in &wanted {
        let bin = defs
            .iter()
            .find(|(n, _)| *n == service)
            .map(|(_, b)| b.clone())
            .unwrap_or_default();
        if let Err(reason) = handle.wait_ready(service, cfg.storaged_timeout).await {
            handle.shutdown().await;
            return Err(DaemonError::Service {
                service,
                bin,
                reason: format!(
                    "{reason} (log: {})",
                    crate::supervisor::logs::log_path(&cfg.node_dir.join("log"), service).display()
                ),
            });
        }
        tracing::info!(service, "up");
    }
    Ok(Some(handle))
}
