//! NSNEW / NSDEL / NSLIST / NSINFO / SELECT / DBSIZE / NSJUMP / RELOAD / FLUSH (reference §4
//! Namespaces, §6, §10); NSSET and access in `namespace_settings.rs`.
#![expect(clippy::unwrap_used, reason = "tests")]

mod common;
use common::*;
use std::time::Duration;

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
