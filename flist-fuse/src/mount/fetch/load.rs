//! Loading one block: disk cache, else the store (verified and decoded by the image's codec),
//! and saying what failed once: a store that stops answering is logged when it goes and when
//! it comes back; a missing or corrupt block is logged once, as that block (a store that
//! answers "no such block" is not failing).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::codec::BlockCodec;
use crate::format::{BlockRef, Hash, hex};
use crate::mount::cache::{BlockLock, DiskCache, Lookup};
use crate::mount::log::log;
use crate::store::{Store, StoreError};

/// Blocks whose failure was logged, at most (then the set starts over).
const LOGGED_MAX: usize = 4096;

/// Why a block could not be had. Every variant reads as EIO through the mount.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchError {
    /// The store could not be reached or answered with an error.
    #[error("block {id}: store unavailable: {msg}")]
    Unavailable {
        /// The block id (hex).
        id: String,
        /// The store's answer.
        msg: String,
    },
    /// The store does not hold the block.
    #[error("block {id}: {msg}")]
    Missing {
        /// The block id (hex).
        id: String,
        /// The store's answer (names the store).
        msg: String,
    },
    /// The store's bytes do not match the id, or do not decode.
    #[error("block {id}: rejected: {msg}")]
    Corrupt {
        /// The block id (hex).
        id: String,
        /// What did not check.
        msg: String,
    },
    /// The fetcher is shutting down.
    #[error("fetcher stopped")]
    Stopped,
}

/// A block, or why not.
pub type Res = Result<Arc<Vec<u8>>, FetchError>;

/// Counters (for logs and tests).
#[derive(Debug, Default)]
pub struct Stats {
    /// Blocks served from the memory LRU.
    pub mem_hits: AtomicU64,
    /// Blocks served from the disk cache.
    pub disk_hits: AtomicU64,
    /// Blocks fetched from the store.
    pub store_fetches: AtomicU64,
    /// Stored bytes fetched.
    pub store_bytes: AtomicU64,
    /// Fetches that failed.
    pub errors: AtomicU64,
    /// Cache files that failed their check.
    pub corrupt_cache: AtomicU64,
}

/// Where blocks come from, and what was said about failures.
pub struct Source {
    /// The store.
    pub store: Arc<dyn Store>,
    /// Checks and decodes what it returns.
    pub codec: Arc<dyn BlockCodec>,
    /// The shared disk cache.
    pub cache: Option<DiskCache>,
    /// Counters.
    pub stats: Stats,
    store_down: AtomicBool,
    logged: Mutex<HashSet<Hash>>,
}

impl Source {
    /// A source over `store` with `codec`, cached in `cache`.
    pub fn new(
        store: Arc<dyn Store>,
        codec: Arc<dyn BlockCodec>,
        cache: Option<DiskCache>,
    ) -> Self {
        Source {
            store,
            codec,
            cache,
            stats: Stats::default(),
            store_down: AtomicBool::new(false),
            logged: Mutex::new(HashSet::new()),
        }
    }

    fn cached(&self, b: &BlockRef) -> Option<Arc<Vec<u8>>> {
        let c = self.cache.as_ref()?;
        match c.get(&b.id, b.plain_len) {
            Lookup::Hit(d) => {
                self.stats.disk_hits.fetch_add(1, Ordering::Relaxed);
                Some(Arc::new(d))
            }
            Lookup::Miss => None,
            Lookup::Corrupt(m) => {
                self.stats.corrupt_cache.fetch_add(1, Ordering::Relaxed);
                log(&format!("cache file rejected, refetching: {m}"));
                None
            }
        }
    }

    /// Disk cache, else (under the cross-process lock) the store. Returns the block, what is
    /// to be written to the disk cache, and the fetch lock to hold until then.
    pub fn load(&self, b: &BlockRef) -> (Res, Option<Arc<Vec<u8>>>, Option<BlockLock>) {
        if let Some(d) = self.cached(b) {
            return (Ok(d), None, None);
        }
        let lk = match self.cache.as_ref().map(|c| c.lock_block(&b.id)).transpose() {
            Ok(l) => l,
            Err(e) => {
                log(&format!("cache lock: {e}"));
                None
            }
        };
        // Another process may have fetched it while we waited for the lock.
        if lk.is_some()
            && let Some(d) = self.cached(b)
        {
            return (Ok(d), None, None);
        }
        match self.fetch_store(b) {
            Ok(d) => (Ok(d.clone()), Some(d), lk),
            Err(e) => (Err(e), None, None),
        }
    }

    /// Fetch from the store, verify and decode.
    fn fetch_store(&self, b: &BlockRef) -> Res {
        let id = hex(&b.id);
        let stored = match self.get_with_retry(b) {
            Ok(s) => s,
            Err(e) => {
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                let msg = e.to_string();
                let fe = match &e {
                    StoreError::NotFound { .. } => FetchError::Missing { id, msg },
                    StoreError::Mismatch | StoreError::Decode(_) => FetchError::Corrupt {
                        id,
                        msg: format!("{msg} (from {})", self.store.url()),
                    },
                    _ => FetchError::Unavailable { id, msg },
                };
                self.note(b, &fe);
                return Err(fe);
            }
        };
        self.stats.store_fetches.fetch_add(1, Ordering::Relaxed);
        self.stats
            .store_bytes
            .fetch_add(stored.len() as u64, Ordering::Relaxed);
        // The store answered: it is up, whatever the bytes are worth.
        if self.store_down.swap(false, Ordering::AcqRel) {
            log(&format!("store {} answers again", self.store.url()));
        }
        match self.codec.decode(&stored, b) {
            Ok(p) => Ok(Arc::new(p)),
            Err(e) => {
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                let fe = FetchError::Corrupt {
                    id,
                    msg: format!("{e} (from {})", self.store.url()),
                };
                self.note(b, &fe);
                Err(fe)
            }
        }
    }

    /// Log a failure once: the store going down, or this block missing or corrupt.
    fn note(&self, b: &BlockRef, fe: &FetchError) {
        match fe {
            FetchError::Unavailable { .. } => {
                if !self.store_down.swap(true, Ordering::AcqRel) {
                    log(&format!(
                        "store {} failing ({fe}); reads of blocks not cached fail with EIO until it answers again",
                        self.store.url()
                    ));
                }
            }
            FetchError::Missing { .. } | FetchError::Corrupt { .. } => {
                let mut seen = self.logged.lock().unwrap_or_else(|p| p.into_inner());
                if seen.len() >= LOGGED_MAX {
                    seen.clear();
                }
                if seen.insert(b.id) {
                    log(&format!(
                        "{fe}; reads of the files holding it fail with EIO (logged once)"
                    ));
                }
            }
            FetchError::Stopped => {}
        }
    }

    /// One retry after a short pause for transient errors (not for a missing block).
    fn get_with_retry(&self, b: &BlockRef) -> Result<Vec<u8>, StoreError> {
        match self.store.get(&b.id) {
            Err(StoreError::Io { .. }) => {
                std::thread::sleep(Duration::from_millis(50));
                self.store.get(&b.id)
            }
            r => r,
        }
    }
}
