//! The lazy FUSE mount of an flist (`flist mount`) and the container helper.
//!
//! Modules: [`fs`] (the read-only filesystem), [`fetch`] (worker pool, memory LRU,
//! read-ahead and prefetch queues), [`cache`] (the shared on-disk block cache),
//! [`prefetch`] (recording and embedding prefetch lists), [`errno`] (errors to errno),
//! [`lifecycle`] (mount state machine), [`overlay`] (overlayfs containers sharing one
//! read-only mount).

pub mod cache;
pub mod errno;
pub mod fetch;
pub mod fs;
pub mod lifecycle;
pub mod overlay;
pub mod prefetch;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fuser::{Config, MountOption, Session, SessionACL};
use rustix::mount::UnmountFlags;

use crate::error::{Error, IoContext, Result};
use crate::format::hex;
use cache::DiskCache;
use fetch::{Fetcher, Priority};
use lifecycle::{Event, Lifecycle};

/// Default cache folder, shared by every mount of the node.
pub const DEFAULT_CACHE: &str = "/var/cache/flist";

/// A log line on stderr (the daemon's log file when detached).
pub fn log(msg: &str) {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    eprintln!(
        "flist-mount[{}] {}.{:03}: {msg}",
        std::process::id(),
        t.as_secs(),
        t.subsec_millis()
    );
}

/// Parse a size with an optional K/M/G/T suffix (powers of 1024).
pub fn parse_size(s: &str) -> std::result::Result<u64, String> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m: u64 = match c.to_ascii_uppercase() {
                'K' => 1 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                'T' => 1 << 40,
                _ => return Err(format!("bad size suffix in {s:?} (K, M, G, T)")),
            };
            (&s[..i], m)
        }
        _ => (s, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("bad size {s:?}"))
}

/// Options of one mount.
#[derive(Debug, Clone)]
pub struct MountArgs {
    pub flist: PathBuf,
    pub mountpoint: PathBuf,
    pub cache: PathBuf,
    pub cache_size: u64,
    /// Overrides the stores recorded in the flist when not empty.
    pub stores: Vec<String>,
    pub record: Option<PathBuf>,
    pub prefetch: Vec<PathBuf>,
    /// Parallel store fetches.
    pub fetch_workers: usize,
    /// Threads answering the kernel.
    pub threads: usize,
    /// Memory LRU of decoded blocks, bytes.
    pub mem_cache: u64,
    /// Call setsid() first (the detached daemon).
    pub new_session: bool,
}

/// Mount and serve in the foreground until unmounted or signalled.
pub fn run(a: &MountArgs) -> Result<()> {
    if a.new_session {
        // Own session: the daemon outlives whoever asked for it and its terminal.
        let _ = rustix::process::setsid();
    }
    let fl = Arc::new(crate::rfs::read_any(&a.flist)?);
    let reader = crate::cli::reader(&fl, &a.flist, &a.stores)?;
    let cache = DiskCache::open(&a.cache, a.cache_size).map_err(|e| Error::Invalid {
        path: a.cache.clone(),
        msg: e.to_string(),
    })?;
    let fetch = Arc::new(
        Fetcher::new(
            reader.store.clone(),
            fl.params,
            Some(cache),
            a.fetch_workers,
            a.mem_cache,
        )
        .ctx(&a.flist)?,
    );
    let mut extra = Vec::new();
    for p in &a.prefetch {
        extra.push(prefetch::read_list(&fl, p)?);
    }
    let plan = prefetch::plan(&fl, &extra);
    let recorder = a
        .record
        .as_ref()
        .map(|_| Arc::new(prefetch::Recorder::new(fl.blocks.len())));
    let filesystem = fs::FlistFs::new(fl.clone(), fetch.clone(), recorder.clone());

    let id = hex(&fl.identity);
    let name = format!("flist {} at {}", &id[..16], a.mountpoint.display());
    let lc = Arc::new(Lifecycle::new(&name));
    let mut cfg = Config::default();
    cfg.mount_options = vec![
        MountOption::RO,
        MountOption::FSName(format!("flist:{}", &id[..16])),
        MountOption::Subtype("flist".into()),
        MountOption::DefaultPermissions,
        MountOption::Dev,
        MountOption::Suid,
        MountOption::Exec,
        MountOption::NoAtime,
    ];
    cfg.acl = SessionACL::All;
    cfg.n_threads = Some(a.threads.max(1));
    cfg.clone_fd = a.threads > 1;

    // Signals are caught from here on (queued until the handler thread runs).
    let signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ])
    .ctx("signal handlers")?;

    if !plan.is_empty() {
        log(&format!("prefetching {} blocks", plan.len()));
        fetch.prefetch(plan.iter(), Priority::Prefetch);
        let f = fetch.clone();
        let n = plan.len();
        let t0 = Instant::now();
        let _ = std::thread::Builder::new()
            .name("prefetch-watch".into())
            .spawn(move || {
                while f.pending() > 0 {
                    std::thread::sleep(Duration::from_millis(10));
                }
                log(&format!(
                    "prefetch of {n} blocks done in {:.3}s",
                    t0.elapsed().as_secs_f64()
                ));
            });
    }

    let mut session = match Session::new(filesystem, &a.mountpoint, &cfg) {
        Ok(s) => {
            lc.fire(Event::Mounted);
            s
        }
        Err(e) => {
            lc.fire(Event::MountFailed);
            return Err(Error::io(&a.mountpoint, e));
        }
    };
    log(&format!(
        "mounted {} ({} inodes, {} blocks) at {}; cache {} (bound {} bytes)",
        a.flist.display(),
        fl.inodes.len(),
        fl.blocks.len(),
        a.mountpoint.display(),
        a.cache.display(),
        a.cache_size
    ));
    let mut unmounter = session.unmount_callable();
    let mp = a.mountpoint.clone();
    let lc2 = lc.clone();
    let _ = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut signals = signals;
            for s in signals.forever() {
                log(&format!("signal {s}: unmounting"));
                lc2.fire(Event::Signal);
                if let Err(e) = unmounter.unmount() {
                    log(&format!("unmount failed ({e}); detaching lazily"));
                    let _ = rustix::mount::unmount(&mp, UnmountFlags::DETACH);
                }
            }
        });
    let res = session.run();
    lc.fire(Event::Unmounted);
    fetch.shutdown(Duration::from_secs(5));
    let st = fetch.stats();
    log(&format!(
        "unmounted; store fetches {} ({} bytes), disk cache hits {}, memory hits {}, errors {}, rejected cache files {}",
        st.store_fetches.load(Ordering::Relaxed),
        st.store_bytes.load(Ordering::Relaxed),
        st.disk_hits.load(Ordering::Relaxed),
        st.mem_hits.load(Ordering::Relaxed),
        st.errors.load(Ordering::Relaxed),
        st.corrupt_cache.load(Ordering::Relaxed),
    ));
    if let (Some(r), Some(path)) = (&recorder, &a.record) {
        let n = r.write(&fl, path)?;
        log(&format!(
            "recorded {n} blocks to {} (embed with: flist embed-prefetch FLIST {})",
            path.display(),
            path.display()
        ));
    }
    res.ctx(&a.mountpoint)
}

/// Unescape a mountinfo path field (`\040` for a space, etc.).
fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut k = 0;
    while k < b.len() {
        if b[k] == b'\\'
            && let Some(oct) = b.get(k + 1..k + 4)
            && let Ok(v) = u8::from_str_radix(std::str::from_utf8(oct).unwrap_or("x"), 8)
        {
            out.push(v);
            k += 4;
            continue;
        }
        out.push(b[k]);
        k += 1;
    }
    out
}

/// The filesystem type mounted exactly at `path` (from /proc/self/mountinfo), if any.
pub fn mounted_type(path: &Path) -> Option<String> {
    use std::os::unix::ffi::OsStrExt;
    let p = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mut found = None;
    for line in info.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let Some(sep) = f.iter().position(|x| *x == "-") else {
            continue;
        };
        if f.len() > 4 && unescape(f[4]) == p.as_os_str().as_bytes() {
            // The last mount at a place is the visible one.
            found = f.get(sep + 1).map(|s| s.to_string());
        }
    }
    found
}

/// Start `flist mount ARGS` as a detached daemon (own session, log to `log_file`) and wait
/// until the mount is there. Returns the daemon's pid.
pub fn spawn_daemon(args: &[OsString], mountpoint: &Path, log_file: &Path) -> Result<u32> {
    let exe = std::env::current_exe().ctx("current executable")?;
    let logf = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_file)
        .ctx(log_file)?;
    let logf2 = logf.try_clone().ctx(log_file)?;
    let mut child = Command::new(exe)
        .arg("mount")
        .arg("--new-session")
        .args(args)
        .stdin(Stdio::null())
        .stdout(logf)
        .stderr(logf2)
        .spawn()
        .ctx("flist mount daemon")?;
    let t0 = Instant::now();
    loop {
        if mounted_type(mountpoint).is_some_and(|t| t.starts_with("fuse")) {
            return Ok(child.id());
        }
        if let Ok(Some(st)) = child.try_wait() {
            let tail = std::fs::read_to_string(log_file).unwrap_or_default();
            let tail: Vec<&str> = tail.lines().rev().take(5).collect();
            return Err(Error::invalid(
                mountpoint,
                format!(
                    "mount daemon exited ({st}): {}",
                    tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
                ),
            ));
        }
        if t0.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            return Err(Error::invalid(
                mountpoint,
                "mount daemon did not mount in 30 s",
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Unmount `path`; if it is busy, detach it lazily. Waits until it is gone.
pub fn unmount(path: &Path) -> Result<()> {
    if let Err(e) = rustix::mount::unmount(path, UnmountFlags::empty()) {
        if e == rustix::io::Errno::BUSY {
            log(&format!("{} busy: detaching lazily", path.display()));
            rustix::mount::unmount(path, UnmountFlags::DETACH).ctx(path)?;
        } else {
            return Err(Error::io(path, e.into()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_escapes() {
        assert_eq!(parse_size("10"), Ok(10));
        assert_eq!(parse_size("3M"), Ok(3 << 20));
        assert_eq!(parse_size("2g"), Ok(2 << 30));
        assert!(parse_size("x").is_err());
        assert!(parse_size("1Q").is_err());
        assert_eq!(unescape("/a\\040b"), b"/a b".to_vec());
        assert_eq!(unescape("/plain"), b"/plain".to_vec());
    }
}
