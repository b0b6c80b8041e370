//! Restart and read back; many data files with --datasize 512k; RELOAD
//! (reference §7, §8.5).
#![expect(clippy::unwrap_used, reason = "tests")]

mod common;
use common::*;
use std::collections::BTreeMap;

type Model = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

fn write_workload(c: &mut Client, seed: u64, n: usize, size: usize) -> Model {
    let mut m = Model::new();
    for i in 0..n {
        let k = format!("key-{seed}-{i:05}").into_bytes();
        let v = pseudo_bytes(seed * 100_000 + i as u64, 1 + (i * 7919) % size);
        assert_eq!(c.set(&k, &v), Reply::bulk(&k));
        m.insert(k, Some(v));
    }
    for i in (0..n).step_by(7) {
        let k = format!("key-{seed}-{i:05}").into_bytes();
        let v = pseudo_bytes(seed * 100_000 + 50_000 + i as u64, 100);
        assert_eq!(c.set(&k, &v), Reply::bulk(&k));
        m.insert(k, Some(v));
    }
    for i in (3..n).step_by(11) {
        let k = format!("key-{seed}-{i:05}").into_bytes();
        assert_eq!(c.del(&k), Reply::ok());
        m.insert(k, None);
    }
    m
}

fn verify(c: &mut Client, m: &Model) {
    for (k, v) in m {
        let want = match v {
            Some(v) => Reply::bulk(v),
            None => Reply::nil(),
        };
        let got = c.get(k);
        assert!(
            got == want,
            "key {:?}: got {got:?}, want {want:?}",
            String::from_utf8_lossy(k)
        );
    }
    let live = m.values().filter(|v| v.is_some()).count() as i64;
    assert_eq!(c.dbsize(), live);
}

#[test]
fn restart_after_sigkill_and_sigterm() {
    let mut s = Server::start(&["--mode", "user"]);
    let mut c = s.client();
    let m = write_workload(&mut c, 1, 300, 3000);
    c.c(&["NSNEW", "other"]);
    c.select("other");
    let mut m2 = write_workload(&mut c, 2, 50, 500);
    s.restart(); // SIGKILL
    let mut c = s.client();
    verify(&mut c, &m);
    c.select("other");
    verify(&mut c, &m2);
    // writes after restart continue the files
    assert_eq!(c.set(b"post", b"restart"), Reply::bulk("post"));
    m2.insert(b"post".to_vec(), Some(b"restart".to_vec()));
    s.restart_graceful(); // SIGTERM
    let mut c = s.client();
    verify(&mut c, &m);
    c.select("other");
    verify(&mut c, &m2);
    assert_eq!(c.get(b"post"), Reply::bulk("restart"));
}

#[test]
fn namespace_properties_persist() {
    let mut s = Server::start(&["--mode", "user"]);
    let mut c = s.client();
    c.c(&["NSNEW", "props"]);
    c.c(&["NSSET", "props", "password", "ppw"]);
    c.c(&["NSSET", "props", "public", "0"]);
    c.c(&["NSSET", "props", "maxsize", "123456"]);
    c.c(&["NSSET", "props", "worm", "1"]);
    c.c(&["NSSET", "props", "lock", "1"]);
    s.restart();
    let mut c = s.client();
    let info = c.nsinfo("props");
    assert_eq!(info_get(&info, "password").unwrap(), "yes");
    assert_eq!(info_get(&info, "public").unwrap(), "no");
    assert_eq!(info_get(&info, "worm").unwrap(), "yes");
    assert_eq!(info_get(&info, "data_limits_bytes").unwrap(), "123456");
    assert_eq!(info_get(&info, "locked").unwrap(), "no", "lock is volatile");
    assert_eq!(
        c.c(&["SELECT", "props"]),
        Reply::err("Namespace protected and private")
    );
    assert_eq!(c.c(&["SELECT", "props", "ppw"]), Reply::ok());
    assert_eq!(c.set(b"k", b"v"), Reply::bulk("k"));
}

#[test]
fn rotation_with_small_datasize() {
    let mut s = Server::start(&["--mode", "user", "--datasize", "512k"]);
    let mut c = s.client();
    let m = write_workload(&mut c, 3, 600, 12_000);
    let ddir = s.data.join("default");
    let idir = s.index.join("default");
    let last = last_file(&ddir, "d").unwrap();
    assert!(last >= 4, "expected ≥ 5 data files, got {}", last + 1);
    assert_eq!(
        last_file(&idir, "i"),
        Some(last),
        "index and data rotate together"
    );
    for n in 0..=last {
        let len = std::fs::metadata(ddir.join(format!("d{n}"))).unwrap().len();
        assert!(
            len <= 512 * 1024 + 18 + 255,
            "d{n} is {len} bytes, over --datasize 512k"
        );
        let raw = std::fs::read(ddir.join(format!("d{n}"))).unwrap();
        assert_eq!(u32::from_le_bytes(raw[24..28].try_into().unwrap()), n);
        let raw = std::fs::read(idir.join(format!("i{n}"))).unwrap();
        assert_eq!(u32::from_le_bytes(raw[24..28].try_into().unwrap()), n);
    }
    verify(&mut c, &m);
    s.restart();
    let mut c = s.client();
    verify(&mut c, &m);
    // new writes after restart go to the last file (or a new one)
    let m2 = write_workload(&mut c, 4, 100, 12_000);
    s.restart();
    let mut c = s.client();
    let mut all = m.clone();
    all.extend(m2);
    verify(&mut c, &all);
}

#[test]
fn datasize_plain_bytes_accepted() {
    let s = Server::start(&["--mode", "user", "--datasize", "524288"]);
    let mut c = s.client();
    for i in 0..8 {
        c.set(format!("k{i}").as_bytes(), &pseudo_bytes(i, 100_000));
    }
    assert!(s.data.join("default").join("d1").exists());
}

#[test]
fn reload_after_restart_and_seq() {
    let mut s = Server::start(&[]);
    let mut c = s.client();
    c.c(&["NSNEW", "sq"]);
    c.c(&["NSSET", "sq", "mode", "seq"]);
    c.select("sq");
    for i in 0..30u64 {
        assert_eq!(
            c.set(b"", format!("v{i}").as_bytes()),
            Reply::bulk(seq_id(i))
        );
    }
    c.set(&seq_id(4), b"v4b");
    c.del(&seq_id(5));
    assert_eq!(c.c(&["RELOAD", "sq"]), Reply::ok());
    assert_eq!(c.get(&seq_id(4)), Reply::bulk("v4b"));
    assert_eq!(c.get(&seq_id(5)), Reply::nil());
    assert_eq!(c.dbsize(), 29);
    assert_eq!(c.set(b"", b"next"), Reply::bulk(seq_id(31)));
    s.restart();
    let mut c = s.client();
    c.select("sq");
    assert_eq!(c.get(&seq_id(4)), Reply::bulk("v4b"));
    assert_eq!(c.get(&seq_id(31)), Reply::bulk("next"));
    assert_eq!(c.dbsize(), 30);
}

#[test]
fn second_instance_refused_by_lockfile() {
    let s = Server::start(&["--mode", "user"]);
    let mut s2 = Server::new_at(&s.root, &["--mode", "user"], &[]);
    let st = s2.launch_expect_exit(std::time::Duration::from_secs(5));
    match st {
        Some(st) => assert!(!st.success()),
        None => panic!("a second zdb started on the same data dir"),
    }
    let mut c = s.client();
    assert_eq!(c.c(&["PING"]), Reply::simple("PONG"));
}

#[test]
fn a_clean_stop_leaves_a_key_map_snapshot_the_next_start_uses_only_while_it_matches() {
    let mut s = Server::start(&["--mode", "user", "--datasize", "512k"]);
    let mut c = s.client();
    let mut m = write_workload(&mut c, 4, 800, 3000);
    let snap = s.index.join("default").join("zdb-keymap.snapshot");
    let restored = |s: &Server| {
        s.log_text()
            .matches("key map restored from its snapshot")
            .count()
    };
    s.restart_graceful();
    assert!(snap.exists(), "no snapshot after SIGTERM");
    assert_eq!(restored(&s), 1);
    let mut c = s.client();
    verify(&mut c, &m);
    // Written after the restore, then killed: the snapshot no longer matches the index.
    assert_eq!(c.set(b"after", b"snapshot"), Reply::bulk("after"));
    m.insert(b"after".to_vec(), Some(b"snapshot".to_vec()));
    assert_eq!(c.del(b"key-4-00010"), Reply::ok());
    m.insert(b"key-4-00010".to_vec(), None);
    s.restart(); // SIGKILL
    assert_eq!(restored(&s), 1, "a stale snapshot was used");
    assert!(s.log_text().contains("key map snapshot not used"));
    let mut c = s.client();
    verify(&mut c, &m);
    // A snapshot that is not ours (garbage) is never trusted.
    s.term();
    std::fs::write(&snap, b"garbage").unwrap();
    s.launch();
    assert_eq!(restored(&s), 1, "a garbage snapshot was used");
    let mut c = s.client();
    verify(&mut c, &m);
}

#[test]
fn an_idle_namespace_gets_a_snapshot_that_a_restart_after_sigkill_uses() {
    let mut s = Server::start(&["--mode", "user", "--snapshot-idle", "1"]);
    let mut c = s.client();
    let mut m = write_workload(&mut c, 5, 500, 2000);
    let saved = |s: &Server| s.log_text().matches("idle: key map snapshot saved").count();
    let restored = |s: &Server| {
        s.log_text()
            .matches("key map restored from its snapshot")
            .count()
    };
    let wait_saved = |s: &Server, n: usize| {
        let t0 = std::time::Instant::now();
        while saved(s) < n {
            assert!(
                t0.elapsed() < std::time::Duration::from_secs(20),
                "no idle snapshot: {}",
                s.log_text()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    };
    wait_saved(&s, 1);
    // Nothing changed since: no second save.
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(saved(&s), 1);
    // A power cut while idle (SIGKILL): the next start uses the snapshot.
    s.restart();
    assert_eq!(restored(&s), 1, "{}", s.log_text());
    let mut c = s.client();
    verify(&mut c, &m);
    // Written again, idle again: saved again, and used again after a kill.
    assert_eq!(c.set(b"later", b"write"), Reply::bulk("later"));
    m.insert(b"later".to_vec(), Some(b"write".to_vec()));
    wait_saved(&s, 2);
    s.restart();
    assert_eq!(restored(&s), 2, "{}", s.log_text());
    let mut c = s.client();
    verify(&mut c, &m);
}
