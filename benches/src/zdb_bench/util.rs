//! Small system helpers: shell commands, clock ticks, ports, disk usage, settling.

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::Duration;

use super::R;

pub(crate) fn sh(cmd: &str, args: &[&str]) -> R<String> {
    let out = Command::new(cmd)
        .args(args)
        .stderr(Stdio::inherit())
        .output()?;
    if !out.status.success() {
        return Err(format!("{cmd} {args:?} failed: {}", out.status).into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub(crate) fn clk_tck() -> f64 {
    static T: OnceLock<f64> = OnceLock::new();
    *T.get_or_init(|| {
        sh("getconf", &["CLK_TCK"])
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

pub(crate) fn free_port() -> R<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Apparent size of every file under `p`.
pub(crate) fn dir_bytes(p: &Path) -> u64 {
    let mut n = 0;
    if let Ok(rd) = fs::read_dir(p) {
        for e in rd.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => n += dir_bytes(&e.path()),
                Ok(m) => n += m.size(),
                Err(_) => {}
            }
        }
    }
    n
}

pub(crate) fn free_disk(p: &Path) -> u64 {
    sh("df", &["-B1", "--output=avail", &p.display().to_string()])
        .ok()
        .and_then(|s| s.lines().nth(1).and_then(|l| l.trim().parse().ok()))
        .unwrap_or(0)
}

pub(crate) fn sync_disks() {
    let _ = Command::new("sync").status();
}

/// Between large-value runs: write back, drop the page cache (root only), let the disk settle,
/// so that each run starts from the same state whoever ran before it.
pub(crate) fn settle() {
    sync_disks();
    let _ = fs::write("/proc/sys/vm/drop_caches", "3");
    thread::sleep(Duration::from_secs(1));
}

pub(crate) fn machine() -> String {
    let uname = sh("uname", &["-a"]).unwrap_or_default();
    let mem = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().next().map(str::to_string))
        .unwrap_or_default();
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let nproc = sh("nproc", &["--all"]).unwrap_or_default();
    let redis = sh("redis-server", &["--version"]).unwrap_or_default();
    let fio = sh("fio", &["--version"]).unwrap_or_default();
    format!(
        "{} vCPU ({cpu}), {}, {}\n{}{}",
        nproc.trim(),
        mem.split_whitespace().collect::<Vec<_>>().join(" "),
        uname.trim(),
        redis,
        fio
    )
}
