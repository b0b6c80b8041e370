//! `zdb check [--repair]` offline and NSCHECK online: every entry verified, problems named
//! precisely, the index rebuilt from the data files.
#![expect(clippy::unwrap_used, reason = "tests")]

mod common;
use common::*;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn check(root: &Path, extra: &[&str]) -> (i32, String) {
    let out = Command::new(zdb_bin())
        .arg("check")
        .arg("--data")
        .arg(root.join("data"))
        .arg("--index")
        .arg(root.join("index"))
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn flip(path: &Path, at: usize) {
    let mut b = std::fs::read(path).unwrap();
    b[at] ^= 0x10;
    std::fs::write(path, b).unwrap();
}

#[test]
fn check_reports_and_repair_rebuilds() {
    let mut s = Server::start(&["--mode", "user"]);
    let mut c = s.client();
    for i in 0..50 {
        c.set(format!("k{i}").as_bytes(), format!("value-{i}").as_bytes());
    }
    c.set(b"k3", b"overwritten");
    c.del(b"k4");
    let root = s.root.clone();
    s.term();

    let (code, out) = check(&root, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("problems: 0"), "{out}");

    // A flipped value byte: data CRC fails, named with file and offset.
    let d0 = root.join("data/default/d0");
    flip(&d0, 28 + 18 + 2 + 1); // first entry: header 28, entry header 18, key "k0"
    // A flipped CRC field in an index entry that disagrees with its data header.
    let i0 = root.join("index/default/i0");
    let second = 29 + 34 + 2; // second index entry
    flip(&i0, second + 22);
    let (code, out) = check(&root, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("d0@28: key 6b30: value does not match its crc"),
        "{out}"
    );
    assert!(
        out.contains(&format!("i0@{second}: key 6b31: crc")),
        "{out}"
    );

    // Repair rebuilds the index from the data: k1's index flip is gone; k0's corrupt value is
    // left unindexed (it cannot be rebuilt), everything else is back.
    let (code, out) = check(&root, &["--repair"]);
    assert!(out.contains("index rebuilt"), "{out}");
    assert!(
        out.contains("d0@28: key 6b30: value does not match its crc, not indexed"),
        "{out}"
    );
    assert_eq!(code, 1, "the corrupt value is still reported: {out}");
    assert!(
        std::fs::read_dir(root.join("index/default"))
            .unwrap()
            .any(|e| e
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(".backup-"))
    );
    s.restart();
    let mut c = s.client();
    assert_eq!(c.get(b"k1"), Reply::bulk("value-1"));
    assert_eq!(c.get(b"k3"), Reply::bulk("overwritten"));
    assert_eq!(c.get(b"k4"), Reply::nil());
    assert_eq!(c.get(b"k0"), Reply::nil());
    assert_eq!(c.dbsize(), 48, "50 keys, k4 deleted, k0 unrecoverable");
}

#[test]
fn nscheck_online() {
    let s = Server::start(&["--mode", "user", "--admin", "pw"]);
    let mut c = s.client();
    assert_eq!(c.c(&["NSCHECK"]), Reply::err("Permission denied"));
    assert_eq!(c.c(&["AUTH", "pw"]), Reply::ok());
    c.set(b"a", b"alpha");
    c.set(b"b", b"beta");
    let report = c.c(&["NSCHECK", "default"]).text();
    assert!(
        report.contains("index_entries: 2") && report.contains("problems: 0"),
        "{report}"
    );
    flip(&s.root.join("index/default/i0"), 29 + 22);
    let report = c.c(&["NSCHECK"]).text();
    assert!(
        report.contains("problems: 1") && report.contains("i0@29: key 61: crc"),
        "{report}"
    );
    assert_eq!(c.c(&["NSCHECK", "nope"]), Reply::err("Namespace not found"));
}

#[test]
fn lost_index_is_rebuilt_at_open() {
    let mut s = Server::start(&["--mode", "seq"]);
    let mut c = s.client();
    let mut ids = Vec::new();
    for i in 0..20u8 {
        ids.push(c.set(b"", &[i; 10]).bytes());
    }
    c.set(&ids[3], b"updated");
    c.del(&ids[5]);
    let root = s.root.clone();
    s.kill();
    std::fs::remove_file(root.join("index/default/i0")).unwrap();
    s.restart();
    let mut c = s.client();
    assert_eq!(c.get(&ids[3]), Reply::bulk("updated"));
    assert_eq!(c.get(&ids[5]), Reply::nil());
    assert_eq!(c.get(&ids[7]), Reply::bulk([7u8; 10]));
    assert_eq!(c.dbsize(), 19);
}

/// NSCHECK walks every entry on a blocking thread, a step at a time: a writer of the same
/// namespace waits for one step at most, not for the whole walk.
#[test]
fn nscheck_lets_writers_in_while_it_walks() {
    let s = Server::start(&["--mode", "user"]);
    let mut fill = s.client();
    let value = vec![b'x'; 100];
    for batch in 0..100 {
        let mut req = Vec::new();
        for i in 0..1000 {
            req.extend_from_slice(&encode(&[
                b"SET",
                format!("k{batch}-{i}").as_bytes(),
                &value,
            ]));
        }
        fill.send_raw(&req).unwrap();
        for _ in 0..1000 {
            assert!(!fill.read_reply().unwrap().is_error());
        }
    }
    let port = s.port;
    let checker = std::thread::spawn(move || {
        let mut c = Client::connect(port).unwrap();
        c.set_timeout(Duration::from_secs(120));
        let t = Instant::now();
        let report = c.c(&["NSCHECK"]).text();
        (t.elapsed(), report)
    });
    let mut writer = s.client();
    let mut waits = Vec::new();
    while !checker.is_finished() {
        let key = format!("w{}", waits.len());
        let t = Instant::now();
        assert_eq!(writer.set(key.as_bytes(), b"v"), Reply::bulk(&key));
        waits.push(t.elapsed());
    }
    let (took, report) = checker.join().unwrap();
    assert!(report.contains("problems: 0"), "{report}");
    assert!(
        took >= Duration::from_millis(300),
        "check too fast to tell: {took:?}"
    );
    // Writers kept getting in: most at once, and none waited for half the walk (a hold for
    // the whole walk shows as one write lasting nearly all of it). The bounds leave room for
    // a step descheduled on a loaded machine.
    waits.sort();
    let (n, worst, p90) = (
        waits.len(),
        waits[waits.len() - 1],
        waits[waits.len() * 9 / 10],
    );
    assert!(
        p90 < took / 10 && worst < took / 2,
        "writers waited {p90:?} (90th percentile), {worst:?} (worst) during a {took:?} check \
         ({n} writes)"
    );
}
