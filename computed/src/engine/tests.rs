//! The engine's policy and sequencing against the recording fake: no root, no kernel.
#![expect(clippy::unwrap_used, reason = "tests")]

use super::{Config, Engine};
use crate::error::Error;
use crate::supervise::Supervision;
use crate::system::{Call, Fake};
use bus::api::compute::{ContainerSpec, ContainerState};
use bus::api::health::HealthStatus;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
/// Long enough for any fake operation; a test that waits this long has failed.
const PATIENCE: Duration = Duration::from_secs(20);

struct T {
    dir: tempfile::TempDir,
    sys: Arc<Fake>,
    eng: Arc<Engine>,
    flist: PathBuf,
    identity: String,
}

/// An engine over a fake system, with one small real flist to pin.
fn setup(reply_wait: Duration) -> T {
    let dir = tempfile::tempdir().unwrap();
    let (flist, identity) = crate::testing::tiny_flist(dir.path()).unwrap();
    let sys = Arc::new(Fake::new());
    let cfg = Config {
        root: dir.path().join("root"),
        cgroup_parent: "test".into(),
        netns_prefix: "t-".into(),
        memory_system: GIB,
        shim_exe: "/nonexistent/computed".into(),
        reply_wait,
    };
    let eng = Engine::new(cfg, sys.clone()).unwrap();
    T {
        dir,
        sys,
        eng,
        flist,
        identity,
    }
}

impl T {
    fn spec(&self, name: &str) -> ContainerSpec {
        let rw = self.dir.path().join("rw").join(name);
        std::fs::create_dir_all(&rw).unwrap();
        crate::testing::spec(
            name,
            &self.flist,
            &self.identity,
            rw,
            vec!["/bin/sh".into()],
        )
    }
    fn state_dir(&self, name: &str) -> PathBuf {
        self.dir.path().join("root/containers").join(name)
    }
    /// `spec` whose flist comes from a URL the fake serves.
    fn url_spec(&self, name: &str, url: &str) -> ContainerSpec {
        self.sys.serve(url, std::fs::read(&self.flist).unwrap());
        ContainerSpec {
            flist: url.into(),
            ..self.spec(name)
        }
    }
}

/// Runs `f` on a thread: the calls that block on a held fake operation.
fn background<R: Send + 'static>(
    f: impl FnOnce() -> R + Send + 'static,
) -> std::thread::JoinHandle<R> {
    std::thread::spawn(f)
}

/// Asserts that `f` answers quickly (it waits for no operation).
fn quick<R>(what: &str, f: impl FnOnce() -> R) -> R {
    let t0 = Instant::now();
    let r = f();
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "{what} took {:?}",
        t0.elapsed()
    );
    r
}

/// Calls `f` again while it answers busy (a caller retrying after its reply wait ran out joins
/// the operation), up to PATIENCE: on a loaded machine even a fake operation may outlast the
/// short reply wait these tests set.
fn until_not_busy<R>(mut f: impl FnMut() -> Result<R, Error>) -> Result<R, Error> {
    let t0 = Instant::now();
    loop {
        match f() {
            Err(Error::Busy { .. }) if t0.elapsed() < PATIENCE => continue,
            r => return r,
        }
    }
}

fn is_mount(c: &Call) -> bool {
    matches!(c, Call::Mount { .. })
}

#[test]
fn create_pins_mounts_makes_the_netns_then_starts_a_shim_and_delete_releases_them() {
    let t = setup(PATIENCE);
    let spec = t.spec("app");
    let c = t.eng.create(spec.clone()).unwrap();
    assert_eq!(c.state, ContainerState::Running);
    let target = t.state_dir("app").join("rootfs");
    let pinned = t
        .dir
        .path()
        .join("root/flists")
        .join(format!("{}.flist", t.identity));
    assert_eq!(
        t.sys.calls(),
        vec![
            Call::Mount {
                flist: pinned,
                stores: vec![],
                rw: spec.rw.clone(),
                target: target.clone(),
            },
            Call::NetnsCreate("t-app".into()),
            Call::SpawnShim(t.state_dir("app")),
        ]
    );
    assert!(t.state_dir("app").join("bundle/config.json").exists());
    // the same spec again: nothing is made twice
    assert_eq!(t.eng.create(spec).unwrap().pid, c.pid);
    assert_eq!(t.sys.calls().len(), 3);
    assert_eq!(t.eng.capacity().memory_reserved, 64 * MIB);

    t.eng.delete("app").unwrap();
    let tail: Vec<Call> = t.sys.calls().into_iter().skip(3).collect();
    assert_eq!(
        tail,
        vec![
            Call::Unmount(target.clone()),
            Call::NetnsDelete("t-app".into())
        ]
    );
    assert!(!t.state_dir("app").exists());
    assert!(!t.sys.mounted(&target) && !t.sys.has_netns("t-app"));
    assert_eq!(t.eng.capacity().memory_reserved, 0);
    assert!(matches!(t.eng.get("app"), Err(Error::NotFound(_))));
    t.eng.delete("app").unwrap();
}

#[test]
fn a_failed_step_before_the_shim_undoes_the_earlier_ones() {
    let t = setup(PATIENCE);
    t.sys.fail_next("netns_create", "ip: no space left");
    let e = t.eng.create(t.spec("app")).unwrap_err();
    assert!(e.to_string().contains("no space left"), "{e}");
    let target = t.state_dir("app").join("rootfs");
    assert!(t.sys.calls().contains(&Call::Unmount(target.clone())));
    assert!(!t.sys.mounted(&target));
    assert_eq!(t.sys.count(|c| matches!(c, Call::SpawnShim(_))), 0);
    let c = t.eng.get("app").unwrap();
    assert_eq!(c.state, ContainerState::Failed);
    assert!(c.message.contains("no space left"), "{c:?}");
    // a failed container is replaced by the next create of it
    let c = t.eng.create(t.spec("app")).unwrap();
    assert_eq!(c.state, ContainerState::Running);
}

#[test]
fn admission_counts_the_memory_of_creates_still_in_flight() {
    let t = setup(PATIENCE);
    t.sys.set_memory(3 * GIB); // 2 GiB for containers
    let big = ContainerSpec {
        memory: 1536 * MIB,
        ..t.url_spec("big", "http://h/app.flist")
    };
    t.sys.hold("download");
    let eng = t.eng.clone();
    let first = background(move || eng.create(big));
    assert!(t.sys.wait_for(PATIENCE, |c| matches!(c, Call::Download(_))));
    let other = ContainerSpec {
        memory: GIB,
        ..t.spec("other")
    };
    let e = quick("create", || t.eng.create(other.clone())).unwrap_err();
    assert!(matches!(e, Error::NoCapacity(_)), "{e}");
    assert_eq!(t.eng.capacity().memory_reserved, 1536 * MIB);
    t.sys.release("download");
    first.join().unwrap().unwrap();
    let fits = ContainerSpec {
        memory: 512 * MIB,
        ..other
    };
    t.eng.create(fits).unwrap();
}

#[test]
fn a_slow_download_blocks_no_query_and_no_other_container_and_a_retry_joins_it() {
    let t = setup(Duration::from_millis(300));
    let slow = t.url_spec("slow", "http://h/app.flist");
    t.sys.hold("download");
    let eng = t.eng.clone();
    let s2 = slow.clone();
    // the first caller gives up waiting and is told the create is in progress
    let first = background(move || eng.create(s2));
    assert!(t.sys.wait_for(PATIENCE, |c| matches!(c, Call::Download(_))));
    let c = quick("get", || t.eng.get("slow")).unwrap();
    assert_eq!(
        (c.state, c.message.as_str()),
        (ContainerState::Creating, "create in progress")
    );
    assert_eq!(quick("list", || t.eng.list()).len(), 1);
    quick("capacity", || t.eng.capacity());
    let e = first.join().unwrap().unwrap_err();
    assert!(
        matches!(
            e,
            Error::Busy {
                running: "create",
                ..
            }
        ),
        "{e}"
    );
    // another container is created meanwhile, while the download is still held
    until_not_busy(|| t.eng.create(t.spec("other"))).unwrap();
    // another operation on the busy container is refused, not queued
    let e = quick("stop", || t.eng.stop("slow")).unwrap_err();
    assert!(matches!(e, Error::Busy { .. }), "{e}");
    // the retry joins the running create: one download, one mount, one shim
    let eng = t.eng.clone();
    let retry = background(move || until_not_busy(|| eng.create(slow.clone())));
    t.sys.release("download");
    let c = retry.join().unwrap().unwrap();
    assert_eq!(c.state, ContainerState::Running);
    assert_eq!(t.sys.count(|c| matches!(c, Call::Download(_))), 1);
    assert_eq!(t.sys.count(is_mount), 2, "slow and other");
    let shims = t.sys.count(|c| c == &Call::SpawnShim(t.state_dir("slow")));
    assert_eq!(shims, 1);
}

#[test]
fn a_slow_stop_answers_in_progress_and_a_retry_joins_it() {
    let t = setup(Duration::from_millis(300));
    until_not_busy(|| t.eng.create(t.spec("app"))).unwrap();
    t.sys.hold("stop");
    let e = t.eng.stop("app").unwrap_err();
    assert!(
        matches!(
            e,
            Error::Busy {
                running: "stop",
                ..
            }
        ),
        "{e}"
    );
    let c = quick("get", || t.eng.get("app")).unwrap();
    assert_eq!(
        (c.state, c.message.as_str()),
        (ContainerState::Running, "stop in progress")
    );
    assert!(matches!(
        quick("delete", || t.eng.delete("app")),
        Err(Error::Busy { .. })
    ));
    t.sys.release("stop");
    let c = until_not_busy(|| t.eng.stop("app")).unwrap();
    assert_eq!(c.state, ContainerState::Stopped);
    assert_eq!(t.eng.get("app").unwrap().message, "");
}

#[test]
fn store_credentials_reach_no_error_and_no_status() {
    let t = setup(PATIENCE);
    let secret = "hunter2";
    let mut spec = t.spec("app");
    spec.stores = vec![format!("zdb://me:{secret}@10.1.1.1:9900/blocks")];
    t.sys.fail_next(
        "rootfs_mount",
        &format!("store zdb://me:{secret}@10.1.1.1:9900/blocks: connection refused"),
    );
    // a URL flist whose download fails (first: once pinned, the flist is not fetched again)
    let e = t
        .eng
        .create(ContainerSpec {
            flist: format!("https://me:{secret}@example.org/app.flist"),
            ..t.spec("url")
        })
        .unwrap_err()
        .to_string();
    assert!(!e.contains(secret) && e.contains("<redacted>"), "{e}");
    let e = t.eng.create(spec.clone()).unwrap_err();
    let remote = bus::RemoteError::from(e.clone());
    let status = t.eng.get("app").unwrap().message;
    for text in [e.to_string(), remote.message, status] {
        assert!(!text.contains(secret), "{text}");
        assert!(
            text.contains("zdb://<redacted>@10.1.1.1:9900/blocks"),
            "{text}"
        );
    }
    // the stores reached the mount call (the one place that passes them on)
    assert!(
        t.sys
            .calls()
            .iter()
            .any(|c| matches!(c, Call::Mount { stores, .. } if *stores == spec.stores))
    );
    // the spec on disk holds the credentials: only root reads it
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(t.state_dir("app").join("spec.json"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o077, 0, "{mode:o}");
}

#[test]
fn names_that_leave_the_containers_folder_are_refused_by_every_operation() {
    let t = setup(PATIENCE);
    let victim = t.dir.path().join("root/flists");
    std::fs::create_dir_all(&victim).unwrap();
    for bad in ["..", "../flists", "a/b", ""] {
        assert!(matches!(t.eng.delete(bad), Err(Error::Invalid(_))), "{bad}");
        assert!(matches!(t.eng.stop(bad), Err(Error::Invalid(_))), "{bad}");
        assert!(matches!(t.eng.start(bad), Err(Error::Invalid(_))), "{bad}");
        assert!(matches!(t.eng.get(bad), Err(Error::Invalid(_))), "{bad}");
        assert!(
            matches!(t.eng.logs(bad, 0, 10), Err(Error::Invalid(_))),
            "{bad}"
        );
    }
    assert!(victim.exists());
    // unknown but valid names
    assert!(matches!(t.eng.stop("nope"), Err(Error::NotFound(_))));
    assert!(matches!(t.eng.start("nope"), Err(Error::NotFound(_))));
    assert!(matches!(t.eng.get("nope"), Err(Error::NotFound(_))));
    t.eng.delete("nope").unwrap();
    assert!(t.sys.calls().is_empty());
}

#[test]
fn supervision_replaces_a_dead_shim_once() {
    let t = setup(PATIENCE);
    t.eng.create(t.spec("app")).unwrap();
    let dir = t.state_dir("app");
    t.sys.kill_shim(&dir);
    assert_eq!(
        t.eng.get("app").unwrap().message,
        "its shim is gone; computed restarts it"
    );
    let begun = t.eng.supervise();
    assert_eq!(begun, vec!["app".to_string()]);
    assert!(
        t.sys
            .wait_for(PATIENCE, |c| { c == &Call::SpawnShim(dir.clone()) })
    );
    let t0 = Instant::now();
    while t.sys.count(|c| c == &Call::SpawnShim(dir.clone())) < 2
        || t.eng.ops.running("app").is_some()
    {
        assert!(t0.elapsed() < PATIENCE);
        std::thread::yield_now();
    }
    // the overlay was still mounted: only the namespace and the shim were made again
    assert_eq!(t.sys.count(is_mount), 1);
    assert!(t.eng.supervise().is_empty(), "a live shim is left alone");
    // a stopped container is not recovered
    t.eng.stop("app").unwrap();
    t.sys.kill_shim(&dir);
    assert!(t.eng.supervise().is_empty());
}

#[test]
fn a_failed_supervision_pass_or_a_panicking_operation_shows_in_health() {
    let t = setup(PATIENCE);
    let sup = Supervision::new(t.eng.clone());
    t.eng.create(t.spec("app")).unwrap();
    assert!(sup.pass().is_some());
    assert_eq!(sup.health(), (HealthStatus::Ok, None));

    t.sys.panic_next("shim_alive");
    assert!(sup.pass().is_none());
    let (status, detail) = sup.health();
    assert_eq!(status, HealthStatus::Degraded);
    assert!(detail.unwrap().contains("container supervision failed"));
    // nothing stays poisoned: the next pass works and health recovers
    assert!(sup.pass().is_some());
    assert_eq!(sup.health(), (HealthStatus::Ok, None));

    // a bug inside an operation fails its caller and stays visible
    t.sys.panic_next("netns_create");
    let e = t.eng.create(t.spec("bug")).unwrap_err();
    assert!(
        e.to_string()
            .contains("internal error during create of bug"),
        "{e}"
    );
    assert!(t.eng.ops.running("bug").is_none());
    let (status, detail) = sup.health();
    assert_eq!(status, HealthStatus::Degraded);
    assert!(detail.unwrap().contains("1 internal errors"));
    // and the engine goes on serving
    t.eng.create(t.spec("next")).unwrap();
    assert_eq!(t.eng.list().len(), 3);
}

#[test]
fn a_shim_that_cannot_start_the_entrypoint_fails_the_create() {
    let t = setup(PATIENCE);
    t.sys.shims_fail("exec /bin/not-there: no such file");
    let e = t.eng.create(t.spec("app")).unwrap_err();
    assert!(e.to_string().contains("not-there"), "{e}");
    assert_eq!(t.eng.get("app").unwrap().state, ContainerState::Failed);
    // it can be deleted
    t.eng.delete("app").unwrap();
    assert!(!Path::new(&t.state_dir("app")).exists());
}

#[test]
fn a_flist_upgrade_needs_an_absolute_binary_and_a_system_that_can_hand_mounts_over() {
    let t = setup(PATIENCE);
    let c = t.eng.create(t.spec("app")).unwrap();
    let e = t.eng.upgrade_flist(Path::new("flist")).unwrap_err();
    assert!(e.to_string().contains("absolute"), "{e}");
    // The fake has no live mounts to hand over: a clear error, the container untouched.
    let e = t.eng.upgrade_flist(Path::new("/new/flist")).unwrap_err();
    assert!(e.to_string().contains("cannot upgrade flist mounts"), "{e}");
    assert_eq!(t.eng.get("app").unwrap().pid, c.pid);
}
