//! Several nodes on one machine, for end-to-end tests: each node is a network namespace with one
//! interface (`eth0`, 203.0.113.N/24) on a bridge that plays the internet (in a namespace of
//! its own; the bridge itself is 203.0.113.254, a host "on the internet"), and runs its daemons
//! (a dev node, netd) inside that namespace. Only addresses the lab makes are used, inside
//! namespaces it makes. On drop it stops every process it started or that names its folder,
//! unmounts what is mounted under the folder, detaches the loop devices backed by files there
//! and deletes its namespaces, also when the test fails (dev nodes are first removed with
//! `node-init --dev DIR --destroy`). Helpers drive a netd of the lab's own on the nodes
//! ([`Lab::mesh`], [`Lab::attach`]) for netd's tests; dev nodes run theirs for blueprints.
#![expect(clippy::unwrap_used, reason = "a failed step fails the run")]

use bus::api::network::{
    ApplyNetwork, AttachNetwork, AttachRequest, Network, NetworkSpec, PeerSpec,
};
use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The host on the internet bridge.
pub const INTERNET_HOST: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 254);

pub use crate::{bin, bin_dir};

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

/// One ping from namespace `ns` to `to`, waiting at most `wait_ms`.
pub fn ping(ns: &str, to: Ipv4Addr, wait_ms: u32) -> bool {
    let w = format!("{}", f64::from(wait_ms) / 1000.0);
    Command::new("ip")
        .args([
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
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
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

/// Runs a command, telling whether it succeeded.
pub fn ok(args: &[&str]) -> bool {
    Command::new(args[0])
        .args(&args[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// One node of the lab.
pub struct LabNode {
    /// Its network namespace.
    pub ns: String,
    /// Its address on the internet bridge.
    pub addr: Ipv4Addr,
    /// Its folder (dev node, netd state, logs).
    pub dir: PathBuf,
    /// pid of its netd while it runs.
    netd: Option<u32>,
}

/// The lab.
pub struct Lab {
    /// Prefix of every namespace it makes.
    pub tag: String,
    /// The internet's namespace.
    pub inet: String,
    /// Nodes.
    pub nodes: Vec<LabNode>,
    children: Vec<Child>,
    dir: tempfile::TempDir,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

impl Lab {
    /// `n` nodes on the internet bridge, nothing running yet.
    pub fn new(n: usize) -> Lab {
        let tag = format!(
            "lab{}{}",
            std::process::id() % 100_000,
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let dir = tempfile::Builder::new()
            .prefix("zos-lab-")
            .tempdir_in("/tmp")
            .unwrap();
        let mut lab = Lab {
            inet: format!("{tag}-i"),
            tag,
            nodes: Vec::new(),
            children: Vec::new(),
            dir,
        };
        let inet = lab.inet.clone();
        sh(&["ip", "netns", "add", &inet]);
        sh(&["ip", "-n", &inet, "link", "set", "lo", "up"]);
        sh(&["ip", "-n", &inet, "link", "add", "br0", "type", "bridge"]);
        let host = format!("{INTERNET_HOST}/24");
        sh(&["ip", "-n", &inet, "addr", "add", &host, "dev", "br0"]);
        sh(&["ip", "-n", &inet, "link", "set", "br0", "up"]);
        for i in 1..=n {
            let ns = format!("{}-{i}", lab.tag);
            let addr = Ipv4Addr::new(203, 0, 113, i as u8);
            sh(&["ip", "netns", "add", &ns]);
            lab.plug(&ns, &format!("p{i}"), addr);
            let dir = lab.dir.path().join(format!("node{i}"));
            std::fs::create_dir_all(&dir).unwrap();
            lab.nodes.push(LabNode {
                ns,
                addr,
                dir,
                netd: None,
            });
        }
        lab
    }

    /// The lab's folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Puts namespace `ns` on the internet bridge: its `eth0` (the bridge's port `port`) gets
    /// `addr`/24 and a default route via the internet host.
    pub fn plug(&self, ns: &str, port: &str, addr: Ipv4Addr) {
        let inet = self.inet.as_str();
        let cidr = format!("{addr}/24");
        let via = INTERNET_HOST.to_string();
        let steps: [&[&str]; 6] = [
            &[
                "ip", "link", "add", port, "netns", inet, "type", "veth", "peer", "name", "eth0",
                "netns", ns,
            ],
            &["ip", "-n", inet, "link", "set", port, "master", "br0", "up"],
            &["ip", "-n", ns, "link", "set", "lo", "up"],
            &["ip", "-n", ns, "addr", "add", &cidr, "dev", "eth0"],
            &["ip", "-n", ns, "link", "set", "eth0", "up"],
            &["ip", "-n", ns, "route", "add", "default", "via", &via],
        ];
        for step in steps {
            sh(step);
        }
    }

    /// Starts `program args` inside node `i`'s namespace, output appended to `<node dir>/<log>`;
    /// the workspace's binaries come first on its `PATH`. Returns its pid.
    pub fn spawn(&mut self, i: usize, program: &Path, args: &[&str], log: &str) -> u32 {
        let node = &self.nodes[i];
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(node.dir.join(log))
            .unwrap();
        let path = crate::path_with_bins();
        let child = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", node.ns))
            .arg(program)
            .args(args)
            .env("PATH", path)
            .env("ZOS_LOG_FORMAT", "plain")
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        let pid = child.id();
        self.children.push(child);
        pid
    }

    /// Starts a dev node (`node-init --dev <node dir>/node`, with its netd) in node `i` and
    /// waits until it prints `node ready`; returns its folder (`ZOS_NODE`). Its netd's
    /// namespaces are `<node ns>-n-<id>` and its containers' `<node ns>-c-<name>`, so the lab's
    /// teardown finds them.
    pub fn start_dev_node(&mut self, i: usize, within: Duration) -> PathBuf {
        let dir = self.nodes[i].dir.join("node");
        let d = dir.to_str().unwrap().to_string();
        let (prefix, containers) = (self.netd_prefix(i), self.container_prefix(i));
        self.spawn(
            i,
            &bin("node-init"),
            &[
                "--dev",
                &d,
                "--retry-base-ms",
                "200",
                "--netd-netns-prefix",
                &prefix,
                "--computed-netns-prefix",
                &containers,
            ],
            "node-init.log",
        );
        let log = self.nodes[i].dir.join("node-init.log");
        let t0 = Instant::now();
        loop {
            let ready = std::fs::File::open(&log)
                .map(|f| {
                    BufReader::new(f)
                        .lines()
                        .map_while(Result::ok)
                        .any(|l| l.starts_with("node ready"))
                })
                .unwrap_or(false);
            if ready {
                return dir;
            }
            assert!(
                t0.elapsed() < within,
                "dev node {i} not ready in {within:?}:\n{}",
                self.log(i, "node-init.log")
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Routes `net` from the internet host through `via` (a node): an outsider that knows
    /// where a private network lives.
    pub fn internet_route(&self, net: &str, via: Ipv4Addr) {
        sh(&[
            "ip",
            "-n",
            &self.inet,
            "route",
            "add",
            net,
            "via",
            &via.to_string(),
        ]);
    }

    /// Stops process `pid` started by the lab (SIGKILL with `kill`, else SIGTERM) and waits.
    pub fn stop(&mut self, pid: u32, kill: bool) {
        if let Some(k) = self.children.iter().position(|c| c.id() == pid) {
            let mut c = self.children.remove(k);
            let signal = if kill { "-KILL" } else { "-TERM" };
            let _ = Command::new("kill")
                .arg(signal)
                .arg(pid.to_string())
                .status();
            let _ = c.wait();
        }
    }

    /// netd's bus socket on node `i`.
    pub fn netd_socket(&self, i: usize) -> PathBuf {
        self.nodes[i].dir.join("netd/run/netd.sock")
    }

    /// Prefix of netd's namespaces on node `i` (nodes share `/run/netns`).
    pub fn netd_prefix(&self, i: usize) -> String {
        format!("{}-n-", self.nodes[i].ns)
    }

    /// Prefix of the container namespaces of node `i`'s dev node.
    pub fn container_prefix(&self, i: usize) -> String {
        format!("{}-c-", self.nodes[i].ns)
    }

    /// Starts netd in node `i` (state in `<node dir>/netd`) and waits for its socket; returns
    /// how long that took.
    pub fn start_netd(&mut self, i: usize) -> Duration {
        self.start_netd_with(i, &[])
    }

    /// netd's arguments on node `i`, then `extra`.
    fn netd_args(&self, i: usize, extra: &[&str]) -> Vec<String> {
        let dir = self.nodes[i].dir.join("netd");
        let (state, run) = (dir.join("state"), dir.join("run"));
        let mut args: Vec<String> = vec![
            "--state".into(),
            state.to_str().unwrap().into(),
            "--run".into(),
            run.to_str().unwrap().into(),
            "--netns-prefix".into(),
            self.netd_prefix(i),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        args
    }

    /// [`Lab::start_netd`] with `extra` arguments.
    pub fn start_netd_with(&mut self, i: usize, extra: &[&str]) -> Duration {
        let socket = self.netd_socket(i);
        let _ = std::fs::remove_file(&socket);
        let args = self.netd_args(i, extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let t0 = Instant::now();
        let pid = self.spawn(i, &bin("netd"), &args, "netd.log");
        self.nodes[i].netd = Some(pid);
        while !socket.exists() {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "netd did not start:\n{}",
                self.log(i, "netd.log")
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        t0.elapsed()
    }

    /// pid of node `i`'s netd.
    pub fn netd_pid(&self, i: usize) -> Option<u32> {
        self.nodes[i].netd
    }

    /// Starts a second netd on node `i` with `extra` arguments (a `--take-over`) while the
    /// first runs, and waits until the first exited (reaped) and the bus socket is back.
    /// Returns the new pid and how long that took.
    pub fn take_over_netd(
        &mut self,
        i: usize,
        extra: &[&str],
        within: Duration,
    ) -> (u32, Duration) {
        let old = self.nodes[i].netd.take().expect("netd runs");
        let args = self.netd_args(i, extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let t0 = Instant::now();
        let pid = self.spawn(i, &bin("netd"), &args, "netd.log");
        self.nodes[i].netd = Some(pid);
        let k = self.children.iter().position(|c| c.id() == old).unwrap();
        loop {
            if self.children[k].try_wait().unwrap().is_some() {
                // reaped by try_wait
                let _ = self.children.remove(k).wait();
                break;
            }
            assert!(
                t0.elapsed() < within,
                "old netd still runs:\n{}",
                self.log(i, "netd.log")
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        while !self.netd_socket(i).exists() {
            assert!(t0.elapsed() < within, "{}", self.log(i, "netd.log"));
            std::thread::sleep(Duration::from_millis(5));
        }
        (pid, t0.elapsed())
    }

    /// Whether process `pid` the lab started still runs (reaped when it ended).
    pub fn running(&mut self, pid: u32) -> bool {
        match self.children.iter().position(|c| c.id() == pid) {
            Some(k) => self.children[k].try_wait().unwrap().is_none(),
            None => false,
        }
    }

    /// Stops netd on node `i` (SIGKILL with `kill`).
    pub fn stop_netd(&mut self, i: usize, kill: bool) {
        if let Some(pid) = self.nodes[i].netd.take() {
            self.stop(pid, kill);
        }
    }

    /// Calls a bus method of netd on node `i`.
    pub fn call<M: bus::Method>(
        &self,
        i: usize,
        req: &M::Request,
    ) -> Result<M::Reply, bus::BusError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let c = bus::Client::new(self.netd_socket(i)).call_timeout(Duration::from_secs(60));
        rt.block_on(c.call::<M>(req))
    }

    /// Node `j` as a peer of network 10.<net>.0.0/16 (its subnet 10.<net>.<j+1>.0/24).
    pub fn peer(&self, j: usize, key: &str, net: u8) -> PeerSpec {
        PeerSpec {
            public_key: key.into(),
            endpoint: Some(format!("{}:51820", self.nodes[j].addr)),
            subnets: vec![format!("10.{net}.{}.0/24", j + 1)],
            keepalive_secs: None,
        }
    }

    /// Network `id` (10.<net>.0.0/16) on every listed node through its netd, each node the
    /// others' peer (keys from a first pass); node `i` gets 10.<net>.<i+1>.0/24.
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

    /// A container-like namespace on node `i` (`<tag>-c<i+1>`), attached to network `id`.
    pub fn attach(&self, i: usize, id: &str) -> (String, Ipv4Addr) {
        let ns = format!("{}-c{}", self.tag, i + 1);
        if !Path::new("/run/netns").join(&ns).exists() {
            sh(&["ip", "netns", "add", &ns]);
        }
        let req = AttachRequest {
            network: id.into(),
            netns: ns.clone(),
            address: None,
        };
        let a = self.call::<AttachNetwork>(i, &req).unwrap();
        (ns, a.address)
    }

    /// A log of node `i`.
    pub fn log(&self, i: usize, name: &str) -> String {
        std::fs::read_to_string(self.nodes[i].dir.join(name)).unwrap_or_default()
    }

    /// The lab's namespaces that exist now.
    pub fn namespaces(&self) -> Vec<String> {
        sh(&["ip", "netns", "list"])
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|n| n.starts_with(&self.tag))
            .map(str::to_string)
            .collect()
    }

    /// Processes (not this one) whose command line names a path inside the lab's folder.
    fn pids(&self) -> Vec<u32> {
        let mut needle = self.path().as_os_str().as_encoded_bytes().to_vec();
        needle.push(b'/');
        let me = std::process::id();
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let pid = e.file_name().to_str()?.parse::<u32>().ok()?;
                let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
                (pid != me && cmd.windows(needle.len()).any(|w| w == needle.as_slice()))
                    .then_some(pid)
            })
            .collect()
    }

    fn teardown(&mut self) {
        // dev nodes first, as a user removes one: their containers and networks go through
        // computed and netd while those still run
        for n in &self.nodes {
            let node = n.dir.join("node");
            if node.exists() {
                let _ = Command::new(bin_dir().join("node-init"))
                    .arg("--dev")
                    .arg(&node)
                    .arg("--destroy")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
        for signal in ["-TERM", "-KILL"] {
            let mut pids: Vec<u32> = self.children.iter().map(Child::id).collect();
            pids.extend(self.pids());
            for pid in pids {
                let _ = Command::new("kill")
                    .arg(signal)
                    .arg(pid.to_string())
                    .stderr(Stdio::null())
                    .status();
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            while !self.pids().is_empty() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        for c in &mut self.children {
            let _ = c.wait();
        }
        let dir = self.path().to_path_buf();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut targets: Vec<PathBuf> = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(PathBuf::from))
            .filter(|t| t.starts_with(&dir))
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
            if name.starts_with("loop") && Path::new(backing.trim()).starts_with(&dir) {
                let _ = Command::new("losetup")
                    .arg("-d")
                    .arg(format!("/dev/{name}"))
                    .status();
            }
        }
        for ns in self.namespaces() {
            let _ = Command::new("ip").args(["netns", "del", &ns]).status();
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for (i, n) in self.nodes.iter().enumerate() {
                for log in ["node-init.log", "netd.log", "node/log/netd.log"] {
                    let text = std::fs::read_to_string(n.dir.join(log)).unwrap_or_default();
                    let tail: Vec<&str> = text.lines().rev().take(40).collect();
                    eprintln!("--- node {} {log} (last 40 lines) ---", i + 1);
                    for l in tail.iter().rev() {
                        eprintln!("{l}");
                    }
                }
            }
        }
        self.teardown();
    }
}
