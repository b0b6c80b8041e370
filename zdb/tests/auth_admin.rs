//! AUTH (plain, SECURE), admin-only commands, --admin sources, --protect, STOP
//! (reference §4 System, §7, §10).
#![expect(clippy::unwrap_used, reason = "tests")]

mod common;
use common::*;
use std::time::Duration;

const ADMIN: &str = "adm1n-pw";

fn challenge(c: &mut Client) -> String {
    let r = c.c(&["AUTH", "SECURE", "CHALLENGE"]);
    let nonce = match r {
        Reply::Simple(s) => s,
        other => panic!("CHALLENGE: {other:?}"),
    };
    assert_eq!(nonce.len(), 16, "nonce {nonce:?}");
    assert!(
        nonce
            .chars()
            .all(|ch| ch.is_ascii_digit() || ('a'..='f').contains(&ch)),
        "nonce must be lowercase hex: {nonce:?}"
    );
    nonce
}

#[test]
fn auth_disabled_without_admin() {
    let s = Server::start(&["--mode", "user"]);
    let mut c = s.client();
    assert_eq!(c.c(&["AUTH", "x"]), Reply::err("Authentication disabled"));
    // every client is admin
    assert_eq!(c.c(&["NSNEW", "ns1"]), Reply::ok());
    // CHALLENGE works anyway (used by SELECT)
    challenge(&mut c);
}

#[test]
fn auth_plain() {
    let s = Server::start(&["--mode", "user", "--admin", ADMIN]);
    let mut c = s.client();
    assert_eq!(c.c(&["NSNEW", "x"]), Reply::err("Permission denied"));
    assert_eq!(c.c(&["AUTH", "wrong"]), Reply::err("Access denied"));
    assert_eq!(
        c.cmd(&[b"AUTH", &[b'p'; 129]]),
        Reply::err("Password too long")
    );
    assert_eq!(c.c(&["AUTH"]), Reply::err("Unexpected arguments"));
    assert_eq!(c.c(&["AUTH", ADMIN]), Reply::ok());
    assert_eq!(c.c(&["NSNEW", "x"]), Reply::ok());
    // another connection is not admin
    let mut c2 = s.client();
    assert_eq!(c2.c(&["NSNEW", "y"]), Reply::err("Permission denied"));
}

#[test]
fn auth_secure() {
    let s = Server::start(&["--mode", "user", "--admin", ADMIN]);
    let mut c = s.client();
    let h = sha1_hex("0000000000000000:whatever");
    assert_eq!(
        c.c(&["AUTH", "SECURE", &h]),
        Reply::err("No CHALLENGE requested, secure authentication not available")
    );
    let n1 = challenge(&mut c);
    let n2 = challenge(&mut c);
    assert_ne!(n1, n2, "a new CHALLENGE replaces the nonce");
    // wrong length keeps the nonce
    assert_eq!(
        c.c(&["AUTH", "SECURE", "abcd"]),
        Reply::err("Invalid hash length")
    );
    // the old nonce is no longer valid
    assert_eq!(
        c.c(&["AUTH", "SECURE", &sha1_hex(&format!("{n1}:{ADMIN}"))]),
        Reply::err("Access denied")
    );
    // that attempt consumed n2
    assert_eq!(
        c.c(&["AUTH", "SECURE", &sha1_hex(&format!("{n2}:{ADMIN}"))]),
        Reply::err("No CHALLENGE requested, secure authentication not available")
    );
    let n3 = challenge(&mut c);
    assert_eq!(
        c.c(&["AUTH", "SECURE", "abcd"]),
        Reply::err("Invalid hash length")
    );
    assert_eq!(
        c.c(&["AUTH", "SECURE", &sha1_hex(&format!("{n3}:{ADMIN}"))]),
        Reply::ok()
    );
    assert_eq!(c.c(&["NSNEW", "sec"]), Reply::ok());
    assert_eq!(
        c.c(&["AUTH", "OTHER", "x"]),
        Reply::err("Only SECURE extra method supported")
    );
    // nonces are per connection
    let mut c2 = s.client();
    let _n = challenge(&mut c2);
    assert_eq!(
        c2.c(&["AUTH", "SECURE", &sha1_hex(&format!("{n3}:{ADMIN}"))]),
        Reply::err("Access denied")
    );
}

#[test]
fn admin_only_commands_refused() {
    let s = Server::start(&["--mode", "user", "--admin", ADMIN]);
    let mut adm = s.client();
    assert_eq!(adm.c(&["AUTH", ADMIN]), Reply::ok());
    assert_eq!(adm.c(&["NSNEW", "target"]), Reply::ok());
    adm.set(b"k", b"v");

    let mut c = s.client();
    let denied = Reply::err("Permission denied");
    let cases: Vec<Vec<&str>> = vec![
        vec!["NSNEW", "n2"],
        vec!["NSDEL", "target"],
        vec!["NSSET", "target", "worm", "1"],
        vec!["NSJUMP"],
        vec!["RELOAD", "target"],
        vec!["HOOKS"],
        vec!["INDEX", "DIRTY"],
        vec!["INDEX", "DIRTY", "RESET"],
        vec!["DATA", "RAW", "0", "28"],
        vec!["MIRROR"],
        vec!["MASTER"],
        vec!["STOP"],
        vec!["SET", "k2", "v", "12345"],
        vec!["DEL", "k", "12345"],
    ];
    for args in cases {
        assert_eq!(c.c(&args), denied, "{args:?}");
    }
    // nothing changed
    assert_eq!(c.get(b"k"), Reply::bulk("v"));
    assert_eq!(c.get(b"k2"), Reply::nil());
    let list = c.c(&["NSLIST"]).array();
    assert!(list.contains(&Reply::bulk("target")));
    assert!(!list.contains(&Reply::bulk("n2")));
    // non-admin commands still work for non-admins
    assert_eq!(c.set(b"k3", b"v3"), Reply::bulk("k3"));
    assert_eq!(c.c(&["DBSIZE"]), Reply::Int(2));
    let info = parse_info(&c.c(&["INFO"]).text());
    let unauth: i64 = info_get(&info, "commands_unauthorized")
        .unwrap()
        .parse()
        .unwrap();
    assert!(unauth >= 14, "commands_unauthorized = {unauth}");
    // the server is still running (STOP was refused)
    assert_eq!(adm.c(&["PING"]), Reply::simple("PONG"));
}

#[test]
fn admin_password_from_env() {
    let s = Server::start_env(&["--mode", "user"], &[("ZDB_ADMIN", "envpw")]);
    let mut c = s.client();
    assert_eq!(c.c(&["NSNEW", "a"]), Reply::err("Permission denied"));
    assert_eq!(c.c(&["AUTH", "nope"]), Reply::err("Access denied"));
    assert_eq!(c.c(&["AUTH", "envpw"]), Reply::ok());
    assert_eq!(c.c(&["NSNEW", "a"]), Reply::ok());
}

#[test]
fn admin_password_from_file() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("adminpw");
    std::fs::write(&f, "filepw\n").unwrap();
    let s = Server::start(&["--mode", "user", "--admin-file", f.to_str().unwrap()]);
    let mut c = s.client();
    assert_eq!(c.c(&["NSNEW", "a"]), Reply::err("Permission denied"));
    assert_eq!(c.c(&["AUTH", "filepw"]), Reply::ok());
    assert_eq!(c.c(&["NSNEW", "a"]), Reply::ok());
}

#[test]
fn protect_makes_default_read_only() {
    let s = Server::start(&["--mode", "user", "--admin", ADMIN, "--protect"]);
    let mut c = s.client();
    assert_eq!(
        c.set(b"k", b"v"),
        Reply::err("Namespace is in read-only mode")
    );
    assert_eq!(c.get(b"k"), Reply::nil());
    assert_eq!(c.c(&["SELECT", "default", ADMIN]), Reply::ok());
    assert_eq!(c.set(b"k", b"v"), Reply::bulk("k"));
    let mut c2 = s.client();
    assert_eq!(c2.get(b"k"), Reply::bulk("v"));
    assert_eq!(c2.del(b"k"), Reply::err("Namespace is in read-only mode"));
}

#[test]
fn stop_by_admin_exits_cleanly() {
    let mut s = Server::start(&["--mode", "user", "--admin", ADMIN]);
    let mut c = s.client();
    c.set(b"k", b"v");
    assert_eq!(c.c(&["STOP"]), Reply::err("Permission denied"));
    assert_eq!(c.c(&["AUTH", ADMIN]), Reply::ok());
    assert_eq!(c.c(&["STOP"]), Reply::simple("Stopping"));
    let st = s
        .wait_exit(Duration::from_secs(10))
        .expect("server must exit after STOP");
    assert!(st.success(), "exit status after STOP: {st}");
    // the data survives
    s.launch();
    assert_eq!(s.client().get(b"k"), Reply::bulk("v"));
}

#[test]
fn stop_without_admin_password() {
    let mut s = Server::start(&["--mode", "user"]);
    let mut c = s.client();
    assert_eq!(c.c(&["STOP"]), Reply::simple("Stopping"));
    let st = s
        .wait_exit(Duration::from_secs(10))
        .expect("server must exit after STOP");
    assert!(st.success(), "exit status after STOP: {st}");
}

#[test]
fn sigterm_exits_cleanly() {
    let mut s = Server::start(&["--mode", "user"]);
    s.client().set(b"k", b"v");
    let st = s.term().expect("server must exit on SIGTERM");
    assert!(st.success(), "exit status after SIGTERM: {st}");
    s.launch();
    assert_eq!(s.client().get(b"k"), Reply::bulk("v"));
}
