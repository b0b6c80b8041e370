//! Live hand-over (`--handover` / `--take-over`): a new zdb process takes the listeners and the
//! established connections of the old one; clients see a pause, never an error or a
//! disconnect. Real processes, real TCP and unix clients.
#![expect(clippy::unwrap_used, reason = "tests")]

mod common;
use common::*;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A server serving a hand-over socket in its own temp dir.
struct Upgradable {
    s: Server,
    sock: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Upgradable {
    fn start(args: &[&str]) -> Upgradable {
        let tmp = tempfile::Builder::new()
            .prefix("zdbup-handover")
            .tempdir()
            .unwrap();
        let sock = tmp.path().join("handover.sock");
        let mut all: Vec<&str> = args.to_vec();
        let sock_s = sock.to_str().unwrap().to_string();
        all.extend(["--handover", &sock_s]);
        let s = Server::start_at(tmp.path(), &all);
        Upgradable { s, sock, _tmp: tmp }
    }

    /// Start a new process with the same arguments plus `--take-over` (and `extra`).
    fn spawn_new(&self, extra: &[&str]) -> Child {
        let logf = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.s.log)
            .unwrap();
        Command::new(zdb_bin())
            .arg("--listen")
            .arg("127.0.0.1")
            .arg("--port")
            .arg(self.s.port.to_string())
            .arg("--data")
            .arg(&self.s.data)
            .arg("--index")
            .arg(&self.s.index)
            .args(&self.s.args)
            .arg("--take-over")
            .arg(&self.sock)
            .args(extra)
            .env_remove("ZDB_ADMIN")
            .stdin(Stdio::null())
            .stdout(logf.try_clone().unwrap())
            .stderr(logf)
            .spawn()
            .unwrap()
    }

    /// Upgrade: the old process must exit by itself (status 0) and the new one serve.
    fn upgrade(&mut self) {
        let new = self.spawn_new(&[]);
        let old = self.s.child.take().unwrap();
        self.s.child = Some(new);
        let mut old = OldProcess(Some(old));
        let st = old.wait(Duration::from_secs(30));
        assert_eq!(
            st.map(|s| s.success()),
            Some(true),
            "old process did not exit cleanly after the hand-over\n{}",
            self.s.log_text()
        );
        assert!(
            self.s.is_running(),
            "new process died\n{}",
            self.s.log_text()
        );
    }
}

/// Kills the old process if a test fails before it exits.
struct OldProcess(Option<Child>);

impl OldProcess {
    fn wait(&mut self, d: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + d;
        while Instant::now() < deadline {
            if let Some(st) = self.0.as_mut()?.try_wait().unwrap() {
                self.0 = None;
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }
}

impl Drop for OldProcess {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn instance_id(c: &mut Client) -> String {
    let info = c.c(&["INFO"]).text();
    info.lines()
        .find_map(|l| l.strip_prefix("instance_id: "))
        .unwrap()
        .to_string()
}

/// The instances a client saw in turn, each with the writes it made while seeing it.
type Seen = Mutex<Vec<(String, usize)>>;

/// Waits until `writer` has made 50 writes on the `n`th instance it saw.
fn wait_for_writes<T>(seen: &Seen, n: usize, writer: &std::thread::JoinHandle<T>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.lock().unwrap().get(n - 1).is_none_or(|(_, w)| *w < 50) {
        assert!(!writer.is_finished(), "the writer stopped");
        assert!(Instant::now() < deadline, "{:?}", seen.lock().unwrap());
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_client_writing_without_pause_sees_no_error_across_two_upgrades() {
    let mut u = Upgradable::start(&[]);
    let mut setup = u.s.client();
    assert_eq!(setup.c(&["NSNEW", "work"]), Reply::ok());
    let mut c = u.s.client();
    // A connection-local marker: a new connection would be in `default`.
    c.select("work");
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Seen::default());
    let writer = {
        let (stop, seen) = (stop.clone(), seen.clone());
        std::thread::spawn(move || {
            let mut acked = Vec::new();
            let mut i = 0u64;
            while !stop.load(Ordering::SeqCst) {
                // Each round notes the serving instance: the main thread upgrades only
                // once this client has written on the current one.
                let id = instance_id(&mut c);
                let new = {
                    let mut seen = seen.lock().unwrap();
                    let new = seen.last().is_none_or(|(last, _)| *last != id);
                    if new {
                        seen.push((id, 0));
                    }
                    new
                };
                if new || i.is_multiple_of(50) {
                    // Still in `work`: the same session.
                    let ns = c.c(&["NSINFO", "work"]).text();
                    assert!(ns.contains("name: work"), "{ns}");
                }
                let key = format!("k{i}");
                let value = format!("value-{i}-{}", "x".repeat((i % 200) as usize));
                let r = c.try_cmd(&[b"SET", key.as_bytes(), value.as_bytes()]);
                assert_eq!(r.unwrap(), Reply::bulk(&key), "SET {key}");
                acked.push((key.clone(), value.clone()));
                let r = c.try_cmd(&[b"GET", key.as_bytes()]);
                assert_eq!(r.unwrap(), Reply::bulk(&value), "GET {key}");
                if let Some((_, writes)) = seen.lock().unwrap().last_mut() {
                    *writes += 1;
                }
                i += 1;
            }
            assert_eq!(c.c(&["DBSIZE"]).int(), acked.len() as i64, "still in work");
            acked
        })
    };
    wait_for_writes(&seen, 1, &writer);
    u.upgrade();
    wait_for_writes(&seen, 2, &writer);
    u.upgrade();
    wait_for_writes(&seen, 3, &writer);
    stop.store(true, Ordering::SeqCst);
    let acked = writer.join().unwrap();
    assert!(acked.len() > 100, "only {} writes", acked.len());
    let instances: Vec<_> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|(id, _)| id.clone())
        .collect();
    let distinct: HashSet<_> = instances.iter().collect();
    assert_eq!(
        distinct.len(),
        3,
        "served by three processes in turn: {instances:?}"
    );
    let mut check = u.s.client();
    check.select("work");
    for (k, v) in &acked {
        assert_eq!(check.get(k.as_bytes()), Reply::bulk(v), "{k}");
    }
    assert!(
        setup.c(&["PING"]) == Reply::simple("PONG"),
        "an idle connection too"
    );
}

#[test]
fn sessions_keep_namespace_auth_and_pending_challenge() {
    let mut u = Upgradable::start(&["--admin", ADMIN]);
    let mut admin = admin(&u.s);
    for ns in ["a", "b"] {
        assert_eq!(admin.c(&["NSNEW", ns]), Reply::ok());
    }
    admin.c(&["NSSET", "a", "password", "pa"]);
    admin.c(&["NSSET", "b", "password", "pb"]);
    admin.c(&["NSSET", "b", "public", "1"]);
    let mut in_a = u.s.client();
    assert_eq!(in_a.c(&["SELECT", "a", "pa"]), Reply::ok());
    in_a.set(b"ka", b"va");
    let mut in_b = u.s.client();
    assert_eq!(in_b.c(&["SELECT", "b"]), Reply::ok());
    let mut guest = u.s.client();
    let mut secure = u.s.client();
    let nonce = match secure.c(&["AUTH", "SECURE", "CHALLENGE"]) {
        Reply::Simple(n) => n,
        other => panic!("{other:?}"),
    };
    let before = instance_id(&mut guest);

    u.upgrade();

    assert_ne!(instance_id(&mut guest), before, "served by the new process");
    assert_eq!(admin.c(&["NSNEW", "c"]), Reply::ok(), "still admin");
    assert_eq!(in_a.get(b"ka"), Reply::bulk("va"), "still in a");
    assert_eq!(
        in_a.set(b"kb", b"vb"),
        Reply::bulk("kb"),
        "still writable in a"
    );
    assert_eq!(in_b.dbsize(), 0, "still in b");
    assert!(in_b.set(b"k", b"v").is_error(), "still read-only in b");
    assert_eq!(guest.c(&["NSNEW", "d"]), Reply::err("Permission denied"));
    let h = sha1_hex(&format!("{nonce}:{ADMIN}"));
    assert_eq!(
        secure.c(&["AUTH", "SECURE", &h]),
        Reply::ok(),
        "the challenge survived"
    );
    assert_eq!(secure.c(&["NSNEW", "e"]), Reply::ok());
}

#[test]
fn a_request_split_across_the_hand_over_completes() {
    let mut u = Upgradable::start(&[]);
    let mut c = u.s.client();
    let value = pseudo_bytes(7, 300_000);
    let mut raw = Vec::new();
    for i in 0..3 {
        raw.extend(encode(&[b"SET", format!("p{i}").as_bytes(), b"small"]));
    }
    raw.extend(encode(&[b"SET", b"big", &value]));
    raw.extend(encode(&[b"GET", b"p1"]));
    // Three whole requests and a part of the fourth reach the old process.
    let cut = raw.len() - 150_000;
    c.send_raw(&raw[..cut]).unwrap();
    for i in 0..3 {
        assert_eq!(c.read_reply().unwrap(), Reply::bulk(format!("p{i}")));
    }
    std::thread::sleep(Duration::from_millis(100));
    u.upgrade();
    c.send_raw(&raw[cut..]).unwrap();
    assert_eq!(c.read_reply().unwrap(), Reply::bulk("big"));
    assert_eq!(c.read_reply().unwrap(), Reply::bulk("small"));
    assert_eq!(c.get(b"big"), Reply::bulk(&value));
}

/// A hook that fails `ready` (a broken new build) or sleeps in it (one that never confirms).
fn hook(dir: &Path, name: &str, on_ready: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!("#!/bin/sh\nif [ \"$1\" = ready ]; then {on_ready}; fi\nexit 0\n"),
    )
    .unwrap();
    let mut perm = std::fs::metadata(&path).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
    std::fs::set_permissions(&path, perm).unwrap();
    path
}

#[test]
fn a_new_process_that_fails_or_never_confirms_leaves_the_old_serving() {
    let mut u = Upgradable::start(&[]);
    let mut c = u.s.client();
    assert_eq!(c.c(&["NSNEW", "kept"]), Reply::ok());
    c.select("kept");
    c.set(b"before", b"1");
    let old_id = instance_id(&mut c);

    // A build whose ready hook fails: it exits, the old one thaws.
    let failing = hook(u._tmp.path(), "fail.sh", "exit 1");
    let mut new = OldProcess(Some(u.spawn_new(&["--hook", failing.to_str().unwrap()])));
    let st = new
        .wait(Duration::from_secs(30))
        .expect("failing build exits");
    assert!(!st.success());
    assert_eq!(c.set(b"after-fail", b"2"), Reply::bulk("after-fail"));
    assert_eq!(instance_id(&mut c), old_id, "the old process serves");

    // A build that never confirms: killed while it waits; a request sent meanwhile is
    // answered by the old process once it thaws.
    let sleeping = hook(u._tmp.path(), "sleep.sh", "sleep 5");
    let mut new = OldProcess(Some(u.spawn_new(&["--hook", sleeping.to_str().unwrap()])));
    std::thread::sleep(Duration::from_millis(1500));
    c.send(&[b"SET", b"during", b"3"]).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    if let Some(mut ch) = new.0.take() {
        ch.kill().unwrap();
        ch.wait().unwrap();
    }
    assert_eq!(c.read_reply().unwrap(), Reply::bulk("during"));
    assert_eq!(instance_id(&mut c), old_id);
    assert!(u.s.is_running());
    // A fresh client is accepted again, and a later upgrade still works.
    let mut fresh = u.s.client();
    assert_eq!(fresh.c(&["PING"]), Reply::simple("PONG"));
    u.upgrade();
    for k in ["before", "after-fail", "during"] {
        assert!(!c.get(k.as_bytes()).is_error(), "{k}");
    }
    assert_ne!(instance_id(&mut c), old_id);
}

#[test]
fn sequential_namespace_and_unix_clients_survive_an_upgrade() {
    let tmp_sock = tempfile::Builder::new()
        .prefix("zdbup-unix")
        .tempdir()
        .unwrap();
    let unix = tmp_sock.path().join("zdb.sock");
    let unix_s = unix.to_str().unwrap().to_string();
    let mut u = Upgradable::start(&["--mode", "seq", "--socket", &unix_s, "--dualnet"]);
    let mut c = u.s.client();
    assert_eq!(c.set(b"", b"a"), Reply::bulk(seq_id(0)));
    assert_eq!(c.set(b"", b"b"), Reply::bulk(seq_id(1)));
    let mut uc = std::os::unix::net::UnixStream::connect(&unix).unwrap();
    uc.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let ping = |uc: &mut std::os::unix::net::UnixStream| {
        uc.write_all(&encode(&[b"PING"])).unwrap();
        let mut buf = [0u8; 7];
        uc.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"+PONG\r\n");
    };
    ping(&mut uc);
    u.upgrade();
    ping(&mut uc);
    assert_eq!(c.set(b"", b"c"), Reply::bulk(seq_id(2)), "ids continue");
    assert_eq!(c.get(&seq_id(0)), Reply::bulk("a"));
    assert_eq!(c.get(&seq_id(1)), Reply::bulk("b"));
    assert!(unix.exists(), "the socket path stays");
    let mut fresh = std::os::unix::net::UnixStream::connect(&unix).unwrap();
    fresh
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    ping(&mut fresh);
}

/// A raw peer on the hand-over socket.
fn raw_peer(path: &Path) -> std::os::fd::OwnedFd {
    use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
    let fd = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .unwrap();
    rustix::net::connect(&fd, &SocketAddrUnix::new(path).unwrap()).unwrap();
    fd
}

#[test]
fn a_hostile_or_vanishing_peer_on_the_handover_socket_changes_nothing() {
    let mut u = Upgradable::start(&[]);
    let mut c = u.s.client();
    c.set(b"k1", b"v1");
    let id = instance_id(&mut c);
    let mut buf = vec![0u8; 70_000];
    // Garbage, a wrong magic, a torn hello, a future version: each refused, nothing frozen
    // for long.
    let mut hello = vec![1u8];
    hello.extend_from_slice(b"ZDBHANDOVER");
    let mut future = hello.clone();
    future.extend_from_slice(&[0xff, 0xff]);
    for bytes in [
        vec![0xffu8; 100],
        b"\x01NOTZDBHANDOVER\x00\x01".to_vec(),
        hello.clone(),
        future,
    ] {
        let fd = raw_peer(&u.sock);
        rustix::io::write(&fd, &bytes).unwrap();
        // The old process answers Abort (or just closes).
        let _ = rustix::io::read(&fd, &mut buf);
        assert_eq!(c.set(b"k", &bytes), Reply::bulk("k"));
    }
    // A peer that says hello, takes the first frame and vanishes, as a new process dying
    // mid-way would: the old one thaws.
    hello.extend_from_slice(&1u16.to_be_bytes());
    let fd = raw_peer(&u.sock);
    rustix::io::write(&fd, &hello).unwrap();
    let n = rustix::io::read(&fd, &mut buf).unwrap();
    assert!(n > 0 && buf[0] == 2, "the first frame is a descriptor");
    drop(fd);
    assert_eq!(c.set(b"k2", b"v2"), Reply::bulk("k2"));
    assert_eq!(instance_id(&mut c), id, "the old process serves on");
    assert!(u.s.log_text().contains("hand-over failed: serving on"));
    u.upgrade();
    assert_eq!(c.get(b"k2"), Reply::bulk("v2"));
    assert_ne!(instance_id(&mut c), id);
}

#[test]
fn a_stop_during_a_hand_over_lets_it_finish() {
    let mut u = Upgradable::start(&[]);
    let mut c = u.s.client();
    c.set(b"k", b"v");
    let id = instance_id(&mut c);
    // The new process takes 3 s in its ready hook; the old one gets SIGTERM meanwhile,
    // once the marker shows the hook runs (the hand-over is under way).
    let marker = u._tmp.path().join("ready-hook-runs");
    let on_ready = format!("touch '{}'; sleep 3", marker.display());
    let slow = hook(u._tmp.path(), "slow.sh", &on_ready);
    let new = u.spawn_new(&["--hook", slow.to_str().unwrap()]);
    let mut old = OldProcess(u.s.child.replace(new));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !marker.exists() {
        assert!(
            Instant::now() < deadline,
            "no ready hook\n{}",
            u.s.log_text()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let pid = old.0.as_ref().unwrap().id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let st = old.wait(Duration::from_secs(30)).expect("old exits");
    assert!(st.success());
    assert_eq!(c.get(b"k"), Reply::bulk("v"), "the connection survived");
    assert_ne!(instance_id(&mut c), id, "served by the new process");
    assert!(u.s.is_running());
}
