//! node-init as PID 1 of the node image (`scripts/build-image.sh` makes it `/init`).
//!
//! The kernel runs `/init`; when node-init finds itself PID 1 it runs [`pid1`] instead of its
//! command line: mount the kernel's file systems, load the modules the image lists in
//! `/etc/modules`, read the kernel command line ([`cmdline`], its keys documented there), bring
//! up the network ([`net`]), mount the node's existing pools where storaged keeps them
//! ([`disks`]: that is where the identity is read back from), write storaged's config (real
//! disks, measured classes: a slow disk is an HDD), take the farm's etcd credentials from a
//! config disk if there is one ([`config`]) and start the node daemon the way `--dev`
//! runs it (`node-init --node /var/node --start-storaged --state-on-volume`), which starts
//! storaged, computed and netd and prints `node ready` on the console. Then PID 1 reaps
//! ([`reap`]), starts the node daemon again should it end ([`restart`]), and powers off cleanly on
//! Ctrl-Alt-Del, SIGTERM or SIGPWR ([`shutdown`]).
//!
//! Nothing on the initramfs survives a reboot: the identity is copied to every pool, the
//! engine's records and netd's state live on storaged's state volume (`--state-on-volume`),
//! and the pools themselves are found again by their btrfs label.

pub mod cmdline;
pub mod config;
pub mod disks;
pub mod net;
mod reap;
pub mod restart;
pub mod shutdown;
pub mod system;

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;
use system::Kernel;

/// The node folder in the image (a tmpfs folder; what must persist lives on the disks).
pub const NODE_DIR: &str = "/var/node";
/// Where the build script lists the modules to load, in order.
pub const MODULES_LIST: &str = "/etc/modules";
/// The first zdb port (storaged gives each HDD pool's server the next free one).
pub const ZDB_BASE_PORT: u16 = 9900;

/// The kernel file systems PID 1 mounts: (type, source, target, options).
pub const EARLY_MOUNTS: [(&str, &str, &str, &str); 7] = [
    ("proc", "proc", "/proc", ""),
    ("sysfs", "sysfs", "/sys", ""),
    ("devtmpfs", "devtmpfs", "/dev", "mode=0755"),
    ("devpts", "devpts", "/dev/pts", "mode=0620,ptmxmode=0666"),
    ("tmpfs", "tmpfs", "/dev/shm", "mode=1777"),
    ("tmpfs", "tmpfs", "/run", "mode=0755"),
    ("cgroup2", "cgroup2", "/sys/fs/cgroup", ""),
];

/// Runs the boot steps and never returns (PID 1 must not exit: the kernel would panic).
pub fn pid1() -> ! {
    eprintln!("init: zos node image, node-init as PID 1");
    let k = system::Linux;
    let st = shutdown::arm();
    let (pid, args) = boot(&k, Path::new("/"));
    st.set_main(pid);
    let node = Path::new(NODE_DIR);
    reap::reap_forever(&st, &|| {
        let (program, args) = restart::plan(node, DAEMON, &args);
        report(k.spawn(&program, &args, false))
    })
}

/// The node daemon's binary in the image.
pub const DAEMON: &str = "/usr/bin/node-init";

/// The boot steps under `root` (`/`; tests use a folder); returns the node daemon's pid and
/// its arguments.
fn boot(k: &dyn Kernel, root: &Path) -> (Option<u32>, Vec<String>) {
    for (fstype, source, target, data) in EARLY_MOUNTS {
        if let Err(e) = k.mount(source, &root.join(&target[1..]), fstype, data) {
            eprintln!("init: {e}");
        }
    }
    load_modules(k, &root.join(&MODULES_LIST[1..]));
    let text = std::fs::read_to_string(root.join("proc/cmdline")).unwrap_or_default();
    let (cfg, bad) = cmdline::parse(&text);
    for b in bad {
        eprintln!("init: kernel command line: {b} (ignored)");
    }
    let addr = net::up(k, &cfg, &root.join("sys/class/net"));
    let node = root.join(&NODE_DIR[1..]);
    mount_pools(k, root, &node);
    if let Err(e) = write_storaged_config(&node, addr) {
        eprintln!("init: cannot write the storaged config: {e}");
    }
    if cfg.shell {
        let sh = ["-c".to_string(), "exec setsid cttyhack sh".to_string()];
        report(k.spawn("/bin/sh", &sh, true));
    }
    let mut args = daemon_args(&cfg, &node, addr);
    if !cfg.etcd.is_empty() {
        args.extend(config::etcd_args(k, root));
    }
    let pid = k.spawn(DAEMON, &args, false);
    (report(pid), args)
}

fn report<T>(r: Result<T, String>) -> Option<T> {
    r.map_err(|e| eprintln!("init: {e}")).ok()
}

/// Loads every module in the list (one per line; dependencies through modules.dep).
fn load_modules(k: &dyn Kernel, list: &Path) {
    let text = std::fs::read_to_string(list).unwrap_or_default();
    let failed: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|m| !m.is_empty() && !m.starts_with('#'))
        .filter(|m| k.run("modprobe", &[m], Duration::from_secs(30)).is_err())
        .collect();
    if !failed.is_empty() {
        eprintln!("init: modules not loaded: {}", failed.join(" "));
    }
}

/// Mounts every disk labelled as a storaged pool at storaged's mountpoint for it, so the
/// identity copy on it is found and storaged adopts the mount.
fn mount_pools(k: &dyn Kernel, root: &Path, node: &Path) {
    let pools = node.join("storaged").join("pools");
    for disk in disks::pool_disks(&root.join("sys/block"), &root.join("dev")) {
        let dev = format!("/dev/{disk}");
        match k.mount(&dev, &pools.join(&disk), "btrfs", "noatime") {
            Ok(()) => eprintln!("init: pool on {dev} mounted"),
            Err(e) => eprintln!("init: pool on {dev}: {e}"),
        }
    }
}

/// storaged's config for the image: the machine's own disks (measured classes), zdb on every
/// address, announced at the node's. node-init fills in `node_id` and keeps the rest.
pub fn storaged_config(addr: Option<IpAddr>) -> serde_json::Value {
    serde_json::json!({
        "node_id": "unknown",
        "disks": [],
        "real_disks": true,
        "zdb": {
            "listen": "::",
            "address": addr.map_or_else(|| "::1".to_string(), |a| a.to_string()),
            "base_port": ZDB_BASE_PORT,
        },
    })
}

fn write_storaged_config(node: &Path, addr: Option<IpAddr>) -> Result<(), String> {
    nodeutil::fs::create_private_dir(node).map_err(|e| format!("{}: {e}", node.display()))?;
    nodeutil::fs::write_json(&crate::dev::config_path(node), &storaged_config(addr))
        .map_err(|e| e.to_string())
}

/// The node daemon's command line.
pub fn daemon_args(cfg: &cmdline::BootConfig, node: &Path, addr: Option<IpAddr>) -> Vec<String> {
    let mut a: Vec<String> = [
        "--node",
        &node.display().to_string(),
        "--start-storaged",
        "--state-on-volume",
        // disks are probed and formatted under software emulation: be patient
        "--storaged-timeout",
        "600",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if !cfg.etcd.is_empty() {
        let zdb = match addr {
            Some(IpAddr::V6(v6)) => format!("[{v6}]:{ZDB_BASE_PORT}"),
            Some(v4) => format!("{v4}:{ZDB_BASE_PORT}"),
            None => format!("127.0.0.1:{ZDB_BASE_PORT}"),
        };
        a.extend([
            "--etcd".into(),
            cfg.etcd.join(","),
            "--farm-zdb".into(),
            zdb,
        ]);
        a.extend([
            "--farm".into(),
            cfg.farm.clone().unwrap_or_else(|| "default".into()),
        ]);
    }
    a
}

#[cfg(test)]
mod test;
