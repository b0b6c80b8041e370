//! Three dev nodes on one machine (`tests::lab`): each a network namespace on a bridge that
//! plays the internet, running a whole dev node (node-init, storaged on loop disks, zdb,
//! computed) and netd. One private network spans them: namespaces attached on each node reach
//! each other, the internet host through NAT, and nothing outside reaches them.
//!
//! Needs root (loop devices, mounts, namespaces), /dev/net/tun, btrfs-progs, nftables, ping and
//! the binaries (`cargo build --workspace --bins`); skipped otherwise, failed under CI.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;
use tests::lab::{INTERNET_HOST, Lab, bin_dir, ping, ping_until};

fn require() -> bool {
    let mut missing: Vec<String> = Vec::new();
    if !nodeutil::skip::is_root() {
        missing.push("root".into());
    }
    for dev in ["/dev/net/tun", "/dev/loop-control"] {
        if !Path::new(dev).exists() {
            missing.push(dev.into());
        }
    }
    for b in [
        "node-init",
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
    ] {
        if !nodeutil::skip::has_tool(t) {
            missing.push(format!("{t} (scripts/deps.sh)"));
        }
    }
    nodeutil::skip::unless(missing.is_empty(), &missing.join(", "))
}

#[test]
fn three_dev_nodes_share_a_private_network() {
    if require() {
        return;
    }
    let mut lab = Lab::new(3);
    for i in 0..3 {
        let node = lab.start_dev_node(i, Duration::from_secs(240));
        let storaged = bus::Client::new(node.join("run/storaged.sock"));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let h = rt.block_on(storaged.health()).unwrap();
        assert_eq!(h.status, bus::api::health::HealthStatus::Ok, "{h:?}");
        lab.start_netd(i);
    }
    assert!(ping(&lab.nodes[0].ns, lab.nodes[2].addr, 2000));
    lab.mesh("shared", 40, &[0, 1, 2]);
    let members: Vec<(String, Ipv4Addr)> = (0..3).map(|i| lab.attach(i, "shared")).collect();
    for (a, (from, _)) in members.iter().enumerate() {
        for (b, (_, to)) in members.iter().enumerate() {
            if a != b {
                assert!(
                    ping_until(from, *to, Duration::from_secs(5)).is_some(),
                    "{a} -> {b}"
                );
            }
        }
        assert!(ping(from, INTERNET_HOST, 2000), "{a} -> internet");
    }
    lab.internet_route("10.40.0.0/16", lab.nodes[0].addr);
    for (_, addr) in &members {
        assert!(!ping(&lab.inet, *addr, 500), "the internet reached {addr}");
    }
}
