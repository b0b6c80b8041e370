//! The supervisor with real processes and no root: services an operator dropped into
//! `<node>/services/`, a crash-looping one shown `failed` after its limit (not restarted
//! forever), a killed one back at once, `zos services`, `zos logs SERVICE`, `zos version`, and
//! SIGTERM stopping them all.
#![expect(clippy::unwrap_used, reason = "tests")]

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct NodeInit(Child);

impl Drop for NodeInit {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `node-init --node DIR` (no daemons of its own), once it printed `node ready`.
fn start(dir: &Path) -> NodeInit {
    let mut child = Command::new(env!("CARGO_BIN_EXE_node-init"))
        .arg("--node")
        .arg(dir)
        .env_remove("ZOS_NODE")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let mut line = String::new();
    let mut r = BufReader::new(out);
    while !line.starts_with("node ready") {
        line.clear();
        assert!(r.read_line(&mut line).unwrap() > 0, "node-init ended");
    }
    NodeInit(child)
}

fn zos(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_zos"))
        .args(args)
        .env("ZOS_NODE", dir)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn service(dir: &Path, name: &str) -> Value {
    let (ok, text) = zos(dir, &["services", "--json"]);
    assert!(ok, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    v["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

fn wait_for(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < within, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn alive(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
    })
}

#[test]
fn crash_loop_fails_a_killed_service_returns_and_sigterm_stops_all() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("node");
    let services = dir.join("services");
    std::fs::create_dir_all(&services).unwrap();
    std::fs::write(
        services.join("crasher.json"),
        r#"{"exec": "/bin/sh", "args": ["-c", "echo boom; exit 4"],
            "restart": {"backoff_ms": 50, "limit": 3, "window_secs": 60}}"#,
    )
    .unwrap();
    std::fs::write(
        services.join("sleeper.json"),
        r#"{"exec": "/bin/sh", "args": ["-c", "echo up; exec sleep 1000"],
            "log": {"max_bytes": 4096, "keep": 1}}"#,
    )
    .unwrap();
    let mut node = start(&dir);

    wait_for("crasher failed", Duration::from_secs(10), || {
        service(&dir, "crasher")["state"] == "failed"
    });
    let c = service(&dir, "crasher");
    assert_eq!(c["restarts"], 3, "{c}");
    let detail = c["detail"].as_str().unwrap();
    assert!(
        detail.contains("exit code 4") && detail.contains("more than 3"),
        "{c}"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        service(&dir, "crasher")["restarts"],
        3,
        "restarted after failing"
    );
    let (ok, log) = zos(&dir, &["logs", "crasher"]);
    assert!(ok, "{log}");
    assert_eq!(log.matches("boom").count(), 4, "{log}");

    // kill -9 the sleeper: back within a second (asserted generously)
    wait_for("sleeper running", Duration::from_secs(5), || {
        service(&dir, "sleeper")["state"] == "running"
    });
    let pid = service(&dir, "sleeper")["pid"].as_u64().unwrap();
    Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    let t = Instant::now();
    wait_for("sleeper restarted", Duration::from_secs(5), || {
        let s = service(&dir, "sleeper");
        s["state"] == "running" && s["pid"].as_u64() != Some(pid)
    });
    eprintln!("sleeper back after {:?}", t.elapsed());
    let s = service(&dir, "sleeper");
    assert_eq!(s["restarts"], 1, "{s}");
    assert!(s["version"].as_str().unwrap().starts_with("b3:"), "{s}");
    let (_, log) = zos(&dir, &["logs", "sleeper"]);
    assert_eq!(log.matches("up").count(), 2, "{log}");
    let (ok, table) = zos(&dir, &["services"]);
    assert!(
        ok && table.contains("sleeper") && table.contains("failed"),
        "{table}"
    );
    let (ok, v) = zos(&dir, &["version"]);
    assert!(
        ok && v.contains("node-init") && v.contains("sleeper"),
        "{v}"
    );
    let (ok, e) = zos(&dir, &["logs", "../etc"]);
    assert!(!ok && e.contains("not a service name"), "{e}");

    // SIGTERM: node-init stops its services, then exits
    let new_pid = s["pid"].as_u64().unwrap();
    Command::new("kill")
        .args(["-TERM", &node.0.id().to_string()])
        .status()
        .unwrap();
    let t = Instant::now();
    loop {
        if let Some(st) = node.0.try_wait().unwrap() {
            assert!(st.success(), "{st}");
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "node-init did not exit"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!alive(new_pid), "sleeper left running");
}
