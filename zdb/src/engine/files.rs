//! File handles of a namespace: the active pair, and a small cache of older files for reads
//! and in-place flag updates.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use super::FileKind;
use crate::storage::{OpenMode, Storage, StorageFile};

/// At most this many older files stay open per namespace.
const CACHE_LIMIT: usize = 64;

/// Paths and handles.
pub(crate) struct Files {
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) index_dir: PathBuf,
    pub(crate) data_dir: PathBuf,
    cache: Mutex<HashMap<(FileKind, u32), Arc<dyn StorageFile>>>,
    /// Names the current bytes of these files for the read cache: renewed whenever a file is
    /// rewritten or cut, so cached values of the old bytes are never served.
    epoch: std::sync::atomic::AtomicU64,
}

impl Files {
    pub(crate) fn new(storage: Arc<dyn Storage>, index_dir: PathBuf, data_dir: PathBuf) -> Self {
        Self {
            storage,
            index_dir,
            data_dir,
            cache: Mutex::new(HashMap::new()),
            epoch: super::cache::new_epoch().into(),
        }
    }

    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Forget every read-cache entry of these files (they were rewritten or cut).
    pub(crate) fn renew_epoch(&self) {
        self.epoch.store(
            super::cache::new_epoch(),
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    pub(crate) fn path(&self, kind: FileKind, id: u32) -> PathBuf {
        match kind {
            FileKind::Index => self.index_dir.join(format!("i{id}")),
            FileKind::Data => self.data_dir.join(format!("d{id}")),
        }
    }

    pub(crate) fn dir(&self, kind: FileKind) -> &Path {
        match kind {
            FileKind::Index => &self.index_dir,
            FileKind::Data => &self.data_dir,
        }
    }

    /// An open handle (read-write when possible) to file `id`, cached.
    pub(crate) fn get(&self, kind: FileKind, id: u32) -> std::io::Result<Arc<dyn StorageFile>> {
        let path = self.path(kind, id);
        let mut cache = self.cache.lock();
        if let Some(f) = cache.get(&(kind, id)) {
            // Immutable data files may be offloaded (deleted) by a hook script while we hold
            // them open: a read must then fail and fire `missing-data`, as in 0-db.
            if kind == FileKind::Data && !self.storage.exists(&path) {
                cache.remove(&(kind, id));
                return Err(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "data file removed",
                ));
            }
            return Ok(f.clone());
        }
        let file = match self.storage.open(&path, OpenMode::ReadWrite) {
            Ok(f) => f,
            Err(e)
                if e.raw_os_error() == Some(30)
                    || e.kind() == std::io::ErrorKind::PermissionDenied =>
            {
                self.storage.open(&path, OpenMode::ReadOnly)?
            }
            Err(e) => return Err(e),
        };
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert((kind, id), file.clone());
        Ok(file)
    }

    /// Register a handle we created, so later lookups reuse it.
    pub(crate) fn put(&self, kind: FileKind, id: u32, file: Arc<dyn StorageFile>) {
        self.cache.lock().insert((kind, id), file);
    }

    /// Forget one handle (after its file was replaced).
    pub(crate) fn forget(&self, kind: FileKind, id: u32) {
        self.renew_epoch();
        self.cache.lock().remove(&(kind, id));
    }

    /// Forget all handles (after files were removed or rewritten).
    pub(crate) fn forget_all(&self) {
        self.renew_epoch();
        self.cache.lock().clear();
    }
}
