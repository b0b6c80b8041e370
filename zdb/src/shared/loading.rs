//! Start-up in the open: zdb listens as soon as its folders are locked and answers
//! `-LOADING ...` while it loads (replays) its namespaces, so a large namespace on a cold disk
//! looks busy, not dead. INFO (with the progress below) and AUTH answer meanwhile; every other
//! command, PING included (as in redis), gets [`LOADING_ERROR`]. Loading ends once every
//! namespace is loaded and the `namespaces-init` and `ready` hooks have run.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use tokio::sync::Notify;

/// The error (without the leading `-`) a command gets while zdb loads. It starts with
/// `LOADING`, as redis's does, so clients that know redis's treat it alike.
pub const LOADING_ERROR: &str = "LOADING zdb is loading its namespaces";

/// Loading progress, for INFO.
pub struct Loading {
    ready: AtomicBool,
    namespaces_total: AtomicU64,
    namespaces_loaded: AtomicU64,
    index_bytes_total: AtomicU64,
    index_bytes_loaded: AtomicU64,
    started: Instant,
    /// Milliseconds from start to ready (0 until then).
    took_ms: AtomicU64,
    done: Notify,
}

impl Default for Loading {
    fn default() -> Self {
        Loading {
            ready: AtomicBool::new(false),
            namespaces_total: AtomicU64::new(0),
            namespaces_loaded: AtomicU64::new(0),
            index_bytes_total: AtomicU64::new(0),
            index_bytes_loaded: AtomicU64::new(0),
            started: Instant::now(),
            took_ms: AtomicU64::new(0),
            done: Notify::new(),
        }
    }
}

impl Loading {
    /// Whether loading is over (commands are served).
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Loading is over: serve commands.
    pub fn set_ready(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.took_ms.store(ms.max(1), Ordering::Relaxed);
        self.ready.store(true, Ordering::Release);
        self.done.notify_waiters();
    }

    /// Completes once loading is over.
    pub async fn wait_ready(&self) {
        loop {
            let notified = self.done.notified();
            if self.is_ready() {
                return;
            }
            notified.await;
        }
    }

    /// What there is to load: `namespaces`, holding `index_bytes` of index files.
    pub(super) fn planned(&self, namespaces: u64, index_bytes: u64) {
        self.namespaces_total.store(namespaces, Ordering::Relaxed);
        self.index_bytes_total.store(index_bytes, Ordering::Relaxed);
    }

    /// One namespace holding `index_bytes` of index files is loaded.
    pub(super) fn loaded(&self, index_bytes: u64) {
        self.namespaces_loaded.fetch_add(1, Ordering::Relaxed);
        self.index_bytes_loaded
            .fetch_add(index_bytes, Ordering::Relaxed);
    }

    /// Namespaces loaded so far and in all.
    pub fn namespaces(&self) -> (u64, u64) {
        (
            self.namespaces_loaded.load(Ordering::Relaxed),
            self.namespaces_total.load(Ordering::Relaxed),
        )
    }

    /// INFO's `# loading` section (redis names the flag `loading` too).
    pub fn info(&self) -> String {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let (loaded, total) = (get(&self.index_bytes_loaded), get(&self.index_bytes_total));
        let perc = if total == 0 {
            if self.is_ready() { 100.0 } else { 0.0 }
        } else {
            loaded as f64 * 100.0 / total as f64
        };
        let took = get(&self.took_ms);
        let elapsed_ms = if took > 0 {
            took
        } else {
            u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
        };
        format!(
            "# loading\n\
             loading: {}\n\
             loading_namespaces_loaded: {}\n\
             loading_namespaces_total: {}\n\
             loading_index_bytes_loaded: {loaded}\n\
             loading_index_bytes_total: {total}\n\
             loading_loaded_perc: {perc:.2}\n\
             loading_seconds: {:.3}\n",
            u8::from(!self.is_ready()),
            get(&self.namespaces_loaded),
            get(&self.namespaces_total),
            elapsed_ms as f64 / 1000.0,
        )
    }
}
