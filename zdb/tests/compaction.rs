//! COMPACT and background compaction against a real server: space comes back, every live key
//! stays, restarts see the same, cursors into rewritten files fail cleanly.
#![expect(clippy::unwrap_used, reason = "tests")]

mod common;
use common::*;
use std::path::Path;
use std::time::{Duration, Instant};

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

fn churn(c: &mut Client) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut live = Vec::new();
    for round in 0..4u8 {
        for i in 0..400u32 {
            let key = format!("key-{i}").into_bytes();
            let value = vec![round.wrapping_add(i as u8); 1000];
            assert_eq!(c.set(&key, &value), Reply::bulk(&key));
            if round == 3 {
                live.push((key, value));
            }
        }
    }
    for (k, _) in live.iter().step_by(3) {
        assert_eq!(c.del(k), Reply::ok());
    }
    live.into_iter()
        .enumerate()
        .filter(|(n, _)| n % 3 != 0)
        .map(|(_, kv)| kv)
        .collect()
}

#[test]
fn compact_command_reclaims_and_keeps_keys() {
    let mut s = Server::start(&[
        "--mode",
        "user",
        "--datasize",
        "512k",
        "--compact-dead-bytes",
        "0",
    ]);
    let mut c = s.client();
    let live = churn(&mut c);
    let data_dir = s.data.join("default");
    let before = dir_bytes(&data_dir);
    // A cursor into a file that COMPACT rewrites (key-1's last version sits in d2 of d0-d3).
    // Not a SCAN page's cursor: a page covers 2 ms of walking, on a fast machine every key.
    let cursor = c.c(&["KEYCUR", "key-1"]).bytes();
    // The current version of key-1 points at its parent (an older, overwritten version).
    let parent = c.c(&["HISTORY", "key-1"]).array()[0].bytes();
    let reply = c.c(&["COMPACT"]);
    let text = reply.text();
    assert!(text.starts_with("Compacted: files="), "{reply:?}");
    let after = dir_bytes(&data_dir);
    assert!(after * 2 < before, "before {before} after {after}");
    for (k, v) in &live {
        assert_eq!(c.get(k), Reply::bulk(v));
    }
    assert_eq!(c.dbsize(), live.len() as i64);
    // A cursor into a rewritten file fails with the documented error or keeps walking live keys.
    let r = c.cmd(&[b"SCAN", &cursor]);
    assert!(
        r == Reply::err("Invalid key format") || r.array().len() == 2,
        "{r:?}"
    );
    // HISTORY into the rewritten file ends with an error, never a wrong value.
    let h = c.cmd(&[b"HISTORY", b"key-1", &parent]);
    assert!(
        h == Reply::err("Invalid arguments (index query)")
            || h == Reply::err("Invalid arguments (invalid key)"),
        "{h:?}"
    );
    // Nothing more to reclaim.
    assert_eq!(
        c.c(&["COMPACT", "default"]),
        Reply::simple("Compacted: files=0 reclaimed_bytes=0")
    );
    assert_eq!(c.c(&["COMPACT", "nope"]), Reply::err("Namespace not found"));
    s.restart();
    let mut c = s.client();
    for (k, v) in &live {
        assert_eq!(c.get(k), Reply::bulk(v));
    }
    let report = c.c(&["NSCHECK"]).text();
    assert!(report.contains("problems: 0"), "{report}");
}

#[test]
fn compact_is_admin_only() {
    let s = Server::start(&["--mode", "user", "--admin", "pw"]);
    let mut c = s.client();
    assert_eq!(c.c(&["COMPACT"]), Reply::err("Permission denied"));
}

#[test]
fn background_compaction_past_threshold() {
    let s = Server::start(&[
        "--mode",
        "user",
        "--datasize",
        "512k",
        "--compact-dead-bytes",
        "500000",
    ]);
    let mut c = s.client();
    let live = churn(&mut c);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let dead: u64 = info_get(&c.nsinfo("default"), "dead_bytes")
            .unwrap()
            .parse()
            .unwrap();
        if dead < 500_000 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "background compaction did not run (dead_bytes {dead})"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    for (k, v) in &live {
        assert_eq!(c.get(k), Reply::bulk(v));
    }
}

/// The garbage of a namespace that fits in one file pair sits in the active pair, which
/// compaction used to leave alone: 30k 1 KiB values written three times (92 MiB, two thirds
/// dead) stayed 92 MiB after COMPACT. COMPACT now closes the active pair first.
#[test]
fn compact_reclaims_the_active_pair() {
    let mut s = Server::start(&["--mode", "user", "--compact-dead-bytes", "0"]);
    let mut c = s.client();
    const KEYS: u32 = 30_000;
    let value = |round: u32, i: u32| {
        let mut v = vec![(round * 7 + i) as u8; 1024];
        v[..4].copy_from_slice(&i.to_le_bytes());
        v
    };
    for round in 0..3 {
        for batch in (0..KEYS).step_by(1000) {
            let mut req = Vec::new();
            for i in batch..batch + 1000 {
                req.extend_from_slice(&encode(&[
                    b"SET",
                    format!("key-{i}").as_bytes(),
                    &value(round, i),
                ]));
            }
            c.send_raw(&req).unwrap();
            for _ in 0..1000 {
                assert!(!c.read_reply().unwrap().is_error());
            }
        }
    }
    let (data, index) = (s.data.join("default"), s.index.join("default"));
    let disk = || dir_bytes(&data) + dir_bytes(&index);
    assert_eq!(
        last_file(&data, "d"),
        Some(0),
        "the workload must fit one pair"
    );
    let before = disk();
    let reply = c.c(&["COMPACT"]).text();
    assert!(reply.starts_with("Compacted: files=1 "), "{reply}");
    let after = disk();
    assert!(after * 2 <= before, "before {before} bytes, after {after}");
    let dead: u64 = info_get(&c.nsinfo("default"), "dead_bytes")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(dead, 0);
    // Every key answers its last value, also after a restart (SIGKILL).
    let check = |c: &mut Client| {
        for i in (0..KEYS).step_by(97) {
            assert_eq!(
                c.get(format!("key-{i}").as_bytes()),
                Reply::bulk(value(2, i))
            );
        }
        assert_eq!(c.dbsize(), i64::from(KEYS));
    };
    check(&mut c);
    s.restart();
    let mut c = s.client();
    check(&mut c);
    let report = c.c(&["NSCHECK"]).text();
    assert!(report.contains("problems: 0"), "{report}");
}
