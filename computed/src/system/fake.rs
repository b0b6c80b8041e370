//! A recording [`System`] for tests of the engine without root: every call is recorded, mounts,
//! namespaces and shims are modelled, any operation can be made to fail once or to block until
//! the test releases it (a slow download, mount or stop), and fake shims obey the state
//! protocol of the real ones (`status.json`, the `stop` file).

use super::System;
use crate::error::{Error, IoContext, Result};
use crate::state::{Dir, now};
use bus::api::compute::ContainerState;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// One recorded call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// `download(url)`.
    Download(String),
    /// `rootfs_mount(flist, stores, rw, target)`.
    Mount {
        /// Pinned flist.
        flist: PathBuf,
        /// Store URLs.
        stores: Vec<String>,
        /// Writable layer folder.
        rw: PathBuf,
        /// Overlay target.
        target: PathBuf,
    },
    /// `rootfs_unmount(target)`.
    Unmount(PathBuf),
    /// `netns_create(name)`.
    NetnsCreate(String),
    /// `netns_delete(name)`.
    NetnsDelete(String),
    /// `spawn_shim(dir)`.
    SpawnShim(PathBuf),
}

/// How the fake shims behave.
#[derive(Debug, Clone, Default)]
enum ShimMode {
    /// Report `running` at once, stop at once when asked.
    #[default]
    Obedient,
    /// Report `failed` with this message at once (the entrypoint cannot start).
    Fail(String),
}

#[derive(Debug, Default)]
struct Model {
    calls: Vec<Call>,
    served: BTreeMap<String, Vec<u8>>,
    overlays: BTreeSet<PathBuf>,
    netns: BTreeSet<String>,
    shims: BTreeSet<PathBuf>,
    shim_mode: ShimMode,
    next_pid: i32,
    fail: BTreeMap<&'static str, String>,
    panic: BTreeSet<&'static str>,
    held: BTreeSet<&'static str>,
    memory_total: u64,
}

/// The recording fake.
#[derive(Debug)]
pub struct Fake {
    m: Mutex<Model>,
    changed: Condvar,
}

impl Default for Fake {
    fn default() -> Self {
        Fake::new()
    }
}

impl Fake {
    /// A machine with 8 GiB of memory, nothing mounted, no shims.
    pub fn new() -> Fake {
        Fake {
            m: Mutex::new(Model {
                memory_total: 8 << 30,
                next_pid: 1000,
                ..Model::default()
            }),
            changed: Condvar::new(),
        }
    }
    fn lock(&self) -> MutexGuard<'_, Model> {
        self.m.lock().unwrap_or_else(PoisonError::into_inner)
    }
    /// Calls so far.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }
    /// How many recorded calls match `pred`.
    pub fn count(&self, pred: impl Fn(&Call) -> bool) -> usize {
        self.lock().calls.iter().filter(|c| pred(c)).count()
    }
    /// Waits until a recorded call matches `pred`; false after `timeout`.
    pub fn wait_for(&self, timeout: Duration, pred: impl Fn(&Call) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut m = self.lock();
        while !m.calls.iter().any(&pred) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            m = self
                .changed
                .wait_timeout(m, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }
    /// Sets the machine's memory.
    pub fn set_memory(&self, bytes: u64) {
        self.lock().memory_total = bytes;
    }
    /// `download(url)` will write `body`.
    pub fn serve(&self, url: &str, body: Vec<u8>) {
        self.lock().served.insert(url.to_string(), body);
    }
    /// The next call of `op` (`"rootfs_mount"`, `"netns_create"`, ...) fails with `message`.
    pub fn fail_next(&self, op: &'static str, message: &str) {
        self.lock().fail.insert(op, message.to_string());
    }
    /// The next call of `op` panics (a bug in a side effect).
    pub fn panic_next(&self, op: &'static str) {
        self.lock().panic.insert(op);
    }
    /// Calls of `op` block (after being recorded) until [`Fake::release`]; for `"stop"`, shims
    /// ignore stop requests until then.
    pub fn hold(&self, op: &'static str) {
        self.lock().held.insert(op);
    }
    /// Lets held calls of `op` go on.
    pub fn release(&self, op: &'static str) {
        self.lock().held.remove(op);
        self.changed.notify_all();
    }
    /// New shims report this failure instead of running.
    pub fn shims_fail(&self, message: &str) {
        self.lock().shim_mode = ShimMode::Fail(message.to_string());
    }
    /// The shim of `dir` dies (its container state stays as it was: computed must notice).
    pub fn kill_shim(&self, dir: &Path) {
        self.lock().shims.remove(dir);
    }
    /// Whether an overlay is mounted at `target`.
    pub fn mounted(&self, target: &Path) -> bool {
        self.lock().overlays.contains(target)
    }
    /// Whether namespace `name` exists.
    pub fn has_netns(&self, name: &str) -> bool {
        self.lock().netns.contains(name)
    }

    /// Records `call` for `op`, waits while `op` is held, then applies an injected failure.
    fn enter(&self, op: &'static str, call: Call) -> Result<MutexGuard<'_, Model>> {
        let mut m = self.lock();
        m.calls.push(call);
        self.changed.notify_all();
        if m.panic.remove(op) {
            drop(m);
            panic!("injected panic in {op}");
        }
        while m.held.contains(op) {
            m = self.changed.wait(m).unwrap_or_else(PoisonError::into_inner);
        }
        match m.fail.remove(op) {
            Some(message) => Err(Error::command(op, &message)),
            None => Ok(m),
        }
    }
}

impl System for Fake {
    fn download(&self, url: &str, to: &Path, max: u64) -> Result<()> {
        let m = self.enter("download", Call::Download(url.to_string()))?;
        let body = m
            .served
            .get(url)
            .cloned()
            .ok_or_else(|| Error::command(format!("GET {url}"), "404 not found"))?;
        drop(m);
        if body.len() as u64 > max {
            return Err(Error::command(format!("GET {url}"), "too large"));
        }
        std::fs::write(to, body).ctx(to)
    }
    fn rootfs_mount(
        &self,
        flist: &Path,
        stores: &[String],
        rw: &Path,
        target: &Path,
    ) -> Result<()> {
        let call = Call::Mount {
            flist: flist.into(),
            stores: stores.to_vec(),
            rw: rw.into(),
            target: target.into(),
        };
        let mut m = self.enter("rootfs_mount", call)?;
        std::fs::create_dir_all(target).ctx(target)?;
        m.overlays.insert(target.into());
        Ok(())
    }
    fn rootfs_unmount(&self, target: &Path) -> Result<()> {
        let mut m = self.enter("rootfs_unmount", Call::Unmount(target.into()))?;
        m.overlays.remove(target);
        Ok(())
    }
    fn is_overlay(&self, target: &Path) -> bool {
        self.mounted(target)
    }
    fn netns_create(&self, name: &str) -> Result<()> {
        let mut m = self.enter("netns_create", Call::NetnsCreate(name.into()))?;
        m.netns.insert(name.into());
        Ok(())
    }
    fn netns_delete(&self, name: &str) -> Result<()> {
        let mut m = self.enter("netns_delete", Call::NetnsDelete(name.into()))?;
        m.netns.remove(name);
        Ok(())
    }
    fn spawn_shim(&self, _exe: &Path, dir: &Path) -> Result<()> {
        let mut m = self.enter("spawn_shim", Call::SpawnShim(dir.into()))?;
        let d = Dir(dir.to_path_buf());
        let Some(mut st) = d.status()? else {
            return Ok(());
        };
        match m.shim_mode.clone() {
            ShimMode::Obedient => {
                m.next_pid += 1;
                st.state = ContainerState::Running;
                st.pid = Some(m.next_pid);
                st.started_at = Some(now());
                m.shims.insert(dir.into());
            }
            ShimMode::Fail(message) => {
                st.state = ContainerState::Failed;
                st.message = message;
            }
        }
        d.set_status(&st)
    }
    fn shim_alive(&self, dir: &Path) -> bool {
        let mut m = self.lock();
        if m.panic.remove("shim_alive") {
            drop(m);
            panic!("injected panic in shim_alive");
        }
        let d = Dir(dir.to_path_buf());
        if m.shims.contains(dir) && d.stop_requested() && !m.held.contains("stop") {
            // an obedient shim records the stop and exits
            if let Ok(Some(mut st)) = d.status() {
                st.state = ContainerState::Stopped;
                st.pid = None;
                st.finished_at = Some(now());
                let _ = d.set_status(&st);
            }
            m.shims.remove(dir);
        }
        m.shims.contains(dir)
    }
    fn memory_total(&self) -> u64 {
        self.lock().memory_total
    }
    fn cpus(&self) -> u32 {
        4
    }
}
