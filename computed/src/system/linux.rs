//! [`System`] on Linux: `flist container` for the rootfs, `ip` for network namespaces, `nodeutil::http` for
//! downloads, flock for shim liveness, `/proc/meminfo` for memory.

use super::process::{run, run_with_input};
use super::{System, netns_path};
use crate::error::{Error, IoContext, Result};
use crate::state::Dir;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Longest flist download.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(60);
/// `flist container start` fetches the flist's first blocks and waits up to 30 s for its mount.
const ROOTFS_START_TIMEOUT: Duration = Duration::from_secs(90);
/// `flist container stop` unmounts, and stops the shared mount's daemon with its last user.
const ROOTFS_STOP_TIMEOUT: Duration = Duration::from_secs(60);
/// `flist container upgrade`: each mount's hand-over may take a drain (up to 120 s) and more.
const ROOTFS_UPGRADE_TIMEOUT: Duration = Duration::from_secs(600);
/// `ip netns ...`.
const IP_TIMEOUT: Duration = Duration::from_secs(15);

/// The `flist` tool and the folders its container mounts use.
#[derive(Debug, Clone)]
pub struct Tools {
    /// `flist` binary.
    pub flist_bin: PathBuf,
    /// `flist container` state folder.
    pub flist_state: PathBuf,
    /// Shared block cache.
    pub cache: PathBuf,
    /// Cache bound (flist size syntax, e.g. `2G`).
    pub cache_size: String,
}

/// The real system.
#[derive(Debug, Clone)]
pub struct Linux {
    /// How root filesystems are mounted.
    pub tools: Tools,
}

/// The record of the `flist` binary a live upgrade switched to (`FLIST_STATE/binary.json`):
/// it outranks the configured one, across restarts of computed.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct BinaryRecord {
    binary: PathBuf,
}

impl Tools {
    fn record(&self) -> PathBuf {
        self.flist_state.join("binary.json")
    }

    /// The `flist` binary to run: the one a live upgrade switched to, if it is still there.
    pub fn flist(&self) -> PathBuf {
        match nodeutil::fs::read_json::<BinaryRecord>(&self.record()) {
            Ok(Some(r)) if r.binary.is_file() => r.binary,
            _ => self.flist_bin.clone(),
        }
    }
}

/// The one place store URLs are handed to `flist`. They may carry credentials, which a command
/// line shows to every user of the machine (`/proc/PID/cmdline`), so they go to the child's
/// stdin (`--stores-stdin`, one per line).
fn flist_container_start(
    tools: &Tools,
    flist: &Path,
    stores: &[String],
    rw: &Path,
    target: &Path,
) -> Result<()> {
    let mut cmd = Command::new(tools.flist());
    cmd.arg("container")
        .arg("start")
        .arg("--state")
        .arg(&tools.flist_state)
        .arg("--cache")
        .arg(&tools.cache)
        .arg("--cache-size")
        .arg(&tools.cache_size);
    let mut input = Vec::new();
    for s in stores {
        input.extend_from_slice(s.as_bytes());
        input.push(b'\n');
    }
    run_with_input(
        "flist container start",
        cmd.arg("--stores-stdin").arg(flist).arg(rw).arg(target),
        Some(input),
        ROOTFS_START_TIMEOUT,
    )
}

impl System for Linux {
    fn download(&self, url: &str, to: &Path, max: u64) -> Result<()> {
        nodeutil::http::download(url, to, max, DOWNLOAD_TIMEOUT)
            .map(drop)
            .map_err(|e| Error::command("download", &e.to_string()))
    }

    fn rootfs_mount(
        &self,
        flist: &Path,
        stores: &[String],
        rw: &Path,
        target: &Path,
    ) -> Result<()> {
        flist_container_start(&self.tools, flist, stores, rw, target)
    }

    fn rootfs_unmount(&self, target: &Path) -> Result<()> {
        let r = run(
            "flist container stop",
            Command::new(self.tools.flist())
                .arg("container")
                .arg("stop")
                .arg("--state")
                .arg(&self.tools.flist_state)
                .arg(target),
            ROOTFS_STOP_TIMEOUT,
        );
        match r {
            Err(_) if !self.is_overlay(target) => Ok(()),
            r => r,
        }
    }

    fn rootfs_upgrade(
        &self,
        binary: &Path,
    ) -> Result<(PathBuf, Vec<bus::api::upgrade::FlistMountHandover>)> {
        use flist_fuse::mount::overlay::Upgraded;
        let previous = self.tools.flist();
        let report = self.tools.flist_state.join("upgrade-report.json");
        let _ = std::fs::remove_file(&report);
        std::fs::create_dir_all(&self.tools.flist_state).ctx(&self.tools.flist_state)?;
        let ran = run(
            "flist container upgrade",
            Command::new(binary)
                .arg("container")
                .arg("upgrade")
                .arg("--state")
                .arg(&self.tools.flist_state)
                .arg("--report")
                .arg(&report),
            ROOTFS_UPGRADE_TIMEOUT,
        );
        // The report says what happened to each mount, also when some failed.
        let mounts: Vec<Upgraded> = match nodeutil::fs::read_json(&report) {
            Ok(Some(m)) => m,
            _ => return ran.map(|()| (previous, Vec::new())),
        };
        let mounts: Vec<_> = mounts
            .into_iter()
            .map(|m| bus::api::upgrade::FlistMountHandover {
                identity: m.identity,
                upgraded: m.error.is_none(),
                pid: m.pid,
                detail: m.error,
            })
            .collect();
        if mounts.iter().all(|m| m.upgraded) {
            nodeutil::fs::write_json(
                &self.tools.record(),
                &BinaryRecord {
                    binary: binary.to_path_buf(),
                },
            )
            .map_err(|e| Error::Invalid(format!("cannot record the flist binary: {e}")))?;
        }
        Ok((previous, mounts))
    }

    fn is_overlay(&self, target: &Path) -> bool {
        flist_fuse::mount::mounted_type(target).is_some_and(|t| t == "overlay")
    }

    fn rootfs_ok(&self, target: &Path) -> bool {
        // listing the root reads the flist's root folder through FUSE (metadata of the flist,
        // no block fetch): ENOTCONN when its daemon is gone
        self.is_overlay(target)
            && std::fs::read_dir(target).is_ok_and(|mut d| d.next().is_none_or(|e| e.is_ok()))
    }

    fn netns_create(&self, name: &str) -> Result<()> {
        if !netns_path(name).exists() {
            run(
                "ip netns add",
                Command::new("ip").args(["netns", "add", name]),
                IP_TIMEOUT,
            )?;
        }
        run(
            "ip link set lo up",
            Command::new("ip").args(["-n", name, "link", "set", "lo", "up"]),
            IP_TIMEOUT,
        )
    }

    fn netns_delete(&self, name: &str) -> Result<()> {
        if !netns_path(name).exists() {
            return Ok(());
        }
        run(
            "ip netns delete",
            Command::new("ip").args(["netns", "delete", name]),
            IP_TIMEOUT,
        )
    }

    fn spawn_shim(&self, exe: &Path, dir: &Path) -> Result<()> {
        let log_path = dir.join("shim.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .ctx(&log_path)?;
        let log2 = log.try_clone().ctx(&log_path)?;
        let mut child = Command::new(exe)
            .arg("shim")
            .arg(dir)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .ctx(exe)?;
        // reap it when it ends (it is our child until we exit)
        std::thread::spawn(move || child.wait());
        Ok(())
    }

    fn shim_alive(&self, dir: &Path) -> bool {
        Dir(dir.to_path_buf()).shim_alive()
    }

    fn memory_total(&self) -> u64 {
        std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("MemTotal:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
            .map(|kb| kb.saturating_mul(1024))
            .unwrap_or(0)
    }

    fn cpus(&self) -> u32 {
        std::thread::available_parallelism()
            .map(|n| u32::try_from(n.get()).unwrap_or(u32::MAX))
            .unwrap_or(1)
    }
}
