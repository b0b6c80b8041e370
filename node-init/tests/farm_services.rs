//! `zos services --etcd URLS --node ID`: a farm node (`node-init --etcd --farm`, a real etcd)
//! publishes its supervisor's snapshot in the farm's etcd; the host reads it there without
//! the node's socket. A service crash-looping into `failed` shows up (a change is published
//! without waiting for the refresh), and a clean stop removes the snapshot at once.
#![expect(clippy::unwrap_used, reason = "tests")]

use farm::testing::EtcdCluster;
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

/// node-init on `dir` in farm `farm`, no daemons of its own; returns it and its node id.
fn start(dir: &Path, etcd: &str, farm: &str) -> (NodeInit, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_node-init"))
        .arg("--node")
        .arg(dir)
        .args(["--etcd", etcd, "--farm", farm, "--farm-no-repair"])
        .env_remove("ZOS_NODE")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut r = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.starts_with("node ready") {
        line.clear();
        assert!(r.read_line(&mut line).unwrap() > 0, "node-init ended");
    }
    let id = line
        .strip_prefix("node ready: id ")
        .and_then(|l| l.split(',').next())
        .unwrap()
        .to_string();
    (NodeInit(child), id)
}

/// `zos services --etcd ... --node ID --json`: the snapshot, or None when there is none.
fn published(etcd: &str, farm: &str, id: &str) -> Option<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_zos"))
        .args(["services", "--json", "--etcd", etcd, "--farm", farm])
        .args(["--node", id])
        .env_remove("ZOS_NODE")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        assert!(err.contains("publishes no services"), "{err}");
        return None;
    }
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

fn state(v: &Value, name: &str) -> Option<String> {
    v["list"]["services"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == name)
        .and_then(|s| s["state"].as_str().map(str::to_string))
}

fn wait_for(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < within, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_farm_node_publishes_its_services_and_removes_them_when_it_stops() {
    if nodeutil::skip::unless(farm::testing::has_etcd(), "etcd (Debian etcd-server)") {
        return;
    }
    let cluster = EtcdCluster::start(1).unwrap();
    let etcd = cluster.endpoint(0).unwrap().to_string();
    let farm = format!("s{}", nodeutil::random::hex(6));
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("node");
    let services = dir.join("services");
    std::fs::create_dir_all(&services).unwrap();
    std::fs::write(
        services.join("sleeper.json"),
        r#"{"exec": "/bin/sh", "args": ["-c", "exec sleep 1000"]}"#,
    )
    .unwrap();
    std::fs::write(
        services.join("crasher.json"),
        r#"{"exec": "/bin/sh", "args": ["-c", "sleep 1; exit 4"],
            "restart": {"backoff_ms": 50, "limit": 1, "window_secs": 60}}"#,
    )
    .unwrap();
    let (node, id) = start(&dir, &etcd, &farm);

    wait_for(
        "the sleeper running, seen through etcd",
        Duration::from_secs(20),
        || {
            published(&etcd, &farm, &id)
                .is_some_and(|v| state(&v, "sleeper").as_deref() == Some("running"))
        },
    );
    // failed after its restart: a change, published within a poll (well before the refresh)
    wait_for(
        "the crasher failed, seen through etcd",
        Duration::from_secs(20),
        || {
            published(&etcd, &farm, &id)
                .is_some_and(|v| state(&v, "crasher").as_deref() == Some("failed"))
        },
    );
    let v = published(&etcd, &farm, &id).unwrap();
    assert!(v["at"].as_u64().unwrap() > 0, "{v}");
    assert!(v["list"]["node_init_version"].is_string(), "{v}");

    // a clean stop revokes the snapshot's lease: gone at once, not after the TTL
    let pid = rustix::process::Pid::from_raw(node.0.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    wait_for("the snapshot removed", Duration::from_secs(8), || {
        published(&etcd, &farm, &id).is_none()
    });
    drop(node);
}
