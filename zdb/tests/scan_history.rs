//! SCAN / SCANX / RSCAN / KEYCUR / KSCAN / HISTORY (reference §4 Data).
#![expect(clippy::unwrap_used, reason = "tests")]

mod common;
use common::*;

/// Follows SCAN-like cursors to the end; returns (key, size, ts) in order.
fn scan_all(c: &mut Client, cmd: &str, start: Option<Vec<u8>>) -> Vec<(Vec<u8>, i64, i64)> {
    let mut out = Vec::new();
    let mut cursor = start;
    for _ in 0..100_000 {
        let r = match &cursor {
            None => c.c(&[cmd]),
            Some(cur) => c.cmd(&[cmd.as_bytes(), cur]),
        };
        match r {
            Reply::Error(e) if e == "No more data" => return out,
            Reply::Array(Some(v)) => {
                assert_eq!(v.len(), 2, "{cmd} reply shape: {v:?}");
                let next = v[0].bytes();
                assert_eq!(next.len(), 17, "{cmd} cursor must be 17 bytes");
                let items = v[1].array();
                assert!(!items.is_empty(), "{cmd} returned an empty page");
                for it in items {
                    let it = it.array();
                    assert_eq!(it.len(), 3, "{cmd} item shape {it:?}");
                    out.push((it[0].bytes(), it[1].int(), it[2].int()));
                }
                cursor = Some(next);
            }
            other => panic!("{cmd}: unexpected reply {other:?}"),
        }
    }
    panic!("{cmd} never ended");
}

fn keys(v: &[(Vec<u8>, i64, i64)]) -> Vec<String> {
    v.iter()
        .map(|(k, _, _)| String::from_utf8_lossy(k).into_owned())
        .collect()
}

#[test]
fn scan_order_and_cursors() {
    let s = Server::start(&["--mode", "user"]);
    let mut c = s.client();
    assert_eq!(c.c(&["SCAN"]), Reply::err("No more data"));
    assert_eq!(c.c(&["RSCAN"]), Reply::err("No more data"));
    for i in 0..50 {
        let k = format!("key{i:02}");
        c.set(k.as_bytes(), &vec![b'x'; i + 1]);
    }
    // overwrite key05 (moves to the end), delete key07
    c.set(b"key05", b"new");
    c.del(b"key07");
    let mut expected: Vec<String> = (0..50)
        .filter(|i| *i != 5 && *i != 7)
        .map(|i| format!("key{i:02}"))
        .collect();
    expected.push("key05".into());

    let all = scan_all(&mut c, "SCAN", None);
    assert_eq!(keys(&all), expected);
    for (k, size, ts) in &all {
        let want = if k == b"key05" {
            3
        } else {
            String::from_utf8_lossy(&k[3..]).parse::<i64>().unwrap() + 1
        };
        assert_eq!(*size, want, "size of {:?}", String::from_utf8_lossy(k));
        assert!(*ts > 1_600_000_000);
    }
    assert_eq!(keys(&scan_all(&mut c, "SCANX", None)), expected);

    let mut rev = expected.clone();
    rev.reverse();
    assert_eq!(keys(&scan_all(&mut c, "RSCAN", None)), rev);

    // KEYCUR: SCAN from a key's cursor starts after it; RSCAN before it
    let cur = c.c(&["KEYCUR", "key10"]).bytes();
    assert_eq!(cur.len(), 17);
    let after = scan_all(&mut c, "SCAN", Some(cur.clone()));
    let pos = expected.iter().position(|k| k == "key10").unwrap();
    assert_eq!(keys(&after), expected[pos + 1..].to_vec());
    let before = scan_all(&mut c, "RSCAN", Some(cur));
    let mut want: Vec<String> = expected[..pos].to_vec();
    want.reverse();
    assert_eq!(keys(&before), want);

    // the cursor of the last key: nothing after it
    let last = c.c(&["KEYCUR", "key05"]).bytes();
    assert_eq!(
        c.cmd(&[b"SCAN", &last]),
        Reply::err("No more data"),
        "SCAN after the last key"
    );
    assert_eq!(c.c(&["KEYCUR", "key07"]), Reply::err("Key not found"));
    assert_eq!(c.c(&["KEYCUR", "nope"]), Reply::err("Key not found"));
    assert_eq!(
        c.c(&["SCAN", "short-cursor"]),
        Reply::err("Invalid key format")
    );
    assert!(c.cmd(&[b"SCAN", &[0xAAu8; 17]]).is_error());
    assert_eq!(c.c(&["PING"]), Reply::simple("PONG"));
}

#[test]
fn scan_across_index_files() {
    let s = Server::start(&["--mode", "user"]);
    let mut c = s.client();
    let mut expected = Vec::new();
    for round in 0..3 {
        for i in 0..10 {
            let k = format!("r{round}-{i}");
            c.set(k.as_bytes(), b"v");
            expected.push(k);
        }
        assert_eq!(c.c(&["NSJUMP"]), Reply::ok());
    }
    assert_eq!(keys(&scan_all(&mut c, "SCAN", None)), expected);
    expected.reverse();
    assert_eq!(keys(&scan_all(&mut c, "RSCAN", None)), expected);
}

#[test]
fn kscan_prefix() {
    let s = Server::start(&["--mode", "user"]);
    let mut c = s.client();
    for k in ["apple", "apricot", "banana", "app"] {
        c.set(k.as_bytes(), b"v");
    }
    c.del(b"apricot");
    let r = c.c(&["KSCAN", "ap"]).array();
    assert_eq!(r.len(), 2, "{r:?}");
    assert_eq!(r[0], Reply::bulk("0"));
    let mut got: Vec<String> = r[1].array().iter().map(|k| k.text()).collect();
    got.sort();
    assert_eq!(got, vec!["app", "apple"]);
    assert_eq!(c.c(&["KSCAN", "zzz"]), Reply::err("No keys match"));
}

#[test]
fn history_chain() {
    let s = Server::start(&["--mode", "user"]);
    let mut c = s.client();
    c.set(b"h", b"v1");
    c.set(b"other", b"x");
    c.set(b"h", b"v2");
    c.set(b"h", b"v3");

    let cur = c.c(&["HISTORY", "h"]).array();
    assert_eq!(cur.len(), 3, "{cur:?}");
    assert_eq!(cur[2], Reply::bulk("v3"));
    let ts: i64 = cur[1]
        .text()
        .parse()
        .expect("HISTORY timestamp is a bulk string number");
    assert!(ts > 1_600_000_000);
    let e1 = cur[0].bytes();
    assert_eq!(e1.len(), 8);

    let prev = c.cmd(&[b"HISTORY", b"h", &e1]).array();
    assert_eq!(prev[2], Reply::bulk("v2"));
    let e2 = prev[0].bytes();
    assert_eq!(e2.len(), 8);

    let first = c.cmd(&[b"HISTORY", b"h", &e2]).array();
    assert_eq!(first[2], Reply::bulk("v1"));
    assert_eq!(first[0], Reply::nil(), "oldest version has no parent");

    assert_eq!(
        c.cmd(&[b"HISTORY", b"h", &[0u8; 8]]),
        Reply::err("No more history")
    );
    assert_eq!(c.c(&["HISTORY", "missing"]), Reply::err("Key not found"));
    assert_eq!(
        c.cmd(&[b"HISTORY", b"h", &[0u8; 7]]),
        Reply::err("Invalid arguments")
    );
    assert_eq!(c.c(&["HISTORY"]), Reply::err("Invalid arguments"));
    // the ekey of "h" used for another key
    assert!(c.cmd(&[b"HISTORY", b"other", &e1]).is_error());
    // single version: parent nil
    let o = c.c(&["HISTORY", "other"]).array();
    assert_eq!(o[0], Reply::nil());
    assert_eq!(o[2], Reply::bulk("x"));
}

#[test]
fn scan_rscan_history_in_seq_mode() {
    let s = Server::start(&["--mode", "seq"]);
    let mut c = s.client();
    for i in 0..5u64 {
        assert_eq!(
            c.set(b"", format!("v{i}").as_bytes()),
            Reply::bulk(seq_id(i))
        );
    }
    let fwd: Vec<Vec<u8>> = scan_all(&mut c, "SCAN", None)
        .into_iter()
        .map(|x| x.0)
        .collect();
    assert_eq!(fwd, (0..5).map(seq_id).collect::<Vec<_>>());
    let rev: Vec<Vec<u8>> = scan_all(&mut c, "RSCAN", None)
        .into_iter()
        .map(|x| x.0)
        .collect();
    assert_eq!(rev, (0..5).rev().map(seq_id).collect::<Vec<_>>());

    assert_eq!(c.set(&seq_id(2), b"v2-new"), Reply::bulk(seq_id(2)));
    let h = c.cmd(&[b"HISTORY", &seq_id(2)]).array();
    assert_eq!(h[2], Reply::bulk("v2-new"));
    let old = c.cmd(&[b"HISTORY", &seq_id(2), &h[0].bytes()]).array();
    assert_eq!(old[2], Reply::bulk("v2"));

    assert_eq!(
        c.c(&["KSCAN", "a"]),
        Reply::err("Index running mode doesn't support this feature")
    );
}

#[test]
fn scan_many_pages() {
    let s = Server::start(&["--mode", "user"]);
    let mut c = s.client();
    let mut buf = Vec::new();
    let n = 5000;
    for i in 0..n {
        buf.extend(encode(&[b"SET", format!("m{i:05}").as_bytes(), b"v"]));
    }
    c.send_raw(&buf).unwrap();
    for _ in 0..n {
        c.read_reply().unwrap();
    }
    let expected: Vec<String> = (0..n).map(|i| format!("m{i:05}")).collect();
    let fwd = scan_all(&mut c, "SCAN", None);
    assert_eq!(keys(&fwd), expected);
    let mut rev = expected.clone();
    rev.reverse();
    assert_eq!(keys(&scan_all(&mut c, "RSCAN", None)), rev);
}
