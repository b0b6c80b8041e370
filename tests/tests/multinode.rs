//! Three dev nodes on one machine (`tests::lab`): each a network namespace on a bridge that
//! plays the internet, running a whole dev node (node-init, storaged on loop disks, zdb,
//! computed, netd). A user deploys, on each node, a blueprint with a `network` workload and a
//! busybox container in it; a second version of each blueprint lists the other nodes as peers
//! (their public keys and ports from `zos get`). The containers reach each other (ping, TCP)
//! and the internet host through NAT, nothing outside reaches them, and deleting the deployments leaves
//! no namespace behind.
//!
//! Needs root (loop devices, mounts, namespaces), /dev/net/tun, btrfs-progs, nftables, ping,
//! iperf3, busybox-static and the binaries (`cargo build --workspace --bins`); skipped otherwise,
//! failed under CI.
#![expect(clippy::unwrap_used, reason = "a failed step fails the run")]

use serde_json::{Value, json};
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
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
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "zos {args:?}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("zos {args:?}: {e}: {text}"))
}

/// Node `i`'s blueprint: network `net` (10.50.0.0/16, its subnet 10.50.<i+1>.0/24, `peers`)
/// and a busybox container `app` in it.
fn blueprint(i: usize, owner: &str, version: u64, peers: Value, app: (&Path, &str)) -> Value {
    let (flist, identity) = app;
    json!({
        "id": format!("mesh{i}"),
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
    let file = lab
        .path()
        .join(format!("{}.json", bp["id"].as_str().unwrap()));
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
        members.push((c["netns"].as_str().unwrap().to_string(), addr));
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
    let v = zos_json(&nodes[0], &["get", "mesh0", "--json"]);
    for p in net(&v)["peers"].as_array().unwrap() {
        assert!(p["last_handshake_secs"].is_u64(), "{v}");
        assert!(p["rx_bytes"].as_u64().unwrap() > 0, "{v}");
        assert!(p["tx_bytes"].as_u64().unwrap() > 0, "{v}");
    }

    // an outsider that routes the network's range to a node still reaches no container
    lab.internet_route("10.50.0.0/16", lab.nodes[0].addr);
    for (_, addr) in &members {
        assert!(!ping(&lab.inet, *addr, 500), "the internet reached {addr}");
    }

    // delete: the containers' and networks' namespaces go
    for (i, node) in nodes.iter().enumerate() {
        let id = format!("mesh{i}");
        let v = zos_json(
            node,
            &[
                "delete",
                &id,
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
            let container = members.iter().any(|(m, _)| m == n);
            let network = (0..3).any(|i| n.starts_with(&lab.netd_prefix(i)));
            container || network
        })
        .collect();
    assert_eq!(left, Vec::<String>::new(), "namespaces left after delete");
}
