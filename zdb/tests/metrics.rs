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
