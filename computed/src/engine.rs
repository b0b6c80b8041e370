//! Container lifecycle policy: create (or converge), stop, start, delete, adopt after a restart
//! of computed or of the node. Blocking code, called by the bus handlers on the blocking pool
//! under one lock; each container's runtime work happens in its shim, never here.

use crate::error::{Error, IoContext, Result};
use crate::rootfs::{self, Tools};
use crate::shim::initial_status;
use crate::state::{Dir, now, write_json};
use bus::api::compute::{ComputeCapacity, Container, ContainerSpec, ContainerState, LogsChunk};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Longest container name (leaves room for prefixes in netns and cgroup names).
pub const MAX_NAME: usize = 100;
/// Smallest memory limit accepted.
pub const MIN_MEMORY: u64 = 4 << 20;
/// How long a start may take before the caller is answered with the state so far.
const START_WAIT: Duration = Duration::from_secs(30);

/// How computed runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// State folder (`containers/`, `flists/`, flist state and cache by default).
    pub root: PathBuf,
    /// Root filesystem tools.
    pub tools: Tools,
    /// Parent cgroup of every container (`/<parent>/<name>`), e.g. so a test can cap them all.
    pub cgroup_parent: String,
    /// Prefix of network namespace names.
    pub netns_prefix: String,
    /// Memory kept for the node itself (not given to containers).
    pub memory_system: u64,
    /// Binary run as `EXE shim DIR`.
    pub shim_exe: PathBuf,
}

/// The containers of the node.
pub struct Engine {
    cfg: Config,
}

impl Engine {
    /// Opens the state folder.
    pub fn new(cfg: Config) -> Result<Engine> {
        let c = cfg.root.join("containers");
        std::fs::create_dir_all(&c).ctx(&c)?;
        Ok(Engine { cfg })
    }

    fn dir(&self, name: &str) -> Dir {
        Dir::new(&self.cfg.root, name)
    }

    fn netns_name(&self, name: &str) -> String {
        format!("{}{name}", self.cfg.netns_prefix)
    }

    /// Names of all containers.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.cfg.root.join("containers"))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().join("spec.json").exists())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        v.sort();
        v
    }

    /// Creates the container or converges an existing one: same spec and not failed = kept as
    /// is (a dead shim is replaced); otherwise it is replaced with a fresh writable layer.
    pub fn create(&self, spec: &ContainerSpec) -> Result<Container> {
        validate(spec)?;
        let dir = self.dir(&spec.name);
        if let Ok(old) = dir.spec() {
            let status = dir.status()?;
            let failed = status
                .as_ref()
                .is_none_or(|s| s.state == ContainerState::Failed);
            if old == *spec && !failed {
                self.recover(&spec.name)?;
                return self.get(&spec.name);
            }
            tracing::info!(name = %spec.name, "spec changed or failed: replacing the container");
            self.delete(&spec.name)?;
        }
        let cap = self.capacity();
        if spec.memory > cap.memory_free() {
            return Err(Error::NoCapacity(format!(
                "{} bytes of memory asked, {} free for containers",
                spec.memory,
                cap.memory_free()
            )));
        }
        if !spec.rw.is_dir() {
            return Err(Error::Invalid(format!(
                "writable layer folder {} does not exist",
                spec.rw.display()
            )));
        }
        let t0 = Instant::now();
        let flist = rootfs::pin(&self.cfg.tools, &spec.flist, &spec.identity)?;
        std::fs::create_dir_all(&dir.0).ctx(&dir.0)?;
        let netns = self.netns_name(&spec.name);
        let mut status = initial_status(spec, &spec.identity.to_ascii_lowercase(), &netns);
        write_json(&dir.file("spec.json"), spec)?;
        dir.set_status(&status)?;
        let r = self.build(spec, &dir, &flist, &netns, &mut status, t0);
        if let Err(e) = &r {
            status.state = ContainerState::Failed;
            status.message = e.to_string();
            let _ = dir.set_status(&status);
            return Err(Error::Runtime(format!("{}: {e}", spec.name)));
        }
        self.spawn_shim(&dir)?;
        self.wait_started(&spec.name)
    }

    /// Fresh writable layer, overlay, network namespace and bundle.
    fn build(
        &self,
        spec: &ContainerSpec,
        dir: &Dir,
        flist: &Path,
        netns: &str,
        status: &mut Container,
        t0: Instant,
    ) -> Result<()> {
        for sub in ["upper", "work"] {
            let p = spec.rw.join(sub);
            if p.exists() {
                std::fs::remove_dir_all(&p).ctx(&p)?;
            }
        }
        let target = dir.file("rootfs");
        rootfs::mount(&self.cfg.tools, flist, &spec.stores, &spec.rw, &target)?;
        status.timings.rootfs_ms = t0.elapsed().as_millis() as u64;
        let t1 = Instant::now();
        rootfs::netns_create(netns)?;
        status.timings.network_ms = t1.elapsed().as_millis() as u64;
        self.write_bundle(spec, dir, netns)?;
        dir.set_status(status)
    }

    fn write_bundle(&self, spec: &ContainerSpec, dir: &Dir, netns: &str) -> Result<()> {
        let cgroup = format!(
            "/{}/{}",
            self.cfg.cgroup_parent.trim_matches('/'),
            spec.name
        );
        let rootfs = dir.file("rootfs");
        let netns_path = rootfs::netns_path(netns);
        let cfg = crate::bundle::config(
            spec,
            &crate::bundle::Placement {
                rootfs: &rootfs,
                netns: &netns_path,
                cgroup: &cgroup,
            },
        )?;
        let b = dir.file("bundle");
        std::fs::create_dir_all(&b).ctx(&b)?;
        write_json(&b.join("config.json"), &cfg)
    }

    fn spawn_shim(&self, dir: &Dir) -> Result<()> {
        let log_path = dir.file("shim.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .ctx(&log_path)?;
        let log2 = log.try_clone().ctx(&log_path)?;
        let mut child = Command::new(&self.cfg.shim_exe)
            .arg("shim")
            .arg(&dir.0)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .ctx(&self.cfg.shim_exe)?;
        // reap it when it ends (it is our child until we exit)
        std::thread::spawn(move || child.wait());
        Ok(())
    }

    /// Waits until the shim reports the first run (or gives up with the state so far).
    fn wait_started(&self, name: &str) -> Result<Container> {
        let dir = self.dir(name);
        let t0 = Instant::now();
        loop {
            if let Some(s) = dir.status()?
                && s.state != ContainerState::Creating
            {
                if s.state == ContainerState::Failed {
                    return Err(Error::Runtime(format!("{name}: {}", s.message)));
                }
                return Ok(s);
            }
            if t0.elapsed() > START_WAIT {
                return self.get(name);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The container's status (`Failed` with a reason when its shim died unexpectedly).
    pub fn get(&self, name: &str) -> Result<Container> {
        let dir = self.dir(name);
        let Some(mut s) = dir.status().ok().flatten() else {
            return Err(Error::NotFound(name.to_string()));
        };
        if !s.state.is_final() && s.state != ContainerState::Creating && !dir.shim_alive() {
            s.message = "its shim is gone; computed restarts it".into();
        }
        Ok(s)
    }

    /// Every container.
    pub fn list(&self) -> Vec<Container> {
        self.names()
            .iter()
            .filter_map(|n| self.get(n).ok())
            .collect()
    }

    /// Restarts the shim of a container that should run but has none (after a crash of the
    /// shim or a reboot): the overlay and the network namespace are made again if missing.
    pub fn recover(&self, name: &str) -> Result<bool> {
        let dir = self.dir(name);
        let Some(mut status) = dir.status()? else {
            return Ok(false);
        };
        if status.state.is_final() || dir.shim_alive() || dir.file("stop").exists() {
            return Ok(false);
        }
        tracing::info!(name, state = ?status.state, "no shim: recovering the container");
        status.state = ContainerState::Restarting;
        status.pid = None;
        dir.set_status(&status)?;
        self.relaunch(&dir, &status.netns)?;
        Ok(true)
    }

    /// Mounts the overlay again if it is gone (a reboot took it; the writable layer is kept:
    /// this is the same container), makes the network namespace and the bundle, starts a shim.
    fn relaunch(&self, dir: &Dir, netns: &str) -> Result<()> {
        let spec = dir.spec()?;
        let target = dir.file("rootfs");
        if !rootfs::is_overlay(&target) {
            let flist = rootfs::pin(&self.cfg.tools, &spec.flist, &spec.identity)?;
            // drop the stale reference of the lost mount first
            let _ = rootfs::unmount(&self.cfg.tools, &target);
            rootfs::mount(&self.cfg.tools, &flist, &spec.stores, &spec.rw, &target)?;
        }
        rootfs::netns_create(netns)?;
        self.write_bundle(&spec, dir, netns)?;
        self.spawn_shim(dir)
    }

    /// Recovers every container that needs it; returns the names recovered.
    pub fn recover_all(&self) -> Vec<String> {
        let mut done = Vec::new();
        for n in self.names() {
            match self.recover(&n) {
                Ok(true) => done.push(n),
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(name = %n, error = %e, "recovery failed");
                    let dir = self.dir(&n);
                    if let Ok(Some(mut s)) = dir.status() {
                        s.state = ContainerState::Failed;
                        s.message = format!("recovery failed: {e}");
                        let _ = dir.set_status(&s);
                    }
                }
            }
        }
        done
    }

    /// Stops a container and waits until its shim is done.
    pub fn stop(&self, name: &str) -> Result<Container> {
        let dir = self.dir(name);
        let spec = dir.spec().map_err(|_| Error::NotFound(name.to_string()))?;
        std::fs::write(dir.file("stop"), b"").ctx(dir.file("stop"))?;
        let deadline = Instant::now() + Duration::from_secs(u64::from(spec.stop_grace_secs) + 15);
        while dir.shim_alive() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if dir.shim_alive() {
            return Err(Error::Runtime(format!(
                "{name}: the shim did not stop in time"
            )));
        }
        if let Some(mut s) = dir.status()?
            && !s.state.is_final()
        {
            s.state = ContainerState::Stopped;
            s.pid = None;
            s.finished_at.get_or_insert_with(now);
            dir.set_status(&s)?;
        }
        self.get(name)
    }

    /// Starts a stopped or exited container again (same writable layer).
    pub fn start(&self, name: &str) -> Result<Container> {
        let dir = self.dir(name);
        if dir.spec().is_err() {
            return Err(Error::NotFound(name.to_string()));
        }
        let _ = std::fs::remove_file(dir.file("stop"));
        if dir.shim_alive() {
            return self.get(name);
        }
        let mut s = dir.status()?.ok_or_else(|| Error::NotFound(name.into()))?;
        s.state = ContainerState::Creating;
        s.message.clear();
        dir.set_status(&s)?;
        self.relaunch(&dir, &s.netns)?;
        self.wait_started(name)
    }

    /// Stops and removes a container: overlay, network namespace, logs, state. Absent is fine.
    pub fn delete(&self, name: &str) -> Result<()> {
        let dir = self.dir(name);
        if !dir.0.exists() {
            return Ok(());
        }
        if dir.spec().is_ok() {
            self.stop(name)?;
        }
        let target = dir.file("rootfs");
        rootfs::unmount(&self.cfg.tools, &target)?;
        if rootfs::is_overlay(&target) {
            return Err(Error::Runtime(format!("{name}: overlay still mounted")));
        }
        let netns = dir
            .status()
            .ok()
            .flatten()
            .map(|s| s.netns)
            .unwrap_or_else(|| self.netns_name(name));
        rootfs::netns_delete(&netns)?;
        std::fs::remove_dir_all(&dir.0).ctx(&dir.0)?;
        tracing::info!(name, "container deleted");
        Ok(())
    }

    /// Captured output from `offset`.
    pub fn logs(&self, name: &str, offset: u64, max: u64) -> Result<LogsChunk> {
        let dir = self.dir(name);
        if !dir.0.join("spec.json").exists() {
            return Err(Error::NotFound(name.to_string()));
        }
        let finished = !dir.shim_alive() && dir.status()?.is_none_or(|s| s.state.is_final());
        let (start, data, next) = crate::logs::read(&dir.0, offset, max)?;
        Ok(LogsChunk {
            offset: start,
            data: String::from_utf8_lossy(&data).into_owned(),
            next,
            finished,
        })
    }

    /// Memory and CPU of the node and what containers hold.
    pub fn capacity(&self) -> ComputeCapacity {
        let memory_reserved = self
            .names()
            .iter()
            .filter_map(|n| self.dir(n).spec().ok())
            .map(|s| s.memory)
            .sum();
        ComputeCapacity {
            cpus: std::thread::available_parallelism()
                .map(|n| n.get() as u32)
                .unwrap_or(1),
            memory_total: memory_total(),
            memory_system: self.cfg.memory_system,
            memory_reserved,
        }
    }
}

fn memory_total() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// Checks a spec before anything is made.
pub fn validate(spec: &ContainerSpec) -> Result<()> {
    let bad = |m: String| Err(Error::Invalid(m));
    let n = &spec.name;
    if n.is_empty()
        || n.len() > MAX_NAME
        || !n
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return bad(format!(
            "container name {n:?} must be 1 to {MAX_NAME} characters of [a-zA-Z0-9_-]"
        ));
    }
    if spec.entrypoint.is_empty() || spec.entrypoint[0].is_empty() {
        return bad("entrypoint is empty".into());
    }
    if spec.memory < MIN_MEMORY {
        return bad(format!("memory must be at least {MIN_MEMORY} bytes"));
    }
    if !spec.cpu.is_finite() || spec.cpu < 0.0 || spec.cpu > 1024.0 {
        return bad(format!("cpu {} out of range 0..=1024 cores", spec.cpu));
    }
    if spec.pids == 0 {
        return bad("pids must be at least 1".into());
    }
    if !spec.workdir.starts_with('/') {
        return bad(format!("workdir {:?} must be absolute", spec.workdir));
    }
    if let Some(h) = &spec.hostname
        && (h.is_empty()
            || h.len() > 63
            || !h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
    {
        return bad(format!("hostname {h:?} is not a valid host name"));
    }
    for (k, v) in &spec.env {
        if k.is_empty() || k.contains('=') || k.contains('\0') || v.contains('\0') {
            return bad(format!("environment variable {k:?} is not valid"));
        }
    }
    for m in &spec.mounts {
        let t = Path::new(&m.target);
        if !t.is_absolute()
            || t.components()
                .any(|c| matches!(c, std::path::Component::ParentDir))
            || t == Path::new("/")
        {
            return bad(format!(
                "mount target {:?} must be an absolute path below /",
                m.target
            ));
        }
        if !m.source.is_absolute() || !m.source.is_dir() {
            return bad(format!(
                "mount source {} must be an existing folder",
                m.source.display()
            ));
        }
    }
    if !spec.rw.is_absolute() {
        return bad(format!("rw {} must be absolute", spec.rw.display()));
    }
    Ok(())
}
