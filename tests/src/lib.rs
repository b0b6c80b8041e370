//! Harness of the end-to-end tests: a dev node (node-init --dev, storaged, zdb, computed) in a
//! fresh folder, driven through the built binaries as a user would.
//!
//! Needs root (loop devices, btrfs mounts), btrfs-progs, redis-cli and the binaries built first
//! (`cargo build --workspace --bins`); without them a test skips, and fails under `CI=true`
//! ([`nodeutil::skip`]). Everything a test creates lives in one folder `/tmp/zos-e2e-*`. The
//! node in it is removed with `node-init --dev DIR --destroy` (what a user runs), asserted at
//! the end of each test ([`World::destroy_node`]) and tried again, with the whole folder
//! released, when a test fails.
//!
//! [`lab`] runs several nodes on one machine, each in its own network namespace; [`vm`] boots
//! the node image under qemu.
#![deny(missing_docs, clippy::unwrap_used, unsafe_code)]
#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "a test harness fails loudly"
)]

pub mod lab;
pub mod vm;

use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What a finished command printed: its stdout, then its stderr.
pub fn printed(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The `ZOS_ETCD_*` environment that gives `node-init` and `zos` a secured cluster's TLS files
/// and user (none for a plain cluster).
pub fn etcd_env(cluster: &farm::testing::EtcdCluster) -> Vec<(&'static str, std::ffi::OsString)> {
    let Some(f) = cluster.access_files() else {
        return Vec::new();
    };
    [
        ("ZOS_ETCD_CA", f.ca.map(Into::into)),
        ("ZOS_ETCD_CERT", f.cert.map(Into::into)),
        ("ZOS_ETCD_KEY", f.key.map(Into::into)),
        ("ZOS_ETCD_USER", f.user.map(Into::into)),
        ("ZOS_ETCD_PASSWORD_FILE", f.password_file.map(Into::into)),
    ]
    .into_iter()
    .filter_map(|(k, v)| Some((k, v?)))
    .collect()
}

/// Runs `zos ARGS` against the node at `dir` (running or not); success and its output.
pub fn zos(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(bin("zos"))
        .args(args)
        .env("ZOS_NODE", dir)
        .output()
        .expect("run zos");
    (out.status.success(), printed(&out))
}

/// `zos upgrade ARGS --json` against the node at `dir`: success and the reply, read from
/// stdout only (a reverted upgrade prints its reply, then fails); output that is not JSON
/// comes back as a string, with stderr, for the caller's assertions to show.
pub fn zos_upgrade(dir: &Path, args: &[&str]) -> (bool, Value) {
    let out = Command::new(bin("zos"))
        .arg("upgrade")
        .args(args)
        .arg("--json")
        .env("ZOS_NODE", dir)
        .output()
        .expect("run zos");
    let text = String::from_utf8_lossy(&out.stdout);
    let v = serde_json::from_str(&text).unwrap_or_else(|_| {
        Value::String(format!("{text}{}", String::from_utf8_lossy(&out.stderr)))
    });
    (out.status.success(), v)
}

/// Where `cargo build --workspace --bins` put the binaries.
pub fn bin_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("debug")
}

/// `PATH` with the built binaries first: what a node started by a test finds by name.
pub fn path_with_bins() -> String {
    format!(
        "{}:{}",
        bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// A built binary (panics with how to build it when missing).
pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.exists(),
        "{} missing: run `cargo build --workspace --bins` first",
        p.display()
    );
    p
}

/// The repository's root folder.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `true` when a node test can run (root, tools, binaries, plus `extra` files); otherwise
/// records the skip and returns `false`, or panics under `CI=true`.
pub fn require(extra: &[(&str, &str)]) -> bool {
    let mut missing = Vec::new();
    if !nodeutil::skip::is_root() {
        missing.push("root (loop devices, mounts)".to_string());
    }
    for (path, how) in extra {
        if !Path::new(path).exists() {
            missing.push(format!("{path} ({how})"));
        }
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
        if !nodeutil::skip::has_tool(b) {
            missing.push(format!(
                "{b} (apt-get install btrfs-progs util-linux redis-tools)"
            ));
        }
    }
    if !Path::new("/dev/loop-control").exists() {
        missing.push("/dev/loop-control".into());
    }
    let msg = format!("node end-to-end test needs: {}", missing.join(", "));
    !nodeutil::skip::unless(missing.is_empty(), &msg)
}

/// Runs `node-init --dev DIR --destroy`; its success and what it printed.
pub fn destroy(node: &Path) -> (bool, String) {
    let out = Command::new(bin("node-init"))
        .arg("--dev")
        .arg(node)
        .arg("--destroy")
        .output()
        .expect("run node-init --destroy");
    (out.status.success(), printed(&out))
}

/// What is left of a node folder: processes naming it, mounts below it, loop devices backed
/// by files in it. Empty when the node is gone.
pub fn leftovers(dir: &Path) -> Vec<String> {
    let mut left: Vec<String> = nodeutil::teardown::processes_under(dir)
        .into_iter()
        .map(|p| format!("process {p}"))
        .collect();
    let mounts = nodeutil::mounts::current().unwrap_or_default();
    left.extend(
        nodeutil::mounts::under(&mounts, dir)
            .into_iter()
            .map(|m| format!("mount {}", m.display())),
    );
    left.extend(
        nodeutil::teardown::loops_under(dir)
            .into_iter()
            .map(|(d, _)| format!("loop device {}", d.display())),
    );
    left
}

/// One test's folder (`/tmp/zos-e2e-*`) with its node at `node/`; torn down on drop.
pub struct World {
    tmp: tempfile::TempDir,
}

impl Default for World {
    fn default() -> Self {
        Self::new()
    }
}

impl World {
    /// A fresh folder.
    pub fn new() -> World {
        let tmp = tempfile::Builder::new()
            .prefix("zos-e2e-")
            .tempdir_in("/tmp")
            .expect("test folder");
        World { tmp }
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// The node's folder inside it.
    pub fn node_dir(&self) -> PathBuf {
        self.path().join("node")
    }

    /// Writes `text` to `name` in the folder; its path.
    pub fn file(&self, name: &str, text: &str) -> String {
        let p = self.path().join(name);
        std::fs::write(&p, text).expect("write test file");
        p.display().to_string()
    }

    /// Removes the node with `node-init --dev DIR --destroy` and checks that nothing of it is
    /// left: no process, mount, loop device or folder.
    pub fn destroy_node(&self) {
        let dir = self.node_dir();
        let (ok, text) = destroy(&dir);
        assert!(ok, "node-init --destroy failed: {text}");
        assert!(text.contains("folder removed"), "{text}");
        assert_eq!(leftovers(&dir), Vec::<String>::new(), "left by --destroy");
        assert!(!dir.exists(), "node folder left");
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.node_dir().join("log/storaged.log"))
                .unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(80).collect();
            eprintln!("--- storaged.log (last 80 lines) ---");
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
        if self.node_dir().exists() {
            let (ok, text) = destroy(&self.node_dir());
            if !ok {
                eprintln!("node-init --destroy: {text}");
            }
        }
        // Whatever else the test started under the folder; TempDir removes it.
        if let Err(e) = nodeutil::teardown::release(self.path(), Duration::from_secs(5)) {
            eprintln!("releasing {}: {e}", self.path().display());
        }
    }
}

/// A running `node-init --dev` and the `zos` CLI pointed at it.
pub struct Node {
    dir: PathBuf,
    child: Child,
}

/// Starts `cmd` (a `node-init --dev` command) and waits for its `node ready` line.
pub fn start_node(mut cmd: Command, dir: &Path) -> Node {
    let mut child = cmd.stdout(Stdio::piped()).spawn().expect("start node-init");
    let stdout = child.stdout.take().expect("stdout piped");
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

impl Node {
    /// `node-init --dev DIR` with the binaries of this build on `PATH`.
    pub fn start(dir: &Path) -> Node {
        Node::start_with(dir, &[])
    }

    /// [`Node::start`] with more `node-init` arguments.
    pub fn start_with(dir: &Path, args: &[&str]) -> Node {
        let mut cmd = Command::new(bin("node-init"));
        cmd.args(args)
            .arg("--dev")
            .arg(dir)
            .arg("--retry-base-ms")
            .arg("200")
            .env("PATH", path_with_bins());
        start_node(cmd, dir)
    }

    /// Runs `zos ARGS` against the node; success and its output.
    pub fn zos(&self, args: &[&str]) -> (bool, String) {
        zos(&self.dir, args)
    }

    /// `zos ARGS` that must succeed and print JSON.
    pub fn zos_json(&self, args: &[&str]) -> Value {
        let (ok, text) = self.zos(args);
        assert!(ok, "zos {args:?} failed: {text}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("zos {args:?}: {e}: {text}"))
    }

    /// `zos key new KEY`: a new owner key at `key`; its public key.
    pub fn new_owner(&self, key: &Path) -> String {
        let (ok, out) = self.zos(&["key", "new", &key.to_string_lossy()]);
        assert!(ok, "zos key new: {out}");
        out.trim().to_string()
    }

    /// Kills node-init (storaged, zdb and containers stay, as after a crash).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `examples/blueprints/NAME` for `owner`, changed by `edit`: the tests' blueprints are the
/// examples users start from.
pub fn example_blueprint(name: &str, owner: &str, edit: impl FnOnce(&mut Value)) -> String {
    let text = std::fs::read_to_string(repo().join("examples/blueprints").join(name))
        .unwrap_or_else(|e| panic!("examples/blueprints/{name}: {e}"));
    let mut v: Value = serde_json::from_str(&text.replace("OWNER_KEY", owner))
        .unwrap_or_else(|e| panic!("examples/blueprints/{name}: {e}"));
    edit(&mut v);
    serde_json::to_string_pretty(&v).unwrap_or_default()
}

/// pid of the storaged answering on the node's bus.
pub fn storaged_pid(node_dir: &Path) -> Option<u64> {
    let out = Command::new(bin_dir().join("bus"))
        .arg("call")
        .arg(node_dir.join("run/storaged.sock"))
        .arg("health")
        .output()
        .ok()?;
    serde_json::from_slice::<Value>(&out.stdout).ok()?["pid"].as_u64()
}

/// Feeds `script` to `redis-cli -h addr -p port`; what it printed.
pub fn redis(addr: &str, port: u64, script: &str) -> String {
    let mut c = Command::new("redis-cli")
        .args(["-h", addr, "-p", &port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("redis-cli");
    if let Some(mut i) = c.stdin.take() {
        let _ = i.write_all(script.as_bytes());
    }
    let out = c.wait_with_output().expect("redis-cli output");
    printed(&out)
}

/// A busybox root filesystem (`/bin/busybox` and a few applets) packed with `flist pack` into
/// an flist in a dir store under `dir`; returns (flist, identity).
pub fn busybox_flist(dir: &Path) -> (PathBuf, String) {
    busybox_flist_with(dir, &[], &[])
}

/// [`busybox_flist`] with more busybox `applets` linked in `/bin` and `files` (path in the
/// root, content) added.
pub fn busybox_flist_with(
    dir: &Path,
    applets: &[&str],
    files: &[(&str, &[u8])],
) -> (PathBuf, String) {
    let tree = dir.join("tree");
    std::fs::create_dir_all(tree.join("bin")).expect("busybox flist");
    std::fs::copy("/bin/busybox", tree.join("bin/busybox")).expect("busybox flist");
    let base = ["sh", "echo", "cat", "hostname", "sleep", "ls"];
    for a in base.iter().chain(applets) {
        std::os::unix::fs::symlink("busybox", tree.join("bin").join(a)).expect("busybox flist");
    }
    for (path, content) in files {
        std::fs::write(tree.join(path), content).expect("busybox flist");
    }
    for d in ["proc", "dev", "sys", "tmp", "etc", "data"] {
        std::fs::create_dir_all(tree.join(d)).expect("busybox flist");
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
        .expect("busybox flist");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(bin("flist"))
        .arg("inspect")
        .arg(&flist)
        .output()
        .expect("busybox flist");
    let identity = String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("identity: "))
        .expect("busybox flist")
        .trim()
        .to_string();
    (flist, identity)
}

/// The node's zdb servers (processes under `dir` named `zdb`), sorted.
pub fn zdb_pids(dir: &Path) -> Vec<u32> {
    let mut out: Vec<u32> = nodeutil::teardown::processes_under(dir)
        .into_iter()
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "zdb")
        })
        .collect();
    out.sort();
    out
}

/// [`zdb_pids`] once there is one per HDD pool (a dev node has two), 30 s at most: a server
/// whose first start lost its port to a test running beside this one comes up a backoff
/// later, and a snapshot taken before would miss it.
pub fn hdd_zdbs(dir: &Path) -> Vec<u32> {
    let t = std::time::Instant::now();
    loop {
        let zdbs = zdb_pids(dir);
        if zdbs.len() >= DEV_HDDS {
            return zdbs;
        }
        assert!(t.elapsed() < Duration::from_secs(30), "zdbs: {zdbs:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// HDDs of a dev node (`node_init::dev::DEV_DISKS`: hdd0, hdd1, ssd0).
const DEV_HDDS: usize = 2;

/// The pid a daemon of the node at `dir` gives in its bus health, once past `starting`; `None`
/// when it does not answer (0.5 s to connect, 2 s for the reply).
pub fn health_pid(dir: &Path, service: &str) -> Option<u32> {
    health_pid_within(
        dir,
        service,
        Duration::from_millis(500),
        Duration::from_secs(2),
    )
}

/// [`health_pid`] within `connect` / `call`.
pub fn health_pid_within(
    dir: &Path,
    service: &str,
    connect: Duration,
    call: Duration,
) -> Option<u32> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let c = bus::Client::new(dir.join("run").join(format!("{service}.sock")))
            .connect_timeout(connect)
            .call_timeout(call);
        match c.health().await {
            Ok(h) if h.status != bus::api::health::HealthStatus::Starting => Some(h.pid),
            _ => None,
        }
    })
}

/// An executable shell script `tmp/name` running `body` (a stand-in build of a daemon).
pub fn script(tmp: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = tmp.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).expect("write script");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod script");
    p
}

/// Runs the `flist` tool, which must succeed; its standard output, trimmed.
pub fn flist(args: &[&std::ffi::OsStr]) -> String {
    let out = Command::new(bin("flist"))
        .args(args)
        .output()
        .expect("run flist");
    assert!(
        out.status.success(),
        "flist {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Packs `tree` into the flist `file` (blocks in a dir store at `store`) and signs it with the
/// key file `key`: a release for `zos upgrade --flist`.
pub fn signed_release(tree: &Path, file: &Path, store: &Path, key: &Path) {
    let store = format!("dir://{}", store.display());
    flist(&[
        "pack".as_ref(),
        "--quiet".as_ref(),
        "--store".as_ref(),
        store.as_ref(),
        "-o".as_ref(),
        file.as_os_str(),
        tree.as_os_str(),
    ]);
    flist(&[
        "sign".as_ref(),
        "--key".as_ref(),
        key.as_os_str(),
        file.as_os_str(),
    ]);
}

/// A copy at `dest` of our binary `name` with `mark` appended: the same program under another
/// hash, as a new build of it would be.
pub fn rebuilt(name: &str, dest: &Path, mark: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let mut bytes = std::fs::read(bin(name)).expect("read binary");
    bytes.extend_from_slice(mark.as_bytes());
    std::fs::write(dest, bytes).expect("write build");
    std::fs::set_permissions(dest, std::fs::Permissions::from_mode(0o755)).expect("chmod build");
    dest.to_path_buf()
}
