//! Real clients: redis-cli (args mode, stdin line mode, -x), raw TCP inline
//! commands, and the `redis` crate (Decisions: inline commands accepted).
#![expect(clippy::unwrap_used, reason = "tests")]

mod common;
use common::*;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

fn cli(port: u16, args: &[&str]) -> (String, bool) {
    let out = Command::new("redis-cli")
        .arg("-p")
        .arg(port.to_string())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.status.success(),
    )
}

#[test]
fn redis_cli_args_mode() {
    if nodeutil::skip::unless(
        nodeutil::skip::has_tool("redis-cli"),
        "redis-cli (apt-get install redis-tools)",
    ) {
        return;
    }
    let s = Server::start(&["--mode", "user"]);
    assert_eq!(cli(s.port, &["PING"]).0.trim(), "PONG");
    assert_eq!(cli(s.port, &["SET", "k", "hello world"]).0.trim(), "k");
    assert_eq!(cli(s.port, &["GET", "k"]).0.trim(), "hello world");
    assert_eq!(cli(s.port, &["EXISTS", "k"]).0.trim(), "1");
    assert_eq!(cli(s.port, &["DBSIZE"]).0.trim(), "1");
    let (out, _) = cli(s.port, &["DEL", "nope"]);
    assert!(out.contains("Key not found"), "{out:?}");
    assert_eq!(cli(s.port, &["GET", "nope"]).0.trim(), "");
    let (out, _) = cli(s.port, &["NSLIST"]);
    assert!(out.lines().any(|l| l.trim() == "default"), "{out:?}");
    let (out, _) = cli(s.port, &["INFO"]);
    assert!(out.contains("server_name: 0-db (zdb)"), "{out:?}");
    let mut c = s.client();
    assert_eq!(c.get(b"k"), Reply::bulk("hello world"));
}

#[test]
fn redis_cli_stdin_lines_and_x() {
    if nodeutil::skip::unless(
        nodeutil::skip::has_tool("redis-cli"),
        "redis-cli (apt-get install redis-tools)",
    ) {
        return;
    }
    let s = Server::start(&["--mode", "user"]);
    let mut child = Command::new("redis-cli")
        .arg("-p")
        .arg(s.port.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"SET a 1\nSET b 2\nGET a\nMGET a b c\nNSNEW x\nSELECT x\nSET c 3\nDBSIZE\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().map(|l| l.trim()).collect();
    assert_eq!(
        lines,
        vec!["a", "b", "1", "1", "2", "", "OK", "OK", "c", "1"],
        "redis-cli output:\n{text}"
    );

    // -x: last argument from stdin (binary safe)
    let payload: Vec<u8> = (0u8..=255).cycle().take(10_000).collect();
    let mut child = Command::new("redis-cli")
        .arg("-p")
        .arg(s.port.to_string())
        .args(["-x", "SET", "bin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&payload).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "bin");
    let mut c = s.client();
    assert_eq!(c.get(b"bin"), Reply::bulk(&payload));
    c.select("x");
    assert_eq!(c.get(b"c"), Reply::bulk("3"));
}

#[test]
fn raw_tcp_inline_commands() {
    let s = Server::start(&["--mode", "user"]);
    let stream = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut w = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream);
    let mut line = String::new();

    w.write_all(b"PING\r\n").unwrap();
    r.read_line(&mut line).unwrap();
    assert_eq!(line, "+PONG\r\n");

    w.write_all(b"SET inl value\r\n").unwrap();
    assert_eq!(read_reply(&mut r).unwrap(), Reply::bulk("inl"));
    // bare LF line ending, as nc sends
    w.write_all(b"GET inl\n").unwrap();
    assert_eq!(read_reply(&mut r).unwrap(), Reply::bulk("value"));
    w.write_all(b"ping\r\nDBSIZE\r\n").unwrap();
    assert_eq!(read_reply(&mut r).unwrap(), Reply::simple("PONG"));
    assert_eq!(read_reply(&mut r).unwrap(), Reply::Int(1));
    w.write_all(b"NOSUCH a b\r\n").unwrap();
    assert_eq!(
        read_reply(&mut r).unwrap(),
        Reply::err("Command not supported")
    );
    // mixing inline and RESP on one connection
    w.write_all(&encode(&[b"GET", b"inl"])).unwrap();
    assert_eq!(read_reply(&mut r).unwrap(), Reply::bulk("value"));
    w.write_all(b"PING\r\n").unwrap();
    assert_eq!(read_reply(&mut r).unwrap(), Reply::simple("PONG"));
}

#[test]
fn redis_crate_client() {
    let s = Server::start(&["--mode", "user"]);
    let client = redis::Client::open(format!("redis://127.0.0.1:{}/", s.port)).unwrap();
    let mut con = client.get_connection().unwrap();
    let pong: String = redis::cmd("PING").query(&mut con).unwrap();
    assert_eq!(pong, "PONG");
    let key: Vec<u8> = redis::cmd("SET")
        .arg("rk")
        .arg(&b"rv\x00\xff"[..])
        .query(&mut con)
        .unwrap();
    assert_eq!(key, b"rk");
    let v: Vec<u8> = redis::cmd("GET").arg("rk").query(&mut con).unwrap();
    assert_eq!(v, b"rv\x00\xff");
    let missing: Option<Vec<u8>> = redis::cmd("GET").arg("zz").query(&mut con).unwrap();
    assert!(missing.is_none());
    let err = redis::cmd("DEL")
        .arg("zz")
        .query::<String>(&mut con)
        .unwrap_err();
    assert!(format!("{err}").contains("not found"), "{err}");
    let n: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
    assert_eq!(n, 1);
}
