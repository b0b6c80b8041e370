//! Sequential mode and mixed mode (reference §5, NSSET mode).
#![expect(clippy::unwrap_used, reason = "tests")]

mod common;
use common::*;
use std::time::Duration;

const ONLY_UPDATE: &str = "Invalid key, only update authorized";

#[test]
fn seq_ids_and_update_consumes_id() {
    let s = Server::start(&["--mode", "seq"]);
    let mut c = s.client();
    assert_eq!(c.set(b"", b"a"), Reply::bulk(seq_id(0)));
    assert_eq!(c.set(b"", b"b"), Reply::bulk(seq_id(1)));
    assert_eq!(c.set(&seq_id(0), b"a2"), Reply::bulk(seq_id(0)));
    assert_eq!(c.set(b"", b"c"), Reply::bulk(seq_id(3)));
    assert_eq!(c.get(&seq_id(0)), Reply::bulk("a2"));
    assert_eq!(c.get(&seq_id(1)), Reply::bulk("b"));
    assert_eq!(c.get(&seq_id(3)), Reply::bulk("c"));
    // id 2 is the history copy: not readable, not settable
    assert_eq!(c.get(&seq_id(2)), Reply::nil());
    assert_eq!(c.set(&seq_id(2), b"x"), Reply::err(ONLY_UPDATE));
    // beyond the end
    assert_eq!(c.get(&seq_id(99)), Reply::nil());
    assert_eq!(c.set(&seq_id(99), b"x"), Reply::err(ONLY_UPDATE));
    assert_eq!(c.set(b"1234", b"x"), Reply::err(ONLY_UPDATE));
    assert_eq!(c.dbsize(), 3);
    // keys in MGET / EXISTS / LENGTH
    assert_eq!(c.cmd(&[b"EXISTS", &seq_id(1)]), Reply::Int(1));
    assert_eq!(c.cmd(&[b"LENGTH", &seq_id(0)]), Reply::Int(2));
    assert_eq!(c.cmd(&[b"CHECK", &seq_id(0)]), Reply::Int(1));
    assert!(c.cmd(&[b"KEYTIME", &seq_id(0)]).int() > 1_600_000_000);
    assert_eq!(c.cmd(&[b"KEYTIME", &seq_id(2)]), Reply::nil());
    assert_eq!(c.cmd(&[b"KEYCUR", &seq_id(1)]).bytes().len(), 17);
    assert_eq!(c.cmd(&[b"KEYCUR", &seq_id(2)]), Reply::err("Key not found"));
    assert_eq!(
        c.cmd(&[b"MGET", &seq_id(0), &seq_id(2), &seq_id(3)]),
        Reply::Array(Some(vec![
            Reply::bulk("a2"),
            Reply::nil(),
            Reply::bulk("c")
        ]))
    );
}

#[test]
fn seq_deleted_ids_cannot_be_set() {
    let s = Server::start(&["--mode", "seq"]);
    let mut c = s.client();
    assert_eq!(c.set(b"", b"a"), Reply::bulk(seq_id(0)));
    assert_eq!(c.set(&seq_id(0), b"b"), Reply::bulk(seq_id(0)));
    assert_eq!(c.del(&seq_id(0)), Reply::ok());
    assert_eq!(c.get(&seq_id(0)), Reply::nil());
    assert_eq!(c.set(&seq_id(0), b"c"), Reply::err(ONLY_UPDATE));
    assert_eq!(c.del(&seq_id(0)), Reply::err("Key not found"));
    // after set/overwrite/del of id 0 the next new id is 2
    assert_eq!(c.set(b"", b"d"), Reply::bulk(seq_id(2)));
    assert_eq!(c.dbsize(), 1);
}

#[test]
fn seq_ids_across_rotation_and_restart() {
    let mut s = Server::start(&["--mode", "seq", "--datasize", "512k"]);
    let mut c = s.client();
    let mut vals = Vec::new();
    for i in 0..60u64 {
        let v = pseudo_bytes(i, 20_000);
        assert_eq!(c.set(b"", &v), Reply::bulk(seq_id(i)));
        vals.push(v);
    }
    assert!(
        s.data.join("default").join("d2").exists(),
        "1.2 MB with --datasize 512k must rotate"
    );
    // update an id living in the first file: consumes id 60
    assert_eq!(c.set(&seq_id(1), b"updated"), Reply::bulk(seq_id(1)));
    vals[1] = b"updated".to_vec();
    assert_eq!(c.set(b"", b"tail"), Reply::bulk(seq_id(61)));
    s.restart();
    let mut c = s.client();
    for (i, v) in vals.iter().enumerate() {
        assert_eq!(c.get(&seq_id(i as u64)), Reply::bulk(v), "id {i}");
    }
    assert_eq!(c.get(&seq_id(61)), Reply::bulk("tail"));
    assert_eq!(c.get(&seq_id(60)), Reply::nil());
    assert_eq!(c.set(b"", b"next"), Reply::bulk(seq_id(62)));
    assert_eq!(c.dbsize(), 62);
}

#[test]
fn direct_mode_is_seq() {
    let s = Server::start(&["--mode", "direct"]);
    let mut c = s.client();
    assert_eq!(c.set(b"", b"a"), Reply::bulk(seq_id(0)));
}

#[test]
fn invalid_mode_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = Server::new_at(tmp.path(), &["--mode", "bogus"], &[]);
    let st = s
        .launch_expect_exit(Duration::from_secs(5))
        .expect("zdb must refuse --mode bogus");
    assert!(!st.success());
}

#[test]
fn mixed_mode_nsset_mode() {
    let mut s = Server::start(&[]);
    let mut c = s.client();
    // default is user mode in mixed mode
    assert_eq!(c.set(b"userkey", b"v"), Reply::bulk("userkey"));
    c.c(&["NSNEW", "sq"]);
    c.c(&["NSNEW", "us"]);
    assert_eq!(
        c.c(&["NSSET", "sq", "mode", "bogus"]),
        Reply::err("Invalid property value (expected: user, seq)")
    );
    assert_eq!(c.c(&["NSSET", "sq", "mode", "seq"]), Reply::ok());
    assert_eq!(info_get(&c.nsinfo("sq"), "mode").unwrap(), "sequential");
    assert_eq!(info_get(&c.nsinfo("us"), "mode").unwrap(), "userkey");
    // can switch back and forth while fresh
    assert_eq!(c.c(&["NSSET", "us", "mode", "seq"]), Reply::ok());
    assert_eq!(c.c(&["NSSET", "us", "mode", "user"]), Reply::ok());

    c.select("sq");
    assert_eq!(c.set(b"", b"s0"), Reply::bulk(seq_id(0)));
    assert_eq!(c.set(b"", b"s1"), Reply::bulk(seq_id(1)));
    assert_eq!(
        c.c(&["NSSET", "sq", "mode", "user"]),
        Reply::err("Cannot change mode of used namespace")
    );
    // default was used: cannot change either
    assert_eq!(
        c.c(&["NSSET", "default", "mode", "seq"]),
        Reply::err("Cannot change mode of used namespace")
    );
    c.select("us");
    assert_eq!(c.set(b"named", b"u"), Reply::bulk("named"));

    // the mode is stored in i0 and survives a restart
    let raw = std::fs::read(s.index.join("sq").join("i0")).unwrap();
    assert_eq!(&raw[0..4], b"IDX0");
    assert_eq!(raw[28], 1, "i0 header mode byte of a seq namespace");
    let raw = std::fs::read(s.index.join("us").join("i0")).unwrap();
    assert_eq!(raw[28], 0);

    s.restart();
    let mut c = s.client();
    assert_eq!(c.get(b"userkey"), Reply::bulk("v"));
    c.select("sq");
    assert_eq!(info_get(&c.nsinfo("sq"), "mode").unwrap(), "sequential");
    assert_eq!(c.get(&seq_id(1)), Reply::bulk("s1"));
    assert_eq!(c.set(b"", b"s2"), Reply::bulk(seq_id(2)));
    c.select("us");
    assert_eq!(c.get(b"named"), Reply::bulk("u"));
}

#[test]
fn mixed_mode_default_namespace_can_switch_when_fresh() {
    let s = Server::start(&[]);
    let mut c = s.client();
    assert_eq!(c.c(&["NSSET", "default", "mode", "seq"]), Reply::ok());
    assert_eq!(c.set(b"", b"x"), Reply::bulk(seq_id(0)));
}

#[test]
fn fixed_mode_refuses_other_mode_index() {
    let mut s = Server::start(&[]);
    let mut c = s.client();
    c.c(&["NSNEW", "sq"]);
    c.c(&["NSSET", "sq", "mode", "seq"]);
    c.select("sq");
    c.set(b"", b"v");
    s.kill();
    // restart in --mode user: "index created in another mode than running mode"
    let mut s2 = Server::new_at(&s.root, &["--mode", "user"], &[]);
    let st = s2.launch_expect_exit(Duration::from_secs(5));
    match st {
        Some(st) => assert!(!st.success(), "must exit with an error"),
        None => panic!("zdb --mode user started on a seq namespace index"),
    }
}
