//! `--metrics ADDR`: Prometheus text on GET /metrics with command, byte, namespace and
//! compaction series.
#![expect(clippy::unwrap_used, reason = "tests")]

mod common;
use common::*;
use std::io::{Read, Write};

fn scrape(port: u16, path: &str) -> String {
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn metrics_endpoint() {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let s = Server::start(&["--mode", "user", "--metrics", &addr]);
    let mut c = s.client();
    for i in 0..5 {
        c.set(format!("k{i}").as_bytes(), b"12345");
    }
    c.get(b"k1");
    c.c(&["NOPE"]);
    c.del(b"k2");
    let text = scrape(port, "/metrics");
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    for want in [
        "zdb_commands_total{command=\"SET\"} 5",
        "zdb_command_errors_total{command=\"unknown\"} 1",
        "zdb_command_duration_seconds_count{command=\"GET\"} 1",
        "zdb_namespace_entries{namespace=\"default\"} 4",
        "zdb_namespace_data_bytes{namespace=\"default\"} 20",
        "zdb_namespace_compacting{namespace=\"default\"} 0",
        "zdb_value_written_bytes_total 25",
        "zdb_value_read_bytes_total 5",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    assert!(text.contains("zdb_namespace_dead_bytes{namespace=\"default\"}"));
    // This client at least (the harness's readiness probe may still be closing).
    let clients: i64 = text
        .lines()
        .find_map(|l| l.strip_prefix("zdb_clients "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no zdb_clients gauge in\n{text}"));
    assert!(clients >= 1, "zdb_clients {clients}");
    assert!(scrape(port, "/other").starts_with("HTTP/1.1 404"));
}

/// A command's error series counts its own failures only: while one client's WAIT waited,
/// another client's failing commands used to be counted against the WAIT.
#[test]
fn failures_count_against_the_command_that_failed() {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let s = Server::start(&["--mode", "user", "--metrics", &addr]);
    let mut waiter = s.client();
    let mut other = s.client();
    waiter.send(&[b"WAIT", b"GET", b"10000"]).unwrap();
    other.wait_blocked(1);
    // A malformed GET fails, and wakes the WAIT (which succeeds).
    assert_eq!(
        other.c(&["GET", "a", "b"]),
        Reply::err("Unexpected arguments")
    );
    assert_eq!(waiter.read_reply().unwrap(), Reply::simple("GET"));
    let text = scrape(port, "/metrics");
    assert!(
        text.contains("zdb_command_errors_total{command=\"GET\"} 1"),
        "{text}"
    );
    assert!(
        !text.contains("zdb_command_errors_total{command=\"WAIT\"}"),
        "WAIT counted as failed:\n{text}"
    );
    assert!(
        text.contains("zdb_commands_total{command=\"WAIT\"} 1"),
        "{text}"
    );
}
