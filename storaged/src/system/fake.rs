//! A recording [`System`] for unit tests: it records every call and keeps a model of loop
//! devices and mounts, so state handling can be tested without root. A "loop device" is its
//! image file itself (so content probes read it), and calls on paths under a prefix can be
//! made to hang until released, as on a dead disk.

use super::{MountEntry, SysError, System};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};

/// One recorded call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// `loop_attach(image)`.
    LoopAttach(PathBuf),
    /// `loop_detach(dev)`.
    LoopDetach(PathBuf),
    /// `mkfs_btrfs(dev, label)`.
    Mkfs(PathBuf, String),
    /// `mount_btrfs(dev, target)`.
    Mount(PathBuf, PathBuf),
    /// `umount(target)`.
    Umount(PathBuf),
    /// `quota_enable(mnt)`.
    QuotaEnable(PathBuf),
    /// `subvolume_create(path)`.
    SubvolCreate(PathBuf),
    /// `subvolume_delete(path)`.
    SubvolDelete(PathBuf),
    /// `qgroup_limit(path, bytes)`.
    QgroupLimit(PathBuf, u64),
    /// `set_nocow(path)`.
    Nocow(PathBuf),
    /// `kill(pid, signal)`.
    Kill(u32, String),
}

#[derive(Debug, Default)]
struct Model {
    calls: Vec<Call>,
    loops: BTreeMap<PathBuf, PathBuf>,
    mounts: Vec<MountEntry>,
    fail: Option<&'static str>,
}

/// The recording fake. Subvolumes are plain directories.
#[derive(Debug, Default)]
pub struct Fake {
    m: Mutex<Model>,
    hung: Mutex<Vec<PathBuf>>,
    released: Condvar,
}

impl Fake {
    /// A fake with nothing attached or mounted.
    pub fn new() -> Fake {
        Fake::default()
    }
    /// Calls so far.
    pub fn calls(&self) -> Vec<Call> {
        self.m.lock().map(|m| m.calls.clone()).unwrap_or_default()
    }
    /// Makes the next call of operation `op` (e.g. `"qgroup_limit"`) fail.
    pub fn fail_next(&self, op: &'static str) {
        if let Ok(mut m) = self.m.lock() {
            m.fail = Some(op);
        }
    }
    /// Makes every later call on a path under `prefix` block until [`Fake::release`].
    pub fn hang(&self, prefix: &Path) {
        if let Ok(mut h) = self.hung.lock() {
            h.push(prefix.to_path_buf());
        }
    }
    /// Lets hanging calls return.
    pub fn release(&self) {
        if let Ok(mut h) = self.hung.lock() {
            h.clear();
        }
        self.released.notify_all();
    }
    fn wait_if_hung(&self, path: &Path) {
        let Ok(mut h) = self.hung.lock() else { return };
        while h.iter().any(|p| path.starts_with(p)) {
            h = match self.released.wait(h) {
                Ok(h) => h,
                Err(_) => return,
            };
        }
    }
    fn record(
        &self,
        op: &'static str,
        call: Call,
    ) -> Result<std::sync::MutexGuard<'_, Model>, SysError> {
        if let Some(p) = match &call {
            Call::SubvolCreate(p) | Call::SubvolDelete(p) | Call::QgroupLimit(p, _) => Some(p),
            Call::QuotaEnable(p) | Call::Nocow(p) | Call::Umount(p) => Some(p),
            _ => None,
        } {
            self.wait_if_hung(p);
        }
        let mut m = self.m.lock().map_err(|_| SysError::Failed {
            op,
            target: String::new(),
            message: "poisoned".into(),
        })?;
        m.calls.push(call);
        if m.fail == Some(op) {
            m.fail = None;
            return Err(SysError::Failed {
                op,
                target: String::new(),
                message: "injected failure".into(),
            });
        }
        Ok(m)
    }
}

fn mkdir(p: &Path) -> Result<(), SysError> {
    std::fs::create_dir_all(p).map_err(|source| SysError::Io {
        op: "mkdir",
        path: p.to_path_buf(),
        source,
    })
}

impl System for Fake {
    fn loop_find(&self, image: &Path) -> Result<Option<PathBuf>, SysError> {
        Ok(self.m.lock().ok().and_then(|m| m.loops.get(image).cloned()))
    }
    fn loop_attach(&self, image: &Path) -> Result<PathBuf, SysError> {
        let mut m = self.record("loop_attach", Call::LoopAttach(image.into()))?;
        let dev = image.to_path_buf();
        m.loops.insert(image.into(), dev.clone());
        Ok(dev)
    }
    fn loop_detach(&self, dev: &Path) -> Result<(), SysError> {
        let mut m = self.record("loop_detach", Call::LoopDetach(dev.into()))?;
        m.loops.retain(|_, d| d != dev);
        Ok(())
    }
    fn mkfs_btrfs(&self, dev: &Path, label: &str) -> Result<(), SysError> {
        self.record("mkfs_btrfs", Call::Mkfs(dev.into(), label.into()))
            .map(drop)
    }
    fn mount_btrfs(&self, dev: &Path, target: &Path) -> Result<(), SysError> {
        let mut m = self.record("mount_btrfs", Call::Mount(dev.into(), target.into()))?;
        mkdir(target)?;
        m.mounts.push(MountEntry {
            dev: "0:0".into(),
            target: target.into(),
            fstype: "btrfs".into(),
            source: dev.display().to_string(),
        });
        Ok(())
    }
    fn umount(&self, target: &Path) -> Result<(), SysError> {
        let mut m = self.record("umount", Call::Umount(target.into()))?;
        m.mounts.retain(|e| e.target != target);
        Ok(())
    }
    fn mounts(&self) -> Result<Vec<MountEntry>, SysError> {
        Ok(self.m.lock().map(|m| m.mounts.clone()).unwrap_or_default())
    }
    fn quota_enable(&self, mnt: &Path) -> Result<(), SysError> {
        self.record("quota_enable", Call::QuotaEnable(mnt.into()))
            .map(drop)
    }
    fn subvolume_create(&self, path: &Path) -> Result<(), SysError> {
        drop(self.record("subvolume_create", Call::SubvolCreate(path.into()))?);
        mkdir(path)
    }
    fn subvolume_delete(&self, path: &Path) -> Result<(), SysError> {
        drop(self.record("subvolume_delete", Call::SubvolDelete(path.into()))?);
        std::fs::remove_dir_all(path).map_err(|source| SysError::Io {
            op: "rmdir",
            path: path.to_path_buf(),
            source,
        })
    }
    fn qgroup_limit(&self, path: &Path, bytes: u64) -> Result<(), SysError> {
        self.record("qgroup_limit", Call::QgroupLimit(path.into(), bytes))
            .map(drop)
    }
    fn set_nocow(&self, path: &Path) -> Result<(), SysError> {
        self.record("set_nocow", Call::Nocow(path.into())).map(drop)
    }
    fn kill(&self, pid: u32, signal: &str) -> Result<(), SysError> {
        self.record("kill", Call::Kill(pid, signal.into()))
            .map(drop)
    }
}
