//! A running mount handed over to a new `flist` process (`--handover` / `--take-over`)
//! under readers that drop the page cache after every pass, so each pass goes through FUSE:
//! zero read errors, right bytes, the old process gone each time, the same mount. Real FUSE;
//! in nextest's `fuse` group. Skipped without /dev/fuse or root, unless CI=true.
#![expect(clippy::unwrap_used, reason = "tests: a failed step fails the test")]

mod common;

use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::fuse::{self, RunDir, dir_url, wait_exit};
use common::{noise, pack};
use flist_fuse::mount::mounted_type;
use rustix::mount::UnmountFlags;

const PREFIX: &str = "/tmp/flist-handover-test";
const BIG: usize = 24 << 20;

/// The mount processes of a test: killed, and the mount detached, on drop.
struct Procs {
    mp: PathBuf,
    children: Vec<Child>,
}

impl Drop for Procs {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(&self.mp, UnmountFlags::DETACH);
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Start `flist mount --handover SOCK` (4 FUSE threads), logging to `log`.
fn start(d: &RunDir, fl: &Path, mp: &Path, sock: &Path, log: &Path) -> Child {
    start_with(d, fl, mp, sock, log, 4)
}

fn start_with(d: &RunDir, fl: &Path, mp: &Path, sock: &Path, log: &Path, threads: u32) -> Child {
    Command::new(common::flist())
        .arg("mount")
        .arg("--cache")
        .arg(d.j("cache"))
        .arg("--threads")
        .arg(threads.to_string())
        .args(["--mem-cache", "4M", "--handover"])
        .arg(sock)
        .arg(fl)
        .arg(mp)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

/// Start `flist take-over SOCK` in the foreground, logging to `log`.
fn take_over(sock: &Path, log: &Path) -> Child {
    Command::new(common::flist())
        .arg("take-over")
        .arg(sock)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

/// The kernel's id of the mount at `mp` (first field of its mountinfo line).
fn mount_id(mp: &Path) -> Option<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines()
        .rev()
        .filter(|l| l.split(' ').nth(4) == Some(mp.to_str().unwrap_or("")))
        .find_map(|l| l.split(' ').next().map(str::to_string))
}

fn text(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

/// Readers of `mp/big` (whole passes, and random slices) checking every byte against
/// `want`; counts passes, collects errors.
struct Readers {
    stop: Arc<AtomicBool>,
    passes: Arc<AtomicU64>,
    slices: Arc<AtomicU64>,
    errors: Arc<Mutex<Vec<String>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

fn drop_cache(f: &std::fs::File) {
    let _ = rustix::fs::fadvise(f, 0, None, rustix::fs::Advice::DontNeed);
}

impl Readers {
    fn start(mp: &Path, want: Arc<Vec<u8>>) -> Readers {
        let r = Readers {
            stop: Arc::new(AtomicBool::new(false)),
            passes: Arc::new(AtomicU64::new(0)),
            slices: Arc::new(AtomicU64::new(0)),
            errors: Arc::new(Mutex::new(Vec::new())),
            threads: Vec::new(),
        };
        let big = mp.join("big");
        let (stop, passes, errors, w, p) = (
            r.stop.clone(),
            r.passes.clone(),
            r.errors.clone(),
            want.clone(),
            big.clone(),
        );
        let whole = std::thread::spawn(move || {
            let mut buf = vec![0u8; 256 << 10];
            while !stop.load(Ordering::Relaxed) {
                let res = (|| -> Result<(), String> {
                    let mut f = std::fs::File::open(&p).map_err(|e| format!("open: {e}"))?;
                    let mut at = 0usize;
                    loop {
                        let n = f.read(&mut buf).map_err(|e| format!("read at {at}: {e}"))?;
                        if n == 0 {
                            break;
                        }
                        if w.get(at..at + n) != buf.get(..n) {
                            return Err(format!("wrong bytes at {at}"));
                        }
                        at += n;
                    }
                    drop_cache(&f);
                    if at != w.len() {
                        return Err(format!("short file: {at} bytes"));
                    }
                    Ok(())
                })();
                match res {
                    Ok(()) => {
                        passes.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(e) => errors.lock().unwrap().push(e),
                }
            }
        });
        let (stop, slices, errors) = (r.stop.clone(), r.slices.clone(), r.errors.clone());
        let random = std::thread::spawn(move || {
            let f = match std::fs::File::open(&big) {
                Ok(f) => f,
                Err(e) => return errors.lock().unwrap().push(format!("open: {e}")),
            };
            let mut x = 0x9e37_79b9_7f4a_7c15u64;
            while !stop.load(Ordering::Relaxed) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let len = 4096 + (x % (1 << 20)) as usize;
                let off = (x >> 24) as usize % (want.len() - len);
                let mut buf = vec![0u8; len];
                match f.read_exact_at(&mut buf, off as u64) {
                    Ok(()) if want.get(off..off + len) == Some(&buf[..]) => {
                        slices.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(()) => errors.lock().unwrap().push(format!("wrong slice at {off}")),
                    Err(e) => errors.lock().unwrap().push(format!("pread at {off}: {e}")),
                }
                drop_cache(&f);
            }
        });
        Readers {
            threads: vec![whole, random],
            ..r
        }
    }

    /// Wait until both readers made progress past what they had done.
    fn progress(&self) {
        let (p0, s0) = (
            self.passes.load(Ordering::SeqCst),
            self.slices.load(Ordering::SeqCst),
        );
        let t0 = Instant::now();
        while self.passes.load(Ordering::SeqCst) < p0 + 2
            || self.slices.load(Ordering::SeqCst) < s0 + 20
        {
            assert!(self.errors.lock().unwrap().is_empty(), "{:?}", self.errors);
            assert!(t0.elapsed() < Duration::from_secs(60), "readers stalled");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(mut self) -> (u64, u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            t.join().unwrap();
        }
        let e = self.errors.lock().unwrap().clone();
        (
            self.passes.load(Ordering::SeqCst),
            self.slices.load(Ordering::SeqCst),
            e,
        )
    }
}

/// Pack a tree holding `big` (and a small file) into `d/name.fl`.
fn image(d: &RunDir, name: &str, big: &[u8]) -> PathBuf {
    let src = d.j(&format!("{name}-src"));
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("big"), big).unwrap();
    std::fs::write(src.join("small"), name).unwrap();
    let fl = d.j(&format!("{name}.fl"));
    pack(&src, &dir_url(&d.j("store")), &fl);
    fl
}

fn wait_mounted(mp: &Path, c: &mut Child, log: &Path) {
    let t0 = Instant::now();
    while !mounted_type(mp).is_some_and(|t| t.starts_with("fuse")) {
        if let Ok(Some(st)) = c.try_wait() {
            panic!("flist mount exited with {st}: {}", text(log));
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "no mount: {}",
            text(log)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn mount_is_handed_over_under_readers_without_an_error() {
    handed_over_under_readers(4, 4);
}

/// One FUSE thread: no cloned descriptor, the thread reads the handed-over one itself.
#[test]
fn single_threaded_mount_is_handed_over_too() {
    handed_over_under_readers(1, 2);
}

fn handed_over_under_readers(threads: u32, generations: u32) {
    let Some(_g) = fuse::setup(PREFIX) else {
        return;
    };
    let d = RunDir::new(PREFIX);
    let want = Arc::new(noise(BIG, 21));
    let fl = image(&d, "a", &want);
    let mp = d.j("mnt");
    std::fs::create_dir_all(&mp).unwrap();
    let sock = d.j("handover.sock");
    let mut procs = Procs {
        mp: mp.clone(),
        children: Vec::new(),
    };
    let log0 = d.j("gen0.log");
    procs
        .children
        .push(start_with(&d, &fl, &mp, &sock, &log0, threads));
    wait_mounted(&mp, procs.children.last_mut().unwrap(), &log0);
    let id = mount_id(&mp).unwrap();
    let readers = Readers::start(&mp, want.clone());
    readers.progress();
    let fuser_threads = |pid: u32| {
        std::fs::read_dir(format!("/proc/{pid}/task"))
            .unwrap()
            .flatten()
            .filter(|t| text(&t.path().join("comm")).starts_with("fuser-"))
            .count()
    };
    assert_eq!(
        fuser_threads(procs.children.first().unwrap().id()),
        threads as usize
    );

    let mut logs = vec![log0];
    for generation in 1..=generations {
        let log = d.j(&format!("gen{generation}.log"));
        let t0 = Instant::now();
        procs.children.push(take_over(&sock, &log));
        let n = procs.children.len();
        let old_log = logs.last().unwrap().clone();
        let old = procs.children.get_mut(n - 2).unwrap();
        let st = wait_exit(old, &mp, || {
            format!(
                "old mount process did not exit: {}\nnew: {}",
                text(&old_log),
                text(&log)
            )
        });
        assert!(st.success(), "old process: {st}: {}", text(&old_log));
        eprintln!(
            "hand-over {generation}: old one gone after {:?}",
            t0.elapsed()
        );
        assert!(
            text(&old_log).contains("handed over to pid"),
            "{}",
            text(&old_log)
        );
        let new = procs.children.last_mut().unwrap();
        assert!(
            new.try_wait().unwrap().is_none(),
            "new process died: {}",
            text(&log)
        );
        assert_eq!(
            mount_id(&mp).as_deref(),
            Some(id.as_str()),
            "the mount changed"
        );
        readers.progress();
        logs.push(log);
    }
    let (passes, slices, errors) = readers.stop();
    if std::env::var_os("KEEP_LOGS").is_some() {
        for l in &logs {
            eprintln!("--- {}\n{}", l.display(), text(l));
        }
    }
    assert!(errors.is_empty(), "read errors: {errors:?}");
    eprintln!("{passes} whole passes, {slices} slices, no error");
    // The last process took the mount over and answered reads (its counters), and still
    // unmounts on SIGTERM.
    let last = procs.children.last_mut().unwrap();
    rustix::process::kill_process(
        rustix::process::Pid::from_child(last),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let last_log = logs.last().unwrap().clone();
    let st = wait_exit(last, &mp, || {
        format!("last process did not stop: {}", text(&last_log))
    });
    assert!(st.success(), "{st}: {}", text(&last_log));
    assert!(mounted_type(&mp).is_none(), "still mounted");
    let l = text(&last_log);
    assert!(l.contains("took over"), "{l}");
    let hits: u64 = l
        .split("memory hits ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    assert!(hits > 0, "the last process answered no read: {l}");
}

#[test]
fn another_image_is_refused_and_the_old_process_serves_on() {
    let Some(_g) = fuse::setup(PREFIX) else {
        return;
    };
    let d = RunDir::new(PREFIX);
    let want = noise(1 << 20, 5);
    let fl = image(&d, "a", &want);
    let other = image(&d, "b", &noise(1 << 20, 6));
    let mp = d.j("mnt");
    std::fs::create_dir_all(&mp).unwrap();
    let sock = d.j("handover.sock");
    let mut procs = Procs {
        mp: mp.clone(),
        children: Vec::new(),
    };
    let log0 = d.j("old.log");
    procs.children.push(start(&d, &fl, &mp, &sock, &log0));
    wait_mounted(&mp, procs.children.last_mut().unwrap(), &log0);
    // The image file was replaced by another one: the new process loads it and refuses.
    std::fs::rename(&fl, d.j("a.saved")).unwrap();
    std::fs::copy(&other, &fl).unwrap();
    let log1 = d.j("new.log");
    procs.children.push(take_over(&sock, &log1));
    let st = wait_exit(procs.children.last_mut().unwrap(), &mp, || text(&log1));
    assert!(!st.success());
    assert!(text(&log1).contains("is served there"), "{}", text(&log1));
    // The old one serves on, and can still be handed over (detached, as computed does).
    assert!(
        procs
            .children
            .first_mut()
            .unwrap()
            .try_wait()
            .unwrap()
            .is_none()
    );
    assert_eq!(std::fs::read(mp.join("big")).unwrap(), want);
    std::fs::rename(d.j("a.saved"), &fl).unwrap();
    let log2 = d.j("new2.log");
    let o = Command::new(common::flist())
        .args(["take-over", "--daemon", "--log"])
        .arg(&log2)
        .arg(&sock)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{}: {}",
        String::from_utf8_lossy(&o.stderr),
        text(&log2)
    );
    let pid: i32 = String::from_utf8_lossy(&o.stdout).trim().parse().unwrap();
    // The old one is gone when the command returns.
    let st = wait_exit(procs.children.first_mut().unwrap(), &mp, || text(&log0));
    assert!(st.success(), "{}", text(&log0));
    assert_eq!(std::fs::read(mp.join("small")).unwrap(), b"a");
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    // SIGTERM unmounts (the detached process is not our child: wait for the mount to go).
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid).unwrap(),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let t0 = Instant::now();
    while mounted_type(&mp).is_some() {
        assert!(t0.elapsed() < Duration::from_secs(20), "{}", text(&log2));
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn container_mounts_are_upgraded_under_a_reader_of_the_root() {
    let Some(_g) = fuse::setup(PREFIX) else {
        return;
    };
    let d = RunDir::new(PREFIX);
    let want = Arc::new(noise(BIG, 22));
    let fl = image(&d, "c", &want);
    let state = d.j("state");
    let target = d.j("c1/root");
    let out = common::run(&[
        "container".as_ref(),
        "start".as_ref(),
        "--state".as_ref(),
        state.as_os_str(),
        "--cache".as_ref(),
        d.j("cache").as_os_str(),
        fl.as_os_str(),
        d.j("c1/rw").as_os_str(),
        target.as_os_str(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{err}");
    let id = std::fs::read_dir(state.join("mounts"))
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .file_name()
        .to_string_lossy()
        .to_string();
    let ro = flist_fuse::mount::overlay::ro_dir(&state, &id);
    let _u = fuse::Unmounter(vec![ro.clone(), target.clone()]);
    let mut daemons: Vec<i32> = err
        .split("daemon pid ")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .and_then(|s| s.parse().ok())
        .into_iter()
        .collect();
    assert_eq!(daemons.len(), 1, "{err}");
    let mount = mount_id(&ro).unwrap();
    let readers = Readers::start(&target, want.clone());
    readers.progress();
    for _ in 0..3 {
        let out = common::run(&[
            "container".as_ref(),
            "upgrade".as_ref(),
            "--state".as_ref(),
            state.as_os_str(),
        ]);
        let log = text(&state.join("mounts").join(&id).join("daemon.log"));
        assert!(
            out.status.success(),
            "{}\n{log}",
            String::from_utf8_lossy(&out.stderr)
        );
        let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(line["identity"], id.as_str());
        let pid = line["pid"].as_i64().unwrap() as i32;
        let old = *daemons.last().unwrap();
        let t0 = Instant::now();
        while Path::new(&format!("/proc/{old}")).exists()
            && !text(Path::new(&format!("/proc/{old}/stat"))).contains(") Z ")
        {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "old daemon {old} lives: {log}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(Path::new(&format!("/proc/{pid}")).exists(), "{log}");
        assert_eq!(mount_id(&ro).as_deref(), Some(mount.as_str()));
        assert_eq!(mounted_type(&target).as_deref(), Some("overlay"));
        daemons.push(pid);
        readers.progress();
    }
    let (passes, slices, errors) = readers.stop();
    assert!(errors.is_empty(), "read errors: {errors:?}");
    eprintln!("{passes} whole passes, {slices} slices through the overlay, no error");
    // The container stops as before: the last daemon unmounts and exits.
    common::ok(common::run(&[
        "container".as_ref(),
        "stop".as_ref(),
        "--state".as_ref(),
        state.as_os_str(),
        target.as_os_str(),
    ]));
    assert!(mounted_type(&ro).is_none());
}
