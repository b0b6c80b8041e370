//! NSNEW / NSDEL / NSLIST / NSINFO / NSSET / SELECT / DBSIZE / NSJUMP / RELOAD /
//! FLUSH (reference §4 Namespaces, §6, §10).
#![allow(clippy::unwrap_used)]

mod common;
use common::*;
use std::time::Duration;

const ADMIN: &str = "adm1n";

fn admin(s: &Server) -> Client {
    let mut c = s.client();
    assert_eq!(c.c(&["AUTH", ADMIN]), Reply::ok());
    c
}

#[test]
fn nsnew_validation() {
    let s = Server::start(&["--mode", "user"]);
    let mut c = s.client();
    assert_eq!(c.c(&["NSNEW", "alpha"]), Reply::ok());
    assert!(s.index.join("alpha").join("zdb-namespace").is_file());
    assert!(s.data.join("alpha").is_dir());
    assert_eq!(
        c.c(&["NSNEW", "alpha"]),
        Reply::err("This namespace is not available")
    );
    for bad in [".", "..", "a/b", "default"] {
        assert_eq!(
            c.c(&["NSNEW", bad]),
            Reply::err("This name is not allowed"),
            "{bad}"
        );
    }
    let long = "n".repeat(129);
    assert_eq!(c.c(&["NSNEW", &long]), Reply::err("Namespace too long"));
    let ok128 = "n".repeat(128);
    assert_eq!(c.c(&["NSNEW", &ok128]), Reply::ok());

    // descriptor layout §8.1: version 1, namelen, passlen 0, maxsize 0, flags PUBLIC|EXTENDED
    let raw = std::fs::read(s.index.join("alpha").join("zdb-namespace")).unwrap();
    let mut want = vec![1, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5];
    want.extend_from_slice(b"alpha");
    assert_eq!(raw, want, "zdb-namespace of a new namespace");

    let list: Vec<String> = c.c(&["NSLIST"]).array().iter().map(|r| r.text()).collect();
    assert!(list.contains(&"default".to_string()));
    assert!(list.contains(&"alpha".to_string()));
    assert!(list.contains(&ok128));
    assert_eq!(list.len(), 3, "{list:?}");
    assert_eq!(c.c(&["NSLIST", "ignored"]).array().len(), 3);
}

#[test]
fn select_and_dbsize_isolation() {
    let s = Server::start(&["--mode", "user"]);
    let mut c = s.client();
    c.c(&["NSNEW", "one"]);
    c.set(b"k", b"default-value");
    c.select("one");
    assert_eq!(c.dbsize(), 0);
    assert_eq!(c.get(b"k"), Reply::nil());
    c.set(b"k", b"one-value");
    c.set(b"k2", b"x");
    assert_eq!(c.dbsize(), 2);
    c.select("default");
    assert_eq!(c.dbsize(), 1);
    assert_eq!(c.get(b"k"), Reply::bulk("default-value"));
    assert_eq!(
        c.c(&["SELECT", "nothere"]),
        Reply::err("Namespace not found")
    );
    assert_eq!(
        c.c(&["SELECT", &"x".repeat(129)]),
        Reply::err("Namespace too long")
    );
    assert_eq!(c.c(&["SELECT"]), Reply::err("Invalid argument"));
    assert_eq!(c.c(&["SELECT", ""]), Reply::err("Namespace not found"));
    // failed SELECT keeps the current namespace
    assert_eq!(c.get(b"k"), Reply::bulk("default-value"));
}

#[test]
fn nsinfo_fields() {
    let s = Server::start(&["--mode", "user", "--admin", ADMIN]);
    let mut a = admin(&s);
    a.c(&["NSNEW", "info"]);
    a.select("info");
    a.set(b"k1", b"12345");
    a.set(b"k22", b"1234567890");

    let common_fields = [
        "name",
        "entries",
        "public",
        "worm",
        "locked",
        "password",
        "data_size_bytes",
        "data_size_mb",
        "data_limits_bytes",
        "index_size_bytes",
        "index_size_kb",
        "next_internal_id",
        "mode",
        "stats_index_io_errors",
        "stats_index_io_error_last",
        "stats_index_faults",
        "stats_data_io_errors",
        "stats_data_io_error_last",
        "stats_data_faults",
        "index_disk_freespace_bytes",
        "index_disk_freespace_mb",
        "data_disk_freespace_bytes",
        "data_disk_freespace_mb",
    ];
    let admin_fields = [
        "data_path",
        "data_active",
        "index_path",
        "index_active",
        "data_current_id",
        "data_current_offset",
    ];
    let raw = a.c(&["NSINFO", "info"]);
    let text = match &raw {
        Reply::Bulk(Some(b)) => String::from_utf8(b.clone()).unwrap(),
        other => panic!("NSINFO must be a bulk string: {other:?}"),
    };
    assert!(text.starts_with("# namespace\n"), "{text}");
    let info = parse_info(&text);
    for f in common_fields.iter().chain(admin_fields.iter()) {
        assert!(
            info_get(&info, f).is_some(),
            "admin NSINFO lacks {f}:\n{text}"
        );
    }
    let g = |k: &str| info_get(&info, k).unwrap();
    assert_eq!(g("name"), "info");
    assert_eq!(g("entries"), "2");
    assert_eq!(g("public"), "yes");
    assert_eq!(g("worm"), "no");
    assert_eq!(g("locked"), "no");
    assert_eq!(g("password"), "no");
    assert_eq!(g("data_size_bytes"), "15");
    assert_eq!(g("data_size_mb"), "0.00");
    assert_eq!(g("data_limits_bytes"), "0");
    assert_eq!(g("mode"), "userkey");
    assert_eq!(g("data_current_id"), "0");
    assert!(info_get(&info, "space_available").is_none());
    assert!(info_get(&info, "password_raw").is_none());
    assert!(g("data_path").ends_with("info"), "{}", g("data_path"));
    assert!(g("index_path").ends_with("info"), "{}", g("index_path"));
    // two entries: 28 + (18+2+5) + (18+3+10)
    assert_eq!(g("data_current_offset"), "84");
    g("index_disk_freespace_bytes").parse::<u64>().unwrap();
    g("index_size_bytes").parse::<u64>().unwrap();

    // non-admin: same public fields, no paths
    let mut u = s.client();
    let info_u = u.nsinfo("info");
    for f in common_fields {
        assert!(info_get(&info_u, f).is_some(), "NSINFO lacks {f}");
    }
    for f in admin_fields {
        assert!(info_get(&info_u, f).is_none(), "non-admin NSINFO shows {f}");
    }
    assert_eq!(u.c(&["NSINFO", "nope"]), Reply::err("Namespace not found"));
    let d = u.nsinfo("default");
    assert_eq!(info_get(&d, "name").unwrap(), "default");
    assert_eq!(info_get(&d, "entries").unwrap(), "0");
}

#[test]
fn nsinfo_next_internal_id_seq() {
    let s = Server::start(&["--mode", "seq"]);
    let mut c = s.client();
    let i = c.nsinfo("default");
    assert_eq!(info_get(&i, "next_internal_id").unwrap(), "0x00000000");
    assert_eq!(info_get(&i, "mode").unwrap(), "sequential");
    for _ in 0..4 {
        c.set(b"", b"v");
    }
    let i = c.nsinfo("default");
    assert_eq!(
        info_get(&i, "next_internal_id").unwrap(),
        "0x400000000000000"
    );
}

#[test]
fn nsdel_behaviour() {
    let s = Server::start(&["--mode", "user"]);
    let mut c = s.client();
    c.c(&["NSNEW", "gone"]);
    c.c(&["NSNEW", "mine"]);
    let mut attached = s.client();
    attached.select("gone");
    attached.set(b"k", b"v");

    assert_eq!(
        c.c(&["NSDEL", "default"]),
        Reply::err("Cannot remove default namespace")
    );
    assert_eq!(
        c.c(&["NSDEL", "nothere"]),
        Reply::err("This namespace doesn't exists")
    );
    c.select("mine");
    assert_eq!(
        c.c(&["NSDEL", "mine"]),
        Reply::err("Cannot remove namespace you're currently using.")
    );
    assert_eq!(c.c(&["NSDEL", "gone"]), Reply::ok());
    assert!(!s.index.join("gone").exists(), "index dir must be removed");
    assert!(!s.data.join("gone").exists(), "data dir must be removed");
    let list = c.c(&["NSLIST"]).array();
    assert!(!list.contains(&Reply::bulk("gone")));
    assert_eq!(c.c(&["NSINFO", "gone"]), Reply::err("Namespace not found"));

    assert_eq!(
        attached.get(b"k"),
        Reply::err("Your active namespace is not available anymore (probably removed).")
    );
    assert!(
        attached.is_closed(Duration::from_secs(5)),
        "client of a deleted namespace must be disconnected"
    );
    // the name can be reused, empty
    assert_eq!(c.c(&["NSNEW", "gone"]), Reply::ok());
    c.select("gone");
    assert_eq!(c.dbsize(), 0);
    assert_eq!(c.get(b"k"), Reply::nil());
}

#[test]
fn nsset_errors() {
    let s = Server::start(&["--mode", "user"]);
    let mut c = s.client();
    c.c(&["NSNEW", "p"]);
    assert_eq!(
        c.c(&["NSSET", "nope", "worm", "1"]),
        Reply::err("Namespace not found")
    );
    assert_eq!(
        c.c(&["NSSET", "p", "bogus", "1"]),
        Reply::err("Invalid property")
    );
    assert_eq!(
        c.c(&["NSSET", "p", "WORM", "1"]),
        Reply::err("Invalid property"),
        "property names are case-sensitive"
    );
    assert_eq!(
        c.c(&["NSSET", "p", "password", &"x".repeat(64)]),
        Reply::err("Argument too long")
    );
    for prop in ["maxsize", "password", "public", "worm"] {
        assert_eq!(
            c.c(&["NSSET", "default", prop, "1"]),
            Reply::err("Cannot update default namespace"),
            "{prop}"
        );
    }
    assert_eq!(
        c.c(&["NSSET", "p", "mode", "seq"]),
        Reply::err("This server instance is configured to use a single runtime mode")
    );
}

#[test]
fn nsset_maxsize_accounting() {
    let s = Server::start(&["--mode", "user"]);
    let mut c = s.client();
    c.c(&["NSNEW", "lim"]);
    assert_eq!(c.c(&["NSSET", "lim", "maxsize", "100"]), Reply::ok());
    c.select("lim");
    let info = c.nsinfo("lim");
    assert_eq!(info_get(&info, "data_limits_bytes").unwrap(), "100");
    assert_eq!(info_get(&info, "space_available").unwrap(), "100");

    assert_eq!(c.set(b"a", &[1u8; 60]), Reply::bulk("a"));
    assert_eq!(
        c.set(b"b", &[2u8; 50]),
        Reply::err("No space left on this namespace")
    );
    assert_eq!(c.get(b"b"), Reply::nil());
    // overwrite counts the old value: 60 + 90 <= 100 + 60
    assert_eq!(c.set(b"a", &[3u8; 90]), Reply::bulk("a"));
    let info = c.nsinfo("lim");
    assert_eq!(info_get(&info, "data_size_bytes").unwrap(), "90");
    assert_eq!(info_get(&info, "space_available").unwrap(), "10");
    assert_eq!(c.set(b"c", &[4u8; 10]), Reply::bulk("c"));
    assert_eq!(
        c.set(b"d", &[5u8; 1]),
        Reply::err("No space left on this namespace")
    );
    // delete frees space
    assert_eq!(c.del(b"a"), Reply::ok());
    assert_eq!(c.set(b"b", &[2u8; 50]), Reply::bulk("b"));
    // 0 = unlimited
    assert_eq!(c.c(&["NSSET", "lim", "maxsize", "0"]), Reply::ok());
    assert_eq!(c.set(b"big", &[6u8; 5000]), Reply::bulk("big"));
    let info = c.nsinfo("lim");
    assert!(info_get(&info, "space_available").is_none());
}

#[test]
fn default_maxsize_flag() {
    let s = Server::start(&["--mode", "user", "--maxsize", "1000"]);
    let mut c = s.client();
    assert_eq!(c.set(b"a", &[0u8; 900]), Reply::bulk("a"));
    assert_eq!(
        c.set(b"b", &[0u8; 200]),
        Reply::err("No space left on this namespace")
    );
    assert_eq!(
        info_get(&c.nsinfo("default"), "data_limits_bytes").unwrap(),
        "1000"
    );
}

#[test]
fn nsset_password_public_private() {
    let s = Server::start(&["--mode", "user", "--admin", ADMIN]);
    let mut a = admin(&s);
    a.c(&["NSNEW", "sec"]);
    a.select("sec");
    a.set(b"k", b"v");
    assert_eq!(a.c(&["NSSET", "sec", "password", "pw1"]), Reply::ok());
    // public (default): read-only without password
    let mut u = s.client();
    assert_eq!(u.c(&["SELECT", "sec"]), Reply::ok());
    assert_eq!(u.get(b"k"), Reply::bulk("v"));
    assert_eq!(
        u.set(b"k2", b"v"),
        Reply::err("Namespace is in read-only mode")
    );
    assert_eq!(u.del(b"k"), Reply::err("Namespace is in read-only mode"));
    // private
    assert_eq!(a.c(&["NSSET", "sec", "public", "0"]), Reply::ok());
    let mut u2 = s.client();
    assert_eq!(
        u2.c(&["SELECT", "sec"]),
        Reply::err("Namespace protected and private")
    );
    assert_eq!(u2.c(&["SELECT", "sec", "bad"]), Reply::err("Access denied"));
    assert_eq!(
        u2.cmd(&[b"SELECT", b"sec", &[b'x'; 256]]),
        Reply::err("Password too long")
    );
    assert_eq!(
        u2.c(&["SELECT", "sec", "a", "b", "c"]),
        Reply::err("Too many arguments")
    );
    assert_eq!(u2.c(&["SELECT", "sec", "pw1"]), Reply::ok());
    assert_eq!(u2.set(b"k2", b"v2"), Reply::bulk("k2"));
    let info = u2.nsinfo("sec");
    assert_eq!(info_get(&info, "password").unwrap(), "yes");
    assert_eq!(info_get(&info, "public").unwrap(), "no");
    // admin SELECT also needs the password (no bypass documented) – the admin
    // connection is already inside; descriptor stores the plaintext password
    let raw = std::fs::read(s.index.join("sec").join("zdb-namespace")).unwrap();
    assert_eq!(&raw[4..6], &[3, 3], "namelen/passlen");
    assert_eq!(raw[14], 4, "flags EXTENDED only (private)");
    assert_eq!(&raw[15..], b"secpw1");
    // public value: only first char matters
    assert_eq!(a.c(&["NSSET", "sec", "public", "1yes"]), Reply::ok());
    assert_eq!(info_get(&a.nsinfo("sec"), "public").unwrap(), "yes");
    assert_eq!(a.c(&["NSSET", "sec", "public", "yes"]), Reply::ok());
    assert_eq!(info_get(&a.nsinfo("sec"), "public").unwrap(), "no");
    // clear the password
    assert_eq!(a.c(&["NSSET", "sec", "password", "*"]), Reply::ok());
    let mut u3 = s.client();
    assert_eq!(u3.c(&["SELECT", "sec"]), Reply::ok());
    assert_eq!(u3.set(b"k3", b"v3"), Reply::bulk("k3"));
    assert_eq!(info_get(&u3.nsinfo("sec"), "password").unwrap(), "no");
}

#[test]
fn select_secure() {
    let s = Server::start(&["--mode", "user"]);
    let mut a = s.client();
    a.c(&["NSNEW", "ss"]);
    a.c(&["NSSET", "ss", "password", "topsecret"]);
    a.c(&["NSSET", "ss", "public", "0"]);

    let mut c = s.client();
    let h0 = sha1_hex("0000000000000000:topsecret");
    assert_eq!(
        c.c(&["SELECT", "ss", "SECURE", &h0]),
        Reply::err("No CHALLENGE requested, secure authentication not available")
    );
    let nonce = c.c(&["AUTH", "SECURE", "CHALLENGE"]).text();
    assert_eq!(
        c.c(&["SELECT", "ss", "SECURE", "short"]),
        Reply::err("Invalid hash length")
    );
    assert_eq!(
        c.c(&["SELECT", "ss", "OTHER", &h0]),
        Reply::err("Only SECURE extra method supported")
    );
    let good = sha1_hex(&format!("{nonce}:topsecret"));
    assert_eq!(c.c(&["SELECT", "ss", "SECURE", &good]), Reply::ok());
    assert_eq!(c.set(b"k", b"v"), Reply::bulk("k"));
    c.select("default");
    // the nonce was consumed: replay refused (Decisions)
    let replay = c.c(&["SELECT", "ss", "SECURE", &good]);
    assert!(
        replay.is_error(),
        "SECURE nonce replay accepted: {replay:?}"
    );
    assert_eq!(
        replay,
        Reply::err("No CHALLENGE requested, secure authentication not available")
    );
    // still in default
    assert_eq!(c.get(b"k"), Reply::nil());

    let nonce = c.c(&["AUTH", "SECURE", "CHALLENGE"]).text();
    let bad = sha1_hex(&format!("{nonce}:wrong"));
    assert_eq!(
        c.c(&["SELECT", "ss", "SECURE", &bad]),
        Reply::err("Access denied")
    );
}

#[test]
fn nsset_worm() {
    let s = Server::start(&["--mode", "user"]);
    let mut c = s.client();
    c.c(&["NSNEW", "w"]);
    assert_eq!(c.c(&["NSSET", "w", "worm", "1"]), Reply::ok());
    c.select("w");
    assert_eq!(c.set(b"k", b"v1"), Reply::bulk("k"));
    assert_eq!(
        c.set(b"k", b"v2"),
        Reply::err("Namespace is protected by worm mode")
    );
    assert_eq!(
        c.del(b"k"),
        Reply::err("Cannot delete a key when namespace is in worm mode")
    );
    assert_eq!(c.get(b"k"), Reply::bulk("v1"));
    assert_eq!(info_get(&c.nsinfo("w"), "worm").unwrap(), "yes");
    assert_eq!(c.c(&["NSSET", "w", "worm", "0"]), Reply::ok());
    assert_eq!(c.set(b"k", b"v2"), Reply::bulk("k"));
}

#[test]
fn nsset_lock_and_freeze() {
    let s = Server::start(&["--mode", "user"]);
    let mut c = s.client();
    c.c(&["NSNEW", "l"]);
    c.select("l");
    c.set(b"k", b"v");
    let locked = Reply::err("Namespace is temporarily locked (read-only)");
    let frozen = Reply::err("Namespace is temporarily frozen (read-write disabled)");

    assert_eq!(c.c(&["NSSET", "l", "lock", "1"]), Reply::ok());
    assert_eq!(c.set(b"k2", b"v"), locked);
    assert_eq!(c.del(b"k"), locked);
    assert_eq!(c.get(b"k"), Reply::bulk("v"));
    assert_eq!(info_get(&c.nsinfo("l"), "locked").unwrap(), "yes");
    assert_eq!(c.c(&["NSSET", "l", "lock", "0"]), Reply::ok());
    assert_eq!(c.set(b"k2", b"v"), Reply::bulk("k2"));
    assert_eq!(info_get(&c.nsinfo("l"), "locked").unwrap(), "no");

    assert_eq!(c.c(&["NSSET", "l", "freeze", "1"]), Reply::ok());
    assert_eq!(c.get(b"k"), frozen);
    assert_eq!(c.set(b"k3", b"v"), frozen);
    assert_eq!(info_get(&c.nsinfo("l"), "locked").unwrap(), "yes");
    // other namespaces unaffected
    let mut o = s.client();
    assert_eq!(o.set(b"x", b"y"), Reply::bulk("x"));
    assert_eq!(c.c(&["NSSET", "l", "freeze", "0"]), Reply::ok());
    assert_eq!(c.get(b"k"), Reply::bulk("v"));
    assert_eq!(c.set(b"k3", b"v"), Reply::bulk("k3"));
}

#[test]
fn nsjump_rotates_files() {
    let s = Server::start(&["--mode", "user"]);
    let mut c = s.client();
    c.set(b"a", b"1");
    assert_eq!(c.c(&["NSJUMP"]), Reply::ok());
    c.set(b"b", b"2");
    let ns_i = s.index.join("default");
    let ns_d = s.data.join("default");
    assert!(ns_i.join("i1").is_file() && ns_d.join("d1").is_file());
    assert_eq!(c.get(b"a"), Reply::bulk("1"));
    assert_eq!(c.get(b"b"), Reply::bulk("2"));
    assert_eq!(
        info_get(&c.nsinfo("default"), "data_current_id").unwrap(),
        "1"
    );
    let e = parse_index_file(&ns_i.join("i1"));
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].key, b"b");
}

#[test]
fn reload_namespace() {
    let s = Server::start(&["--mode", "user"]);
    let mut c = s.client();
    c.c(&["NSNEW", "r"]);
    c.select("r");
    for i in 0..20 {
        c.set(format!("k{i}").as_bytes(), format!("v{i}").as_bytes());
    }
    c.del(b"k3");
    c.set(b"k4", b"new4");
    assert_eq!(c.c(&["RELOAD", "r"]), Reply::ok());
    assert_eq!(c.c(&["RELOAD", "nope"]), Reply::err("Namespace not found"));
    let mut c2 = s.client();
    c2.select("r");
    for c in [&mut c, &mut c2] {
        assert_eq!(c.dbsize(), 19);
        assert_eq!(c.get(b"k3"), Reply::nil());
        assert_eq!(c.get(b"k4"), Reply::bulk("new4"));
        assert_eq!(c.get(b"k19"), Reply::bulk("v19"));
    }
    c.set(b"after", b"reload");
    assert_eq!(c2.get(b"after"), Reply::bulk("reload"));
}

#[test]
fn flush_really_deletes() {
    let mut s = Server::start(&["--mode", "user"]);
    let mut a = s.client();
    a.c(&["NSNEW", "tmp"]);
    a.c(&["NSSET", "tmp", "password", "fpw"]);
    a.c(&["NSSET", "tmp", "public", "0"]);
    let mut c = s.client();
    assert_eq!(c.c(&["SELECT", "tmp", "fpw"]), Reply::ok());
    let marker = b"FLUSH-MARKER-0123456789";
    for i in 0..30 {
        let mut v = marker.to_vec();
        v.extend(pseudo_bytes(i, 20_000));
        c.set(format!("k{i}").as_bytes(), &v);
    }
    assert_eq!(c.c(&["NSJUMP"]), Reply::ok());
    c.set(b"last", marker);
    assert_eq!(c.dbsize(), 31);

    assert_eq!(c.c(&["FLUSH"]), Reply::ok());
    assert_eq!(c.dbsize(), 0);
    assert_eq!(c.get(b"k1"), Reply::nil());
    assert_eq!(c.get(b"last"), Reply::nil());
    assert_eq!(c.c(&["SCAN"]), Reply::err("No more data"));
    let check_disk = |s: &Server| {
        for dir in [s.index.join("tmp"), s.data.join("tmp")] {
            for f in files_with_prefix(&dir, "") {
                let raw = std::fs::read(&f).unwrap();
                assert!(
                    !contains(&raw, marker),
                    "{} still holds flushed data",
                    f.display()
                );
            }
        }
        for f in files_with_prefix(&s.data.join("tmp"), "d") {
            let len = std::fs::metadata(&f).unwrap().len();
            assert!(len <= 28, "{} has {len} bytes after FLUSH", f.display());
        }
        for f in files_with_prefix(&s.index.join("tmp"), "i") {
            let len = std::fs::metadata(&f).unwrap().len();
            assert!(len <= 29, "{} has {len} bytes after FLUSH", f.display());
        }
    };
    check_disk(&s);
    // namespace properties survive, and it works afterwards
    let info = c.nsinfo("tmp");
    assert_eq!(info_get(&info, "password").unwrap(), "yes");
    assert_eq!(info_get(&info, "entries").unwrap(), "0");
    assert_eq!(info_get(&info, "data_size_bytes").unwrap(), "0");
    assert_eq!(c.set(b"new", b"after-flush"), Reply::bulk("new"));
    // after restart still flushed
    s.restart();
    let mut c = s.client();
    assert_eq!(c.c(&["SELECT", "tmp", "fpw"]), Reply::ok());
    assert_eq!(c.dbsize(), 1);
    assert_eq!(c.get(b"k1"), Reply::nil());
    assert_eq!(c.get(b"new"), Reply::bulk("after-flush"));
}

#[test]
fn flush_refused_on_public() {
    let s = Server::start(&["--mode", "user"]);
    let mut c = s.client();
    c.set(b"k", b"v");
    assert_eq!(
        c.c(&["FLUSH"]),
        Reply::err("Flushing public namespace denied")
    );
    c.c(&["NSNEW", "pub"]);
    c.c(&["NSSET", "pub", "password", "pw"]);
    c.c(&["SELECT", "pub", "pw"]);
    c.set(b"k", b"v");
    assert_eq!(
        c.c(&["FLUSH"]),
        Reply::err("Flushing public namespace denied")
    );
    assert_eq!(c.dbsize(), 1);
    c.select("default");
    assert_eq!(c.get(b"k"), Reply::bulk("v"));
}
