//! A storage farm of five storage-only dev nodes on one machine (each node-init with its own
//! storaged, loop disks and zdb; `--storage-only`: no computed, no netd) and a real 3-member
//! etcd. Nothing is provisioned by hand: the owner signs one `store` deployment and writes it
//! to the farm through etcd (`zos deploy --etcd`); every node applies it through its engine,
//! which has storaged allocate the shard namespace, and registers that namespace. Objects go
//! in and out with `zos store` (2+1); a node holding shards is killed (node-init, storaged and
//! zdb gone): every object still reads; after the grace period the repair loop the nodes run
//! moves its shard positions elsewhere without any command; then another node holding shards
//! is killed and everything still reads, so redundancy was restored.
//!
//! Needs root (loop devices, btrfs mounts), etcd, btrfs-progs and the binaries (`cargo build
//! --workspace --bins`); skipped otherwise, failed under CI.
#![expect(clippy::unwrap_used, reason = "a failed step fails the run")]

use farm::ids::NodeId;
use farm::meta::Meta;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use tests::{bin, bin_dir};

const NODES: usize = 5;

/// True when the test must skip (what is missing was reported).
fn skip() -> bool {
    let mut missing: Vec<String> = Vec::new();
    if !nodeutil::skip::is_root() {
        missing.push("root".into());
    }
    if !Path::new("/dev/loop-control").exists() {
        missing.push("/dev/loop-control".into());
    }
    for b in ["node-init", "zos", "storaged", "zdb"] {
        if !bin_dir().join(b).exists() {
            missing.push(format!("{b} (cargo build --workspace --bins)"));
        }
    }
    for t in ["etcd", "mkfs.btrfs", "btrfs", "losetup"] {
        if !nodeutil::skip::has_tool(t) {
            missing.push(format!("{t} (scripts/deps.sh)"));
        }
    }
    nodeutil::skip::unless(missing.is_empty(), &missing.join(", "))
}

/// The farm's nodes; on drop each is destroyed (`node-init --dev DIR --destroy`).
struct Farm {
    dir: tempfile::TempDir,
    nodes: Vec<Option<Child>>,
    ids: Vec<NodeId>,
    etcd: String,
    name: String,
}

impl Drop for Farm {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for i in 0..self.nodes.len() {
                let logs = [
                    self.dir.path().join(format!("node{i}.log")),
                    self.node_dir(i).join("log/storaged.log"),
                ];
                for log in logs {
                    let text = std::fs::read_to_string(&log).unwrap_or_default();
                    let tail: Vec<&str> = text.lines().rev().take(30).collect();
                    eprintln!("--- {} (last 30 lines) ---", log.display());
                    for l in tail.iter().rev() {
                        eprintln!("{l}");
                    }
                }
            }
        }
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}

impl Farm {
    fn node_dir(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("node{i}"))
    }

    /// Starts node `i` and returns once it printed `node ready` (its id).
    fn start(&mut self, i: usize) -> String {
        let dir = self.node_dir(i);
        let log = std::fs::File::create(self.dir.path().join(format!("node{i}.log"))).unwrap();
        let child = Command::new(bin("node-init"))
            .arg("--dev")
            .arg(&dir)
            .args(["--storage-only", "--etcd", &self.etcd, "--farm", &self.name])
            .args(["--farm-group", &format!("g{i}"), "--farm-capacity", "1G"])
            .args([
                "--farm-ttl",
                "3",
                "--farm-grace",
                "3",
                "--farm-repair-tick",
                "1",
            ])
            .env("ZOS_LOG_FORMAT", "plain")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.nodes.push(Some(child));
        dir.display().to_string()
    }

    fn wait_ready(&self, i: usize, within: Duration) -> String {
        let log = self.dir.path().join(format!("node{i}.log"));
        let t0 = Instant::now();
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(id) = text
                .lines()
                .find_map(|l| l.strip_prefix("node ready: id "))
                .and_then(|r| r.split(',').next())
            {
                return id.to_string();
            }
            assert!(t0.elapsed() < within, "node {i} not ready:\n{text}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Kills node `i`: node-init at once, then its storaged and zdb (the dev node destroyed).
    fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.nodes.get_mut(i).and_then(Option::take) {
            let _ = c.kill();
            let _ = c.wait();
            let (ok, text) = tests::destroy(&self.node_dir(i));
            assert!(ok || std::thread::panicking(), "destroy node {i}: {text}");
        }
    }

    fn zos(&self, args: &[&str]) -> Output {
        let d = self.dir.path();
        Command::new(bin("zos"))
            .args(args)
            .env_remove("ZOS_NODE")
            .env("ZOS_ETCD", &self.etcd)
            .env("ZOS_FARM", &self.name)
            .env("ZOS_STORE_PASSWORD_FILE", d.join("pw"))
            .env("ZOS_STORE_KEY", d.join("store.key"))
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> Vec<u8> {
        let o = self.zos(args);
        assert!(
            o.status.success(),
            "zos {args:?}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        o.stdout
    }
}

/// One runtime for the whole test: the etcd client's connection lives on the runtime it was
/// made on, so a runtime per call would leave `Meta` talking to a dead one.
fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    })
    .block_on(f)
}

/// Polls `f` every 500 ms until it holds or `secs` pass.
fn until(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(secs) {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("not within {secs} s: {what}");
}

/// The nodes holding shards of object `name`.
fn holders(meta: &Meta, name: &str) -> Vec<NodeId> {
    let c = block_on(meta.object(name)).unwrap().unwrap();
    let mut n: Vec<NodeId> = c.meta.segments.into_iter().flatten().collect();
    n.sort();
    n.dedup();
    n
}

#[test]
fn store_deployment_through_etcd_objects_survive_a_node_and_repair_starts_by_itself() {
    if skip() {
        return;
    }
    let cluster = farm::testing::EtcdCluster::start(3).unwrap();
    let mut f = Farm {
        dir: tempfile::Builder::new()
            .prefix("zos-farm-")
            .tempdir_in("/tmp")
            .unwrap(),
        nodes: Vec::new(),
        ids: Vec::new(),
        etcd: cluster.endpoints().join(","),
        name: format!("farm{}", nodeutil::random::hex(4)),
    };
    for i in 0..NODES {
        f.start(i);
    }
    for i in 0..NODES {
        let id = f.wait_ready(i, Duration::from_secs(120));
        f.ids.push(NodeId(id));
    }
    let meta = block_on(Meta::connect(&cluster.endpoints(), &f.name)).unwrap();

    // The owner signs one store deployment for the farm and writes it through etcd.
    let d = f.dir.path();
    let password = format!("pw-{}", nodeutil::random::hex(8));
    std::fs::write(d.join("pw"), &password).unwrap();
    let owner = f.dir.path().join("owner.key");
    f.ok(&["key", "new", owner.to_str().unwrap()]);
    let owner_pub = String::from_utf8(f.ok(&["key", "show", owner.to_str().unwrap()])).unwrap();
    let owner_pub = owner_pub.split_whitespace().last().unwrap().to_string();
    let store = json!({
        "id": "shards",
        "version": 0,
        "owner": owner_pub,
        "signers": {"threshold": 1, "keys": [{"key": owner_pub, "weight": 1}]},
        "workloads": [{
            "name": "shards", "type": "store", "version": 0,
            "data": {"farm": f.name, "size": 512u64 << 20, "password": password},
        }],
    });
    std::fs::write(d.join("store.json"), store.to_string()).unwrap();
    let (etcd, name) = (f.etcd.clone(), f.name.clone());
    let bp = d.join("store.json");
    f.ok(&[
        "deploy",
        bp.to_str().unwrap(),
        "--key",
        owner.to_str().unwrap(),
        "--etcd",
        etcd.as_str(),
        "--farm",
        name.as_str(),
    ]);

    // Every node provisions its namespace through storaged and registers it.
    until(90, "five nodes registered with a store namespace", || {
        block_on(meta.nodes()).is_ok_and(|ns| {
            ns.iter()
                .filter(|v| {
                    v.alive.is_some() && v.record.zdb.iter().any(|z| z.namespace.contains("shards"))
                })
                .count()
                == NODES
        })
    });
    let views = block_on(meta.nodes()).unwrap();
    assert!(
        views.iter().all(|v| v
            .alive
            .as_ref()
            .is_some_and(|a| a.free > 0 && a.free <= 512 << 20)),
        "heartbeats report the namespaces' free space: {views:?}"
    );

    // Objects in and out (2+1).
    f.ok(&["store", "keygen", d.join("store.key").to_str().unwrap()]);
    let mut objects = Vec::new();
    for (n, size) in [("empty", 0usize), ("one", 1), ("stripes", 9 << 20 | 7)] {
        let data: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
        let p = d.join(n);
        std::fs::write(&p, &data).unwrap();
        f.ok(&["store", "put", "--shards", "2+1", n, p.to_str().unwrap()]);
        objects.push((n, data));
    }
    let read_all = |f: &Farm, when: &str| {
        for (n, data) in &objects {
            let got = f.ok(&["store", "get", n, "-"]);
            assert!(got == *data, "{n} reads back {when}");
        }
    };
    read_all(&f, "after the puts");

    // Kill a node holding shards of the large object: everything still reads.
    let victim = holders(&meta, "stripes")[0].clone();
    let vi = f.ids.iter().position(|i| *i == victim).unwrap();
    f.kill(vi);
    read_all(&f, "with a node gone");

    // Repair moves the lost positions elsewhere by itself.
    until(90, "no object has a shard on the dead node", || {
        objects
            .iter()
            .all(|(n, _)| !holders(&meta, n).contains(&victim))
    });
    read_all(&f, "after the repair");

    // Redundancy is back: another holder may die too.
    let second = holders(&meta, "stripes")
        .into_iter()
        .find(|n| *n != victim)
        .unwrap();
    let si = f.ids.iter().position(|i| *i == second).unwrap();
    f.kill(si);
    read_all(&f, "with a second node gone after the repair");
}
