//! End to end: a dev node (node-init --dev, storaged, zdb, computed), a signed zdb blueprint
//! deployed, used through redis-cli, grown, attacked, survived a node-init kill, and deleted;
//! and a signed container blueprint run from a busybox flist with a volume, its output read
//! with `zos logs`, adopted after a node-init kill, and deleted.
//!
//! Needs root (loop devices, btrfs mounts), btrfs-progs, redis-cli and the binaries built first:
//! `cargo build --workspace --bins`. Without them the test is skipped with a
//! message, but fails under `CI=true`. Everything it creates lives in one folder
//! `/tmp/zos-e2e-*`; a guard kills the processes whose command line names that folder
//! (node-init, storaged, zdb), unmounts the pools under it, detaches the loop devices backed by
//! files in it and removes it, also when the test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn bin_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("debug")
}

fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.exists(),
        "{} missing: run `cargo build --workspace --bins` first",
        p.display()
    );
    p
}

fn in_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).exists()))
        .unwrap_or(false)
}

/// `true` when the test can run; otherwise prints why and skips, or panics under `CI=true`.
fn require() -> bool {
    let mut missing = Vec::new();
    let root = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        .unwrap_or(false);
    if !root {
        missing.push("root (loop devices, mounts)".to_string());
    }
    if !Path::new("/bin/busybox").exists() {
        missing.push("/bin/busybox (apt-get install busybox-static)".to_string());
    }
    for b in [
        "node-init",
        "zos",
        "storaged",
        "zdb",
        "bus",
        "computed",
        "flist",
    ] {
        if !bin_dir().join(b).exists() {
            missing.push(format!(
                "{} (cargo build --workspace --bins)",
                bin_dir().join(b).display()
            ));
        }
    }
    for b in ["mkfs.btrfs", "btrfs", "losetup", "redis-cli"] {
        if !in_path(b) {
            missing.push(format!(
                "{b} (apt-get install btrfs-progs util-linux redis-tools)"
            ));
        }
    }
    if !Path::new("/dev/loop-control").exists() {
        missing.push("/dev/loop-control".into());
    }
    if missing.is_empty() {
        return true;
    }
    let msg = format!("node end-to-end test needs: {}", missing.join(", "));
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg}");
    }
    eprintln!("SKIPPED: {msg}");
    false
}

/// Owns the test folder; on drop tears down everything started or mounted from it.
struct World {
    tmp: tempfile::TempDir,
}

impl World {
    fn new() -> World {
        let tmp = tempfile::Builder::new()
            .prefix("zos-e2e-")
            .tempdir_in("/tmp")
            .unwrap();
        World { tmp }
    }

    fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// Processes whose command line names a path inside the folder.
    fn pids(&self) -> Vec<u32> {
        let mut needle = self.path().as_os_str().as_encoded_bytes().to_vec();
        needle.push(b'/');
        let me = std::process::id();
        let mut out = Vec::new();
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            if pid != me && cmd.windows(needle.len()).any(|w| w == needle.as_slice()) {
                out.push(pid);
            }
        }
        out
    }

    fn teardown(&self) {
        let dir = self.path();
        for signal in ["-TERM", "-KILL"] {
            let pids = self.pids();
            if pids.is_empty() {
                break;
            }
            for pid in pids {
                let _ = Command::new("kill")
                    .arg(signal)
                    .arg(pid.to_string())
                    .status();
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            while !self.pids().is_empty() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        // mountinfo field 5 is the mount point (octal escapes only for blanks, absent here)
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut targets: Vec<PathBuf> = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(PathBuf::from))
            .filter(|t| t.starts_with(dir))
            .collect();
        targets.sort_by_key(|t| std::cmp::Reverse(t.as_os_str().len()));
        for t in targets {
            let ok = Command::new("umount")
                .arg(&t)
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                let _ = Command::new("umount").arg("-l").arg(&t).status();
            }
        }
        for e in std::fs::read_dir("/sys/block")
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            let backing =
                std::fs::read_to_string(e.path().join("loop/backing_file")).unwrap_or_default();
            if name.starts_with("loop") && Path::new(backing.trim()).starts_with(dir) {
                let _ = Command::new("losetup")
                    .arg("-d")
                    .arg(format!("/dev/{name}"))
                    .status();
            }
        }
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log =
                std::fs::read_to_string(self.path().join("node/storaged.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(80).collect();
            eprintln!("--- storaged.log (last 80 lines) ---");
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
        self.teardown();
        // TempDir removes the folder
    }
}

struct Node {
    dir: PathBuf,
    child: Child,
}

impl Node {
    fn start(dir: &Path) -> Node {
        let mut child = Command::new(bin("node-init"))
            .arg("--dev")
            .arg(dir)
            .arg("--retry-base-ms")
            .arg("200")
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    bin_dir().display(),
                    std::env::var("PATH").unwrap_or_default()
                ),
            )
            .stdout(Stdio::piped())
            .spawn()
            .expect("start node-init");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(l) if l.starts_with("node ready") => break,
                Ok(_) => continue,
                Err(_) => {
                    let _ = child.kill();
                    panic!("node-init did not print `node ready` in time");
                }
            }
        }
        Node {
            dir: dir.to_path_buf(),
            child,
        }
    }

    fn zos(&self, args: &[&str]) -> (bool, String) {
        let out = Command::new(bin("zos"))
            .args(args)
            .env("ZOS_NODE", &self.dir)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    fn zos_json(&self, args: &[&str]) -> Value {
        let (ok, text) = self.zos(args);
        assert!(ok, "zos {args:?} failed: {text}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("zos {args:?}: {e}: {text}"))
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// pid of the storaged answering on the node's bus.
fn storaged_pid(node_dir: &Path) -> Option<u64> {
    let out = Command::new(bin_dir().join("bus"))
        .arg("call")
        .arg(node_dir.join("run/storaged.sock"))
        .arg("health")
        .output()
        .ok()?;
    serde_json::from_slice::<Value>(&out.stdout).ok()?["pid"].as_u64()
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

fn redis(addr: &str, port: u64, script: &str) -> String {
    let mut c = Command::new("redis-cli")
        .args(["-h", addr, "-p", &port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("redis-cli");
    c.stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = c.wait_with_output().unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn blueprint(owner: &str, version: u64, size: u64) -> String {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/blueprints/zdb.json"),
    )
    .unwrap();
    let mut v: Value = serde_json::from_str(&text.replace("OWNER_KEY", owner)).unwrap();
    v["version"] = version.into();
    v["workloads"][0]["version"] = version.into();
    v["workloads"][0]["data"]["size"] = size.into();
    v["workloads"][0]["data"]["password"] = "e2e-pass".into();
    serde_json::to_string_pretty(&v).unwrap()
}

#[test]
fn zdb_blueprint_end_to_end() {
    if !require() {
        return;
    }
    let tmp = World::new();
    let dir = tmp.path().join("node");
    let key = tmp.path().join("alice.key");
    let bob = tmp.path().join("bob.key");
    let mut node = Node::start(&dir);
    let (_, owner) = node.zos(&["key", "new", key.to_str().unwrap()]);
    node.zos(&["key", "new", bob.to_str().unwrap()]);
    let owner = owner.trim().to_string();
    let file = |name: &str, text: String| {
        let p = tmp.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };
    let k = key.to_str().unwrap();

    // deploy a 1 GiB user-mode namespace with a password
    let v0 = file("v0.json", blueprint(&owner, 0, 1 << 30));
    let view = node.zos_json(&["deploy", &v0, "--key", k, "--wait", "--json"]);
    let result = &view["deployment"]["workloads"][0]["result"];
    assert_eq!(result["state"], "ok", "{view}");
    let (ns, addr, port) = (
        result["data"]["namespace"].as_str().unwrap().to_string(),
        result["data"]["address"].as_str().unwrap().to_string(),
        result["data"]["port"].as_u64().unwrap(),
    );
    let (_, shown) = node.zos(&["get", "mydb", "--json"]);
    assert!(!shown.contains("e2e-pass"), "password shown by zos get");

    // SET/GET with the password; refused without it
    let out = redis(
        &addr,
        port,
        &format!("SELECT {ns} e2e-pass\nSET k hello\nGET k\n"),
    );
    assert!(out.contains("hello"), "{out}");
    let out = redis(&addr, port, &format!("SELECT {ns}\nGET k\n"));
    assert!(!out.contains("hello"), "read without password: {out}");

    // grow with an update
    let v1 = file("v1.json", blueprint(&owner, 1, 2 << 30));
    let view = node.zos_json(&["deploy", &v1, "--key", k, "--wait", "--json"]);
    let result = &view["deployment"]["workloads"][0]["result"];
    assert_eq!(result["state"], "ok", "{view}");
    assert_eq!(result["data"]["size"].as_u64(), Some(2 << 30));
    let before = node.zos_json(&["get", "mydb", "--json"]);

    // forged, unsigned, replayed and wrong-signer blueprints are refused, nothing changes
    let v2 = file("v2.json", blueprint(&owner, 2, 3 << 30));
    assert!(node.zos(&["sign", &v2, "--key", k]).0);
    let mut forged: Value = serde_json::from_str(&std::fs::read_to_string(&v2).unwrap()).unwrap();
    forged["workloads"][0]["data"]["size"] = (4u64 << 30).into();
    let forged = file("forged.json", forged.to_string());
    let unsigned = file("unsigned.json", blueprint(&owner, 2, 3 << 30));
    let wrong = file("wrong.json", blueprint(&owner, 2, 3 << 30));
    assert!(
        node.zos(&["sign", &wrong, "--key", bob.to_str().unwrap()])
            .0
    );
    for (what, f, key) in [
        ("forged", &forged, None),
        ("unsigned", &unsigned, None),
        ("replayed v0", &v0, Some(k)),
        ("wrong signer", &wrong, None),
    ] {
        let mut args = vec!["deploy", f.as_str()];
        if let Some(k) = key {
            args.extend(["--key", k]);
        }
        let (ok, text) = node.zos(&args);
        assert!(!ok, "{what} blueprint accepted: {text}");
        assert_eq!(
            node.zos_json(&["get", "mydb", "--json"]),
            before,
            "{what} changed the deployment"
        );
    }

    // kill node-init and restart it: state reconciled
    let storaged = storaged_pid(&dir);
    assert!(storaged.is_some(), "storaged does not answer health");
    node.kill();
    drop(node);
    let node = Node::start(&dir);
    assert_eq!(storaged_pid(&dir), storaged, "storaged not adopted");
    let view = node.zos_json(&["get", "mydb", "--json"]);
    assert_eq!(view["version"], 1);
    assert_eq!(
        view["deployment"]["workloads"][0]["result"]["state"], "ok",
        "{view}"
    );
    let out = redis(&addr, port, &format!("SELECT {ns} e2e-pass\nGET k\n"));
    assert!(out.contains("hello"), "{out}");

    // delete: namespace gone
    let view = node.zos_json(&["delete", "mydb", "--key", k, "--wait", "--json"]);
    assert_eq!(view["state"], "deleted");
    let out = redis(&addr, port, &format!("SELECT {ns} e2e-pass\n"));
    assert!(!out.trim().ends_with("OK"), "namespace still there: {out}");
    let (ok, _) = node.zos(&["deploy", &v0, "--key", k]);
    assert!(
        !ok,
        "deleted deployment re-created from a replayed blueprint"
    );

    drop(node);
    drop(tmp);
}

/// A busybox root filesystem packed into an flist in a dir store; returns (flist, identity).
fn busybox_flist(dir: &Path) -> (PathBuf, String) {
    let tree = dir.join("tree");
    std::fs::create_dir_all(tree.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", tree.join("bin/busybox")).unwrap();
    for a in ["sh", "echo", "cat", "hostname", "sleep", "ls"] {
        std::os::unix::fs::symlink("busybox", tree.join("bin").join(a)).unwrap();
    }
    for d in ["proc", "dev", "sys", "tmp", "etc", "data"] {
        std::fs::create_dir_all(tree.join(d)).unwrap();
    }
    let flist = dir.join("busybox.flist");
    let store = dir.join("store");
    let out = Command::new(bin("flist"))
        .args(["pack", "--quiet", "--store"])
        .arg(format!("dir://{}", store.display()))
        .arg("-o")
        .arg(&flist)
        .arg(&tree)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(bin("flist"))
        .arg("inspect")
        .arg(&flist)
        .output()
        .unwrap();
    let identity = String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("identity: "))
        .unwrap()
        .trim()
        .to_string();
    (flist, identity)
}

fn container_blueprint(owner: &str, flist: &Path, identity: &str, memory: u64) -> String {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/blueprints/container.json"),
    )
    .unwrap();
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
    if !require() {
        return;
    }
    let tmp = World::new();
    let dir = tmp.path().join("node");
    let key = tmp.path().join("alice.key");
    let mut node = Node::start(&dir);
    let (_, owner) = node.zos(&["key", "new", key.to_str().unwrap()]);
    let owner = owner.trim().to_string();
    let k = key.to_str().unwrap();
    let (flist, identity) = busybox_flist(tmp.path());
    let file = |name: &str, text: String| {
        let p = tmp.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };

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
    drop(tmp);
}
