//! Malformed frames on raw TCP (reference §3 and Decisions: a clear error, the
//! connection keeps working or is closed cleanly; never a stuck parser; other
//! clients are served meanwhile).
#![expect(clippy::unwrap_used, reason = "tests")]

mod common;
use common::*;
use std::io::Read;
use std::time::{Duration, Instant};

/// After sending `raw`, the client must get an error reply or a clean close,
/// and then either answer PING or be closed (never hang).
fn expect_error_or_close(s: &Server, raw: &[u8], label: &str) -> Option<String> {
    let mut c = s.client();
    c.set_timeout(Duration::from_secs(5));
    c.send_raw(raw).unwrap();
    let first = c.read_reply();
    let err = match first {
        Ok(Reply::Error(e)) => Some(e),
        Ok(other) => panic!("[{label}] expected an error reply, got {other:?}"),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => None,
        Err(e)
            if e.kind() == std::io::ErrorKind::ConnectionReset
                || e.kind() == std::io::ErrorKind::BrokenPipe =>
        {
            None
        }
        Err(e) => panic!("[{label}] no reply and no close (stuck?): {e}"),
    };
    if err.is_some() {
        // either the connection still works, or it is closed: never stuck
        if c.send(&[b"PING"]).is_ok() {
            match c.read_reply() {
                Ok(Reply::Simple(p)) => assert_eq!(p, "PONG", "[{label}]"),
                Ok(Reply::Error(_)) => {
                    // leftovers of the bad frame may yield more errors; the
                    // connection must still answer a fresh PING eventually
                    let mut ok = false;
                    for _ in 0..8 {
                        match c.read_reply() {
                            Ok(Reply::Simple(p)) if p == "PONG" => {
                                ok = true;
                                break;
                            }
                            Ok(_) => continue,
                            Err(_) => {
                                ok = true; // closed
                                break;
                            }
                        }
                    }
                    assert!(ok, "[{label}] connection neither works nor closes");
                }
                Ok(other) => panic!("[{label}] PING after error: {other:?}"),
                Err(e) => assert!(
                    e.kind() != std::io::ErrorKind::WouldBlock
                        && e.kind() != std::io::ErrorKind::TimedOut,
                    "[{label}] stuck connection after error: {e}"
                ),
            }
        }
    }
    err
}

/// Junk that cannot look like a RESP frame start, terminated by CRLF so an
/// inline-command parser sees a complete line.
fn junk_line(mut v: Vec<u8>) -> Vec<u8> {
    v.insert(0, 0xff);
    v.extend_from_slice(b"\r\n");
    v
}

fn assert_alive(s: &Server, other: &mut Client) {
    assert_eq!(other.c(&["PING"]), Reply::simple("PONG"));
    let mut fresh = s.client();
    assert_eq!(fresh.c(&["PING"]), Reply::simple("PONG"));
}

#[test]
fn star_zero_keeps_connection_working() {
    let s = Server::start(&["--mode", "user"]);
    let mut c = s.client();
    c.send_raw(b"*0\r\n").unwrap();
    let r = c.read_reply().unwrap();
    assert!(r.is_error(), "*0 must give an error, got {r:?}");
    assert_eq!(
        c.c(&["PING"]),
        Reply::simple("PONG"),
        "connection stuck after *0"
    );
    assert_eq!(c.set(b"k", b"v"), Reply::bulk("k"));
}

#[test]
fn malformed_frames_each_get_error_or_close() {
    let s = Server::start(&["--mode", "user"]);
    let mut other = s.client();
    other.set(b"stable", b"value");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("nested array", b"*1\r\n*1\r\n$1\r\na\r\n".to_vec()),
        ("integer element", b"*1\r\n:1\r\n".to_vec()),
        (
            "simple string element",
            b"*2\r\n+PING\r\n$1\r\na\r\n".to_vec(),
        ),
        ("bare integer", b":1\r\n".to_vec()),
        ("bad array length", b"*abc\r\n".to_vec()),
        ("negative array", b"*-5\r\n".to_vec()),
        ("bad bulk length", b"*1\r\n$xyz\r\n".to_vec()),
        ("negative bulk", b"*1\r\n$-3\r\n".to_vec()),
        ("binary junk", junk_line(pseudo_bytes(3, 300))),
        ("nul bytes", junk_line(vec![0u8; 64])),
    ];
    for (label, raw) in cases {
        expect_error_or_close(&s, &raw, label);
        assert_alive(&s, &mut other);
    }
    assert_eq!(other.get(b"stable"), Reply::bulk("value"));
}

#[test]
fn huge_declared_lengths() {
    let s = Server::start(&["--mode", "user"]);
    let mut other = s.client();

    // huge bulk: Payload too big, then closed
    let mut c = s.client();
    c.send_raw(b"*1\r\n$999999999999\r\n").unwrap();
    assert_eq!(c.read_reply().unwrap(), Reply::err("Payload too big"));
    assert!(
        c.is_closed(Duration::from_secs(5)),
        "must close after Payload too big"
    );
    assert_alive(&s, &mut other);

    // huge argument count: error, server does not allocate/wait for it
    let mut c = s.client();
    c.send_raw(b"*99999999\r\n").unwrap();
    let t0 = Instant::now();
    match c.read_reply() {
        Ok(r) => assert_eq!(r, Reply::err("Too many arguments")),
        Err(e) => panic!("*99999999 must be refused at once, got {e}"),
    }
    assert!(t0.elapsed() < Duration::from_secs(2));
    assert_alive(&s, &mut other);

    // 1025 declared, nothing more sent
    let mut c = s.client();
    c.send_raw(b"*1025\r\n").unwrap();
    assert_eq!(c.read_reply().unwrap(), Reply::err("Too many arguments"));
    assert_alive(&s, &mut other);
}

#[test]
fn partial_big_bulk_does_not_block_others() {
    let s = Server::start(&["--mode", "user"]);
    let mut slow = s.client();
    let header = format!("*3\r\n$3\r\nSET\r\n$4\r\nslow\r\n${MIB8}\r\n");
    slow.send_raw(header.as_bytes()).unwrap();
    slow.send_raw(&pseudo_bytes(1, 1_000_000)).unwrap();

    let mut other = s.client();
    let t0 = Instant::now();
    for i in 0..50 {
        let k = format!("o{i}");
        assert_eq!(other.set(k.as_bytes(), b"v"), Reply::bulk(&k));
        assert_eq!(other.get(k.as_bytes()), Reply::bulk("v"));
    }
    assert!(
        t0.elapsed() < Duration::from_secs(3),
        "other client slowed down: {:?}",
        t0.elapsed()
    );
    let mut fresh = s.client();
    assert_eq!(fresh.c(&["PING"]), Reply::simple("PONG"));

    // several stalled clients at once
    let mut stalled = Vec::new();
    for i in 0..5 {
        let mut c = s.client();
        c.send_raw(format!("*3\r\n$3\r\nSET\r\n$2\r\ns{i}\r\n${MIB8}\r\n").as_bytes())
            .unwrap();
        c.send_raw(&pseudo_bytes(i, 100_000)).unwrap();
        stalled.push(c);
    }
    assert_eq!(other.c(&["PING"]), Reply::simple("PONG"));

    // the slow client finishes: its SET succeeds
    slow.send_raw(&pseudo_bytes(2, MIB8 - 1_000_000)).unwrap();
    slow.send_raw(b"\r\n").unwrap();
    assert_eq!(slow.read_reply().unwrap(), Reply::bulk("slow"));
    assert_eq!(other.c(&["LENGTH", "slow"]), Reply::Int(MIB8 as i64));
    // a stalled client disconnecting mid-bulk stores nothing
    drop(stalled);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(other.get(b"s0"), Reply::nil());
    assert_eq!(other.c(&["PING"]), Reply::simple("PONG"));
}

#[test]
fn split_frames_byte_by_byte() {
    let s = Server::start(&["--mode", "user"]);
    let mut c = s.client();
    let frame = encode(&[b"SET", b"split", b"value-split"]);
    for b in &frame {
        c.send_raw(&[*b]).unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(c.read_reply().unwrap(), Reply::bulk("split"));
    assert_eq!(c.get(b"split"), Reply::bulk("value-split"));
}

#[test]
fn abrupt_disconnects_do_not_crash() {
    let mut s = Server::start(&["--mode", "user"]);
    for i in 0..20 {
        let mut c = s.client();
        let frame = encode(&[b"SET", b"k", &pseudo_bytes(i, 50_000)]);
        c.send_raw(&frame[..frame.len() / 2]).unwrap();
        c.shutdown();
    }
    // a client that sends and never reads a big reply
    let mut c = s.client();
    c.set(b"big", &pseudo_bytes(9, 1_000_000));
    for _ in 0..20 {
        c.send(&[b"GET", b"big"]).unwrap();
    }
    drop(c);
    let mut o = s.client();
    assert_eq!(o.c(&["PING"]), Reply::simple("PONG"));
    assert_eq!(o.get(b"k"), Reply::nil());
    assert!(s.is_running());
    // and an idle connection does not hold anything
    let mut idle = std::net::TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    idle.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 8];
    assert!(idle.read(&mut buf).is_err(), "server sent unsolicited data");
    assert_eq!(o.c(&["PING"]), Reply::simple("PONG"));
}
