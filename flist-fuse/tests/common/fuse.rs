//! Real-FUSE test harness shared by the mount tests (`mount.rs`, `rfs.rs`): one lock per test
//! binary, a per-run folder `PREFIX/<pid>-<n>` swept when its process is gone, and a
//! foreground `flist mount` child unmounted and reaped on drop.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use flist_fuse::mount::mounted_type;
use rustix::mount::UnmountFlags;

static LOCK: Mutex<()> = Mutex::new(());
static N: AtomicUsize = AtomicUsize::new(0);

/// The lock of the mount tests, or `None` (skip) without FUSE or root; sweeps `prefix`.
pub fn setup(prefix: &str) -> Option<MutexGuard<'static, ()>> {
    let able = Path::new("/dev/fuse").exists() && super::is_root();
    if nodeutil::skip::unless(able, "/dev/fuse and root") {
        return None;
    }
    let g = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    sweep(prefix);
    Some(g)
}

/// Lazily unmounts, then removes, what dead runs left below `prefix`.
fn sweep(prefix: &str) {
    let me = std::process::id().to_string();
    let dead = |run: &str| {
        let pid = run.split('-').next().unwrap_or("");
        pid != me && !Path::new("/proc").join(pid).exists()
    };
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut stale: Vec<String> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(prefix) && dead(m[prefix.len()..].trim_start_matches('/')))
        .map(str::to_string)
        .collect();
    stale.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for m in stale {
        eprintln!("sweeping stale mount {m}");
        let _ = rustix::mount::unmount(m.as_str(), UnmountFlags::DETACH);
    }
    if let Ok(rd) = std::fs::read_dir(prefix) {
        for e in rd.flatten() {
            if dead(&e.file_name().to_string_lossy()) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

/// A fresh folder of this run (removed on drop unless something is mounted below it).
pub struct RunDir(pub PathBuf);

impl RunDir {
    pub fn new(prefix: &str) -> Self {
        let p = Path::new(prefix).join(format!(
            "{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        RunDir(p)
    }
    pub fn j(&self, s: &str) -> PathBuf {
        self.0.join(s)
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        // Never recurse into something still mounted.
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let prefix = self.0.to_string_lossy().to_string();
        if !info
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .any(|m| m.starts_with(&prefix))
        {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Lazily unmounts paths on drop (reverse order), for mounts made by daemons.
pub struct Unmounter(pub Vec<PathBuf>);

impl Drop for Unmounter {
    fn drop(&mut self) {
        for p in self.0.iter().rev() {
            if mounted_type(p).is_some() {
                let _ = rustix::mount::unmount(p, UnmountFlags::DETACH);
            }
        }
    }
}

/// A foreground `flist mount` child; unmounted and reaped on drop.
pub struct Mount {
    child: Option<Child>,
    pub mp: PathBuf,
    log: PathBuf,
}

impl Mount {
    pub fn start(fl: &Path, mp: &Path, cache: &Path, extra: &[&OsStr]) -> Mount {
        std::fs::create_dir_all(mp).unwrap();
        let log = mp.with_extension("log");
        let lf = std::fs::File::create(&log).unwrap();
        let child = Command::new(super::flist())
            .arg("mount")
            .arg("--cache")
            .arg(cache)
            .args(extra)
            .arg(fl)
            .arg(mp)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(lf)
            .spawn()
            .unwrap();
        let mut m = Mount {
            child: Some(child),
            mp: mp.to_path_buf(),
            log,
        };
        let t0 = Instant::now();
        while !mounted_type(mp).is_some_and(|t| t.starts_with("fuse")) {
            if let Some(c) = m.child.as_mut()
                && let Ok(Some(st)) = c.try_wait()
            {
                panic!("flist mount exited with {st}: {}", m.log_text());
            }
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "mount did not appear: {}",
                m.log_text()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        m
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A path inside the mount (`rel` as raw bytes: rfs names need not be UTF-8).
    pub fn p(&self, rel: impl AsRef<[u8]>) -> PathBuf {
        self.mp.join(OsStr::from_bytes(rel.as_ref()))
    }

    /// SIGTERM, wait for a clean exit; returns the status and the log.
    pub fn stop(mut self) -> (ExitStatus, String) {
        let mut c = self.child.take().unwrap();
        rustix::process::kill_process(
            rustix::process::Pid::from_child(&c),
            rustix::process::Signal::TERM,
        )
        .unwrap();
        let st = wait_exit(&mut c, &self.mp, || {
            format!("mount did not stop on SIGTERM: {}", self.log_text())
        });
        assert!(mounted_type(&self.mp).is_none(), "still mounted after exit");
        (st, self.log_text())
    }
}

/// Wait up to 20 s for a mount process to exit; past that, detach its mount point, kill it and
/// fail with `why()`.
pub fn wait_exit(child: &mut Child, mp: &Path, why: impl FnOnce() -> String) -> ExitStatus {
    let t0 = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if t0.elapsed() > Duration::from_secs(20) {
            let _ = rustix::mount::unmount(mp, UnmountFlags::DETACH);
            let _ = child.kill();
            panic!("{}", why());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = rustix::mount::unmount(&self.mp, UnmountFlags::DETACH);
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn dir_url(p: &Path) -> String {
    format!("dir://{}", p.display())
}

/// The errno of a failed call, 0 on success.
pub fn errno_of(r: std::io::Result<impl Sized>) -> i32 {
    match r {
        Ok(_) => 0,
        Err(e) => e.raw_os_error().unwrap_or(-1),
    }
}
