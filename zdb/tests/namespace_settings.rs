//! NSSET (maxsize, password, public, worm, lock, freeze) and what it does to SELECT and writes
//! (reference §4 Namespaces, §10).
#![expect(clippy::unwrap_used, reason = "tests")]

mod common;
use common::*;

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
