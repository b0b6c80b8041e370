//! End to end: node-init killed with SIGKILL in the middle of an upgrade (the new version
//! started, not ready yet), then started again, leaves the old version running: the journal
//! is undone at start (the new process stopped, the definition restored) and the service
//! serves again. The service is a copy of `sleep` whose readiness is a file the test controls,
//! so the upgrade is held at the exact step where node-init dies.
#![expect(clippy::unwrap_used, reason = "tests")]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tests::{Node, World, bin, require};

/// A copy of `sleep` (with `extra` appended: another build, another hash).
fn sleep_build(tmp: &Path, name: &str, extra: &[u8]) -> PathBuf {
    let p = tmp.join(name);
    let mut bytes = std::fs::read("/bin/sleep").unwrap();
    bytes.extend_from_slice(extra);
    std::fs::write(&p, bytes).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

/// pids whose binary is `exe`.
fn running(exe: &Path) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| std::fs::read_link(format!("/proc/{p}/exe")).is_ok_and(|x| x == exe))
        .collect()
}

fn wait_for(what: &str, secs: u64, f: impl Fn() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < Duration::from_secs(secs), "{what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn node_init_killed_mid_upgrade_leaves_the_old_version_running() {
    if !require(&[]) {
        return;
    }
    let tmp = World::new();
    let dir = tmp.node_dir();
    let ready = tmp.path().join("slow.ready");
    let old = sleep_build(tmp.path(), "slowd", b"");
    let new = sleep_build(tmp.path(), "slowd-new", b"\nnew build\n");
    std::fs::create_dir_all(dir.join("services")).unwrap();
    std::fs::write(
        dir.join("services/slow.json"),
        serde_json::json!({
            "exec": old, "args": ["1000"], "ready": {"path": ready}, "ready_timeout_secs": 120,
        })
        .to_string(),
    )
    .unwrap();
    std::fs::write(&ready, "").unwrap();
    let mut node = Node::start(&dir);
    wait_for("slow not started", 10, || running(&old).len() == 1);

    // the upgrade: the new version starts but is never ready (no file) while node-init dies
    std::fs::remove_file(&ready).unwrap();
    let mut zos = Command::new(bin("zos"))
        .args(["upgrade", "slow", "--from"])
        .arg(&new)
        .env("ZOS_NODE", &dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let installed = |p: &u32| {
        std::fs::read_link(format!("/proc/{p}/exe"))
            .is_ok_and(|x| x.starts_with(dir.join("versions/slow")))
    };
    let all = || -> Vec<u32> {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .collect()
    };
    wait_for("the new version did not start", 30, || {
        all().iter().any(installed)
    });
    assert!(dir.join("upgrade/slow.journal.json").exists());
    node.kill();
    let _ = zos.wait();
    let new_pids: Vec<u32> = all().into_iter().filter(installed).collect();
    assert!(!new_pids.is_empty());

    // node-init again: the switch is undone, the old version runs and is ready
    std::fs::write(&ready, "").unwrap();
    let t = Instant::now();
    let node = Node::start(&dir);
    eprintln!("node-init back after the kill in {:?}", t.elapsed());
    for p in &new_pids {
        assert!(
            !Path::new(&format!("/proc/{p}")).exists()
                || std::fs::read_to_string(format!("/proc/{p}/stat"))
                    .is_ok_and(|s| s.contains(") Z ")),
            "the half-upgraded process {p} still runs"
        );
    }
    assert!(!dir.join("upgrade/slow.journal.json").exists());
    let def: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("services/slow.json")).unwrap()).unwrap();
    assert_eq!(def["exec"], old.to_string_lossy().as_ref(), "{def}");
    wait_for("the old version is not running again", 10, || {
        running(&old).len() == 1
    });
    let services = node.zos_json(&["services", "--json"]);
    let slow = services["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "slow")
        .unwrap()
        .clone();
    assert_eq!(slow["pid"], running(&old)[0], "{slow}");
    for d in ["storaged", "computed", "netd"] {
        let s = services["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == d)
            .unwrap();
        assert!(s["pid"].is_u64(), "{d} not running: {s}");
    }
    drop(node);
    tmp.destroy_node();
}
