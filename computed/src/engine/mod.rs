//! Container lifecycle: one module per operation ([`create`], [`start`], [`stop`],
//! [`delete`], [`recover`]), queries in [`query`], admission policy in [`admission`], request
//! checks in [`validate`], operations in flight in [`ops`].
//!
//! An operation runs on its own thread; the caller waits for it at most
//! [`Config::reply_wait`] (under node-init's bus timeout) and is otherwise told it is still in
//! progress, and a retry joins it. Nothing slow ever runs under a lock, so queries and other
//! containers' operations answer at once. Side effects go through [`System`]; each
//! container's runtime work happens in its shim, never here.

pub mod admission;
mod create;
mod delete;
pub mod ops;
mod query;
mod recover;
mod start;
mod stop;
#[cfg(test)]
mod tests;
mod upgrade;
pub mod validate;

use crate::error::{Error, IoContext, Result};
use crate::state::Dir;
use crate::system::System;
use bus::api::compute::Container;
use ops::{Begin, Op, Ops, Outcome, Slot};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// How long a caller waits for an operation before it is answered "in progress" (node-init's
/// bus calls time out after 60 s).
pub const REPLY_WAIT: Duration = Duration::from_secs(45);

/// How computed runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// State folder (`containers/`, `flists/`).
    pub root: PathBuf,
    /// Parent cgroup of every container (`/<parent>/<name>`), e.g. so a test can cap them all.
    pub cgroup_parent: String,
    /// Prefix of network namespace names.
    pub netns_prefix: String,
    /// Memory kept for the node itself (not given to containers).
    pub memory_system: u64,
    /// Binary run as `EXE shim DIR`.
    pub shim_exe: PathBuf,
    /// How long a request waits for its operation (see [`REPLY_WAIT`]).
    pub reply_wait: Duration,
}

/// Internal errors seen (an operation that panicked): health shows them.
#[derive(Debug, Default, Clone)]
pub struct Faults {
    /// How many.
    pub count: u64,
    /// The last one.
    pub last: String,
}

/// The containers of the node.
pub struct Engine {
    cfg: Config,
    sys: Arc<dyn System>,
    ops: Ops,
    faults: Mutex<Faults>,
}

impl Engine {
    /// Opens the state folder; the memory ledger starts from the specs found there.
    pub fn new(cfg: Config, sys: Arc<dyn System>) -> Result<Arc<Engine>> {
        let c = cfg.root.join("containers");
        std::fs::create_dir_all(&c).ctx(&c)?;
        let mut e = Engine {
            cfg,
            sys,
            ops: Ops::default(),
            faults: Mutex::new(Faults::default()),
        };
        let memory: BTreeMap<String, u64> = e
            .names()
            .into_iter()
            .filter_map(|n| Some((n.clone(), e.dir(&n).spec().ok()?.memory)))
            .collect();
        e.ops = Ops::new(memory);
        Ok(Arc::new(e))
    }

    fn dir(&self, name: &str) -> Dir {
        Dir::new(&self.cfg.root, name)
    }

    fn netns_name(&self, name: &str) -> String {
        format!("{}{name}", self.cfg.netns_prefix)
    }

    /// The pinned copy of the spec's flist (fetched once).
    fn pin(&self, spec: &bus::api::compute::ContainerSpec) -> Result<PathBuf> {
        let flists = self.cfg.root.join("flists");
        crate::rootfs::pin(self.sys.as_ref(), &flists, &spec.flist, &spec.identity)
    }

    /// Names of all containers with state on disk.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.cfg.root.join("containers"))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().join("spec.json").exists())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| validate::name(n).is_ok())
            .collect();
        v.sort();
        v
    }

    /// Internal errors so far.
    pub fn faults(&self) -> Faults {
        self.faults
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Begins `op` on `name` (or joins the same one) and runs `work` on a thread of its own.
    fn submit(
        self: &Arc<Self>,
        name: &str,
        op: Op,
        admit: impl FnOnce(u64) -> Result<()>,
        work: impl FnOnce(&Arc<Engine>) -> Outcome + Send + 'static,
    ) -> Result<Arc<Slot>> {
        let slot = match self.ops.begin(name, op, admit)? {
            Begin::Join(slot) => return Ok(slot),
            Begin::New(slot) => slot,
        };
        let (eng, s, n) = (self.clone(), slot.clone(), name.to_string());
        let label = slot.op.label();
        let spawned = std::thread::Builder::new()
            .name(format!("{label}:{name}"))
            .spawn(move || {
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(&eng)))
                    .unwrap_or_else(|panic| Err(eng.fault(&n, label, panic.as_ref())));
                let memory = eng.dir(&n).spec().ok().map(|s| s.memory);
                eng.ops.finish(&n, &s, memory, outcome);
            });
        if let Err(e) = spawned {
            let err = Error::Runtime(format!("{name}: cannot start a thread for {label}: {e}"));
            let memory = self.dir(name).spec().ok().map(|s| s.memory);
            self.ops.finish(name, &slot, memory, Err(err.clone()));
            return Err(err);
        }
        Ok(slot)
    }

    /// Records a panic of an operation: a bug, shown in health until restart.
    fn fault(&self, name: &str, label: &str, panic: &(dyn std::any::Any + Send)) -> Error {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        let message = format!("internal error during {label} of {name}: {what}");
        tracing::error!("{message}");
        if matches!(label, "create" | "start" | "recovery") {
            // its state on disk may say `creating`: supervision would retry it forever
            self.mark_failed(name, &message);
        }
        let mut f = self.faults.lock().unwrap_or_else(PoisonError::into_inner);
        f.count += 1;
        f.last = message.clone();
        Error::Runtime(message)
    }

    /// Runs `op` on `name` and waits for it at most [`Config::reply_wait`].
    fn run(
        self: &Arc<Self>,
        name: &str,
        op: Op,
        admit: impl FnOnce(u64) -> Result<()>,
        work: impl FnOnce(&Arc<Engine>) -> Outcome + Send + 'static,
    ) -> Outcome {
        let slot = self.submit(name, op, admit, work)?;
        slot.wait(self.cfg.reply_wait)
            .unwrap_or_else(|| Err(slot.busy(name)))
    }

    /// [`Engine::run`] for operations that answer with the container.
    fn run_container(
        self: &Arc<Self>,
        name: &str,
        op: Op,
        admit: impl FnOnce(u64) -> Result<()>,
        work: impl FnOnce(&Arc<Engine>) -> Result<Container> + Send + 'static,
    ) -> Result<Container> {
        self.run(name, op, admit, move |e| work(e).map(Some))?
            .ok_or(Error::NotFound(name.to_string()))
    }
}
