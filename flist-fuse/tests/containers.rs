//! Containers (overlayfs on one shared read-only mount per flist) and the detached mount
//! daemon, with real FUSE mounts. The binary is in nextest's `fuse` group (one at a time);
//! each test holds the harness lock, mounts below `/tmp/flist-containers-test/<pid>-<n>` and
//! unmounts in Drop guards. Skipped without /dev/fuse or root, unless CI=true.
#![expect(clippy::unwrap_used, reason = "tests: a failed step fails the test")]

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::{Duration, Instant};

use common::fuse::{self, RunDir, Unmounter, dir_url};
use common::{ok, pack};
use flist_fuse::mount::mounted_type;

const PREFIX: &str = "/tmp/flist-containers-test";

fn setup() -> Option<std::sync::MutexGuard<'static, ()>> {
    fuse::setup(PREFIX)
}

#[test]
fn containers_share_one_readonly_mount() {
    let Some(_g) = setup() else { return };
    let d = RunDir::new(PREFIX);
    let src = d.j("src");
    std::fs::create_dir_all(src.join("etc")).unwrap();
    std::fs::write(src.join("etc/os-release"), b"NAME=test\n").unwrap();
    std::fs::write(src.join("suid"), b"#!/bin/sh\n").unwrap();
    std::fs::set_permissions(src.join("suid"), std::fs::Permissions::from_mode(0o4755)).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        src.join("null"),
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::from_raw_mode(0o666),
        rustix::fs::makedev(1, 3),
    )
    .unwrap();
    let fl = d.j("t.fl");
    let id = pack(&src, &dir_url(&d.j("store")), &fl);
    let state = d.j("state");
    let ro = flist_fuse::mount::overlay::ro_dir(&state, &id);
    let (t1, t2) = (d.j("c1/root"), d.j("c2/root"));
    let _u = Unmounter(vec![ro.clone(), t1.clone(), t2.clone()]);
    for (rw, t) in [(d.j("c1/rw"), &t1), (d.j("c2/rw"), &t2)] {
        ok(flist!(
            "container",
            "start",
            "--state",
            state,
            "--cache",
            d.j("cache"),
            fl,
            rw,
            t
        ));
        assert_eq!(mounted_type(t).as_deref(), Some("overlay"));
    }
    assert!(mounted_type(&ro).is_some_and(|t| t.starts_with("fuse")));
    assert_eq!(flist_fuse::mount::overlay::ref_count(&state, &id), 2);
    let fuse_mounts = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(&format!("flist:{}", &id[..16])))
        .count();
    assert_eq!(fuse_mounts, 1, "one shared read-only mount");

    assert_eq!(
        std::fs::read(t1.join("etc/os-release")).unwrap(),
        b"NAME=test\n"
    );
    std::fs::write(t1.join("etc/os-release"), b"changed\n").unwrap();
    std::fs::write(t1.join("new"), b"n").unwrap();
    assert_eq!(
        std::fs::read(t2.join("etc/os-release")).unwrap(),
        b"NAME=test\n"
    );
    assert!(!t2.join("new").exists());
    assert!(d.j("c1/rw/upper/new").exists());
    let md = std::fs::metadata(t2.join("suid")).unwrap();
    assert_eq!(md.permissions().mode() & 0o7777, 0o4755);
    let md = std::fs::symlink_metadata(t2.join("null")).unwrap();
    assert_eq!(md.rdev(), rustix::fs::makedev(1, 3));
    // Device nodes work (the mounts are not nodev).
    std::fs::write(t2.join("null"), b"discarded").unwrap();

    ok(flist!("container", "stop", "--state", state, t1));
    assert!(mounted_type(&t1).is_none());
    assert!(mounted_type(&ro).is_some(), "still used by c2");
    assert_eq!(
        std::fs::read(t2.join("etc/os-release")).unwrap(),
        b"NAME=test\n"
    );
    ok(flist!("container", "stop", "--state", state, t2));
    assert!(mounted_type(&t2).is_none());
    assert!(
        mounted_type(&ro).is_none(),
        "last container unmounts the shared mount"
    );
    assert_eq!(flist_fuse::mount::overlay::ref_count(&state, &id), 0);
}

/// Every process whose command line holds `needle`.
fn cmdlines_with(needle: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(c) = std::fs::read(e.path().join("cmdline"))
            && String::from_utf8_lossy(&c).contains(needle)
        {
            out.push(format!(
                "{}: {}",
                e.file_name().to_string_lossy(),
                String::from_utf8_lossy(&c).replace('\0', " ")
            ));
        }
    }
    out
}

#[test]
fn store_passwords_stay_off_daemon_command_lines() {
    let Some(_g) = setup() else { return };
    let d = RunDir::new(PREFIX);
    let src = d.j("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("f"), b"content").unwrap();
    let fl = d.j("t.fl");
    let id = pack(&src, &dir_url(&d.j("store")), &fl);
    // A zdb store is dialled only when a block is read: nothing listens on port 1.
    let secret = "pw-daemon-s3cret";
    let url = format!("zdb://alice:{secret}@127.0.0.1:1/ns\n");
    let mnt = d.j("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let log = d.j("mount.log");
    let state = d.j("state");
    let ro = flist_fuse::mount::overlay::ro_dir(&state, &id);
    let target = d.j("c/root");
    let _u = Unmounter(vec![mnt.clone(), ro.clone(), target.clone()]);
    let o = common::run_stdin(
        &[
            "mount".as_ref(),
            "--daemon".as_ref(),
            "--stores-stdin".as_ref(),
            "--log".as_ref(),
            log.as_os_str(),
            "--cache".as_ref(),
            d.j("cache").as_os_str(),
            fl.as_os_str(),
            mnt.as_os_str(),
        ],
        url.as_bytes(),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let pid = String::from_utf8_lossy(&o.stdout).trim().to_string();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(
        cmdline.starts_with(common::flist().as_bytes()),
        "pid {pid} is the daemon"
    );
    // The container helper starts its shared mount's daemon the same way.
    let o = common::run_stdin(
        &[
            "container".as_ref(),
            "start".as_ref(),
            "--stores-stdin".as_ref(),
            "--state".as_ref(),
            state.as_os_str(),
            "--cache".as_ref(),
            d.j("cache").as_os_str(),
            fl.as_os_str(),
            d.j("c/rw").as_os_str(),
            target.as_os_str(),
        ],
        url.as_bytes(),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(mounted_type(&ro).is_some_and(|t| t.starts_with("fuse")));
    assert_eq!(cmdlines_with(secret), Vec::<String>::new());
    // Both daemons use the store: a read fails (EIO), and the log names the store without
    // its password.
    for p in [mnt.join("f"), target.join("f")] {
        let e = std::fs::read(&p).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(5), "{e}");
    }
    ok(flist!("container", "stop", "--state", state, target));
    flist_fuse::mount::unmount(&mnt).unwrap();
    let t0 = Instant::now();
    while !std::fs::read_to_string(&log).unwrap().contains("Stopped") {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "daemon did not stop"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    for l in [log, state.join("mounts").join(&id).join("daemon.log")] {
        let text = std::fs::read_to_string(&l).unwrap();
        assert!(text.contains("zdb://127.0.0.1:1/ns"), "{text}");
        assert!(!text.contains(secret), "{text}");
    }
}
