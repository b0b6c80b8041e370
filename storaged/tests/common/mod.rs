//! Test harness for real loop devices, btrfs and zdb (as root).
//!
//! Every test gets a folder `/tmp/sdt-<pid>-<n>`; its [`Env`] guard kills the storaged daemon
//! and the zdb servers running from that folder, unmounts everything under it, detaches its
//! loop devices and removes it, also when the test fails. Leftovers of dead runs (folders whose
//! pid is gone) are swept at start. Without root, btrfs-progs, loop devices or the zdb binary,
//! tests skip with a message, but fail when `CI=true`.
#![allow(
    dead_code,
    reason = "each test binary uses a different part of the harness"
)]
#![expect(clippy::unwrap_used, reason = "tests")]

pub mod slowdisk;

use bus::ErrorCode;
use bus::api::Secret;
use bus::api::storage::{AllocateZdb, ZdbAllocate, ZdbMode, ZdbNamespace};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use storaged::node::{ListPools, PoolList};

pub const PREFIX: &str = "sdt-";
pub const MIB: u64 = 1 << 20;
static SEQ: AtomicU32 = AtomicU32::new(0);

/// The zdb binary: `$ZDB_BIN` or the workspace's `target/debug/zdb`.
pub fn zdb_bin() -> PathBuf {
    std::env::var_os("ZDB_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("CARGO_TARGET_DIR")
                .map(std::path::PathBuf::from)
                .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
                .join("debug/zdb")
        })
}

/// `Some(())` when the real-system tests can run; otherwise skips (or panics under CI=true).
pub fn require() -> Option<()> {
    let mut missing = Vec::new();
    if !nodeutil::skip::is_root() {
        missing.push("root".to_string());
    }
    for b in ["mkfs.btrfs", "btrfs", "losetup", "chattr"] {
        if !nodeutil::skip::has_tool(b) {
            missing.push(format!(
                "{b} (apt-get install btrfs-progs util-linux e2fsprogs)"
            ));
        }
    }
    if !Path::new("/dev/loop-control").exists() {
        missing.push("/dev/loop-control".into());
    }
    if !std::fs::read_to_string("/proc/filesystems")
        .unwrap_or_default()
        .contains("btrfs")
    {
        missing.push("btrfs kernel module".into());
    }
    if !zdb_bin().exists() {
        missing.push(format!("{} (cargo build -p zdb)", zdb_bin().display()));
    }
    let msg = format!("real-system test needs: {}", missing.join(", "));
    (!nodeutil::skip::unless(missing.is_empty(), &msg)).then_some(())
}

/// Tears down everything a test created under `dir`.
pub fn cleanup(dir: &Path) {
    power_off(dir);
    let _ = std::fs::remove_dir_all(dir);
}

/// What a reboot does to a test world: processes gone, pools unmounted, loop devices detached
/// (files stay).
pub fn power_off(dir: &Path) {
    if let Err(e) = nodeutil::teardown::release(dir, Duration::ZERO) {
        eprintln!("cleaning up {}: {e}", dir.display());
    }
}

/// Sweeps folders of dead test runs.
fn sweep() {
    for e in std::fs::read_dir("/tmp").into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            cleanup(&e.path());
        }
    }
}

/// One test's world: a folder, images, a node config, a storaged daemon.
pub struct Env {
    pub dir: PathBuf,
    pub root: PathBuf,
    pub config: PathBuf,
    daemon: Option<Child>,
    /// Dropped after everything else is torn down (e.g. a FUSE disk under a loop device).
    guards: Vec<Box<dyn std::any::Any>>,
}

impl Env {
    /// A fresh folder. `disks`: (name, MiB, class, "" for measured).
    pub fn new(disks: &[(&str, u64, &str)]) -> Env {
        sweep();
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let dir = PathBuf::from(format!("/tmp/{PREFIX}{}-{n}", std::process::id()));
        cleanup(&dir);
        std::fs::create_dir_all(dir.join("img")).unwrap();
        let root = dir.join("root");
        let base_port = 21000 + (std::process::id() % 500) as u16 * 10 + n as u16 * 3;
        let disks: Vec<_> = disks
            .iter()
            .map(|(name, mib, class)| {
                let mut d = serde_json::json!({"path": dir.join("img").join(format!("{name}.img")), "size": mib * MIB});
                // "": no class in the config, so storaged measures the disk.
                if !class.is_empty() {
                    d["class"] = (*class).into();
                }
                d
            })
            .collect();
        let cfg = serde_json::json!({
            "node_id": "testnode",
            "disks": disks,
            "zdb": {"binary": zdb_bin(), "listen": "127.0.0.1", "address": "127.0.0.1", "base_port": base_port},
            "state_volume_size": 32 * MIB,
            "refresh_secs": 1,
        });
        let config = dir.join("config.json");
        std::fs::write(&config, serde_json::to_vec_pretty(&cfg).unwrap()).unwrap();
        Env {
            dir,
            root,
            config,
            daemon: None,
            guards: Vec::new(),
        }
    }

    /// Changes the node config file (a running daemon re-reads it on its next scan).
    pub fn edit_config(&self, f: impl FnOnce(&mut serde_json::Value)) {
        let mut cfg: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&self.config).unwrap()).unwrap();
        f(&mut cfg);
        std::fs::write(&self.config, serde_json::to_vec_pretty(&cfg).unwrap()).unwrap();
    }

    /// Adds a disk to the node config.
    pub fn add_disk(&self, disk: serde_json::Value) {
        self.edit_config(|cfg| cfg["disks"].as_array_mut().unwrap().push(disk));
    }

    /// Sets (or with `None` removes) a class override in the node config.
    pub fn set_override(&self, disk: &str, class: Option<&str>) {
        self.edit_config(|cfg| {
            if cfg.get("class_overrides").is_none() {
                cfg["class_overrides"] = serde_json::json!({});
            }
            let o = cfg["class_overrides"].as_object_mut().unwrap();
            match class {
                Some(c) => o.insert(disk.into(), c.into()),
                None => o.remove(disk),
            };
        });
    }

    /// Keeps `guard` alive until the test world is torn down.
    pub fn keep<T: 'static>(&mut self, guard: T) {
        self.guards.push(Box::new(guard));
    }

    pub fn image(&self, name: &str) -> PathBuf {
        self.dir.join("img").join(format!("{name}.img"))
    }

    pub fn client(&self) -> bus::Client {
        bus::Client::new(self.root.join("run/storaged.sock"))
    }

    /// Starts the daemon and waits until it answers health with `ok` (or `degraded`).
    pub async fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("storaged.log"))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_storaged"))
            .arg("--config")
            .arg(&self.config)
            .arg("--root")
            .arg(&self.root)
            .env("RUST_LOG", "info")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.daemon = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(h) = self.client().health().await
                && h.status != bus::api::health::HealthStatus::Starting
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "storaged did not come up:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Simulates a reboot: everything stops, pools unmounted, loops detached, run folder gone.
    pub fn reboot(&mut self) {
        self.kill();
        power_off(&self.dir);
        let _ = std::fs::remove_dir_all(self.root.join("run"));
    }

    /// Kills the daemon hard (zdb servers keep running).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.daemon.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("storaged.log")).unwrap_or_default()
    }

    /// Polls `f` until it returns `Some` (20 s).
    pub async fn wait_for<T, F, Fut>(&self, what: &str, mut f: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(v) = f().await {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("--- storaged log ---\n{}", self.log());
        }
        cleanup(&self.dir);
    }
}

/// A redis connection to a namespace, selected with its password.
pub fn redis_ns(
    port: u16,
    ns: &str,
    password: Option<&str>,
) -> redis::RedisResult<redis::Connection> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/"))?;
    let mut con = client.get_connection_with_timeout(Duration::from_secs(5))?;
    let mut sel = redis::cmd("SELECT");
    sel.arg(ns);
    if let Some(p) = password {
        sel.arg(p);
    }
    sel.query::<()>(&mut con)?;
    Ok(con)
}

/// Allocates a user-mode namespace.
pub async fn alloc(
    env: &Env,
    name: &str,
    size: u64,
    pw: Option<&str>,
) -> Result<ZdbNamespace, bus::BusError> {
    env.client()
        .call::<AllocateZdb>(&ZdbAllocate {
            name: name.into(),
            size,
            mode: ZdbMode::User,
            password: pw.map(|p| Secret(p.into())),
            public: false,
        })
        .await
}

/// The bus error code of a refused call.
pub fn code(e: &bus::BusError) -> Option<ErrorCode> {
    e.remote().map(|r| r.code)
}

/// storaged's pool list.
pub async fn pools(env: &Env) -> PoolList {
    env.client()
        .call::<ListPools>(&bus::api::Empty {})
        .await
        .expect("pool list")
}

/// The pid of `disk`'s zdb server once it serves (with its namespaces' state re-applied).
pub async fn zdb_pid(env: &Env, disk: &str) -> Option<u32> {
    let z = pools(env)
        .await
        .pools
        .into_iter()
        .find(|p| p.name == disk)?
        .zdb?;
    (z.state == storaged::zdbs::ZdbState::Up).then_some(z.pid?)
}
