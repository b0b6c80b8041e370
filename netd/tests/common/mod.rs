//! A lab of netd nodes on one machine: each node is a network namespace with one interface on
//! a bridge that plays the internet (203.0.113.0/24, inside a namespace of its own; the bridge
//! itself is 203.0.113.254, "a host on the internet"), running its own netd. Everything is
//! named after a per-lab tag and removed on drop, also when the test fails.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use bus::Method;
use bus::api::network::{
    ApplyNetwork, AttachNetwork, AttachRequest, Network, NetworkSpec, PeerSpec,
};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Whether this machine can run the lab; otherwise skips (fails under CI).
pub fn require(extra_tools: &[&str]) -> bool {
    let mut missing: Vec<String> = Vec::new();
    if !nodeutil::skip::is_root() {
        missing.push("root".into());
    }
    if !std::path::Path::new("/dev/net/tun").exists() {
        missing.push("/dev/net/tun".into());
    }
    for t in ["ip", "nft", "ping", "nsenter"].iter().chain(extra_tools) {
        if !nodeutil::skip::has_tool(t) {
            missing.push(format!("{t} (scripts/deps.sh)"));
        }
    }
    nodeutil::skip::unless(missing.is_empty(), &missing.join(", "))
}

/// Runs a command, panicking with its output when it fails.
pub fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a command, telling whether it succeeded.
pub fn ok(args: &[&str]) -> bool {
    Command::new(args[0])
        .args(&args[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// One ping from namespace `ns` to `to`, waiting at most `wait_ms`.
pub fn ping(ns: &str, to: Ipv4Addr, wait_ms: u32) -> bool {
    let w = format!("{}", f64::from(wait_ms) / 1000.0);
    ok(&[
        "ip",
        "netns",
        "exec",
        ns,
        "ping",
        "-c",
        "1",
        "-W",
        &w,
        &to.to_string(),
    ])
}

/// Pings until one answers or `within` passes; returns how long it took.
pub fn ping_until(ns: &str, to: Ipv4Addr, within: Duration) -> Option<Duration> {
    let t0 = Instant::now();
    while t0.elapsed() < within {
        if ping(ns, to, 200) {
            return Some(t0.elapsed());
        }
    }
    None
}

/// A netd node.
pub struct Node {
    /// Its namespace.
    pub ns: String,
    /// Its address on the internet bridge.
    pub addr: Ipv4Addr,
    dir: PathBuf,
    child: Option<Child>,
}

impl Node {
    /// The bus socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.join("run/netd.sock")
    }

    /// Prefix of its network namespaces.
    pub fn prefix(&self) -> String {
        format!("{}-n-", self.ns)
    }
}

/// The lab.
pub struct Lab {
    /// Prefix of every name it makes.
    pub tag: String,
    /// The internet namespace (bridge `br0` = 203.0.113.254).
    pub inet: String,
    /// Nodes.
    pub nodes: Vec<Node>,
    dir: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// The host on the internet bridge.
pub const INTERNET_HOST: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 254);

impl Lab {
    /// `n` nodes, netd started on each.
    pub fn new(n: usize) -> Lab {
        let tag = format!(
            "nt{}{}",
            std::process::id() % 100_000,
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let inet = format!("{tag}-i");
        let mut lab = Lab {
            inet: inet.clone(),
            nodes: Vec::new(),
            dir: tempfile::tempdir().unwrap(),
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            tag,
        };
        sh(&["ip", "netns", "add", &inet]);
        sh(&["ip", "-n", &inet, "link", "set", "lo", "up"]);
        sh(&["ip", "-n", &inet, "link", "add", "br0", "type", "bridge"]);
        sh(&[
            "ip",
            "-n",
            &inet,
            "addr",
            "add",
            "203.0.113.254/24",
            "dev",
            "br0",
        ]);
        sh(&["ip", "-n", &inet, "link", "set", "br0", "up"]);
        for i in 1..=n {
            let ns = format!("{}-{i}", lab.tag);
            let addr = Ipv4Addr::new(203, 0, 113, i as u8);
            sh(&["ip", "netns", "add", &ns]);
            // No IPv6: its link-local address would appear late and blur before/after checks.
            for k in ["all", "default"] {
                let key = format!("net.ipv6.conf.{k}.disable_ipv6=1");
                sh(&["ip", "netns", "exec", &ns, "sysctl", "-qw", &key]);
            }
            lab.plug(&ns, &format!("p{i}"), addr);
            let dir = lab.dir.path().join(format!("node{i}"));
            lab.nodes.push(Node {
                ns,
                addr,
                dir,
                child: None,
            });
            lab.start(i - 1);
        }
        lab
    }

    /// Puts namespace `ns` on the internet bridge: its `eth0` (the bridge's port `port`) gets
    /// `addr`/24 and a default route via the internet host.
    pub fn plug(&self, ns: &str, port: &str, addr: Ipv4Addr) {
        let inet = self.inet.as_str();
        let cidr = format!("{addr}/24");
        let steps: [&[&str]; 6] = [
            &[
                "ip", "link", "add", port, "netns", inet, "type", "veth", "peer", "name", "eth0",
                "netns", ns,
            ],
            &["ip", "-n", inet, "link", "set", port, "master", "br0", "up"],
            &["ip", "-n", ns, "link", "set", "lo", "up"],
            &["ip", "-n", ns, "addr", "add", &cidr, "dev", "eth0"],
            &["ip", "-n", ns, "link", "set", "eth0", "up"],
            &[
                "ip",
                "-n",
                ns,
                "route",
                "add",
                "default",
                "via",
                "203.0.113.254",
            ],
        ];
        for step in steps {
            sh(step);
        }
    }

    /// Starts netd on node `i` (0-based) and waits for its socket.
    pub fn start(&mut self, i: usize) -> Duration {
        let node = &mut self.nodes[i];
        let _ = std::fs::remove_file(node.socket());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("netd{}.log", i + 1)))
            .unwrap();
        let t0 = Instant::now();
        let child = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", node.ns))
            .arg(env!("CARGO_BIN_EXE_netd"))
            .arg("--state")
            .arg(node.dir.join("state"))
            .arg("--run")
            .arg(node.dir.join("run"))
            .args(["--netns-prefix", &node.prefix(), "--ports", "51820-51830"])
            .env("ZOS_LOG_FORMAT", "plain")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        node.child = Some(child);
        while !node.socket().exists() {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "netd did not start: {}",
                self.log(i)
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        t0.elapsed()
    }

    /// Kills netd on node `i` with SIGKILL.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops netd on node `i` with SIGTERM.
    pub fn stop(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.take() {
            let _ = Command::new("kill").arg(c.id().to_string()).status();
            let _ = c.wait();
        }
    }

    /// netd's log of node `i`.
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("netd{}.log", i + 1)))
            .unwrap_or_default()
    }

    /// Calls a bus method on node `i`.
    pub fn call<M: Method>(&self, i: usize, req: &M::Request) -> Result<M::Reply, bus::BusError> {
        let c = bus::Client::new(self.nodes[i].socket()).call_timeout(Duration::from_secs(30));
        self.rt.block_on(c.call::<M>(req))
    }

    /// Applies network `id` (range 10.<net>.0.0/16) on every node listed, node `i` getting
    /// subnet 10.<net>.<i+1>.0/24 and the others as peers (keys from a first pass).
    pub fn mesh(&self, id: &str, net: u8, nodes: &[usize]) -> Vec<Network> {
        let spec = |i: usize, peers: Vec<PeerSpec>| NetworkSpec {
            id: id.into(),
            ip_range: format!("10.{net}.0.0/16"),
            subnet: format!("10.{net}.{}.0/24", i + 1),
            peers,
        };
        let keys: Vec<String> = nodes
            .iter()
            .map(|&i| {
                self.call::<ApplyNetwork>(i, &spec(i, vec![]))
                    .unwrap()
                    .public_key
            })
            .collect();
        nodes
            .iter()
            .map(|&i| {
                let peers = nodes
                    .iter()
                    .zip(&keys)
                    .filter(|(j, _)| **j != i)
                    .map(|(&j, k)| self.peer(j, k, net))
                    .collect();
                self.call::<ApplyNetwork>(i, &spec(i, peers)).unwrap()
            })
            .collect()
    }

    /// Node `j` as a peer of network 10.<net>.0.0/16 with key `key`.
    pub fn peer(&self, j: usize, key: &str, net: u8) -> PeerSpec {
        PeerSpec {
            public_key: key.into(),
            endpoint: Some(format!("{}:51820", self.nodes[j].addr)),
            subnets: vec![format!("10.{net}.{}.0/24", j + 1)],
            keepalive_secs: None,
        }
    }

    /// Makes a container-like namespace on node `i`'s side and attaches it to network `id`.
    pub fn container(&self, i: usize, id: &str) -> (String, Ipv4Addr) {
        let ns = format!("{}-c{}", self.tag, i + 1);
        if !std::path::Path::new("/run/netns").join(&ns).exists() {
            sh(&["ip", "netns", "add", &ns]);
        }
        let a = self
            .call::<AttachNetwork>(
                i,
                &AttachRequest {
                    network: id.into(),
                    netns: ns.clone(),
                    address: None,
                },
            )
            .unwrap();
        (ns, a.address)
    }

    /// Names of the lab's namespaces that exist now.
    pub fn namespaces(&self) -> Vec<String> {
        sh(&["ip", "netns", "list"])
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|n| n.starts_with(&self.tag))
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
        for ns in self.namespaces() {
            let _ = Command::new("ip").args(["netns", "del", &ns]).status();
        }
        if std::thread::panicking() {
            for i in 0..self.nodes.len() {
                eprintln!("--- netd log of node {} ---\n{}", i + 1, self.log(i));
            }
        }
    }
}
