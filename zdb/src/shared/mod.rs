//! State shared by all connections and background tasks: the namespace registry, counters,
//! hooks, the input budget. Both the command handlers (`cmd`) and the server (`server`) use
//! it; it uses neither.

mod feed;
mod gate;
mod handle;
mod loading;
mod pace;
mod tally;

pub use feed::{Feed, Listener};
pub use gate::{ConnKind, ConnState, Gate, Live, Parked, Verdict, while_frozen};
pub use handle::NsHandle;
pub use loading::{LOADING_ERROR, Loading};
pub use pace::IoPace;
pub use tally::{Stats, Tally};

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::RwLock;
use tokio::sync::{Notify, Semaphore};

use crate::config::Config;
use crate::engine::{Namespace, OpenError, ReadCache};
use crate::format::Descriptor;
use crate::hooks::Hooks;
use crate::storage::Storage;

/// Name of the namespace every client starts in.
pub const DEFAULT_NS: &[u8] = b"default";

/// Everything connections share.
pub struct Shared {
    /// Validated configuration.
    pub cfg: Config,
    /// Disk access.
    pub storage: Arc<dyn Storage>,
    namespaces: RwLock<BTreeMap<Vec<u8>, Arc<NsHandle>>>,
    /// Start-up progress; commands are served once it is ready.
    pub loading: Loading,
    /// Hook runner.
    pub hooks: Hooks,
    /// Copies of commands for MIRROR clients (bounded: a slow mirror loses copies, with a notice).
    pub mirror: Feed<bytes::Bytes>,
    /// Counters.
    pub stats: Stats,
    /// Prometheus series.
    pub metrics: crate::metrics::Metrics,
    /// True while following a leader (`--replicate-from`), until PROMOTE.
    pub follower: Arc<AtomicBool>,
    /// Unix time of boot.
    pub boot_time: u64,
    /// Random id of this server instance.
    pub instance_id: String,
    /// Budget of input-buffer bytes (in KiB permits) shared by all clients.
    pub input_budget: Arc<Semaphore>,
    /// Recently read values of every namespace (`--read-cache`).
    pub read_cache: Option<Arc<ReadCache>>,
    /// Live hand-over to another process (`crate::handover`).
    pub gate: Arc<Gate>,
    next_client: AtomicU64,
    stop: Notify,
    stopping: AtomicBool,
}

impl Shared {
    /// State for a server that has loaded nothing yet (connections get `-LOADING`):
    /// [`Shared::load_namespaces`] then [`Loading::set_ready`] make it serve.
    pub fn new(cfg: Config, storage: Arc<dyn Storage>) -> Arc<Shared> {
        let budget_kib = (cfg.max_input_total / 1024).max(64 * 1024);
        Arc::new(Shared {
            hooks: Hooks::new(cfg.hook.clone(), cfg.zdbid.clone(), cfg.hook_timeout),
            mirror: Feed::new(4096),
            read_cache: ReadCache::new(cfg.read_cache).map(Arc::new),
            cfg,
            storage,
            namespaces: RwLock::new(BTreeMap::new()),
            loading: Loading::default(),
            stats: Stats::default(),
            metrics: crate::metrics::Metrics::default(),
            follower: Arc::new(AtomicBool::new(false)),
            boot_time: crate::now_secs(),
            instance_id: nodeutil::random::hex(4),
            input_budget: Arc::new(Semaphore::new(budget_kib)),
            gate: Arc::default(),
            next_client: AtomicU64::new(1),
            stop: Notify::new(),
            stopping: AtomicBool::new(false),
        })
    }

    /// Open every namespace under the index root (creating `default` if missing) and serve
    /// at once: for tests and tools that need no listening while loading.
    pub fn open(cfg: Config, storage: Arc<dyn Storage>) -> Result<Arc<Shared>, OpenError> {
        let shared = Shared::new(cfg, storage);
        shared.load_namespaces()?;
        shared.loading.set_ready();
        Ok(shared)
    }

    /// Load (replay) every namespace under the index root, creating `default` if missing,
    /// counting progress in [`Shared::loading`]; blocking: run it on a blocking thread. Stops
    /// early (Ok) once a stop was requested.
    pub fn load_namespaces(&self) -> Result<(), OpenError> {
        let (cfg, storage) = (&self.cfg, &self.storage);
        for root in [&cfg.index, &cfg.data] {
            storage
                .create_dir_all(root)
                .map_err(|source| OpenError::Io {
                    op: "create directory",
                    path: root.clone(),
                    source,
                })?;
        }
        let mut names: Vec<Vec<u8>> = storage
            .list_dir(&cfg.index)
            .map_err(|source| OpenError::Io {
                op: "list",
                path: cfg.index.clone(),
                source,
            })?
            .into_iter()
            .map(std::os::unix::ffi::OsStringExt::into_vec)
            .filter(|n| !n.starts_with(b"."))
            .filter(|n| {
                let dir = cfg.index.join(OsStr::from_bytes(n));
                storage.exists(&dir) && is_dir(&**storage, &dir)
            })
            .collect();
        if !names.iter().any(|n| n == DEFAULT_NS) {
            names.push(DEFAULT_NS.to_vec());
        }
        let sizes: Vec<u64> = names
            .iter()
            .map(|n| index_bytes(&**storage, &cfg.index.join(OsStr::from_bytes(n))))
            .collect();
        self.loading.planned(names.len() as u64, sizes.iter().sum());
        for (name, size) in names.into_iter().zip(sizes) {
            if self.stopping.load(Ordering::SeqCst) {
                return Ok(());
            }
            let started = std::time::Instant::now();
            let mut ns = Namespace::open(
                storage.clone(),
                &cfg.index,
                &cfg.data,
                &name,
                cfg.engine.clone(),
            )?;
            if name == DEFAULT_NS {
                ns.maxsize_override = cfg.maxsize;
            }
            ns.set_read_cache(self.read_cache.clone());
            tracing::info!(
                namespace = %String::from_utf8_lossy(&name),
                entries = ns.entries(),
                ms = started.elapsed().as_millis() as u64,
                "namespace loaded"
            );
            self.namespaces.write().insert(name, NsHandle::new(ns));
            self.loading.loaded(size);
        }
        Ok(())
    }

    /// A namespace by name.
    pub fn get(&self, name: &[u8]) -> Option<Arc<NsHandle>> {
        self.namespaces.read().get(name).cloned()
    }

    /// The default namespace.
    pub fn default_ns(&self) -> Arc<NsHandle> {
        match self.get(DEFAULT_NS) {
            Some(ns) => ns,
            // `open` always creates it and NSDEL refuses to remove it.
            None => unreachable_default(),
        }
    }

    /// All namespace names, sorted.
    pub fn names(&self) -> Vec<Vec<u8>> {
        self.namespaces.read().keys().cloned().collect()
    }

    /// Create a namespace (NSNEW). `Ok(false)` if it exists.
    pub fn create(&self, name: &[u8]) -> Result<bool, OpenError> {
        let mut map = self.namespaces.write();
        if map.contains_key(name) {
            return Ok(false);
        }
        let mut ns = Namespace::create(
            self.storage.clone(),
            &self.cfg.index,
            &self.cfg.data,
            Descriptor::new(name),
            self.cfg.engine.clone(),
        )?;
        ns.set_read_cache(self.read_cache.clone());
        map.insert(name.to_vec(), NsHandle::new(ns));
        Ok(true)
    }

    /// Delete a namespace and its files (NSDEL).
    pub fn delete(&self, name: &[u8]) -> Result<bool, std::io::Error> {
        let Some(handle) = self.namespaces.write().remove(name) else {
            return Ok(false);
        };
        handle.removed.store(true, Ordering::SeqCst);
        let (idir, ddir) = handle.ns.read().dirs();
        self.storage.remove_dir_all(&idir)?;
        self.storage.remove_dir_all(&ddir)?;
        self.storage.sync_dir(&self.cfg.index)?;
        self.storage.sync_dir(&self.cfg.data)?;
        Ok(true)
    }

    /// Drop a namespace's in-memory state and load it again from disk (RELOAD).
    pub fn reload(&self, name: &[u8]) -> Result<bool, OpenError> {
        let Some(handle) = self.get(name) else {
            return Ok(false);
        };
        let mut guard = handle.ns.write();
        let _ = guard.sync_now();
        let mut fresh = Namespace::open(
            self.storage.clone(),
            &self.cfg.index,
            &self.cfg.data,
            name,
            self.cfg.engine.clone(),
        )?;
        fresh.maxsize_override = guard.maxsize_override;
        fresh.set_read_cache(self.read_cache.clone());
        fresh.lock = guard.lock;
        *guard = fresh;
        Ok(true)
    }

    /// A new client id (and count it).
    pub fn new_client(&self) -> u64 {
        self.stats.clients_lifetime.fetch_add(1, Ordering::Relaxed);
        self.next_client.fetch_add(1, Ordering::Relaxed)
    }

    /// The id the next client gets (handed to a new process so ids stay unique).
    pub fn next_client_id(&self) -> u64 {
        self.next_client.load(Ordering::Relaxed)
    }

    /// Continue client ids from `next` (a process that took over from another).
    pub fn continue_client_ids(&self, next: u64) {
        self.next_client.fetch_max(next, Ordering::Relaxed);
    }

    /// Whether this server follows a leader.
    pub fn is_follower(&self) -> bool {
        self.follower.load(Ordering::SeqCst)
    }

    /// Stop following: replication tasks end, client writes are accepted.
    pub fn promote(&self) {
        self.follower.store(false, Ordering::SeqCst);
    }

    /// Open a namespace for replication, creating it with the leader's settings if missing.
    pub fn ensure(&self, desc: Descriptor) -> Result<Arc<NsHandle>, OpenError> {
        if let Some(h) = self.get(&desc.name) {
            return Ok(h);
        }
        let mut map = self.namespaces.write();
        if let Some(h) = map.get(&desc.name) {
            return Ok(h.clone());
        }
        let mut ns = Namespace::create(
            self.storage.clone(),
            &self.cfg.index,
            &self.cfg.data,
            desc.clone(),
            self.cfg.engine.clone(),
        )?;
        ns.set_read_cache(self.read_cache.clone());
        let h = NsHandle::new(ns);
        map.insert(desc.name, h.clone());
        Ok(h)
    }

    /// Ask the server to stop (STOP).
    pub fn request_stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.stop.notify_waiters();
    }

    /// Completes once STOP was requested.
    pub async fn stopped(&self) {
        loop {
            let notified = self.stop.notified();
            if self.stopping.load(Ordering::SeqCst) {
                return;
            }
            notified.await;
        }
    }

    /// fsync every namespace and save the key map snapshots that make the next start fast
    /// (at shutdown).
    pub fn sync_all(&self) {
        for handle in self.namespaces.read().values() {
            handle.sync_and_snapshot("stop");
        }
    }

    /// The Prometheus text, with every namespace's gauges read now.
    pub fn metrics_text(&self) -> String {
        let samples: Vec<crate::metrics::NamespaceSample> = self
            .names()
            .into_iter()
            .filter_map(|name| {
                let h = self.get(&name)?;
                let ns = h.ns.read();
                Some(crate::metrics::NamespaceSample {
                    name: String::from_utf8_lossy(&name).into_owned(),
                    entries: ns.entries(),
                    data_bytes: ns.data_size_bytes(),
                    dead_bytes: ns.dead_bytes(),
                    compacting: h.compacting.load(Ordering::Relaxed),
                })
            })
            .collect();
        self.metrics.render(samples)
    }

    /// The password that guards a namespace (the admin password on `default` with --protect).
    pub fn password_of(&self, ns: &Namespace) -> Option<Vec<u8>> {
        if ns.name() == DEFAULT_NS && self.cfg.protect {
            return self.cfg.admin.as_ref().map(|a| a.as_bytes().to_vec());
        }
        ns.descriptor().password.clone()
    }

    /// Whether a namespace can be read without its password.
    pub fn is_public(&self, ns: &Namespace) -> bool {
        if ns.name() == DEFAULT_NS && self.cfg.protect {
            return true;
        }
        ns.descriptor().public
    }
}

#[cold]
fn unreachable_default() -> Arc<NsHandle> {
    // Kept as a loud failure rather than a silent fallback: it would be a logic error.
    panic!("default namespace missing")
}

fn is_dir(storage: &dyn Storage, path: &Path) -> bool {
    storage.list_dir(path).is_ok()
}

/// Bytes of the index files `iN` in a namespace's index folder (what loading replays).
fn index_bytes(storage: &dyn Storage, dir: &Path) -> u64 {
    storage
        .list_dir(dir)
        .unwrap_or_default()
        .iter()
        .filter(|n| {
            n.to_str()
                .and_then(|n| n.strip_prefix('i'))
                .is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
        })
        .filter_map(|n| {
            storage
                .open(&dir.join(n), crate::storage::OpenMode::ReadOnly)
                .and_then(|f| f.len())
                .ok()
        })
        .sum()
}
