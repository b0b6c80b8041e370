//! Blocking hooks block only what depends on them: while `jump-index` runs, writers of the
//! rotating namespace wait, but readers, other namespaces and other clients go on (0-db's
//! single thread stops everything); and a blocking hook that hangs is killed after
//! `--hook-timeout`, so it cannot freeze a namespace for good.
#![expect(clippy::unwrap_used, reason = "tests")]

mod common;
use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// An executable hook script in `dir` whose `jump-index` runs `body`.
fn jump_index_hook(dir: &Path, body: &str) -> PathBuf {
    let hook = dir.join("hook.sh");
    std::fs::write(
        &hook,
        format!("#!/bin/sh\nif [ \"$1\" = jump-index ]; then\n{body}\nfi\nexit 0\n"),
    )
    .unwrap();
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    hook
}

#[test]
fn jump_index_blocks_only_writers_of_its_namespace() {
    let tmp = tempfile::tempdir().unwrap();
    let (started, release) = (tmp.path().join("started"), tmp.path().join("release"));
    // The hook runs until the test releases it.
    let hook = jump_index_hook(
        tmp.path(),
        &format!(
            "touch '{}'\nwhile [ ! -e '{}' ]; do sleep 0.01; done",
            started.display(),
            release.display()
        ),
    );
    let s = Server::start(&["--mode", "user", "--hook", hook.to_str().unwrap()]);
    let mut setup = s.client();
    setup.c(&["NSNEW", "other"]);
    setup.set(b"k", b"v");

    let port = s.port;
    let jumper = std::thread::spawn(move || {
        let mut c = Client::connect(port).unwrap();
        assert_eq!(c.c(&["NSJUMP"]), Reply::ok());
    });
    wait_for_file(&started);

    // Another namespace writes at once.
    let mut other = s.client();
    other.c(&["SELECT", "other"]);
    assert_eq!(other.set(b"x", b"y"), Reply::bulk("x"));
    // Readers of the rotating namespace too.
    let mut reader = s.client();
    assert_eq!(reader.get(b"k"), Reply::bulk("v"));
    // A writer of the rotating namespace waits for the hook: no reply while it runs...
    let mut writer = s.client();
    writer.send(&[b"SET", b"k2", b"v2"]).unwrap();
    writer.set_timeout(Duration::from_millis(300));
    let early = writer.read_reply();
    assert!(
        early.is_err(),
        "writer answered while the hook ran: {early:?}"
    );
    // ...and its reply once the hook is done.
    std::fs::write(&release, b"").unwrap();
    writer.set_timeout(Duration::from_secs(15));
    assert_eq!(writer.read_reply().unwrap(), Reply::bulk("k2"));
    jumper.join().unwrap();
}

#[test]
fn a_hanging_blocking_hook_is_killed_after_the_timeout() {
    let tmp = tempfile::tempdir().unwrap();
    let child_pid = tmp.path().join("child.pid");
    // The hook starts a child that never ends, and waits for it.
    let hook = jump_index_hook(
        tmp.path(),
        &format!("sleep 1000 &\necho $! > '{}'\nwait", child_pid.display()),
    );
    let s = Server::start(&[
        "--mode",
        "user",
        "--hook",
        hook.to_str().unwrap(),
        "--hook-timeout",
        "1",
    ]);
    let mut c = s.client();
    c.set(b"k", b"v");
    c.set(b"k", b"v2"); // an in-place flag: i0 is dirty
    let t = Instant::now();
    assert_eq!(c.c(&["NSJUMP"]), Reply::ok());
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "hook not waited for: {took:?}"
    );
    assert!(took < Duration::from_secs(10), "hook not killed: {took:?}");
    // The namespace goes on.
    assert_eq!(c.set(b"k3", b"v3"), Reply::bulk("k3"));
    assert_eq!(c.get(b"k"), Reply::bulk("v2"));
    // A killed hook did not succeed: the dirty list stays.
    assert_eq!(
        c.c(&["INDEX", "DIRTY"]),
        Reply::Array(Some(vec![Reply::Int(0)]))
    );
    // Its whole process group went: the child it started too.
    let pid = std::fs::read_to_string(&child_pid).unwrap();
    let proc_dir = format!("/proc/{}", pid.trim());
    let deadline = Instant::now() + Duration::from_secs(10);
    while Path::new(&proc_dir).exists() {
        let stat = std::fs::read_to_string(format!("{proc_dir}/stat")).unwrap_or_default();
        // Gone, or a zombie waiting for init to reap it.
        if stat.split_whitespace().nth(2) == Some("Z") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the hook's child survives: {stat}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        s.log_text().contains("hook did not finish in time"),
        "{}",
        s.log_text()
    );
}
