//! The farm of dev nodes the scenarios share: storage-only `node-init --dev` nodes in one
//! folder under `/tmp`, each with its own storaged, loop disks and zdb, joined to a farm on a
//! real 3-member etcd; the `zos` CLI pointed at it, and a farm client in this process (the
//! library `zos store` is made of) for what a user cannot do from the CLI: streams of puts,
//! reaching into a node's zdb to damage a shard. Every node is destroyed on drop
//! (`node-init --dev DIR --destroy`), also when the test fails, and the etcd cluster with it.

use farm::codec::seal::StoreKey;
use farm::codec::stripe::Shape;
use farm::ids::NodeId;
use farm::meta::Meta;
use farm::ops::Farm;
use farm::store::ShardStore;
use farm::store::zdb::{ZdbStore, ZdbStoreConfig};
use farm::testing::EtcdCluster;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use tests::{bin, bin_dir};
use zdb_client::Secret;

/// Heartbeat TTL and grace period of the nodes (seconds).
pub const TTL: u64 = 3;
/// Seconds a node may be down before it is out.
pub const GRACE: u64 = 3;

/// True when the test must skip (what is missing was reported).
pub fn skip() -> bool {
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
    for t in ["etcd", "openssl", "mkfs.btrfs", "btrfs", "losetup"] {
        if !nodeutil::skip::has_tool(t) {
            missing.push(format!("{t} (scripts/deps.sh)"));
        }
    }
    nodeutil::skip::unless(missing.is_empty(), &missing.join(", "))
}

/// One runtime for the whole test: the etcd client's connection lives on the runtime it was
/// made on, so a runtime per call would leave `Meta` talking to a dead one.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime")
    })
}

/// Runs `f` on the test's runtime.
pub fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    runtime().block_on(f)
}

/// Polls `f` every 500 ms until it holds or `secs` pass.
pub fn until(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(secs) {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("not within {secs} s: {what}");
}

/// The farm's nodes; on drop every node folder is destroyed, running or crashed.
pub struct Nodes {
    /// The test's folder (node folders, logs, secrets, files).
    pub dir: tempfile::TempDir,
    /// node-init of each node, while it runs.
    pub nodes: Vec<Option<Child>>,
    /// Node ids, by index.
    pub ids: Vec<NodeId>,
    /// The etcd cluster (dropped after the nodes).
    pub etcd: EtcdCluster,
    /// The farm's name.
    pub name: String,
}

impl Drop for Nodes {
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
            self.crash(i);
            if self.node_dir(i).exists() {
                let (ok, text) = tests::destroy(&self.node_dir(i));
                if !ok {
                    eprintln!("destroy node {i}: {text}");
                }
            }
        }
    }
}

impl Nodes {
    /// `n` nodes started (not yet waited for) on a fresh 3-member etcd.
    pub fn start(n: usize) -> Nodes {
        // secured as a farm's etcd should be: TLS with client certificates, auth, JWTs
        let etcd = EtcdCluster::start_secured(3).expect("etcd cluster");
        let mut nodes = Nodes {
            dir: tempfile::Builder::new()
                .prefix("zos-farm-")
                .tempdir_in("/tmp")
                .expect("test folder"),
            nodes: Vec::new(),
            ids: Vec::new(),
            etcd,
            name: format!("farm{}", nodeutil::random::hex(4)),
        };
        for i in 0..n {
            nodes.nodes.push(None);
            nodes.spawn(i);
        }
        for i in 0..n {
            let id = nodes.wait_ready(i, Duration::from_secs(120));
            nodes.ids.push(NodeId(id));
        }
        nodes
    }

    /// The environment that gives `node-init` and `zos` the etcd's TLS files and user.
    pub fn etcd_env(&self) -> Vec<(&'static str, std::ffi::OsString)> {
        tests::etcd_env(&self.etcd)
    }

    /// The etcd client URLs, comma separated.
    pub fn endpoints(&self) -> String {
        self.etcd.endpoints().join(",")
    }

    /// Node `i`'s folder.
    pub fn node_dir(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("node{i}"))
    }

    /// A file in the test's folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn log(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("node{i}.log"))
    }

    /// Starts node-init of node `i` on its folder (a new node, or one that crashed: its
    /// disks, pools and zdb data are found again).
    pub fn spawn(&mut self, i: usize) {
        // Truncated: `wait_ready` looks for this start's `node ready` line.
        let log = std::fs::File::create(self.log(i)).expect("node log");
        let child = Command::new(bin("node-init"))
            .arg("--dev")
            .arg(self.node_dir(i))
            .args([
                "--storage-only",
                "--etcd",
                &self.endpoints(),
                "--farm",
                &self.name,
            ])
            .args(["--farm-group", &format!("g{i}"), "--farm-capacity", "1G"])
            .args(["--farm-ttl", &TTL.to_string()])
            .args(["--farm-grace", &GRACE.to_string()])
            .args(["--farm-repair-tick", "1"])
            .env("ZOS_LOG_FORMAT", "plain")
            .envs(self.etcd_env())
            .stdout(log.try_clone().expect("node log"))
            .stderr(log)
            .spawn()
            .expect("start node-init");
        self.nodes[i] = Some(child);
    }

    /// Waits for node `i`'s `node ready` line; its id.
    pub fn wait_ready(&self, i: usize, within: Duration) -> String {
        let t0 = Instant::now();
        loop {
            let text = std::fs::read_to_string(self.log(i)).unwrap_or_default();
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

    /// Crashes node `i`: SIGKILL to node-init, its storaged and its zdb at once, as a power
    /// cut would stop them. Its disks, mounts and data stay, so it can come back.
    pub fn crash(&mut self, i: usize) {
        if let Some(mut c) = self.nodes.get_mut(i).and_then(Option::take) {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Err(e) = nodeutil::teardown::stop_processes_under(&self.node_dir(i), Duration::ZERO)
        {
            assert!(std::thread::panicking(), "stopping node {i}: {e}");
        }
    }

    /// Index of node `id`.
    pub fn index(&self, id: &NodeId) -> usize {
        self.ids
            .iter()
            .position(|n| n == id)
            .expect("a node of the farm")
    }

    /// `zos ARGS` as the farm's user (etcd, farm, store key and namespace password from the
    /// environment, as the README shows).
    pub fn zos(&self, args: &[&str]) -> Output {
        let mut c = self.command(args);
        if let Ok(store) = std::fs::read_to_string(self.path("store")) {
            c.env("ZOS_STORE", store);
        }
        c.output().expect("run zos")
    }

    /// [`Self::zos`] naming no store.
    pub fn unnamed(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run zos")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin("zos"));
        c.args(args)
            .env_remove("ZOS_NODE")
            .env_remove("ZOS_STORE")
            .env("ZOS_ETCD", self.endpoints())
            .envs(self.etcd_env())
            .env("ZOS_FARM", &self.name)
            .env("ZOS_STORE_PASSWORD_FILE", self.path("pw"))
            .env("ZOS_STORE_KEY", self.path("store.key"))
            .stdin(Stdio::null());
        c
    }

    /// `zos ARGS` that must succeed; its stdout.
    pub fn ok(&self, args: &[&str]) -> Vec<u8> {
        let o = self.zos(args);
        assert!(
            o.status.success(),
            "zos {args:?}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        o.stdout
    }

    /// `zos ARGS` that must succeed; its stdout as text.
    pub fn text(&self, args: &[&str]) -> String {
        String::from_utf8(self.ok(args)).expect("utf-8")
    }

    /// A farm client in this process, as `zos store` makes one.
    pub fn client(&self) -> Farm<ZdbStore> {
        let pw = std::fs::read_to_string(self.path("pw")).expect("password file");
        let store = std::fs::read_to_string(self.path("store")).expect("store name");
        let cfg = ZdbStoreConfig {
            store: Some(store),
            password: Some(Secret::new(pw.trim())),
            ..ZdbStoreConfig::default()
        };
        let access = self.etcd.access();
        block_on(Farm::connect_with(
            &self.etcd.endpoints(),
            &access,
            &self.name,
            cfg,
        ))
        .expect("farm client")
    }

    /// The owner's store key.
    pub fn key(&self) -> StoreKey {
        let hex = std::fs::read_to_string(self.path("store.key")).expect("store key");
        StoreKey::from_hex(&hex).expect("store key")
    }
}

/// The nodes holding shards of object `name`.
pub fn holders(meta: &Meta, name: &str) -> Vec<NodeId> {
    let c = block_on(meta.object(name))
        .expect("read metadata")
        .expect("object exists");
    let mut n: Vec<NodeId> = c.meta.segments.into_iter().flatten().collect();
    n.sort();
    n.dedup();
    n
}

/// Every shard of every stripe of `name` is on the node the metadata says, and verifies.
pub async fn fully_redundant(f: &Farm<ZdbStore>, name: &str) -> bool {
    let Ok(Some(cur)) = f.meta.object(name).await else {
        return false;
    };
    let m = cur.meta;
    let Ok(shape) = Shape::new(m.id, m.params) else {
        return false;
    };
    for stripe in 0..m.stripes() {
        let Some(nodes) = m.nodes_of(stripe) else {
            return false;
        };
        for (p, node) in nodes.iter().enumerate() {
            match f.store.get(node, &shape.shard_id(stripe, p as u8)).await {
                Ok(Some(b)) if shape.verify(stripe, p as u8, &b).is_ok() => {}
                _ => return false,
            }
        }
    }
    true
}

/// Shards in `node`'s namespace (every object's).
pub async fn shards_on(f: &Farm<ZdbStore>, node: &NodeId) -> Option<usize> {
    let mut n = 0;
    let mut cursor = None;
    loop {
        let (ids, next) = f.store.list(node, cursor, 500).await.ok()?;
        n += ids.len();
        match next {
            Some(c) => cursor = Some(c),
            None => return Some(n),
        }
    }
}

/// `len` bytes that zstd does not shrink much, determined by `seed` (xorshift).
pub fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}
