//! System and data commands in user-key mode (reference §3, §4, §9).
#![expect(clippy::unwrap_used, reason = "tests")]

mod common;
use common::*;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn ping_time_info() {
    let s = Server::start(&["--mode", "user"]);
    let mut c = s.client();
    assert_eq!(c.c(&["PING"]), Reply::simple("PONG"));
    assert_eq!(c.c(&["PING", "extra", "args"]), Reply::simple("PONG"));

    let t = c.c(&["TIME"]).array();
    assert_eq!(t.len(), 2, "TIME: {t:?}");
    let sec: i64 = t[0].text().parse().expect("TIME sec is a bulk number");
    let usec: i64 = t[1].text().parse().expect("TIME usec is a bulk number");
    assert!((sec - now()).abs() <= 2, "TIME sec {sec}");
    assert!((0..1_000_000).contains(&usec));

    let info = c.c(&["INFO"]);
    let text = match &info {
        Reply::Bulk(Some(b)) => String::from_utf8(b.clone()).unwrap(),
        other => panic!("INFO must be one bulk string, got {other:?}"),
    };
    for section in ["# server", "# clients", "# internals", "# stats"] {
        assert!(text.contains(section), "INFO lacks {section}:\n{text}");
    }
    let kv = parse_info(&text);
    for field in [
        "server_name",
        "server_revision",
        "engine_revision",
        "instance_id",
        "boot_time",
        "uptime",
        "clients_lifetime",
        "sequential_key_size",
        "data_version",
        "index_version",
        "commands_executed",
        "commands_failed",
        "commands_unauthorized",
        "index_disk_read_failed",
        "index_disk_write_failed",
        "data_disk_read_failed",
        "data_disk_write_failed",
        "index_disk_read_bytes",
        "index_disk_read_mb",
        "index_disk_write_bytes",
        "index_disk_write_mb",
        "data_disk_read_bytes",
        "data_disk_read_mb",
        "data_disk_write_bytes",
        "data_disk_write_mb",
        "network_rx_bytes",
        "network_rx_mb",
        "network_tx_bytes",
        "network_tx_mb",
    ] {
        assert!(
            info_get(&kv, field).is_some(),
            "INFO lacks field {field}:\n{text}"
        );
    }
    assert!(text.contains("server_name: 0-db (zdb)\n"), "{text}");
    assert_eq!(info_get(&kv, "sequential_key_size").unwrap(), "8");
    assert_eq!(info_get(&kv, "data_version").unwrap(), "3");
    assert_eq!(info_get(&kv, "index_version").unwrap(), "4");
}

#[test]
fn command_lookup_exact_case_insensitive() {
    let s = Server::start(&["--mode", "user"]);
    let mut c = s.client();
    assert_eq!(c.c(&["ping"]), Reply::simple("PONG"));
    assert_eq!(c.c(&["PiNg"]), Reply::simple("PONG"));
    assert_eq!(c.c(&["set", "k", "v"]), Reply::bulk("k"));
    assert_eq!(c.c(&["gEt", "k"]), Reply::bulk("v"));
    // Prefixes and longer names do not match (Decisions: exact names).
    for bad in [
        "P", "PIN", "G", "S", "I", "IN", "INF", "D", "M", "PINGX", "FOO", "",
    ] {
        assert_eq!(
            c.c(&[bad]),
            Reply::err("Command not supported"),
            "command {bad:?}"
        );
    }
    // Not implemented redis commands.
    for bad in [
        "MULTI", "EXPIRE", "KEYS", "FLUSHDB", "FLUSHALL", "CONFIG", "COMMAND",
    ] {
        assert_eq!(
            c.c(&[bad]),
            Reply::err("Command not supported"),
            "command {bad}"
        );
    }
    assert_eq!(c.c(&["PING"]), Reply::simple("PONG"));
}

#[test]
fn set_get_basic() {
    let s = Server::start(&["--mode", "user"]);
    let mut c = s.client();
    assert_eq!(c.set(b"hello", b"world"), Reply::bulk("hello"));
    assert_eq!(c.get(b"hello"), Reply::bulk("world"));
    assert_eq!(c.get(b"missing"), Reply::nil());
    // byte-identical value: nil, nothing written
    assert_eq!(c.set(b"hello", b"world"), Reply::nil());
    assert_eq!(c.dbsize(), 1);
    // different value: key
    assert_eq!(c.set(b"hello", b"world2"), Reply::bulk("hello"));
    assert_eq!(c.get(b"hello"), Reply::bulk("world2"));
    // same length, different bytes
    assert_eq!(c.set(b"hello", b"worle2"), Reply::bulk("hello"));
    assert_eq!(c.get(b"hello"), Reply::bulk("worle2"));
    // SETX alias
    assert_eq!(c.c(&["SETX", "x", "y"]), Reply::bulk("x"));
    assert_eq!(c.get(b"x"), Reply::bulk("y"));
    // empty value: $0, not nil
    assert_eq!(c.set(b"empty", b""), Reply::bulk("empty"));
    assert_eq!(c.get(b"empty"), Reply::bulk(""));
    assert_eq!(c.c(&["LENGTH", "empty"]), Reply::Int(0));
    assert_eq!(c.c(&["EXISTS", "empty"]), Reply::Int(1));
    // binary key and value
    let key: Vec<u8> = (0u8..=200).collect();
    let val: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 256) as u8).collect();
    assert_eq!(c.set(&key, &val), Reply::bulk(&key));
    assert_eq!(c.get(&key), Reply::bulk(&val));
    assert_eq!(c.dbsize(), 4);
}

#[test]
fn set_get_argument_errors() {
    let s = Server::start(&["--mode", "user"]);
    let mut c = s.client();
    assert_eq!(c.c(&["SET", "k"]), Reply::err("Unexpected arguments"));
    assert_eq!(
        c.c(&["SET", "a", "b", "c", "d"]),
        Reply::err("Unexpected arguments")
    );
    assert_eq!(
        c.c(&["SET", "", "v"]),
        Reply::err("Invalid argument, key needed")
    );
    assert_eq!(c.c(&["GET", ""]), Reply::err("Invalid argument"));
    assert_eq!(c.c(&["MGET"]), Reply::err("Invalid arguments"));
}

#[test]
fn key_length_limits() {
    let s = Server::start(&["--mode", "user"]);
    let mut c = s.client();
    let k255 = vec![b'k'; 255];
    let k256 = vec![b'k'; 256];
    assert_eq!(c.set(&k255, b"v"), Reply::bulk(&k255));
    assert_eq!(c.get(&k255), Reply::bulk("v"));
    assert_eq!(c.set(&k256, b"v"), Reply::err("Key too large"));
    assert_eq!(c.get(&k256), Reply::err("Invalid key"));
    assert_eq!(c.cmd(&[b"EXISTS", &k256]), Reply::err("Invalid key"));
    assert_eq!(c.cmd(&[b"LENGTH", &k256]), Reply::err("Invalid key"));
    assert_eq!(c.cmd(&[b"CHECK", &k256]), Reply::err("Invalid key"));
    assert_eq!(c.cmd(&[b"KEYTIME", &k256]), Reply::err("Invalid key"));
    assert_eq!(c.cmd(&[b"MGET", b"a", &k256]), Reply::err("Invalid key"));
    assert_eq!(c.dbsize(), 1);
    assert_eq!(c.c(&["PING"]), Reply::simple("PONG"));
}

#[test]
fn value_size_limits() {
    let s = Server::start(&["--mode", "user"]);
    let mut c = s.client();
    let big = pseudo_bytes(7, MIB8);
    assert_eq!(c.set(b"big", &big), Reply::bulk("big"));
    assert_eq!(c.get(b"big"), Reply::bulk(&big));
    assert_eq!(c.c(&["LENGTH", "big"]), Reply::Int(MIB8 as i64));
    assert_eq!(c.c(&["CHECK", "big"]), Reply::Int(1));

    // 8 MiB + 1: only the header is sent; the server must answer and close.
    let mut c2 = s.client();
    c2.send_raw(format!("*3\r\n$3\r\nSET\r\n$2\r\nbb\r\n${}\r\n", MIB8 + 1).as_bytes())
        .unwrap();
    assert_eq!(c2.read_reply().unwrap(), Reply::err("Payload too big"));
    assert!(
        c2.is_closed(Duration::from_secs(5)),
        "connection must be closed after Payload too big"
    );
    // nothing stored, server alive
    assert_eq!(c.get(b"bb"), Reply::nil());
    assert_eq!(c.c(&["PING"]), Reply::simple("PONG"));
}

#[test]
fn argument_count_limits() {
    let s = Server::start(&["--mode", "user"]);
    let mut c = s.client();
    c.set(b"k1", b"v1");
    // 1024 args total: MGET + 1023 keys
    let keys: Vec<Vec<u8>> = (0..1023).map(|i| format!("k{i}").into_bytes()).collect();
    let mut args: Vec<&[u8]> = vec![b"MGET"];
    args.extend(keys.iter().map(|k| k.as_slice()));
    let r = c.cmd(&args).array();
    assert_eq!(r.len(), 1023);
    assert_eq!(r[1], Reply::bulk("v1"));
    assert_eq!(r[0], Reply::nil());
    // 1025 args
    let extra = b"k1023".to_vec();
    args.push(&extra);
    assert_eq!(args.len(), 1025);
    assert_eq!(c.cmd(&args), Reply::err("Too many arguments"));
    // the server keeps serving (a fresh connection at least)
    let mut c2 = s.client();
    assert_eq!(c2.c(&["PING"]), Reply::simple("PONG"));
}

#[test]
fn mget_del_exists_check_length_keytime() {
    let s = Server::start(&["--mode", "user"]);
    let mut c = s.client();
    c.set(b"a", b"1");
    c.set(b"b", b"22");
    assert_eq!(
        c.c(&["MGET", "a", "nope", "b"]),
        Reply::Array(Some(vec![
            Reply::bulk("1"),
            Reply::nil(),
            Reply::bulk("22")
        ]))
    );
    assert_eq!(c.c(&["EXISTS", "a"]), Reply::Int(1));
    assert_eq!(c.c(&["EXISTS", "zz"]), Reply::Int(0));
    assert_eq!(c.c(&["LENGTH", "b"]), Reply::Int(2));
    assert_eq!(c.c(&["LENGTH", "zz"]), Reply::nil());
    assert_eq!(c.c(&["CHECK", "b"]), Reply::Int(1));
    assert_eq!(c.c(&["CHECK", "zz"]), Reply::nil());
    let t = c.c(&["KEYTIME", "a"]).int();
    assert!((t - now()).abs() <= 2, "KEYTIME {t}");
    assert_eq!(c.c(&["KEYTIME", "zz"]), Reply::nil());

    assert_eq!(c.del(b"a"), Reply::ok());
    assert_eq!(c.del(b"a"), Reply::err("Key not found"));
    assert_eq!(c.del(b"never"), Reply::err("Key not found"));
    assert_eq!(c.get(b"a"), Reply::nil());
    assert_eq!(c.c(&["EXISTS", "a"]), Reply::Int(0));
    assert_eq!(c.c(&["LENGTH", "a"]), Reply::nil());
    assert_eq!(c.c(&["CHECK", "a"]), Reply::nil());
    assert_eq!(c.c(&["KEYTIME", "a"]), Reply::nil());
    assert_eq!(c.dbsize(), 1);
    // a deleted key can be set again (user mode)
    assert_eq!(c.set(b"a", b"again"), Reply::bulk("a"));
    assert_eq!(c.get(b"a"), Reply::bulk("again"));
    assert_eq!(c.dbsize(), 2);
}

#[test]
fn timestamped_set_and_del_for_admin() {
    let s = Server::start(&["--mode", "user"]);
    let mut c = s.client();
    assert_eq!(c.c(&["SET", "k", "v", "1234567"]), Reply::bulk("k"));
    assert_eq!(c.c(&["KEYTIME", "k"]), Reply::Int(1234567));
    assert_eq!(c.c(&["GET", "k"]), Reply::bulk("v"));
    assert_eq!(c.c(&["DEL", "k", "1234600"]), Reply::ok());
    assert_eq!(c.get(b"k"), Reply::nil());
}

#[test]
fn check_detects_corruption() {
    let s = Server::start(&["--mode", "user"]);
    let mut c = s.client();
    let val = b"0123456789abcdef".repeat(8);
    assert_eq!(c.set(b"ck", &val), Reply::bulk("ck"));
    assert_eq!(c.set(b"other", b"fine"), Reply::bulk("other"));
    assert_eq!(c.c(&["CHECK", "ck"]), Reply::Int(1));
    // first entry of d0: header 28, entry header 18, key 2 → value at 48
    let d0 = s.data.join("default").join("d0");
    let mut raw = std::fs::read(&d0).unwrap();
    assert_eq!(&raw[48..48 + val.len()], &val[..], "value not at 48 in d0");
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::OpenOptions::new().write(true).open(&d0).unwrap();
        f.seek(SeekFrom::Start(50)).unwrap();
        f.write_all(b"X").unwrap();
        raw[50] = b'X';
    }
    assert_eq!(c.c(&["CHECK", "ck"]), Reply::Int(0));
    assert_eq!(c.get(b"ck"), Reply::err("Data corrupted"));
    assert_eq!(c.get(b"other"), Reply::bulk("fine"));
    assert_eq!(c.c(&["CHECK", "other"]), Reply::Int(1));
}

#[test]
fn offloaded_data_file() {
    // §8.6: an immutable dN can be deleted; GET fails, index-only commands work.
    let s = Server::start(&["--mode", "user"]);
    let mut c = s.client();
    c.set(b"old", b"value-in-d0");
    assert_eq!(c.c(&["NSJUMP"]), Reply::ok());
    c.set(b"new", b"value-in-d1");
    std::fs::remove_file(s.data.join("default").join("d0")).unwrap();
    assert_eq!(c.get(b"old"), Reply::err("Internal Error"));
    assert_eq!(c.c(&["CHECK", "old"]), Reply::Int(-1));
    assert_eq!(c.c(&["EXISTS", "old"]), Reply::Int(1));
    assert_eq!(c.c(&["LENGTH", "old"]), Reply::Int(11));
    assert_eq!(c.get(b"new"), Reply::bulk("value-in-d1"));
    assert_eq!(c.c(&["PING"]), Reply::simple("PONG"));
}

#[test]
fn pipelining() {
    let s = Server::start(&["--mode", "user"]);
    let mut c = s.client();
    let mut buf = Vec::new();
    for i in 0..200 {
        let k = format!("p{i}");
        let v = format!("v{i}");
        buf.extend(encode(&[b"SET", k.as_bytes(), v.as_bytes()]));
        buf.extend(encode(&[b"GET", k.as_bytes()]));
    }
    c.send_raw(&buf).unwrap();
    for i in 0..200 {
        assert_eq!(c.read_reply().unwrap(), Reply::bulk(format!("p{i}")));
        assert_eq!(c.read_reply().unwrap(), Reply::bulk(format!("v{i}")));
    }
    assert_eq!(c.dbsize(), 200);
}

/// Requests are parsed a batch ahead so their GETs can be prefetched: every request must still
/// see exactly what the ones before it in the same pipeline did (writes, deletes, SELECT, a
/// malformed frame in the middle), in a read cache and without one.
#[test]
fn pipelined_reads_follow_the_requests_before_them() {
    for cache in ["64M", "0"] {
        let s = Server::start(&["--mode", "user", "--read-cache", cache]);
        let mut c = s.client();
        assert_eq!(c.c(&["NSNEW", "other"]), Reply::ok());
        c.select("other");
        c.set(b"a", b"other-a");
        c.select("default");
        c.set(b"a", b"1");
        for i in (0..70).step_by(2) {
            c.set(format!("k{i}").as_bytes(), format!("v{i}").as_bytes());
        }
        // Read once, so the cache (if any) holds the old value of "a" and the even keys.
        assert_eq!(c.get(b"a"), Reply::bulk("1"));
        let keys: Vec<String> = (0..70).map(|i| format!("k{i}")).collect();
        let mut mget: Vec<&[u8]> = vec![b"MGET"];
        mget.extend(keys.iter().map(|k| k.as_bytes()));
        c.cmd(&mget);

        let mut raw = Vec::new();
        let mut want = Vec::new();
        let mut step = |frame: Vec<u8>, reply: Reply| {
            raw.extend(frame);
            want.push(reply);
        };
        step(encode(&[b"GET", b"a"]), Reply::bulk("1"));
        step(encode(&[b"GET", b"b"]), Reply::nil());
        step(encode(&[b"SET", b"b", b"2"]), Reply::bulk("b"));
        step(encode(&[b"GET", b"b"]), Reply::bulk("2"));
        step(encode(&[b"SET", b"a", b"3"]), Reply::bulk("a"));
        step(encode(&[b"GET", b"a"]), Reply::bulk("3"));
        step(b"*0\r\n".to_vec(), Reply::err("Missing arguments"));
        step(encode(&[b"GET", b"b"]), Reply::bulk("2"));
        step(encode(&[b"DEL", b"a"]), Reply::ok());
        step(encode(&[b"GET", b"a"]), Reply::nil());
        step(encode(&[b"SELECT", b"other"]), Reply::ok());
        step(encode(&[b"GET", b"a"]), Reply::bulk("other-a"));
        step(encode(&[b"GET", b"b"]), Reply::nil());
        step(encode(&[b"SELECT", b"default"]), Reply::ok());
        // More GETs than one look-ahead batch, overwrites among them.
        for i in 0..70 {
            let k = format!("k{i}");
            let found = |v: String| {
                if i % 2 == 0 {
                    Reply::bulk(v)
                } else {
                    Reply::nil()
                }
            };
            step(encode(&[b"GET", k.as_bytes()]), found(format!("v{i}")));
            if i % 7 == 0 {
                let v = format!("new{i}");
                step(
                    encode(&[b"SET", k.as_bytes(), v.as_bytes()]),
                    Reply::bulk(&k),
                );
                step(encode(&[b"GET", k.as_bytes()]), Reply::bulk(v));
            }
        }
        let mget_want = (0..70)
            .map(|i| match (i % 7, i % 2) {
                (0, _) => Reply::bulk(format!("new{i}")),
                (_, 0) => Reply::bulk(format!("v{i}")),
                _ => Reply::nil(),
            })
            .collect();
        step(encode(&mget), Reply::Array(Some(mget_want)));
        step(encode(&[b"GET", b"b"]), Reply::bulk("2"));
        c.send_raw(&raw).unwrap();
        for (n, want) in want.iter().enumerate() {
            assert_eq!(&c.read_reply().unwrap(), want, "reply {n} (cache {cache})");
        }
    }
}

#[test]
fn many_clients_concurrently() {
    let s = Server::start(&["--mode", "user"]);
    let port = s.port;
    let handles: Vec<_> = (0..8)
        .map(|t| {
            std::thread::spawn(move || {
                let mut c = Client::connect(port).unwrap();
                for i in 0..100 {
                    let k = format!("t{t}-{i}");
                    let v = pseudo_bytes(t * 1000 + i, 100 + i as usize);
                    assert_eq!(c.set(k.as_bytes(), &v), Reply::bulk(&k));
                }
                for i in 0..100 {
                    let k = format!("t{t}-{i}");
                    let v = pseudo_bytes(t * 1000 + i, 100 + i as usize);
                    assert_eq!(c.get(k.as_bytes()), Reply::bulk(&v));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(s.client().dbsize(), 800);
}
