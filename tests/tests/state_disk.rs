//! End to end (issue 21): the dev node's state folder on a small loop-mounted ext4; remounted
//! read-only, then filled: each reported (node health `degraded`, `zos services`), survived
//! (the zdb namespace keeps serving reads, changes are refused) and recovered by itself once
//! writable again. Then `zos services restart computed`.
#![expect(clippy::unwrap_used, reason = "tests")]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use tests::{Node, World, example_blueprint, redis, require};

fn zdb_blueprint(owner: &str, version: u64, size: u64) -> String {
    example_blueprint("zdb.json", owner, |v| {
        v["version"] = version.into();
        v["workloads"][0]["version"] = version.into();
        v["workloads"][0]["data"]["size"] = size.into();
        v["workloads"][0]["data"]["password"] = "disk-pass".into();
    })
}

fn run(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A small ext4 loop-mounted at the node's state folder; unmounted on drop.
struct StateDisk(PathBuf);

impl StateDisk {
    fn mount(image: &Path, at: &Path) -> StateDisk {
        run("truncate", &["-s", "16M", image.to_str().unwrap()]);
        run(
            "mkfs.ext4",
            &["-q", "-F", "-m", "0", image.to_str().unwrap()],
        );
        std::fs::create_dir_all(at).unwrap();
        run(
            "mount",
            &["-o", "loop", image.to_str().unwrap(), at.to_str().unwrap()],
        );
        StateDisk(at.to_path_buf())
    }

    fn remount(&self, how: &str) {
        run(
            "mount",
            &["-o", &format!("remount,{how}"), self.0.to_str().unwrap()],
        );
    }
}

impl Drop for StateDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn health(dir: &Path) -> Value {
    let out = Command::new(tests::bin("bus"))
        .arg("call")
        .arg(dir.join("run/node-init.sock"))
        .arg("health")
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

/// Waits (20 s) until node-init's health satisfies `f`.
fn wait_health(dir: &Path, what: &str, f: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let h = health(dir);
        if f(&h) {
            return h;
        }
        assert!(Instant::now() < deadline, "{what}: {h}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn degraded_with(word: &'static str) -> impl Fn(&Value) -> bool {
    move |h| h["status"] == "degraded" && h["detail"].as_str().is_some_and(|d| d.contains(word))
}

#[test]
fn state_disk_read_only_or_full_is_reported_survived_and_recovered() {
    if !require(&[("/usr/sbin/mkfs.ext4", "apt-get install e2fsprogs")]) {
        return;
    }
    let tmp = World::new();
    let dir = tmp.node_dir();
    let disk = StateDisk::mount(&tmp.path().join("state.img"), &dir.join("state"));
    let key = tmp.path().join("alice.key");
    let node = Node::start(&dir);
    let owner = node.new_owner(&key);
    let k = key.to_str().unwrap();
    let v0 = tmp.file("v0.json", &zdb_blueprint(&owner, 0, 1 << 30));
    let view = node.zos_json(&["deploy", &v0, "--key", k, "--wait", "--json"]);
    let data = view["deployment"]["workloads"][0]["result"]["data"].clone();
    let (ns, addr, port) = (
        data["namespace"].as_str().unwrap().to_string(),
        data["address"].as_str().unwrap().to_string(),
        data["port"].as_u64().unwrap(),
    );
    let out = redis(&addr, port, &format!("SELECT {ns} disk-pass\nSET k v\n"));
    assert!(out.contains("OK"), "{out}");
    assert_eq!(health(&dir)["status"], "ok");

    // read-only: reported, changes refused, reads served
    disk.remount("ro");
    let t0 = Instant::now();
    wait_health(&dir, "read-only not reported", degraded_with("read-only"));
    eprintln!("read-only state disk reported in {:?}", t0.elapsed());
    let (_, services) = node.zos(&["services"]);
    assert!(
        services
            .lines()
            .next()
            .is_some_and(|l| l.starts_with("node: degraded") && l.contains("read-only")),
        "{services}"
    );
    let list = node.zos_json(&["services", "--json"]);
    assert_eq!(list["node"]["status"], "degraded", "{list}");
    let v1 = tmp.file("v1.json", &zdb_blueprint(&owner, 1, 2 << 30));
    let (ok, text) = node.zos(&["deploy", &v1, "--key", k]);
    assert!(!ok, "deploy accepted on a read-only state disk: {text}");
    let out = redis(&addr, port, &format!("SELECT {ns} disk-pass\nGET k\n"));
    assert!(out.lines().any(|l| l.trim() == "v"), "{out}");
    assert_eq!(
        node.zos_json(&["get", "mydb", "--json"])["deployment"]["workloads"][0]["result"]["state"],
        "ok"
    );

    // writable again: recovered without a restart, changes accepted
    disk.remount("rw");
    let t0 = Instant::now();
    wait_health(&dir, "not recovered", |h| h["status"] == "ok");
    eprintln!("recovered from read-only in {:?}", t0.elapsed());
    let view = node.zos_json(&["deploy", &v1, "--key", k, "--wait", "--json"]);
    assert_eq!(
        view["deployment"]["workloads"][0]["result"]["data"]["size"].as_u64(),
        Some(2 << 30),
        "{view}"
    );

    // full: reported; freed: recovered
    let filler = dir.join("state/filler");
    let _ = Command::new("dd")
        .args(["if=/dev/zero", "bs=1M", "count=64"])
        .arg(format!("of={}", filler.display()))
        .output()
        .unwrap();
    wait_health(&dir, "full disk not reported", degraded_with("full"));
    let out = redis(&addr, port, &format!("SELECT {ns} disk-pass\nGET k\n"));
    assert!(out.lines().any(|l| l.trim() == "v"), "{out}");
    std::fs::remove_file(&filler).unwrap();
    wait_health(&dir, "not recovered from full", |h| h["status"] == "ok");

    // an operator's restart of a daemon
    let before = node.zos_json(&["services", "--json"]);
    let pid_of = |l: &Value, n: &str| {
        l["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == n)
            .and_then(|s| s["pid"].as_u64())
    };
    let t0 = Instant::now();
    let s = node.zos_json(&["services", "restart", "computed", "--json"]);
    eprintln!("computed restarted and ready in {:?}", t0.elapsed());
    assert_eq!(s["state"], "running", "{s}");
    assert_ne!(s["pid"].as_u64(), pid_of(&before, "computed"), "{s}");
    let after = node.zos_json(&["services", "--json"]);
    assert_eq!(pid_of(&after, "storaged"), pid_of(&before, "storaged"));
    let (ok, text) = node.zos(&["services", "restart", "nosuch"]);
    assert!(!ok && text.contains("no service"), "{text}");

    let view = node.zos_json(&["delete", "mydb", "--key", k, "--wait", "--json"]);
    assert_eq!(view["state"], "deleted");
    drop(node);
    drop(disk);
    tmp.destroy_node();
}
