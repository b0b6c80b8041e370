//! A follower (`--replicate-from`) streams a leader's namespaces: initial copy, live tail,
//! restarts of either side, the leader compacting, and promotion.
#![expect(clippy::unwrap_used, reason = "tests")]

mod common;
use common::*;
use std::time::{Duration, Instant};

/// Every live key of the current namespace with its value, via SCAN + GET.
fn dump(c: &mut Client) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    let mut cursor: Option<Vec<u8>> = None;
    loop {
        let reply = match &cursor {
            None => c.cmd(&[b"SCAN"]),
            Some(cur) => c.cmd(&[b"SCAN", cur]),
        };
        if reply == Reply::err("No more data") {
            break;
        }
        let parts = reply.array();
        cursor = Some(parts[0].bytes());
        for item in parts[1].array() {
            let key = item.array()[0].bytes();
            let value = c.get(&key).bytes();
            out.push((key, value));
        }
    }
    out.sort();
    out
}

fn converge(leader: &Server, follower: &Server, namespaces: &[(&str, Option<&str>)]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    for (ns, pw) in namespaces {
        let select = |c: &mut Client| match pw {
            Some(p) => c.c(&["SELECT", ns, p]),
            None => c.c(&["SELECT", ns]),
        };
        let mut l = leader.client();
        l.c(&["AUTH", "adminpw"]);
        assert_eq!(select(&mut l), Reply::ok());
        let want = dump(&mut l);
        loop {
            let mut f = follower.client();
            f.c(&["AUTH", "adminpw"]);
            let got = if select(&mut f) == Reply::ok() {
                dump(&mut f)
            } else {
                Vec::new()
            };
            if got == want {
                break;
            }
            if Instant::now() >= deadline {
                let log = follower.log_text();
                let tail: Vec<&str> = log.lines().rev().take(15).collect();
                panic!(
                    "{ns}: follower has {} keys, leader {}\n{}",
                    got.len(),
                    want.len(),
                    tail.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
fn follower_copies_tails_survives_restarts_and_compaction_then_promotes() {
    let leader = Server::start(&[
        "--admin",
        "adminpw",
        "--datasize",
        "512k",
        "--compact-dead-bytes",
        "0",
    ]);
    let mut l = leader.client();
    l.c(&["AUTH", "adminpw"]);
    for i in 0..300 {
        l.set(format!("d{i}").as_bytes(), &vec![i as u8; 700]);
    }
    l.c(&["NSNEW", "secret"]);
    l.c(&["NSSET", "secret", "password", "pw"]);
    l.c(&["NSSET", "secret", "public", "0"]);
    l.c(&["NSNEW", "sq"]);
    l.c(&["NSSET", "sq", "mode", "seq"]);
    l.c(&["SELECT", "secret", "pw"]);
    for i in 0..50 {
        l.set(format!("s{i}").as_bytes(), format!("secret-{i}").as_bytes());
    }
    l.c(&["SELECT", "sq"]);
    let mut ids = Vec::new();
    for i in 0..40u8 {
        ids.push(l.set(b"", &[i; 33]).bytes());
    }
    l.set(&ids[2], b"updated");
    l.del(&ids[3]);

    let dir = tempfile::tempdir().unwrap();
    let pwfile = dir.path().join("leader-admin");
    std::fs::write(&pwfile, "adminpw\n").unwrap();
    let from = format!("127.0.0.1:{}", leader.port);
    let fargs = [
        "--admin",
        "adminpw",
        "--replicate-from",
        &from,
        "--replicate-admin-file",
        pwfile.to_str().unwrap(),
    ];
    let mut follower = Server::start_at(dir.path(), &fargs);
    let all = [("default", None), ("secret", Some("pw")), ("sq", None)];
    converge(&leader, &follower, &all);

    // Client writes are refused on a follower.
    let mut f = follower.client();
    assert_eq!(
        f.set(b"x", b"y"),
        Reply::err("Read-only replica (PROMOTE it to accept writes)")
    );

    // Live tail, with the follower killed meanwhile.
    let mut l = leader.client();
    l.c(&["AUTH", "adminpw"]);
    for i in 0..100 {
        l.set(format!("d{i}").as_bytes(), b"second");
    }
    follower.kill();
    for i in 300..400 {
        l.set(format!("d{i}").as_bytes(), b"while follower down");
    }
    for i in 0..30 {
        l.del(format!("d{}", 100 + i).as_bytes());
    }
    follower.restart();
    converge(&leader, &follower, &all);

    // Leader restart, then compaction on the leader, then more writes.
    let mut leader = leader;
    leader.restart_same_port();
    let mut l = leader.client();
    l.c(&["AUTH", "adminpw"]);
    let compacted = l.c(&["COMPACT", "default"]).text();
    assert!(compacted.starts_with("Compacted: files="), "{compacted}");
    for i in 400..450 {
        l.set(format!("d{i}").as_bytes(), b"after compaction");
    }
    converge(&leader, &follower, &all);

    // Promotion: the follower stops following and accepts writes.
    let mut f = follower.client();
    f.c(&["AUTH", "adminpw"]);
    assert_eq!(f.c(&["PROMOTE"]), Reply::ok());
    assert_eq!(f.set(b"mine", b"now"), Reply::bulk("mine"));
    assert_eq!(f.c(&["PROMOTE"]), Reply::err("Not a replica"));
}
