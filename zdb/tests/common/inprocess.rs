//! Servers in the test's own process, over the simulated storage: a configuration, and a
//! storage whose opened files a test can wrap (to make a disk cold, slow or stuck, or an open
//! wait at a gate).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use zdb::config::Config;
use zdb::engine::{EngineConfig, RunMode};
use zdb::storage::sim::SimStorage;
use zdb::storage::{OpenMode, Storage, StorageFile};

/// Settings for an in-process server over `/i` and `/d`: mixed mode, group commit, no read
/// cache, no background tasks; tests change what they need with `..inprocess_config()`.
pub fn inprocess_config() -> Config {
    Config {
        data: "/d".into(),
        index: "/i".into(),
        engine: EngineConfig {
            datasize: 1 << 20,
            sync: false,
            synctime: None,
            run_mode: RunMode::Mixed,
            group_commit: true,
        },
        admin: None,
        protect: false,
        maxsize: None,
        hook: None,
        hook_timeout: None,
        max_input_total: 1 << 30,
        zdbid: "tcp://test".into(),
        compact_dead_bytes: 0,
        snapshot_idle: Duration::ZERO,
        slow: Duration::from_secs(60),
        read_cache: 0,
        metrics: false,
    }
}

/// The simulator, with every file it opens passed through `wrap` (path, opened file).
pub struct Intercepted<F> {
    pub inner: SimStorage,
    pub wrap: F,
}

impl<F> Storage for Intercepted<F>
where
    F: Fn(&Path, Arc<dyn StorageFile>) -> Arc<dyn StorageFile> + Send + Sync + 'static,
{
    fn open(&self, path: &Path, mode: OpenMode) -> std::io::Result<Arc<dyn StorageFile>> {
        let file = self.inner.open(path, mode)?;
        Ok((self.wrap)(path, file))
    }
    fn create_dir_all(&self, path: &Path) -> std::io::Result<()> {
        self.inner.create_dir_all(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        self.inner.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> std::io::Result<()> {
        self.inner.remove_file(path)
    }
    fn remove_dir_all(&self, path: &Path) -> std::io::Result<()> {
        self.inner.remove_dir_all(path)
    }
    fn sync_dir(&self, path: &Path) -> std::io::Result<()> {
        self.inner.sync_dir(path)
    }
    fn list_dir(&self, path: &Path) -> std::io::Result<Vec<std::ffi::OsString>> {
        self.inner.list_dir(path)
    }
    fn exists(&self, path: &Path) -> bool {
        self.inner.exists(path)
    }
    fn free_space(&self, path: &Path) -> std::io::Result<u64> {
        self.inner.free_space(path)
    }
}

/// Waits (10 s at most) for a file a hook script or another process creates: its signal.
pub fn wait_for_file(path: &Path) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !path.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}
