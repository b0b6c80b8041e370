//! The farm's etcd credentials from a config disk. Every process on the node can read the
//! kernel command line, so it carries no secret: the etcd CA, the node's client certificate
//! and key, its etcd user and password come from a small disk (a USB stick) whose file system
//! (ext4 or vfat) is labelled [`LABEL`], written once by the farmer: `etcd/ca.pem`,
//! `etcd/cert.pem`, `etcd/key.pem`, `etcd/user`, `etcd/password`, each optional.
//!
//! PID 1 mounts it read-only, copies those files into a private folder on the node's tmpfs
//! (`/run/zos/etcd`, mode 0600), unmounts it, and names the copies to the node daemon
//! (`--etcd-ca`, `--etcd-cert`, `--etcd-key`, `--etcd-password-file`; the user's name as
//! `--etcd-user`, not a secret). storaged leaves the disk alone: it holds other data.

use super::system::Kernel;
use std::path::Path;
use std::time::Duration;

/// The config disk's file system label.
pub const LABEL: &str = "ZOSCONFIG";
/// Where it is mounted while the files are copied, under the root.
const MOUNT: &str = "run/zos/config-disk";
/// Where the copies go, under the root.
const COPIES: &str = "run/zos/etcd";
/// The files PID 1 copies from `etcd/` on the disk, and the flag that names each copy.
const FILES: [(&str, &str); 4] = [
    ("ca.pem", "--etcd-ca"),
    ("cert.pem", "--etcd-cert"),
    ("key.pem", "--etcd-key"),
    ("password", "--etcd-password-file"),
];
/// Largest file taken (a certificate chain is a few KiB).
const MAX_FILE: u64 = 64 << 10;

/// The node daemon's etcd access flags from the config disk (none without one); what goes
/// wrong is said on the console and leaves the node to start without them.
pub fn etcd_args(k: &dyn Kernel, root: &Path) -> Vec<String> {
    // blkid exits 2 when no file system has the label
    let Ok(found) = k.run("blkid", &["-L", LABEL], Duration::from_secs(10)) else {
        return Vec::new();
    };
    let dev = found.trim();
    if dev.is_empty() {
        return Vec::new();
    }
    let mnt = root.join(MOUNT);
    if let Err(e) = std::fs::create_dir_all(&mnt) {
        eprintln!("init: config disk {dev}: {}: {e}", mnt.display());
        return Vec::new();
    }
    let target = mnt.display().to_string();
    let opts = ["-o", "ro,nosuid,nodev,noexec", dev, &target];
    if let Err(e) = k.run("mount", &opts, Duration::from_secs(30)) {
        eprintln!("init: config disk {dev}: {e}");
        return Vec::new();
    }
    let args = copy(&mnt.join("etcd"), &root.join(COPIES)).unwrap_or_else(|e| {
        eprintln!("init: config disk {dev}: {e}");
        Vec::new()
    });
    if let Err(e) = k.run("umount", &[&target], Duration::from_secs(30)) {
        eprintln!("init: config disk {dev}: {e}");
    }
    if !args.is_empty() {
        eprintln!("init: farm credentials from config disk {dev}");
    }
    args
}

/// Copies the files `src` holds into `dest` (private) and returns the flags naming them.
fn copy(src: &Path, dest: &Path) -> Result<Vec<String>, String> {
    let mut args = Vec::new();
    for (name, flag) in FILES {
        let Some(bytes) = small_file(&src.join(name))? else {
            continue;
        };
        nodeutil::fs::create_private_dir(dest).map_err(|e| format!("{}: {e}", dest.display()))?;
        let to = dest.join(name);
        nodeutil::fs::write_durable(&to, &bytes, 0o600).map_err(|e| e.to_string())?;
        args.extend([flag.to_string(), to.display().to_string()]);
    }
    if let Some(bytes) = small_file(&src.join("user"))? {
        let user = String::from_utf8_lossy(&bytes).trim().to_string();
        if user.is_empty()
            || user.len() > 128
            || user.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err("etcd/user: one name of 1..=128 characters expected".into());
        }
        args.extend(["--etcd-user".to_string(), user]);
    }
    Ok(args)
}

/// A regular file of at most [`MAX_FILE`] bytes, `None` when absent.
fn small_file(path: &Path) -> Result<Option<Vec<u8>>, String> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    if !meta.is_file() || meta.len() > MAX_FILE {
        return Err(format!(
            "{}: a regular file of at most {MAX_FILE} bytes expected",
            path.display()
        ));
    }
    std::fs::read(path)
        .map(Some)
        .map_err(|e| format!("{}: {e}", path.display()))
}
