//! End to end, self-healing (issue 21): a dev node with a 1 s drift check; a zdb namespace
//! deleted with zdb's own NSDEL is made again; a container whose shim is killed, whose root
//! overlay is unmounted, or whose flist daemon is killed runs again; a container that exits
//! shows `exited` in `zos get`; a volume's subvolume deleted with `btrfs subvolume delete` is
//! made again (empty); a network's namespace deleted with `ip netns del` comes back.
#![expect(clippy::unwrap_used, reason = "tests")]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use tests::{Node, World, busybox_flist, example_blueprint, redis, repo, require};

fn zdb_blueprint(owner: &str) -> String {
    example_blueprint("zdb.json", owner, |v| {
        v["workloads"][0]["data"]["size"] = (1u64 << 30).into();
        v["workloads"][0]["data"]["password"] = "drift-pass".into();
    })
}

fn container_blueprint(owner: &str, flist: &Path, identity: &str) -> String {
    let text = std::fs::read_to_string(repo().join("examples/blueprints/container.json")).unwrap();
    let mut v: Value = serde_json::from_str(&text.replace("OWNER_KEY", owner)).unwrap();
    let app = &mut v["workloads"][1]["data"];
    app["flist"] = flist.display().to_string().into();
    app["identity"] = identity.into();
    // runs until /data/quit exists, then exits 0 (on_failure: not restarted); stops at once
    // on SIGTERM (a shell as pid 1 ignores it otherwise: every repair would wait 10 s)
    app["entrypoint"] = serde_json::json!([
        "/bin/sh",
        "-c",
        "trap 'exit 0' TERM; while [ ! -e /data/quit ]; do sleep 0.2; done; exit 0"
    ]);
    serde_json::to_string_pretty(&v).unwrap()
}

/// Polls `zos get ID --json` until `f` holds for workload `i` (30 s).
fn wait_workload(node: &Node, id: &str, i: usize, what: &str, f: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let view = node.zos_json(&["get", id, "--json"]);
        let wl = view["deployment"]["workloads"][i].clone();
        if f(&wl) {
            return wl;
        }
        assert!(Instant::now() < deadline, "{what}: {view}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// pids whose command line holds every one of `parts`.
fn pids_with(parts: &[&str]) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if parts.iter().all(|p| cmd.contains(p)) {
            out.push(pid);
        }
    }
    out
}

/// pids whose standard output is `file`.
fn pids_writing(file: &Path) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if std::fs::read_link(e.path().join("fd/1")).is_ok_and(|l| l == file) {
            out.push(pid);
        }
    }
    out
}

fn kill9(pid: i32) {
    let ok = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(ok.success(), "kill -9 {pid}");
}

/// Mount points under `root` of type `fstype`.
fn mounts_of(root: &Path, fstype: &str) -> Vec<PathBuf> {
    let root = root.display().to_string();
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f.len() > 2 && f[1].starts_with(&root) && f[2].starts_with(fstype))
                .then(|| PathBuf::from(f[1]))
        })
        .collect()
}

fn pid_of(wl: &Value) -> Option<u64> {
    wl["result"]["data"]["pid"].as_u64()
}

fn running_with_new_pid(old: u64) -> impl Fn(&Value) -> bool {
    move |wl| wl["result"]["data"]["state"] == "running" && pid_of(wl).is_some_and(|p| p != old)
}

/// A dev node that checks for drift every second: its world, folder, the node, and an owner's
/// key file and public key.
fn drift_node() -> (World, PathBuf, Node, PathBuf, String) {
    let tmp = World::new();
    let dir = tmp.node_dir();
    let key = tmp.path().join("alice.key");
    let node = Node::start_with(&dir, &["--reconcile-secs", "1"]);
    let owner = node.new_owner(&key);
    (tmp, dir, node, key, owner)
}

#[test]
fn drift_is_repaired() {
    if !require(&[("/bin/busybox", "apt-get install busybox-static")]) {
        return;
    }
    let (tmp, dir, node, key, owner) = drift_node();
    let k = key.to_str().unwrap();

    // zdb: a namespace deleted behind the node's back with NSDEL is made again
    let bp = tmp.file("zdb.json", &zdb_blueprint(&owner));
    let view = node.zos_json(&["deploy", &bp, "--key", k, "--wait", "--json"]);
    let data = view["deployment"]["workloads"][0]["result"]["data"].clone();
    let (ns, addr, port) = (
        data["namespace"].as_str().unwrap().to_string(),
        data["address"].as_str().unwrap().to_string(),
        data["port"].as_u64().unwrap(),
    );
    let mut deleted = false;
    for admin in glob_admin_files(&dir) {
        let pw = std::fs::read_to_string(&admin).unwrap();
        let out = redis(&addr, port, &format!("AUTH {}\nNSDEL {ns}\n", pw.trim()));
        if out.lines().filter(|l| l.trim() == "OK").count() == 2 {
            deleted = true;
        }
    }
    assert!(deleted, "NSDEL failed");
    let out = redis(&addr, port, &format!("NSINFO {ns}\n"));
    assert!(out.contains("not found"), "{out}");
    let t0 = Instant::now();
    let wl = wait_workload(&node, "mydb", 0, "namespace not repaired", |wl| {
        wl["result"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("repaired: "))
    });
    eprintln!("namespace repaired in {:?}: {wl}", t0.elapsed());
    assert_eq!(wl["result"]["state"], "ok");
    let out = redis(
        &addr,
        port,
        &format!("SELECT {ns} drift-pass\nSET k v\nGET k\n"),
    );
    assert!(out.lines().any(|l| l.trim() == "v"), "{out}");
    let out = redis(&addr, port, &format!("SELECT {ns}\nGET k\n"));
    assert!(
        !out.lines().any(|l| l.trim() == "v"),
        "password lost: {out}"
    );

    // container: running
    let (flist, identity) = busybox_flist(tmp.path());
    let bp = tmp.file("web.json", &container_blueprint(&owner, &flist, &identity));
    let view = node.zos_json(&["deploy", &bp, "--key", k, "--wait", "--json"]);
    let app = &view["deployment"]["workloads"][1];
    assert_eq!(app["result"]["data"]["state"], "running", "{view}");
    let pid = pid_of(app).unwrap();
    let vol = PathBuf::from(
        view["deployment"]["workloads"][0]["result"]["data"]["path"]
            .as_str()
            .unwrap(),
    );
    let name = format!("{}-web-app", &owner[..16]);

    // its shim killed: restarted
    let shims = pids_with(&["shim", &name]);
    assert_eq!(shims.len(), 1, "shim of {name}: {shims:?}");
    kill9(shims[0]);
    let t0 = Instant::now();
    let wl = wait_workload(
        &node,
        "web",
        1,
        "shim not restarted",
        running_with_new_pid(pid),
    );
    eprintln!(
        "container back after its shim was killed in {:?}",
        t0.elapsed()
    );
    let pid = pid_of(&wl).unwrap();

    // its root overlay unmounted: restarted on a new mount
    let computed = dir.join("computed");
    let overlays = mounts_of(&computed, "overlay");
    assert_eq!(overlays.len(), 1, "{overlays:?}");
    let ok = Command::new("umount")
        .arg("-l")
        .arg(&overlays[0])
        .status()
        .unwrap();
    assert!(ok.success());
    let t0 = Instant::now();
    let wl = wait_workload(
        &node,
        "web",
        1,
        "overlay not remounted",
        running_with_new_pid(pid),
    );
    eprintln!(
        "container back after its overlay was unmounted in {:?}",
        t0.elapsed()
    );
    assert_eq!(mounts_of(&computed, "overlay"), overlays);
    let pid = pid_of(&wl).unwrap();

    // its flist daemon killed (the mount stays, dead): restarted on a new flist mount
    let fuse = mounts_of(&dir, "fuse");
    assert_eq!(fuse.len(), 1, "{fuse:?}");
    // the daemon's output goes to the log beside its mount point
    let log = fuse[0].parent().unwrap().join("daemon.log");
    let daemons = pids_writing(&log);
    assert!(
        !daemons.is_empty(),
        "no flist daemon for {}",
        fuse[0].display()
    );
    for d in daemons {
        kill9(d);
    }
    let t0 = Instant::now();
    let wl = wait_workload(
        &node,
        "web",
        1,
        "flist not remounted",
        running_with_new_pid(pid),
    );
    eprintln!(
        "container back after its flist daemon was killed in {:?}",
        t0.elapsed()
    );
    assert!(
        std::fs::read_dir(&overlays[0]).is_ok_and(|mut d| d.next().is_some_and(|e| e.is_ok())),
        "root not readable after the repair"
    );
    assert!(pid_of(&wl).is_some());

    // the container exits: `zos get` shows it
    std::fs::write(vol.join("quit"), b"").unwrap();
    let wl = wait_workload(&node, "web", 1, "exit not shown", |wl| {
        wl["result"]["data"]["state"] == "exited"
    });
    assert_eq!(wl["result"]["data"]["exit_code"], 0, "{wl}");
    assert_eq!(wl["result"]["state"], "ok", "{wl}");

    for id in ["web", "mydb"] {
        let view = node.zos_json(&["delete", id, "--key", k, "--wait", "--json"]);
        assert_eq!(view["state"], "deleted");
    }
    drop(node);
    tmp.destroy_node();
}

fn netns_exists(name: &str) -> bool {
    Path::new("/run/netns").join(name).exists()
}

#[test]
fn volume_and_network_drift_is_repaired() {
    if !require(&[("/usr/sbin/ip", "apt-get install iproute2")]) {
        return;
    }
    let (tmp, _, node, key, owner) = drift_node();
    let k = key.to_str().unwrap();
    let bp = serde_json::json!({
        "id": "kit", "version": 0, "owner": owner,
        "signers": {"threshold": 1, "keys": [{"key": owner, "weight": 1}]},
        "workloads": [
            {"name": "data", "type": "volume", "version": 0, "data": {"size": 64 << 20}},
            {"name": "net", "type": "network", "version": 0, "data": {
                "ip_range": "10.62.0.0/16", "subnet": "10.62.1.0/24", "peers": []}},
        ],
        "signatures": [],
    });
    let bp = tmp.file("kit.json", &bp.to_string());
    let view = node.zos_json(&["deploy", &bp, "--key", k, "--wait", "--json"]);
    let wls = &view["deployment"]["workloads"];
    for w in wls.as_array().unwrap() {
        assert_eq!(w["result"]["state"], "ok", "{view}");
    }
    let vol = PathBuf::from(wls[0]["result"]["data"]["path"].as_str().unwrap());
    let netns = wls[1]["result"]["data"]["netns"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(netns_exists(&netns), "{view}");

    // the volume's subvolume deleted: made again, empty, with the same path
    std::fs::write(vol.join("old"), b"gone with it").unwrap();
    let out = Command::new("btrfs")
        .args(["subvolume", "delete"])
        .arg(&vol)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(!vol.exists());
    let t0 = Instant::now();
    let wl = wait_workload(&node, "kit", 0, "volume not repaired", |wl| {
        wl["result"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("repaired: "))
            && wl["result"]["state"] == "ok"
    });
    eprintln!("volume repaired in {:?}: {wl}", t0.elapsed());
    assert!(vol.is_dir(), "{}", vol.display());
    assert!(!vol.join("old").exists());
    let out = Command::new("btrfs")
        .args(["subvolume", "show"])
        .arg(&vol)
        .output()
        .unwrap();
    assert!(out.status.success(), "not a subvolume: {out:?}");
    std::fs::write(vol.join("new"), b"writable").unwrap();

    // the network's namespace deleted: back, with its tunnel interface
    let ok = Command::new("ip")
        .args(["netns", "del", &netns])
        .status()
        .unwrap();
    assert!(ok.success());
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(30);
    loop {
        let back = netns_exists(&netns)
            && Command::new("ip")
                .args(["-n", &netns, "link", "show", "wg0"])
                .output()
                .is_ok_and(|o| o.status.success());
        if back {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "namespace {netns} not made again"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("network namespace back in {:?}", t0.elapsed());
    let wl = wait_workload(&node, "kit", 1, "network not ok", |wl| {
        wl["result"]["state"] == "ok"
    });
    assert_eq!(wl["result"]["data"]["netns"], netns.as_str(), "{wl}");

    let view = node.zos_json(&["delete", "kit", "--key", k, "--wait", "--json"]);
    assert_eq!(view["state"], "deleted");
    assert!(!netns_exists(&netns));
    drop(node);
    tmp.destroy_node();
}

/// The admin password files of the node's zdb servers.
fn glob_admin_files(node_dir: &Path) -> Vec<PathBuf> {
    let pools = node_dir.join("storaged/pools");
    std::fs::read_dir(&pools)
        .map(|d| {
            d.flatten()
                .map(|e| e.path().join("zdb/admin"))
                .filter(|p| p.exists())
                .collect()
        })
        .unwrap_or_default()
}
