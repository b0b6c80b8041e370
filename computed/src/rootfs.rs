//! What a container stands on before the runtime runs: its flist (fetched, pinned by identity,
//! kept in computed's own folder so a restart does not depend on the original file), the
//! shared read-only mount with an overlay on top (`flist container start`, so the FUSE daemon
//! is flist-fuse's own process), and a network namespace with loopback up.

use crate::error::{Error, IoContext, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Largest flist file accepted from a URL.
const MAX_FLIST: u64 = 512 << 20;

/// Where netns files live (`ip netns` convention), so `ip -n NAME` and the network daemon find
/// them.
pub const NETNS_DIR: &str = "/run/netns";

/// Tools and folders used to build a root filesystem.
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
    /// Pinned flists, `<identity>.flist`.
    pub flists: PathBuf,
}

/// Identity (hex) of the flist at `path`.
pub fn identity_of(path: &Path) -> Result<String> {
    let fl = flist_fuse::rfs::read_any(path)
        .map_err(|e| Error::Invalid(format!("{}: not an flist: {e}", path.display())))?;
    Ok(flist_fuse::format::hex(&fl.identity))
}

/// Returns a local copy of the flist named by `source` (path or http(s) URL) whose identity
/// is `identity`, fetching it once.
pub fn pin(tools: &Tools, source: &str, identity: &str) -> Result<PathBuf> {
    let identity = identity.to_ascii_lowercase();
    if identity.len() != 64 || !identity.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::Invalid(format!(
            "flist identity must be 64 hex digits, got {identity:?}"
        )));
    }
    let pinned = tools.flists.join(format!("{identity}.flist"));
    if pinned.exists() {
        return Ok(pinned);
    }
    std::fs::create_dir_all(&tools.flists).ctx(&tools.flists)?;
    let tmp = tools
        .flists
        .join(format!(".{identity}.{}.tmp", std::process::id()));
    let fetched = if source.starts_with("http://") || source.starts_with("https://") {
        download(source, &tmp)
    } else {
        std::fs::copy(source, &tmp).map(|_| ()).ctx(source)
    };
    let checked = fetched.and_then(|()| {
        let got = identity_of(&tmp)?;
        if got != identity {
            return Err(Error::Invalid(format!(
                "flist {source} has identity {got}, not the pinned {identity}"
            )));
        }
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .ctx(&tmp)?;
        std::fs::rename(&tmp, &pinned).ctx(&pinned)
    });
    if checked.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    checked.map(|()| pinned)
}

fn download(url: &str, to: &Path) -> Result<()> {
    let fail = |detail: String| Error::Command {
        cmd: format!("GET {url}"),
        detail,
    };
    let resp = ureq::get(url)
        .timeout(Duration::from_secs(60))
        .call()
        .map_err(|e| fail(e.to_string()))?;
    let mut body = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(resp.into_reader(), MAX_FLIST + 1),
        &mut body,
    )
    .map_err(|e| fail(e.to_string()))?;
    if body.len() as u64 > MAX_FLIST {
        return Err(fail(format!("larger than {MAX_FLIST} bytes")));
    }
    std::fs::write(to, body).ctx(to)
}

fn run(cmd: &mut Command) -> Result<()> {
    let what = format!("{cmd:?}");
    let out = cmd.output().map_err(|e| Error::Command {
        cmd: what.clone(),
        detail: e.to_string(),
    })?;
    if out.status.success() {
        return Ok(());
    }
    let mut detail = String::from_utf8_lossy(&out.stderr).trim().to_string();
    if detail.len() > 2000 {
        detail = detail[detail.len() - 2000..].to_string();
    }
    Err(Error::Command {
        cmd: what,
        detail: format!("{}: {detail}", out.status),
    })
}

/// Stacks the overlay (upper in `rw`) on the shared read-only mount of `flist` at `target`.
pub fn mount(
    tools: &Tools,
    flist: &Path,
    stores: &[String],
    rw: &Path,
    target: &Path,
) -> Result<()> {
    let mut cmd = Command::new(&tools.flist_bin);
    cmd.arg("container")
        .arg("start")
        .arg("--state")
        .arg(&tools.flist_state)
        .arg("--cache")
        .arg(&tools.cache)
        .arg("--cache-size")
        .arg(&tools.cache_size);
    for s in stores {
        cmd.arg("--store").arg(s);
    }
    run(cmd.arg(flist).arg(rw).arg(target))
}

/// Removes the overlay at `target` (the shared mount goes with its last user). Not mounted
/// and not counted (after a reboot, or never mounted) is fine.
pub fn unmount(tools: &Tools, target: &Path) -> Result<()> {
    let r = run(Command::new(&tools.flist_bin)
        .arg("container")
        .arg("stop")
        .arg("--state")
        .arg(&tools.flist_state)
        .arg(target));
    match r {
        Err(_) if !is_overlay(target) => Ok(()),
        r => r,
    }
}

/// Whether an overlay is mounted at `target`.
pub fn is_overlay(target: &Path) -> bool {
    flist_fuse::mount::mounted_type(target).is_some_and(|t| t == "overlay")
}

/// Path of the network namespace `name`.
pub fn netns_path(name: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(name)
}

/// Creates the network namespace `name` with only loopback, up. An existing one is kept.
pub fn netns_create(name: &str) -> Result<()> {
    if !netns_path(name).exists() {
        run(Command::new("ip").args(["netns", "add", name]))?;
    }
    run(Command::new("ip").args(["-n", name, "link", "set", "lo", "up"]))
}

/// Deletes the network namespace `name`; absent is fine.
pub fn netns_delete(name: &str) -> Result<()> {
    if !netns_path(name).exists() {
        return Ok(());
    }
    run(Command::new("ip").args(["netns", "delete", name]))
}
