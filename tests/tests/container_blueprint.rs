//! End to end: a signed container blueprint run from a busybox flist with a volume on a dev
//! node, its output read with `zos logs`, adopted after a node-init kill, and deleted; then the
//! node removed with `node-init --dev DIR --destroy`.
#![expect(clippy::unwrap_used, reason = "tests")]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tests::{Node, World, busybox_flist, repo, require};

fn container_blueprint(owner: &str, flist: &Path, identity: &str, memory: u64) -> String {
    let text = std::fs::read_to_string(repo().join("examples/blueprints/container.json")).unwrap();
    let mut v: Value = serde_json::from_str(&text.replace("OWNER_KEY", owner)).unwrap();
    let app = &mut v["workloads"][1]["data"];
    app["flist"] = flist.display().to_string().into();
    app["identity"] = identity.into();
    app["memory"] = memory.into();
    app["entrypoint"] = serde_json::json!([
        "/bin/sh",
        "-c",
        "echo hello from $(hostname); echo layer > /etc/written; echo kept > /data/out; \
         cat /data/out; while true; do sleep 1; done"
    ]);
    serde_json::to_string_pretty(&v).unwrap()
}

#[test]
fn container_blueprint_end_to_end() {
    if !require(&[("/bin/busybox", "apt-get install busybox-static")]) {
        return;
    }
    let tmp = World::new();
    let dir = tmp.node_dir();
    let key = tmp.path().join("alice.key");
    let mut node = Node::start(&dir);
    let owner = node.new_owner(&key);
    let k = key.to_str().unwrap();
    let (flist, identity) = busybox_flist(tmp.path());
    let file = |name: &str, text: String| tmp.file(name, &text);

    // more memory than the node has: refused before anything is made
    let greedy = file(
        "greedy.json",
        container_blueprint(&owner, &flist, &identity, 1 << 50),
    );
    let (ok, text) = node.zos(&["deploy", &greedy, "--key", k]);
    assert!(!ok && text.contains("capacity"), "{text}");

    let bp = file(
        "web.json",
        container_blueprint(&owner, &flist, &identity, 64 << 20),
    );
    let view = node.zos_json(&["deploy", &bp, "--key", k, "--wait", "--json"]);
    let wls = &view["deployment"]["workloads"];
    let vol = &wls[0]["result"];
    let app = &wls[1]["result"];
    assert_eq!(vol["state"], "ok", "{view}");
    assert_eq!(app["state"], "ok", "{view}");
    assert_eq!(app["data"]["state"], "running", "{view}");
    let pid = app["data"]["pid"].as_u64().unwrap();
    let rw = PathBuf::from(app["data"]["rw"].as_str().unwrap());
    let vol_path = PathBuf::from(vol["data"]["path"].as_str().unwrap());

    // output through zos logs; writes in the overlay's upper layer and in the volume
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, logs) = node.zos(&["logs", "web", "app"]);
        if logs.contains("hello from app") && logs.contains("kept") {
            break;
        }
        assert!(Instant::now() < deadline, "no output: {logs}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        std::fs::read_to_string(rw.join("upper/etc/written")).unwrap(),
        "layer\n"
    );
    assert_eq!(
        std::fs::read_to_string(vol_path.join("out")).unwrap(),
        "kept\n"
    );

    // node-init killed and restarted: the container keeps running and is adopted
    node.kill();
    drop(node);
    assert!(
        Path::new(&format!("/proc/{pid}")).exists(),
        "container died with node-init"
    );
    let node = Node::start(&dir);
    let view = node.zos_json(&["get", "web", "--json"]);
    assert_eq!(
        view["deployment"]["workloads"][1]["result"]["state"], "ok",
        "{view}"
    );
    assert_eq!(
        view["deployment"]["workloads"][1]["result"]["data"]["pid"].as_u64(),
        Some(pid),
        "{view}"
    );

    // delete: container, overlay and both volumes released
    let view = node.zos_json(&["delete", "web", "--key", k, "--wait", "--json"]);
    assert_eq!(view["state"], "deleted");
    let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| !s.rsplit_once(") ").is_some_and(|(_, r)| r.starts_with('Z')));
    assert!(!alive, "container still running");
    assert!(!rw.exists(), "writable layer volume left");
    assert!(!vol_path.exists(), "data volume left");
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    let computed_root = dir.join("computed").display().to_string();
    assert!(
        !mounts.contains(&computed_root),
        "overlay or flist mount left:\n{mounts}"
    );
    drop(node);
    tmp.destroy_node();
}
