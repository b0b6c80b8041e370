//! Behaviours where the C 0-db's own test suite and clients showed that we differed without
//! having chosen to: extra SCAN arguments, NSINFO's index size, the error of a sequential SET
//! once `maxsize` is reached.
#![expect(clippy::unwrap_used, reason = "tests")]

mod common;
use common::*;

#[test]
fn scan_ignores_arguments_after_a_valid_cursor() {
    let s = Server::start(&["--mode", "user"]);
    let mut c = s.client();
    for i in 0..5 {
        c.set(format!("k{i}").as_bytes(), b"v");
    }
    let cursor = c.c(&["KEYCUR", "k2"]).bytes();
    for cmd in ["SCAN", "SCANX", "RSCAN"] {
        let plain = c.cmd(&[cmd.as_bytes(), &cursor]);
        assert!(!plain.is_error(), "{cmd}: {plain:?}");
        let extra = c.cmd(&[cmd.as_bytes(), &cursor, b"COUNT", b"10"]);
        assert_eq!(extra, plain, "{cmd} with extra arguments");
    }
    // A cursor that is not one still fails as before, extra arguments or not.
    assert_eq!(
        c.c(&["SCAN", "nope", "extra"]),
        Reply::err("Invalid key format")
    );
}

/// 0-db counts `sizeof(index_entry_t)` (64 bytes on x86_64) plus the key per live key in user
/// mode, and nothing in sequential mode (no key is held in memory); tools read the figure.
#[test]
fn nsinfo_index_size_is_0db_figure() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let index_size = |c: &mut Client, ns: &str| -> u64 {
        info_get(&c.nsinfo(ns), "index_size_bytes")
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(index_size(&mut c, "default"), 0);
    c.set(b"a", b"1");
    c.set(b"bbbb", b"2");
    c.set(&[b'k'; 255], b"3");
    assert_eq!(index_size(&mut c, "default"), 3 * 64 + 1 + 4 + 255);
    // An overwrite keeps the figure; a delete takes the key out.
    c.set(b"a", b"other");
    c.del(b"bbbb");
    assert_eq!(index_size(&mut c, "default"), 2 * 64 + 1 + 255);
    let kb = info_get(&c.nsinfo("default"), "index_size_kb").unwrap();
    assert_eq!(kb, format!("{:.2}", (2 * 64 + 1 + 255) as f64 / 1024.0));
    // Sequential: nothing per key.
    c.c(&["NSNEW", "sq"]);
    c.c(&["NSSET", "sq", "mode", "seq"]);
    c.select("sq");
    c.set(b"", b"value");
    c.set(b"", b"value2");
    assert_eq!(index_size(&mut c, "sq"), 0);
}

/// 0-db checks the namespace's size limit before it looks at the key, so a full sequential
/// namespace answers "No space left" whatever the key (zstor and 0-db-fs map it to ENOSPC).
#[test]
fn full_sequential_namespace_says_no_space_for_any_key() {
    let s = Server::start(&[]);
    let mut c = s.client();
    c.c(&["NSNEW", "sq"]);
    c.c(&["NSSET", "sq", "mode", "seq"]);
    assert_eq!(c.c(&["NSSET", "sq", "maxsize", "16"]), Reply::ok());
    c.select("sq");
    // Below the limit an unknown id is refused for what it is.
    assert_eq!(
        c.set(b"key4", b"X"),
        Reply::err("Invalid key, only update authorized")
    );
    assert_eq!(c.set(b"", b"0123456789"), Reply::bulk(seq_id(0)));
    assert_eq!(c.set(b"", b"abcdef"), Reply::bulk(seq_id(1)));
    let no_space = Reply::err("No space left on this namespace");
    assert_eq!(c.set(b"", b"X"), no_space);
    assert_eq!(c.set(b"key4", b"X"), no_space);
    assert_eq!(c.set(&seq_id(99), b"X"), no_space);
    // Replacing a value by one no longer is still allowed.
    assert_eq!(c.set(&seq_id(1), b"ABCDEF"), Reply::bulk(seq_id(1)));
}
