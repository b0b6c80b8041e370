//! Three dev nodes on one machine (`tests::lab`): each a network namespace on a bridge that
//! plays the internet, running a whole dev node (node-init, storaged on loop disks, zdb,
//! computed, netd). A user deploys, on each node, the same blueprint id with a `network`
//! workload and a busybox container in it (so the three containers have the same name, in
//! namespaces of their own); a second version of each blueprint lists the other nodes as peers
//! (their public keys and ports from `zos get`). The containers reach each other (ping, TCP)
//! and the internet host through NAT, nothing outside reaches them; a ping between two nodes
//! loses nothing while their blueprints drop the third node and take it back; after a
//! `kill -9` of one node's netd and a restart, traffic resumes within a second; and deleting
//! the deployments leaves no namespace behind.
//!
//! Needs root (loop devices, mounts, namespaces), /dev/net/tun, btrfs-progs, nftables, ping,
//! iperf3, busybox-static and the binaries (`cargo build --workspace --bins`); skipped otherwise,
//! failed under CI.
#![expect(clippy::unwrap_used, reason = "a failed step fails the run")]

use bus::api::health::{Health, HealthStatus};
use serde_json::{Value, json};
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tests::lab::{INTERNET_HOST, Lab, bin, bin_dir, ping, ping_until};

fn require() -> bool {
    let mut missing: Vec<String> = Vec::new();
    if !nodeutil::skip::is_root() {
        missing.push("root".into());
    }
    for dev in ["/dev/net/tun", "/dev/loop-control", "/bin/busybox"] {
        if !Path::new(dev).exists() {
            missing.push(dev.into());
        }
    }
    for b in [
        "node-init",
        "zos",
        "storaged",
        "zdb",
        "computed",
        "flist",
        "netd",
        "bus",
    ] {
        if !bin_dir().join(b).exists() {
            missing.push(format!(
                "{} (cargo build --workspace --bins)",
                bin_dir().join(b).display()
            ));
        }
    }
    for t in [
        "ip",
        "nft",
        "ping",
        "nsenter",
        "mkfs.btrfs",
        "btrfs",
        "losetup",
        "iperf3",
    ] {
        if !nodeutil::skip::has_tool(t) {
            missing.push(format!("{t} (scripts/deps.sh)"));
        }
    }
    nodeutil::skip::unless(missing.is_empty(), &missing.join(", "))
}

/// TCP from namespace `from` to an iperf3 server started for it in `to_ns` at `to`: 1 MiB.
fn tcp(from: &str, to_ns: &str, to: Ipv4Addr) -> bool {
    let mut server = Command::new("ip")
        .args(["netns", "exec", to_ns, "iperf3", "-s", "-1", "-p", "5301"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    let mut ok = false;
    while !ok && t0.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(100));
        ok = Command::new("ip")
            .args(["netns", "exec", from, "iperf3", "-c", &to.to_string()])
            .args(["-p", "5301", "-n", "1M"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    }
    let _ = server.kill();
    let _ = server.wait();
    ok
}

/// `zos ARGS` against the dev node in `node`, which must succeed and print JSON.
fn zos_json(node: &Path, args: &[&str]) -> Value {
    let out = Command::new(bin("zos"))
        .args(args)
        .env("ZOS_NODE", node)
        .output()
        .unwrap();
    let text = tests::printed(&out);
    assert!(out.status.success(), "zos {args:?}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("zos {args:?}: {e}: {text}"))
}

/// Node `i`'s blueprint `mesh` (the same id on every node): network `net` (10.50.0.0/16, its
/// subnet 10.50.<i+1>.0/24, `peers`) and a busybox container `app` in it.
fn blueprint(i: usize, owner: &str, version: u64, peers: Value, app: (&Path, &str)) -> Value {
    let (flist, identity) = app;
    json!({
        "id": "mesh",
        "version": version,
        "owner": owner,
        "signers": {"threshold": 1, "keys": [{"key": owner, "weight": 1}]},
        "workloads": [
            {"name": "net", "type": "network", "version": version, "data": {
                "ip_range": "10.50.0.0/16",
                "subnet": format!("10.50.{}.0/24", i + 1),
                "peers": peers,
            }},
            {"name": "app", "type": "container", "version": 0, "data": {
                "flist": flist.display().to_string(),
                "identity": identity,
                "entrypoint": ["/bin/sh", "-c", "while true; do sleep 1; done"],
                "memory": 64 << 20,
                "rootfs_size": 64 << 20,
                "network": "net",
            }},
        ],
        "signatures": [],
    })
}

/// `zos deploy` of `bp` on `node`, signed with `key`, waiting until applied; the view.
fn deploy(lab: &Lab, node: &Path, key: &Path, bp: &Value) -> Value {
    let file = lab.path().join(format!(
        "{}-{}.json",
        node.parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy(),
        bp["id"].as_str().unwrap()
    ));
    std::fs::write(&file, bp.to_string()).unwrap();
    let (f, k) = (file.to_str().unwrap(), key.to_str().unwrap());
    let view = zos_json(node, &["deploy", f, "--key", k, "--wait", "--json"]);
    for w in view["deployment"]["workloads"].as_array().unwrap() {
        assert_eq!(w["result"]["state"], "ok", "{view}");
    }
    view
}

#[test]
fn containers_on_three_dev_nodes_share_a_blueprint_network() {
    if require() {
        return;
    }
    let mut lab = Lab::new(3);
    let nodes: Vec<_> = (0..3)
        .map(|i| lab.start_dev_node(i, Duration::from_secs(240)))
        .collect();
    let key = lab.path().join("owner.key");
    let out = Command::new(bin("zos"))
        .args(["key", "new", key.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let owner = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let (flist, identity) = tests::busybox_flist(lab.path());
    let app = (flist.as_path(), identity.as_str());

    // version 0: the network alone on each node; its result says how peers reach it
    let views: Vec<Value> = (0..3)
        .map(|i| {
            deploy(
                &lab,
                &nodes[i],
                &key,
                &blueprint(i, &owner, 0, json!([]), app),
            )
        })
        .collect();
    let net = |v: &Value| v["deployment"]["workloads"][0]["result"]["data"].clone();
    let peer = |j: usize| {
        let n = net(&views[j]);
        assert_eq!(n["public_key"].as_str().unwrap().len(), 44, "{n}");
        json!({
            "public_key": n["public_key"],
            "endpoint": format!("{}:{}", lab.nodes[j].addr, n["listen_port"]),
            "subnets": [format!("10.50.{}.0/24", j + 1)],
        })
    };
    let peers: Vec<Value> = (0..3).map(peer).collect();

    // version 1: every node lists the other two; the port and key stay, the container stays
    let mut members: Vec<(String, Ipv4Addr)> = Vec::new();
    for i in 0..3 {
        let others: Vec<Value> = (0..3)
            .filter(|&j| j != i)
            .map(|j| peers[j].clone())
            .collect();
        let v = deploy(
            &lab,
            &nodes[i],
            &key,
            &blueprint(i, &owner, 1, json!(others), app),
        );
        let n = net(&v);
        let before = net(&views[i]);
        assert_eq!(n["listen_port"], before["listen_port"], "{v}");
        assert_eq!(n["public_key"], before["public_key"], "{v}");
        assert_eq!(n["peers"].as_array().unwrap().len(), 2, "{v}");
        let c = &v["deployment"]["workloads"][1]["result"]["data"];
        let addr: Ipv4Addr = c["network"]["address"].as_str().unwrap().parse().unwrap();
        assert_eq!(addr.octets()[..3], [10, 50, i as u8 + 1], "{v}");
        let netns = c["netns"].as_str().unwrap().to_string();
        assert!(netns.starts_with(&lab.container_prefix(i)), "{v}");
        members.push((netns, addr));
    }

    for (a, (from, _)) in members.iter().enumerate() {
        for (b, (_, to)) in members.iter().enumerate() {
            if a != b {
                assert!(
                    ping_until(from, *to, Duration::from_secs(5)).is_some(),
                    "container {a} -> container {b}"
                );
                assert!(tcp(from, &members[b].0, *to), "tcp {a} -> {b}");
            }
        }
        assert!(ping(from, INTERNET_HOST, 2000), "container {a} -> internet");
    }
    // zos get shows the peers' live state: node 0 applied its peers before they knew it, so
    // only a live view has handshakes and bytes
    let v = zos_json(&nodes[0], &["get", "mesh", "--json"]);
    for p in net(&v)["peers"].as_array().unwrap() {
        assert!(p["last_handshake_secs"].is_u64(), "{v}");
        assert!(p["rx_bytes"].as_u64().unwrap() > 0, "{v}");
        assert!(p["tx_bytes"].as_u64().unwrap() > 0, "{v}");
    }

    // one blueprint id, one container name, a namespace per node
    let names: std::collections::BTreeSet<&str> = members.iter().map(|(n, _)| &n[..]).collect();
    assert_eq!(names.len(), 3, "{members:?}");

    // peer updates: nodes 1 and 2 drop node 0 and take it back while they ping each other
    let pinger = Pinger::start(&members[1].0, members[2].1, 600);
    let without_0 = |i: usize| {
        let other = if i == 1 { 2 } else { 1 };
        json!([peers[other].clone()])
    };
    let all_but = |i: usize| -> Value {
        (0..3)
            .filter(|&j| j != i)
            .map(|j| peers[j].clone())
            .collect()
    };
    for (version, list) in [(2, &without_0 as &dyn Fn(usize) -> Value), (3, &all_but)] {
        for i in [1, 2] {
            let v = deploy(
                &lab,
                &nodes[i],
                &key,
                &blueprint(i, &owner, version, list(i), app),
            );
            let c = &v["deployment"]["workloads"][1]["result"]["data"];
            assert_eq!(c["netns"].as_str().unwrap(), members[i].0, "{v}");
        }
    }
    let (sent, received) = pinger.finish();
    assert_eq!(sent, received, "pings lost while peers changed");
    assert!(
        ping_until(&members[1].0, members[0].1, Duration::from_secs(5)).is_some(),
        "node 0 back as a peer"
    );

    // kill -9 netd on node 0: node-init restarts it, traffic resumes within 1 s of it serving
    restart_netd_after_kill(&mut lab, 0, &nodes[0]);
    let resumed = ping_until(&members[1].0, members[0].1, Duration::from_secs(5))
        .expect("traffic resumes after netd restarted");
    eprintln!("traffic back {resumed:?} after the restarted netd was healthy");
    assert!(resumed < Duration::from_secs(1), "took {resumed:?}");
    assert!(ping_until(&members[0].0, members[2].1, Duration::from_secs(1)).is_some());

    // an outsider that routes the network's range to a node still reaches no container
    lab.internet_route("10.50.0.0/16", lab.nodes[0].addr);
    for (_, addr) in &members {
        assert!(!ping(&lab.inet, *addr, 500), "the internet reached {addr}");
    }

    // delete: the containers' and networks' namespaces go
    for node in &nodes {
        let v = zos_json(
            node,
            &[
                "delete",
                "mesh",
                "--key",
                key.to_str().unwrap(),
                "--wait",
                "--json",
            ],
        );
        assert_eq!(v["state"], "deleted", "{v}");
    }
    let left: Vec<String> = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|n| {
            let container = (0..3).any(|i| n.starts_with(&lab.container_prefix(i)));
            let network = (0..3).any(|i| n.starts_with(&lab.netd_prefix(i)));
            container || network
        })
        .collect();
    assert_eq!(left, Vec::<String>::new(), "namespaces left after delete");
}

/// A `ping` running in the background from namespace `from`, 20 a second.
struct Pinger {
    child: std::process::Child,
    count: u32,
}

impl Pinger {
    /// Starts `count` pings (each answered within a second, else lost).
    fn start(from: &str, to: Ipv4Addr, count: u32) -> Pinger {
        let n = count.to_string();
        let child = Command::new("ip")
            .args(["netns", "exec", from, "ping", "-i", "0.05", "-W", "1"])
            .args(["-c", &n, &to.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Pinger { child, count }
    }

    /// Checks it still runs (so it covered everything done since the start), waits for the
    /// end and returns (sent, received).
    fn finish(mut self) -> (u32, u32) {
        assert!(
            self.child.try_wait().unwrap().is_none(),
            "the pings ended before the updates did: start more"
        );
        let out = self.child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .find(|l| l.contains("packets transmitted"))
            .unwrap_or_else(|| panic!("no ping summary:\n{text}"));
        let num = |word: &str| -> u32 {
            let at = line.find(word).unwrap();
            line[..at]
                .split_whitespace()
                .last()
                .unwrap()
                .parse()
                .unwrap()
        };
        let (sent, received) = (num(" packets transmitted"), num(" received"));
        assert_eq!(sent, self.count, "{text}");
        (sent, received)
    }
}

/// netd's health on the dev node in `node`, if it answers.
fn netd_health(node: &Path) -> Option<Health> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let c = bus::Client::new(bus::service_socket(&node.join("run"), "netd"))
        .call_timeout(Duration::from_secs(2));
    rt.block_on(c.health()).ok()
}

/// SIGKILLs the netd of node `i` (dev node in `node`) and waits until node-init's supervisor
/// has it healthy again under a new pid.
fn restart_netd_after_kill(lab: &mut Lab, i: usize, node: &Path) {
    let old = netd_health(node).expect("netd answers").pid;
    tests::lab::sh(&["kill", "-KILL", &old.to_string()]);
    let t0 = Instant::now();
    loop {
        match netd_health(node) {
            Some(h) if h.pid != old && h.status != HealthStatus::Starting => break,
            _ => {}
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "netd did not come back:\n{}",
            lab.log(i, "node/log/netd.log")
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    eprintln!("netd restarted and healthy in {:?}", t0.elapsed());
}
