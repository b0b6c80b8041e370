//! WAIT, INDEX DIRTY, DATA RAW, HOOKS (+ --hook), MIRROR, MASTER
//! (reference §4 System / introspection, §8.6).
#![expect(clippy::unwrap_used, reason = "tests")]

mod common;
use common::*;
use std::time::{Duration, Instant};

#[test]
fn wait_for_command_from_other_client() {
    let s = Server::start(&["--mode", "user"]);
    let mut w = s.client();
    let mut o = s.client();
    w.send(&[b"WAIT", b"SET", b"5000"]).unwrap();
    o.wait_blocked(1);
    assert_eq!(o.set(b"k", b"v"), Reply::bulk("k"));
    assert_eq!(w.read_reply().unwrap(), Reply::simple("SET"));

    // case-insensitive, reply is the table name
    w.send(&[b"WAIT", b"setx"]).unwrap();
    o.wait_blocked(1);
    o.c(&["SETX", "k2", "v"]);
    assert_eq!(w.read_reply().unwrap(), Reply::simple("SETX"));

    // any command (so the readiness probe runs in another namespace: it is a command too)
    let mut probe = s.client();
    probe.c(&["NSNEW", "probe"]);
    probe.select("probe");
    w.send(&[b"WAIT", b"*", b"5000"]).unwrap();
    probe.wait_blocked(1);
    o.get(b"k");
    assert_eq!(w.read_reply().unwrap(), Reply::simple("GET"));
}

#[test]
fn wait_timeout_and_namespace_scope() {
    let s = Server::start(&["--mode", "user"]);
    let mut w = s.client();
    let mut o = s.client();
    o.c(&["NSNEW", "elsewhere"]);
    o.select("elsewhere");
    let t0 = Instant::now();
    w.send(&[b"WAIT", b"SET", b"600"]).unwrap();
    o.wait_blocked(1);
    // SET in another namespace does not wake the waiter
    o.set(b"k", b"v");
    assert_eq!(w.read_reply().unwrap(), Reply::err("Timeout"));
    let el = t0.elapsed();
    assert!(
        el >= Duration::from_millis(550) && el < Duration::from_secs(3),
        "timeout after {el:?}"
    );
    assert_eq!(w.c(&["PING"]), Reply::simple("PONG"));
}

#[test]
fn wait_argument_errors() {
    let s = Server::start(&["--mode", "user"]);
    let mut c = s.client();
    assert_eq!(c.c(&["WAIT"]), Reply::err("Invalid arguments"));
    assert_eq!(
        c.c(&["WAIT", "SET", "1000", "x"]),
        Reply::err("Invalid arguments")
    );
    assert_eq!(
        c.c(&["WAIT", "NOPE"]),
        Reply::err("Unknown command to watch")
    );
    assert_eq!(c.c(&["WAIT", "SET", "50"]), Reply::err("Invalid timeout"));
    assert_eq!(
        c.c(&["WAIT", "SET", "1800001"]),
        Reply::err("Invalid timeout")
    );
    assert_eq!(c.c(&["PING"]), Reply::simple("PONG"));
}

#[test]
fn wait_does_not_block_other_clients() {
    let s = Server::start(&["--mode", "user"]);
    let mut w = s.client();
    // A WAIT far longer than any scheduling delay: the other client's commands must be
    // answered while it still waits, not after it gives up.
    w.send(&[b"WAIT", b"DEL", b"30000"]).unwrap();
    let mut o = s.client();
    o.wait_blocked(1);
    let t0 = Instant::now();
    assert_eq!(o.c(&["PING"]), Reply::simple("PONG"));
    assert_eq!(o.set(b"a", b"b"), Reply::bulk("a"));
    let info = parse_info(&o.c(&["INFO"]).text());
    assert_eq!(
        info_get(&info, "blocked_clients").as_deref(),
        Some("1"),
        "the waiter still waits"
    );
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    o.del(b"a");
    assert_eq!(w.read_reply().unwrap(), Reply::simple("DEL"));
}

#[test]
fn index_dirty() {
    let s = Server::start(&["--mode", "user"]);
    let mut c = s.client();
    assert_eq!(c.c(&["INDEX", "DIRTY"]), Reply::Array(Some(vec![])));
    c.set(b"k", b"v1");
    assert_eq!(c.c(&["INDEX", "DIRTY"]), Reply::Array(Some(vec![])));
    // update flags the old entry in place → i0 dirty
    c.set(b"k", b"v2");
    assert_eq!(
        c.c(&["INDEX", "DIRTY"]),
        Reply::Array(Some(vec![Reply::Int(0)]))
    );
    assert_eq!(c.c(&["INDEX", "DIRTY", "RESET"]), Reply::ok());
    assert_eq!(c.c(&["INDEX", "DIRTY"]), Reply::Array(Some(vec![])));
    assert_eq!(c.c(&["NSJUMP"]), Reply::ok());
    c.set(b"j", b"x");
    // DEL of a key living in i0 → i0 dirty again; i1 untouched
    c.del(b"k");
    assert_eq!(
        c.c(&["INDEX", "DIRTY"]),
        Reply::Array(Some(vec![Reply::Int(0)]))
    );
    c.del(b"j");
    let mut ids: Vec<i64> = c
        .c(&["INDEX", "DIRTY"])
        .array()
        .iter()
        .map(|r| r.int())
        .collect();
    ids.sort();
    assert_eq!(ids, vec![0, 1]);
    assert_eq!(c.c(&["INDEX"]), Reply::err("Missing arguments"));
    assert_eq!(
        c.c(&["INDEX", "FOO"]),
        Reply::err("Unknown INDEX subcommand")
    );
    assert_eq!(
        c.c(&["INDEX", "DIRTY", "FOO"]),
        Reply::err("Unknown INDEX DIRTY subcommand")
    );
}

#[test]
fn data_raw() {
    let s = Server::start(&["--mode", "user"]);
    let mut c = s.client();
    c.c(&["SET", "k1", "value-1", "1000"]);
    c.c(&["SET", "k2", "v2", "2000"]);
    let r = c.c(&["DATA", "RAW", "0", "28"]).array();
    assert_eq!(r.len(), 6, "{r:?}");
    assert_eq!(r[0], Reply::bulk("k1"));
    assert_eq!(r[1], Reply::Int(0));
    assert_eq!(
        r[2],
        Reply::bulk(format!("0x{:08x}", crc32c_zdb(b"value-1")))
    );
    assert_eq!(r[3], Reply::Int(0));
    assert_eq!(r[4], Reply::Int(1000));
    assert_eq!(r[5], Reply::bulk("value-1"));
    // second entry: 28 + 18 + 2 + 7
    let r = c.c(&["DATA", "RAW", "0", "55"]).array();
    assert_eq!(r[0], Reply::bulk("k2"));
    assert_eq!(r[1], Reply::Int(28));
    assert_eq!(r[2], Reply::bulk(format!("0x{:08x}", crc32c_zdb(b"v2"))));
    assert_eq!(r[4], Reply::Int(2000));
    assert_eq!(r[5], Reply::bulk("v2"));
    // end of file
    assert_eq!(c.c(&["DATA", "RAW", "0", "77"]), Reply::err("EOF"));
    // tombstone: deleted entry
    c.del(b"k1");
    assert_eq!(
        c.c(&["DATA", "RAW", "0", "77"]),
        Reply::err("Unexpected Internal Error")
    );
    assert_eq!(c.c(&["DATA"]), Reply::err("Missing arguments"));
    assert_eq!(
        c.c(&["DATA", "FOO", "0", "0"]),
        Reply::err("Unknown DATA subcommand")
    );
    assert!(c.c(&["DATA", "RAW", "0"]).is_error());
    assert!(c.c(&["DATA", "RAW", "9", "28"]).is_error());
    // the data file layout matches §8.3
    let raw = std::fs::read(s.data.join("default").join("d0")).unwrap();
    assert_eq!(&raw[0..4], b"DAT0");
    assert_eq!(u32::from_le_bytes(raw[4..8].try_into().unwrap()), 3);
    assert_eq!(&raw[8..24], &[0u8; 16]);
    assert_eq!(u32::from_le_bytes(raw[24..28].try_into().unwrap()), 0);
    let e = parse_data_file(&s.data.join("default").join("d0"));
    assert_eq!(e.len(), 3);
    assert_eq!(e[2].key, b"k1");
    assert_eq!(e[2].flags, 1);
    assert_eq!(e[2].value_len, 0);
}

#[test]
fn index_file_layout() {
    let s = Server::start(&["--mode", "user"]);
    let mut c = s.client();
    c.c(&["SET", "a", "xyz", "1111"]);
    c.c(&["SET", "a", "xyzw", "2222"]);
    let path = s.index.join("default").join("i0");
    let raw = std::fs::read(&path).unwrap();
    assert_eq!(&raw[0..4], b"IDX0");
    assert_eq!(u32::from_le_bytes(raw[4..8].try_into().unwrap()), 4);
    assert_eq!(&raw[8..24], &[0u8; 16], "created/opened are 0");
    assert_eq!(u32::from_le_bytes(raw[24..28].try_into().unwrap()), 0);
    assert_eq!(raw[28], 0, "user mode");
    let e = parse_index_file(&path);
    assert_eq!(e.len(), 2);
    assert_eq!(e[0].offset, 29);
    assert_eq!(e[0].flags, 1, "old version flagged deleted");
    assert_eq!(e[0].data_offset, 28);
    assert_eq!(e[0].length, 3);
    assert_eq!(e[1].flags, 0);
    assert_eq!(e[1].data_offset, 28 + 18 + 1 + 3);
    assert_eq!(e[1].length, 4);
    assert_eq!(e[1].dataid, 0);
    let at = |o: usize| u32::from_le_bytes(raw[o..o + 4].try_into().unwrap());
    let second = e[1].offset as usize;
    assert_eq!(
        at(second + 9),
        29,
        "previous = offset of the previous entry"
    );
    assert_eq!(at(second + 18), 2222, "timestamp");
    assert_eq!(at(second + 22), crc32c_zdb(b"xyzw"));
    assert_eq!(at(second + 26), 0, "parentid");
    assert_eq!(at(second + 30), 29, "parentoff");
}

#[test]
fn mirror_and_master_replies() {
    let s = Server::start(&["--mode", "user"]);
    let mut m = s.client();
    assert_eq!(m.c(&["MIRROR"]), Reply::simple("Starting mirroring"));
    let mut ms = s.client();
    assert_eq!(ms.c(&["MASTER"]), Reply::simple("Hello, master"));
}

#[test]
fn mirror_forwards_commands() {
    // §4: the MIRROR connection receives other clients' commands as
    // `*N :ts $ns :owner <args…>` (owner id unreliable in C v2).
    let s = Server::start(&["--mode", "user"]);
    let mut m = s.client();
    assert_eq!(m.c(&["MIRROR"]), Reply::simple("Starting mirroring"));
    let mut o = s.client();
    assert_eq!(o.set(b"mk", b"mv"), Reply::bulk("mk"));
    m.set_timeout(Duration::from_secs(3));
    let fwd = m.read_reply().expect("MIRROR client receives a copy");
    let v = fwd.array();
    assert_eq!(v.len(), 6, "{v:?}");
    v[0].int();
    assert_eq!(v[1], Reply::bulk("default"));
    v[2].int();
    assert_eq!(
        &v[3..],
        &[Reply::bulk("SET"), Reply::bulk("mk"), Reply::bulk("mv")]
    );
}

#[test]
fn master_strips_owner_id() {
    let s = Server::start(&["--mode", "user"]);
    let mut o = s.client();
    let mut ms = s.client();
    ms.c(&["NSNEW", "pns"]);
    ms.c(&["NSSET", "pns", "password", "rawpw"]);
    assert_eq!(ms.c(&["MASTER"]), Reply::simple("Hello, master"));
    // trailing owner id is stripped
    assert_eq!(ms.c(&["SET", "ok", "ov", "7"]), Reply::bulk("ok"));
    assert_eq!(ms.c(&["GET", "ok", "7"]), Reply::bulk("ov"));
    let info = parse_info(&ms.c(&["NSINFO", "pns", "7"]).text());
    assert_eq!(info_get(&info, "password_raw").unwrap(), "rawpw");
    assert_eq!(o.get(b"ok"), Reply::bulk("ov"));
    let plain = parse_info(&o.c(&["NSINFO", "pns"]).text());
    assert!(info_get(&plain, "password_raw").is_none());
}

fn write_hook(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let log = dir.join("hook.log");
    let hook = dir.join("hook.sh");
    std::fs::write(
        &hook,
        format!("#!/bin/sh\necho \"$@\" >> {}\nexit 0\n", log.display()),
    )
    .unwrap();
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    (hook, log)
}

fn wait_for_line(log: &std::path::Path, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.lines().any(|l| l.contains(needle)) {
            return text;
        }
        if Instant::now() > deadline {
            panic!("hook log lacks {needle:?}:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn hooks_argv_and_hooks_command() {
    let tmp = tempfile::tempdir().unwrap();
    let (hook, log) = write_hook(tmp.path());
    let s = Server::start(&["--mode", "user", "--hook", hook.to_str().unwrap()]);
    let zid = format!("tcp://127.0.0.1:{}", s.port);
    let text = wait_for_line(&log, "ready");
    assert!(
        text.lines().any(|l| l == format!("ready {zid}")),
        "ready hook argv:\n{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with(&format!(
            "namespaces-init {zid} {} {}",
            s.index.display(),
            s.data.display()
        ))),
        "namespaces-init argv:\n{text}"
    );
    let mut c = s.client();
    assert_eq!(c.c(&["NSNEW", "hooked"]), Reply::ok());
    wait_for_line(&log, &format!("namespace-created {zid} hooked"));
    assert_eq!(c.c(&["NSSET", "hooked", "worm", "1"]), Reply::ok());
    wait_for_line(&log, &format!("namespace-updated {zid} hooked"));
    c.set(b"k", b"v");
    assert_eq!(c.c(&["NSJUMP"]), Reply::ok());
    let ip = s.index.join("default");
    let dp = s.data.join("default");
    let text = wait_for_line(&log, "jump-index");
    assert!(
        text.lines().any(|l| l.starts_with(&format!(
            "jump-index {zid} {} {}",
            ip.join("i0").display(),
            ip.join("i1").display()
        ))),
        "jump-index argv:\n{text}"
    );
    let text = wait_for_line(&log, "jump-data");
    assert!(
        text.lines().any(|l| l
            == format!(
                "jump-data {zid} {} {}",
                dp.join("d0").display(),
                dp.join("d1").display()
            )),
        "jump-data argv:\n{text}"
    );
    assert_eq!(c.c(&["RELOAD", "hooked"]), Reply::ok());
    wait_for_line(&log, &format!("namespace-reloaded {zid} hooked"));
    assert_eq!(c.c(&["NSDEL", "hooked"]), Reply::ok());
    wait_for_line(&log, &format!("namespace-deleted {zid} hooked"));

    let hooks = c.c(&["HOOKS"]).array();
    assert!(!hooks.is_empty(), "HOOKS lists recent hooks");
    let mut types = Vec::new();
    for h in &hooks {
        let h = h.array();
        assert_eq!(h.len(), 6, "hook entry shape {h:?}");
        types.push(h[0].text());
        h[1].array();
    }
    assert!(
        types.iter().any(|t| t == "namespace-created"),
        "HOOKS types {types:?}"
    );
}

#[test]
fn hooks_empty_without_hook() {
    let s = Server::start(&["--mode", "user"]);
    let mut c = s.client();
    assert_eq!(c.c(&["HOOKS"]), Reply::Array(Some(vec![])));
}

#[test]
fn ready_hook_failure_aborts_startup() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let hook = tmp.path().join("hook.sh");
    std::fs::write(
        &hook,
        "#!/bin/sh\nif [ \"$1\" = ready ]; then exit 3; fi\nexit 0\n",
    )
    .unwrap();
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut s = Server::new_at(
        tmp.path(),
        &["--mode", "user", "--hook", hook.to_str().unwrap()],
        &[],
    );
    let st = s
        .launch_expect_exit(Duration::from_secs(5))
        .expect("a failing ready hook must abort startup");
    assert!(!st.success());
}
