//! Hostile and many clients: 10,000 idle connections while a normal load is served, clients
//! that send half a frame and stall.
#![expect(clippy::unwrap_used, reason = "tests")]

mod common;
use common::*;
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn raise_nofile(want: u64) -> bool {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let cur = getrlimit(Resource::Nofile);
    if cur.current.is_some_and(|c| c >= want) {
        return true;
    }
    let max = cur.maximum.map_or(want, |m| m.max(want));
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(want),
            maximum: Some(max),
        },
    )
    .is_ok()
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn ten_thousand_idle_connections_and_a_normal_load() {
    if nodeutil::skip::unless(raise_nofile(12_000), "an open-file limit of 12000") {
        return;
    }
    let s = Server::start(&["--mode", "user"]);
    let mut idle = Vec::with_capacity(10_000);
    for i in 0..10_000 {
        match TcpStream::connect(("127.0.0.1", s.port)) {
            Ok(c) => idle.push(c),
            Err(e) => panic!("connection {i} refused: {e}"),
        }
    }
    // Every idle connection is really accepted (one descriptor each in the server).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let fds = std::fs::read_dir(format!("/proc/{}/fd", s.pid()))
            .unwrap()
            .count();
        if fds >= 10_000 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "server holds only {fds} descriptors"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut c = s.client();
    let started = Instant::now();
    for i in 0..2000 {
        let k = format!("k{i}");
        assert_eq!(c.set(k.as_bytes(), b"v"), Reply::bulk(&k));
        assert_eq!(c.get(k.as_bytes()), Reply::bulk("v"));
    }
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "load starved: {:?}",
        started.elapsed()
    );
    let rss = rss_kib(s.pid());
    assert!(rss < 256 * 1024, "10k idle clients cost {rss} KiB");
    drop(idle);
}

#[test]
fn half_frames_hold_nothing_up() {
    let s = Server::start(&["--mode", "user"]);
    let mut stalled = Vec::new();
    for i in 0..50 {
        let mut c = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
        // Declares a 4 MiB value, sends a few bytes of it, then stalls.
        c.write_all(format!("*3\r\n$3\r\nSET\r\n$2\r\nh{}\r\n$4194304\r\n", i % 10).as_bytes())
            .unwrap();
        c.write_all(&[b'x'; 1000]).unwrap();
        stalled.push(c);
    }
    let mut c = s.client();
    for i in 0..200 {
        let k = format!("n{i}");
        assert_eq!(c.set(k.as_bytes(), b"ok"), Reply::bulk(&k));
    }
    // Stalled frames never got applied, and their connections cost no declared length.
    assert_eq!(c.get(b"h1"), Reply::nil());
    assert!(rss_kib(s.pid()) < 128 * 1024);
    drop(stalled);
    assert_eq!(c.c(&["PING"]), Reply::simple("PONG"));
}
