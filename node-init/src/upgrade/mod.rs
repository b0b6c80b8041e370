//! Upgrades of the daemons node-init supervises, one service at a time, without a reboot:
//!
//! 1. The new binary is installed side by side, content-addressed:
//!    `<node>/versions/<service>/<blake3 hex>/<exec name>` (never overwritten in place).
//! 2. The journal (`journal.rs`) records the switch; only then is the daemon stopped (its
//!    workloads run on: storaged, computed and netd leave them to the next one to adopt).
//! 3. A service with a `state_dir`: the folder is copied to `DIR.next` and the new binary runs
//!    `--migrate --state DIR.next` (its schema version moves forward there); a failure leaves
//!    `DIR` untouched. The two folders are then exchanged atomically.
//! 4. The definition file's `exec` is switched (temp + fsync + rename) and the daemon started.
//! 5. Ready within the deadline: committed (the old state becomes `DIR.rollback`, the old
//!    definition the `--rollback` target). Exits, never ready, or migration failed: the old
//!    binary and state are put back and the old one started, by node-init itself.
//!
//! A `--rollback` is the same switch towards the previous definition, with `DIR.rollback` as
//! the state, so rolling back twice returns to the newer version. A node-init that dies
//! mid-way undoes the switch at its next start ([`journal::recover`]). Steps 2 to 5 are
//! `switch.rs`; a daemon that hands its work over (netd) skips the stop when its state needs
//! no migration (`live.rs`). zdb servers, flist mounts and node-init itself have their own
//! ways (`zdb.rs`, `flist_mounts.rs`, `reexec/`).

pub mod api;
pub mod flist;
mod flist_mounts;
mod handover;
pub mod journal;
mod live;
pub mod reexec;
pub mod state;
mod switch;
mod zdb;

use crate::supervisor::{self, service::ServiceDef};
use bus::RemoteError;
use bus::api::upgrade::{Outcome, UpgradeReply};
use journal::Previous;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The service name that means the node's zdb servers.
pub const ZDB: &str = "zdb";

/// The service name that means the node's flist mounts (computed's containers' roots).
pub const FLIST: &str = "flist";

/// Runs upgrades for one node: one at a time.
#[derive(Clone)]
pub struct Upgrader {
    node: PathBuf,
    services: PathBuf,
    log_dir: PathBuf,
    sup: supervisor::Handle,
    lock: Arc<tokio::sync::Mutex<()>>,
    release_key: Option<String>,
}

/// Runs blocking file work off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(io::Error::other)?
}

fn internal(what: &str) -> impl Fn(io::Error) -> RemoteError + '_ {
    move |e| RemoteError::internal(format!("{what}: {e}"))
}

/// Full blake3 hex of a file.
fn hash_file(path: &Path) -> io::Result<String> {
    let mut h = blake3::Hasher::new();
    h.update_reader(std::fs::File::open(path)?)?;
    Ok(h.finalize().to_hex().to_string())
}

/// `b3:` + 12 hex digits, as `zos services` shows versions.
fn short(hex: &str) -> String {
    format!("b3:{}", &hex[..12.min(hex.len())])
}

/// The version of the binary at `path`, `unknown` when it cannot be read.
fn version_of(path: &Path) -> String {
    supervisor::process::binary_version(path).unwrap_or_else(|| "unknown".into())
}

/// Copies `from` to `<node>/versions/<service>/<hash>/<name>` (temp + fsync + rename, mode
/// 0755) unless it is there already; the installed path and the hash.
pub fn install(
    node: &Path,
    service: &str,
    from: &Path,
    name: &str,
) -> io::Result<(PathBuf, String)> {
    let meta = std::fs::metadata(from)?;
    if !meta.is_file() || meta.len() == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a binary", from.display()),
        ));
    }
    let hex = hash_file(from)?;
    let dir = node.join("versions").join(service).join(&hex);
    let dest = dir.join(name);
    if dest.exists() && hash_file(&dest)? == hex {
        return Ok((dest, hex));
    }
    nodeutil::fs::create_private_dir(&dir)?;
    let bytes = std::fs::read(from)?;
    // the file read may differ from the one hashed if it changed meanwhile: hash what we write
    let hex2 = blake3::hash(&bytes).to_hex().to_string();
    if hex2 != hex {
        return Err(io::Error::other(format!(
            "{} changed while it was read",
            from.display()
        )));
    }
    nodeutil::fs::write_durable(&dest, &bytes, 0o755)
        .map_err(|e| io::Error::other(e.to_string()))?;
    nodeutil::fs::sync_dir(nodeutil::fs::parent_dir(&dir))?;
    Ok((dest, hex))
}

/// Ends every process running `exe` (SIGTERM, SIGKILL after 10 s): at recovery, a new
/// version started by a node-init that then died must not be adopted.
pub fn stop_processes_of(exe: &Path) {
    let running = || -> Vec<i32> {
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|p| std::fs::read_link(format!("/proc/{p}/exe")).is_ok_and(|x| x == exe))
            .collect()
    };
    let send = |sig| {
        for p in running() {
            if let Some(p) = rustix::process::Pid::from_raw(p) {
                tracing::warn!(pid = p.as_raw_nonzero().get(), exe = %exe.display(), "stopping a half-upgraded daemon");
                let _ = rustix::process::kill_process(p, sig);
            }
        }
    };
    send(rustix::process::Signal::TERM);
    for i in 0..200 {
        if running().is_empty() {
            return;
        }
        if i == 100 {
            send(rustix::process::Signal::KILL);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// How the state of a switch is prepared.
enum Prep {
    /// No state folder.
    None,
    /// Copy `DIR` to `DIR.next` and run the new binary's migration there.
    Migrate(PathBuf),
    /// Use `DIR.rollback` (a rollback).
    Rollback(PathBuf),
}

/// One switch of a daemon's binary, before it is decided how it runs.
struct Plan {
    from: ServiceDef,
    to: ServiceDef,
    prep: Prep,
    deadline: Duration,
    success: Outcome,
    /// From and to.
    versions: (String, String),
}

impl Upgrader {
    /// An upgrader over the supervisor `sup` of the node folder `node`; release flists must
    /// verify with `release_key` (hex ed25519 public key; none: `--flist` is refused).
    pub fn new(node: &Path, sup: supervisor::Handle, release_key: Option<String>) -> Self {
        Self {
            node: node.to_path_buf(),
            services: node.join("services"),
            log_dir: node.join("log"),
            sup,
            lock: Arc::default(),
            release_key,
        }
    }

    fn current(&self, service: &str) -> Result<ServiceDef, RemoteError> {
        self.sup
            .definition(service)
            .ok_or_else(|| RemoteError::not_found(format!("no service {service}")))
    }

    fn deadline(def: &ServiceDef, asked: Option<u64>) -> Duration {
        Duration::from_secs(asked.unwrap_or(def.ready_timeout_secs).max(1))
    }

    /// `zos upgrade SERVICE --from PATH`; the caller holds the upgrade lock.
    async fn upgrade(
        &self,
        service: &str,
        from: &Path,
        ready_timeout_secs: Option<u64>,
    ) -> Result<UpgradeReply, RemoteError> {
        if service == ZDB {
            return self.upgrade_zdb(from).await;
        }
        if service == reexec::NODE_INIT {
            return self.upgrade_self(from, ready_timeout_secs).await;
        }
        if service == FLIST {
            return self.upgrade_flist_mounts(from).await;
        }
        let cur = self.current(service)?;
        let name = cur
            .exec
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| service.to_string());
        let (node, svc, src) = (self.node.clone(), service.to_string(), from.to_path_buf());
        let (dest, hex) = blocking(move || install(&node, &svc, &src, &name))
            .await
            .map_err(|e| match e.kind() {
                io::ErrorKind::NotFound | io::ErrorKind::InvalidInput => {
                    RemoteError::invalid(format!("cannot install {}: {e}", from.display()))
                }
                _ => RemoteError::internal(format!("cannot install {}: {e}", from.display())),
            })?;
        let exec = cur.exec.clone();
        let from_version = blocking(move || Ok(version_of(&exec)))
            .await
            .map_err(internal("version"))?;
        let to_version = short(&hex);
        if from_version == to_version {
            let running = from_version.clone();
            return Ok(UpgradeReply {
                pid: self
                    .sup
                    .snapshot()
                    .iter()
                    .find(|s| s.name == service)
                    .and_then(|s| s.state.pid()),
                ..UpgradeReply::new(
                    service,
                    Outcome::Unchanged,
                    from_version,
                    to_version,
                    running,
                )
            });
        }
        let mut to = cur.clone();
        to.exec = dest;
        let prep = match &cur.state_dir {
            Some(d) if d.is_dir() => Prep::Migrate(d.clone()),
            _ => Prep::None,
        };
        let deadline = Self::deadline(&cur, ready_timeout_secs);
        let plan = Plan {
            from: cur,
            to,
            prep,
            deadline,
            success: Outcome::Upgraded,
            versions: (from_version, to_version),
        };
        self.apply(service, plan).await
    }

    /// `zos upgrade --rollback SERVICE`.
    pub async fn rollback(
        &self,
        service: &str,
        ready_timeout_secs: Option<u64>,
    ) -> Result<UpgradeReply, RemoteError> {
        let _one = self.lock.lock().await;
        if service == reexec::NODE_INIT {
            return self.rollback_self(ready_timeout_secs).await;
        }
        if service == ZDB {
            return self.rollback_zdb().await;
        }
        if service == FLIST {
            return self.rollback_flist_mounts().await;
        }
        let cur = self.current(service)?;
        let path = journal::previous_path(&self.node, service);
        let prev: Previous = blocking(move || nodeutil::fs::read_json(&path))
            .await
            .map_err(internal("previous version"))?
            .ok_or_else(|| {
                RemoteError::not_found(format!("{service} has no previous version to roll back to"))
            })?;
        let mut to = prev.def;
        // the definition may have been edited since: only the binary goes back
        let exec = to.exec.clone();
        to = ServiceDef {
            exec,
            ..cur.clone()
        };
        let prep = match &cur.state_dir {
            Some(d) if state::rollback(d).is_dir() => Prep::Rollback(d.clone()),
            _ => Prep::None,
        };
        let (a, b) = (cur.exec.clone(), to.exec.clone());
        let (from_version, to_version) = blocking(move || Ok((version_of(&a), version_of(&b))))
            .await
            .map_err(internal("version"))?;
        let deadline = Self::deadline(&cur, ready_timeout_secs);
        let plan = Plan {
            from: cur,
            to,
            prep,
            deadline,
            success: Outcome::RolledBack,
            versions: (from_version, to_version),
        };
        self.apply(service, plan).await
    }

    /// Switches live when it can (`live.rs`), else by stopping the daemon (steps 2 to 5).
    async fn apply(&self, service: &str, p: Plan) -> Result<UpgradeReply, RemoteError> {
        match self.try_live(service, &p.from, &p.to, &p.prep).await {
            live::Fit::Live(socket) => {
                let (from, to) = (p.from, p.to);
                self.live_switch(service, from, to, socket, p.deadline, p.success, p.versions)
                    .await
            }
            live::Fit::Refused(why) => Ok(self.refused(service, p.versions, why)),
            live::Fit::Restart => {
                let (from_version, to_version) = p.versions;
                self.switch(
                    service,
                    p.from,
                    p.to,
                    p.prep,
                    p.deadline,
                    p.success,
                    from_version,
                    to_version,
                )
                .await
            }
        }
    }
}
