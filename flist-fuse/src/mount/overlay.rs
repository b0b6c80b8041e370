//! Containers: an overlayfs with a writable upper folder stacked on the read-only mount of
//! an flist. Containers of one flist share one read-only mount (one daemon), counted by
//! reference.
//!
//! State (default `/run/flist`): `STATE/.lock` (flock, serializes start/stop),
//! `STATE/mounts/<identity>/ro` (the shared mount), `.../refs/<blake3(target)>` (one file
//! per container, holding the target path: the reference count is the number of files, so
//! it survives a crash of this command), `.../daemon.log`, and `STATE/handover/<16 hex of
//! the identity>.sock`, the mount's hand-over socket (short: a unix socket path has at most
//! 107 bytes), through which [`upgrade`] hands every shared mount to a new binary.

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::fs::FlockOperation;
use rustix::mount::MountFlags;

use super::args::MountArgs;
use super::daemon;
use super::kernel::{detach, mounted_type, unmount};
use super::log::log;
use crate::error::{Error, IoContext, Result};
use crate::format::hex;

/// Default state folder.
pub const DEFAULT_STATE: &str = "/run/flist";

/// What a container start needs.
#[derive(Debug, Clone)]
pub struct StartArgs {
    /// State folder (references, shared mounts, daemon logs).
    pub state: PathBuf,
    /// The flist file.
    pub flist: PathBuf,
    /// Holds `upper/` and `work/` of the overlay.
    pub rw: PathBuf,
    /// Where the container's root appears.
    pub target: PathBuf,
    /// Block cache folder.
    pub cache: PathBuf,
    /// Bound of the cache, bytes.
    pub cache_size: u64,
    /// Store URLs replacing the flist's routes (may carry passwords: never on a command line).
    pub stores: Vec<String>,
}

struct StateLock {
    _f: fs::File,
}

fn lock_state(state: &Path) -> Result<StateLock> {
    fs::create_dir_all(state).ctx(state)?;
    let lp = state.join(".lock");
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lp)
        .ctx(&lp)?;
    rustix::fs::flock(&f, FlockOperation::LockExclusive).ctx(&lp)?;
    Ok(StateLock { _f: f })
}

fn ref_name(target: &Path) -> String {
    let h = blake3::hash(target.as_os_str().as_bytes());
    hex(h.as_bytes().get(..16).unwrap_or_default())
}

fn refs(base: &Path) -> Vec<PathBuf> {
    fs::read_dir(base.join("refs"))
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

fn check_opt_path(p: &Path) -> Result<()> {
    let b = p.as_os_str().as_bytes();
    if b.iter().any(|c| matches!(c, b',' | b':' | b'\\' | b'\n')) {
        return Err(Error::invalid(
            p,
            "overlay paths may not contain ',', ':', '\\' or newlines",
        ));
    }
    Ok(())
}

/// Shared read-only mount folder of an flist identity.
pub fn ro_dir(state: &Path, identity_hex: &str) -> PathBuf {
    state.join("mounts").join(identity_hex).join("ro")
}

/// Start a container: ensure the shared read-only mount, stack the overlay on `target`.
pub fn start(a: &StartArgs) -> Result<()> {
    let fl = crate::rfs::read_any(&a.flist)?;
    let id = hex(&fl.identity);
    let _l = lock_state(&a.state)?;
    let base = a.state.join("mounts").join(&id);
    let ro = base.join("ro");
    // a mount whose daemon died stays in place and fails every access (ENOTCONN): detach it
    // (overlays still on it keep their reference) so that a new daemon is started below
    if mounted_type(&ro).is_some_and(|t| t.starts_with("fuse")) && fs::metadata(&ro).is_err() {
        log(&format!(
            "shared mount {} is dead: detaching it",
            ro.display()
        ));
        detach(&ro)?;
    }
    fs::create_dir_all(&ro).ctx(&ro)?;
    fs::create_dir_all(base.join("refs")).ctx(&base)?;
    fs::create_dir_all(&a.target).ctx(&a.target)?;
    let target = fs::canonicalize(&a.target).ctx(&a.target)?;
    let rname = ref_name(&target);
    if base.join("refs").join(&rname).exists() && mounted_type(&target).is_some() {
        return Err(Error::invalid(
            &target,
            "a container is already mounted here",
        ));
    }
    let upper = a.rw.join("upper");
    let work = a.rw.join("work");
    fs::create_dir_all(&upper).ctx(&upper)?;
    fs::create_dir_all(&work).ctx(&work)?;
    let (upper, work) = (
        fs::canonicalize(&upper).ctx(&upper)?,
        fs::canonicalize(&work).ctx(&work)?,
    );
    let ro = fs::canonicalize(&ro).ctx(&ro)?;
    for p in [&ro, &upper, &work, &target] {
        check_opt_path(p)?;
    }
    let started = if mounted_type(&ro).is_some_and(|t| t.starts_with("fuse")) {
        false
    } else {
        let flist = fs::canonicalize(&a.flist).ctx(&a.flist)?;
        let cache = std::path::absolute(&a.cache).ctx(&a.cache)?;
        let mut args = MountArgs::new(flist, ro.clone(), cache, a.cache_size, a.stores.clone());
        let ho = a.state.join("handover");
        fs::create_dir_all(&ho).ctx(&ho)?;
        args.handover = Some(handover_socket(&a.state, &id));
        let pid = daemon::spawn(&args, &base.join("daemon.log"))?;
        log(&format!(
            "shared read-only mount of {id} at {} (daemon pid {pid})",
            ro.display()
        ));
        true
    };
    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        ro.display(),
        upper.display(),
        work.display()
    );
    let cdata =
        std::ffi::CString::new(data).map_err(|_| Error::invalid(&target, "NUL in a path"))?;
    if let Err(e) = rustix::mount::mount(
        "overlay",
        &target,
        "overlay",
        MountFlags::empty(),
        Some(cdata.as_c_str()),
    ) {
        if started && refs(&base).is_empty() {
            let _ = unmount(&ro);
        }
        return Err(Error::io(&target, e.into()));
    }
    fs::write(
        base.join("refs").join(&rname),
        target.as_os_str().as_bytes(),
    )
    .ctx(&base)?;
    log(&format!(
        "container at {} on {id} ({} references)",
        target.display(),
        refs(&base).len()
    ));
    Ok(())
}

/// Stop a container: unmount its overlay, drop its reference, and unmount the shared
/// read-only mount when it was the last one (its daemon then exits).
pub fn stop(state: &Path, target: &Path) -> Result<()> {
    let _l = lock_state(state)?;
    let target = fs::canonicalize(target).ctx(target)?;
    let rname = ref_name(&target);
    let mounts = state.join("mounts");
    let base = fs::read_dir(&mounts)
        .ctx(&mounts)?
        .flatten()
        .map(|e| e.path())
        .find(|b| b.join("refs").join(&rname).exists())
        .ok_or_else(|| Error::invalid(&target, "no container of ours is mounted here"))?;
    if mounted_type(&target).is_some_and(|t| t == "overlay") {
        unmount(&target)?;
    }
    fs::remove_file(base.join("refs").join(&rname)).ctx(&base)?;
    let left = refs(&base).len();
    if left == 0 {
        let ro = base.join("ro");
        if mounted_type(&ro).is_some() {
            unmount(&ro)?;
            let t0 = Instant::now();
            while mounted_type(&ro).is_some() && t0.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        log(&format!("last container gone: unmounted {}", ro.display()));
    } else {
        log(&format!(
            "container at {} stopped ({left} references left)",
            target.display()
        ));
    }
    Ok(())
}

/// The hand-over socket of the shared mount of an identity.
pub fn handover_socket(state: &Path, identity_hex: &str) -> PathBuf {
    let short = identity_hex.get(..16).unwrap_or(identity_hex);
    state.join("handover").join(format!("{short}.sock"))
}

/// How one shared mount's upgrade went.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Upgraded {
    /// Identity of the flist, hex.
    pub identity: String,
    /// The new mount process, when it took the mount over.
    pub pid: Option<u32>,
    /// Why not (the old process serves on), when it did not.
    pub error: Option<String>,
}

/// Hand every live shared mount of `state` over to this binary (each as `flist take-over
/// --daemon`, one after the other, under the state lock so no container starts or stops
/// meanwhile). A mount without a hand-over socket (started by an older flist) is reported,
/// not touched; a failed hand-over leaves its old process serving.
pub fn upgrade(state: &Path) -> Result<Vec<Upgraded>> {
    let _l = lock_state(state)?;
    let mounts = state.join("mounts");
    let mut bases: Vec<PathBuf> = match fs::read_dir(&mounts) {
        Ok(r) => r.flatten().map(|e| e.path()).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(Error::io(&mounts, e)),
    };
    bases.sort();
    let mut out = Vec::new();
    for base in bases {
        let identity = base
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let ro = base.join("ro");
        if !mounted_type(&ro).is_some_and(|t| t.starts_with("fuse")) {
            continue;
        }
        let sock = handover_socket(state, &identity);
        let r = if sock.exists() {
            daemon::spawn_take_over(&sock, &base.join("daemon.log")).map_err(|e| e.to_string())
        } else {
            Err("no hand-over socket: mounted by an older flist, not upgraded".to_string())
        };
        match &r {
            Ok(pid) => log(&format!(
                "shared mount of {identity} taken over by pid {pid}"
            )),
            Err(e) => log(&format!("shared mount of {identity} not upgraded: {e}")),
        }
        out.push(Upgraded {
            identity,
            pid: r.as_ref().ok().copied(),
            error: r.err(),
        });
    }
    Ok(out)
}

/// Number of containers using the shared mount of an identity.
pub fn ref_count(state: &Path, identity_hex: &str) -> usize {
    refs(&state.join("mounts").join(identity_hex)).len()
}
