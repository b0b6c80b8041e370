//! Command-line flags not covered elsewhere: --socket / --dualnet, --sync,
//! --synctime, --datasize bounds, close hook (reference §7, §8.6).
#![expect(clippy::unwrap_used, reason = "tests")]

mod common;
use common::*;
use std::io::{BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

fn unix_cmd(path: &Path, args: &[&[u8]]) -> std::io::Result<Reply> {
    let mut s = UnixStream::connect(path)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(&encode(args))?;
    let mut r = BufReader::new(s);
    read_reply(&mut r)
}

fn wait_unix(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if matches!(unix_cmd(path, &[b"PING"]), Ok(Reply::Simple(ref p)) if p == "PONG") {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("no PONG on unix socket {}", path.display());
}

#[test]
fn unix_socket_only() {
    let tmp = tempfile::tempdir().unwrap();
    let sock = tmp.path().join("zdb.sock");
    let mut s = Server::new_at(
        tmp.path(),
        &["--mode", "user", "--socket", sock.to_str().unwrap()],
        &[],
    );
    if let Some(st) = s.launch_expect_exit(Duration::from_millis(200)) {
        panic!("zdb --socket exited: {st}\n{}", s.log_text());
    }
    wait_unix(&sock);
    assert_eq!(
        unix_cmd(&sock, &[b"SET", b"k", b"v"]).unwrap(),
        Reply::bulk("k")
    );
    assert_eq!(unix_cmd(&sock, &[b"GET", b"k"]).unwrap(), Reply::bulk("v"));
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", s.port)).is_err(),
        "--socket without --dualnet must disable TCP"
    );
}

#[test]
fn dualnet_listens_on_both() {
    let tmp = tempfile::tempdir().unwrap();
    let sock = tmp.path().join("zdb.sock");
    let s = Server::start_at(
        tmp.path(),
        &[
            "--mode",
            "user",
            "--socket",
            sock.to_str().unwrap(),
            "--dualnet",
        ],
    );
    wait_unix(&sock);
    let mut c = s.client();
    assert_eq!(c.set(b"tcp", b"1"), Reply::bulk("tcp"));
    assert_eq!(
        unix_cmd(&sock, &[b"GET", b"tcp"]).unwrap(),
        Reply::bulk("1")
    );
}

#[test]
fn sync_flags_accepted() {
    for args in [
        vec!["--mode", "user", "--sync"],
        vec!["--mode", "user", "--synctime", "1"],
    ] {
        let mut s = Server::start(&args);
        let mut c = s.client();
        for i in 0..20 {
            c.set(format!("k{i}").as_bytes(), b"v");
        }
        s.restart();
        assert_eq!(s.client().dbsize(), 20, "{args:?}");
    }
}

#[test]
fn datasize_below_minimum_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = Server::new_at(tmp.path(), &["--mode", "user", "--datasize", "100k"], &[]);
    match s.launch_expect_exit(Duration::from_secs(5)) {
        Some(st) => assert!(!st.success()),
        None => panic!("--datasize 100k (< 512 KiB) must be refused"),
    }
}

#[test]
fn close_hook_on_sigterm() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("hook.log");
    let hook = tmp.path().join("hook.sh");
    std::fs::write(
        &hook,
        format!("#!/bin/sh\necho \"$@\" >> {}\nexit 0\n", log.display()),
    )
    .unwrap();
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut s = Server::start(&["--mode", "user", "--hook", hook.to_str().unwrap()]);
    let zid = format!("tcp://127.0.0.1:{}", s.port);
    let st = s.term().expect("exit on SIGTERM");
    assert!(st.success(), "{st}");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        text.lines().any(|l| l == format!("close {zid}")),
        "close hook argv:\n{text}"
    );
}
