//! Blocking hooks block only what depends on them: while `jump-index` runs, writers of the
//! rotating namespace wait, but readers, other namespaces and other clients go on (0-db's
//! single thread stops everything).
#![expect(clippy::unwrap_used, reason = "tests")]

mod common;
use common::*;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

#[test]
fn jump_index_blocks_only_writers_of_its_namespace() {
    let tmp = tempfile::tempdir().unwrap();
    let hook = tmp.path().join("hook.sh");
    std::fs::write(
        &hook,
        "#!/bin/sh\n[ \"$1\" = jump-index ] && sleep 2\nexit 0\n",
    )
    .unwrap();
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    let s = Server::start(&["--mode", "user", "--hook", hook.to_str().unwrap()]);
    let mut setup = s.client();
    setup.c(&["NSNEW", "other"]);
    setup.set(b"k", b"v");

    let port = s.port;
    let jumper = std::thread::spawn(move || {
        let mut c = Client::connect(port).unwrap();
        let t = Instant::now();
        assert_eq!(c.c(&["NSJUMP"]), Reply::ok());
        t.elapsed()
    });
    std::thread::sleep(Duration::from_millis(300));

    // Another namespace writes at once.
    let mut other = s.client();
    other.c(&["SELECT", "other"]);
    let t = Instant::now();
    assert_eq!(other.set(b"x", b"y"), Reply::bulk("x"));
    assert!(
        t.elapsed() < Duration::from_millis(800),
        "other namespace blocked {:?}",
        t.elapsed()
    );
    // Readers of the rotating namespace too.
    let mut reader = s.client();
    let t = Instant::now();
    assert_eq!(reader.get(b"k"), Reply::bulk("v"));
    assert!(
        t.elapsed() < Duration::from_millis(800),
        "reader blocked {:?}",
        t.elapsed()
    );
    // A writer of the rotating namespace waits for the hook.
    let mut writer = s.client();
    let t = Instant::now();
    assert_eq!(writer.set(b"k2", b"v2"), Reply::bulk("k2"));
    assert!(
        t.elapsed() > Duration::from_millis(900),
        "writer did not wait: {:?}",
        t.elapsed()
    );
    assert!(jumper.join().unwrap() >= Duration::from_millis(1900));
}
