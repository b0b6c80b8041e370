//! netd for real: nodes in their own namespaces on a bridge that plays the internet, each
//! running the netd binary; containers are namespaces attached through the bus API. Needs root,
//! /dev/net/tun, ip, nft, ping and nsenter (wireguard-go and wg for the interop test): skipped
//! otherwise, failed under CI.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a failed step fails the run"
)]

mod common;

use bus::api::network::{
    ApplyNetwork, DeleteNetwork, GetNetwork, NetworkId, NetworkSpec, PeerSpec,
};
use common::{INTERNET_HOST, ok, ping, ping_until, sh};
use netd::host::netns;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

/// A TCP exchange from namespace `from` to `to` (listening in namespace `in_ns`): returns the
/// source address the listener saw, or `None` when the connection failed.
fn tcp(from: &str, in_ns: &str, to: SocketAddr) -> Option<Ipv4Addr> {
    let SocketAddr::V4(v4) = to else { return None };
    let l = netns::run_in(Some(in_ns), move || TcpListener::bind(v4))
        .unwrap()
        .unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, peer) = l.accept().ok()?;
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).ok()?;
        s.write_all(b"world").ok()?;
        Some((peer, buf))
    });
    let client = netns::run_in(Some(from), move || {
        TcpStream::connect_timeout(&to, Duration::from_secs(2))
    })
    .unwrap();
    let Ok(mut c) = client else {
        // Unblock the listener so its thread ends.
        let _ = netns::run_in(Some(in_ns), move || TcpStream::connect(to));
        let _ = server.join();
        return None;
    };
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c.write_all(b"hello").unwrap();
    let mut back = [0u8; 5];
    c.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"world");
    let (peer, got) = server.join().unwrap()?;
    assert_eq!(&got, b"hello");
    match peer {
        SocketAddr::V4(p) => Some(*p.ip()),
        SocketAddr::V6(_) => None,
    }
}

#[test]
fn three_nodes_reach_each_other_privately_and_the_outside_through_nat() {
    if common::require(&[]) {
        return;
    }
    let lab = common::lab(3);
    let nets = lab.mesh("web", 31, &[0, 1, 2]);
    for (i, n) in nets.iter().enumerate() {
        assert_eq!(n.listen_port, 51820);
        assert!(
            n.endpoints
                .contains(&format!("{}:51820", lab.nodes[i].addr)),
            "{n:?}"
        );
        assert_eq!(n.netns, format!("{}web", lab.netd_prefix(i)));
    }
    let cs: Vec<(String, Ipv4Addr)> = (0..3).map(|i| lab.attach(i, "web")).collect();
    for (a, (from, _)) in cs.iter().enumerate() {
        for (b, (in_ns, to)) in cs.iter().enumerate() {
            if a == b {
                continue;
            }
            assert!(
                ping_until(from, *to, Duration::from_secs(5)).is_some(),
                "ping {a} -> {b}"
            );
            let seen = tcp(from, in_ns, SocketAddr::from((*to, 7000 + b as u16)));
            assert_eq!(
                seen,
                Some(cs[a].1),
                "tcp {a} -> {b} keeps its private source"
            );
        }
    }
    // The outside reaches no container, even with a route to the network through a node.
    lab.internet_route("10.31.0.0/16", lab.nodes[0].addr);
    for (ns, addr) in &cs {
        assert!(!ping(&lab.inet, *addr, 500), "internet pinged {addr}");
        assert_eq!(tcp(&lab.inet, ns, SocketAddr::from((*addr, 7100))), None);
    }
    // A container reaches the internet host, seen as its node's address.
    for (i, (ns, _)) in cs.iter().enumerate() {
        assert!(ping(ns, INTERNET_HOST, 2000), "container {i} -> internet");
        let seen = tcp(
            ns,
            &lab.inet,
            SocketAddr::from((INTERNET_HOST, 7200 + i as u16)),
        );
        assert_eq!(seen, Some(lab.nodes[i].addr));
    }
    let n = lab
        .call::<GetNetwork>(0, &NetworkId { id: "web".into() })
        .unwrap();
    assert_eq!(n.peers.len(), 2);
    for p in &n.peers {
        assert!(p.last_handshake_secs.is_some(), "{p:?}");
        assert!(p.rx_bytes > 0 && p.tx_bytes > 0, "{p:?}");
    }
    // Bad input is refused with a clear error and changes nothing.
    let bad = NetworkSpec {
        id: "web".into(),
        ip_range: "10.31.0.0/16".into(),
        subnet: "10.31.9.0/24".into(),
        peers: vec![],
    };
    let e = lab.call::<ApplyNetwork>(0, &bad).unwrap_err().to_string();
    assert!(e.contains("cannot change"), "{e}");
    let e = lab
        .call::<GetNetwork>(0, &NetworkId { id: "nope".into() })
        .unwrap_err()
        .to_string();
    assert!(e.contains("no network named nope"), "{e}");
    assert!(ping(&cs[0].0, cs[1].1, 1000));
}

#[test]
fn peer_updates_do_not_disturb_traffic_to_the_others() {
    if common::require(&[]) {
        return;
    }
    let lab = common::lab(3);
    let nets = lab.mesh("db", 32, &[0, 1, 2]);
    let (c0, _) = lab.attach(0, "db");
    let (_, a1) = lab.attach(1, "db");
    assert!(ping_until(&c0, a1, Duration::from_secs(5)).is_some());
    let pinger = Command::new("ip")
        .args([
            "netns", "exec", &c0, "ping", "-i", "0.02", "-c", "300", "-W", "1",
        ])
        .arg(a1.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let spec = |i: usize, peers: Vec<PeerSpec>| NetworkSpec {
        id: "db".into(),
        ip_range: "10.32.0.0/16".into(),
        subnet: format!("10.32.{}.0/24", i + 1),
        peers,
    };
    let keys: Vec<String> = nets.iter().map(|n| n.public_key.clone()).collect();
    let pause = || std::thread::sleep(Duration::from_millis(500));
    // Remove node 3 from nodes 1 and 2, then add it back.
    lab.call::<ApplyNetwork>(0, &spec(0, vec![lab.peer(1, &keys[1], 32)]))
        .unwrap();
    lab.call::<ApplyNetwork>(1, &spec(1, vec![lab.peer(0, &keys[0], 32)]))
        .unwrap();
    pause();
    for (i, j) in [(0, 1), (1, 0)] {
        let peers = vec![lab.peer(j, &keys[j], 32), lab.peer(2, &keys[2], 32)];
        lab.call::<ApplyNetwork>(i, &spec(i, peers)).unwrap();
    }
    pause();
    // Re-key node 3: a new network there has a new key; nodes 1 and 2 take it.
    lab.call::<DeleteNetwork>(2, &NetworkId { id: "db".into() })
        .unwrap();
    let peers3 = vec![lab.peer(0, &keys[0], 32), lab.peer(1, &keys[1], 32)];
    let k3 = lab
        .call::<ApplyNetwork>(2, &spec(2, peers3))
        .unwrap()
        .public_key;
    assert_ne!(k3, keys[2]);
    for (i, j) in [(0, 1), (1, 0)] {
        let peers = vec![lab.peer(j, &keys[j], 32), lab.peer(2, &k3, 32)];
        lab.call::<ApplyNetwork>(i, &spec(i, peers)).unwrap();
    }
    let out = pinger.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("300 packets transmitted, 300 received"),
        "lost pings while peers changed:\n{text}"
    );
    // The re-keyed node is reachable with its new key.
    let (_, a2) = lab.attach(2, "db");
    assert!(ping_until(&c0, a2, Duration::from_secs(5)).is_some());
}

#[test]
fn a_killed_netd_restarts_and_traffic_resumes_within_a_second() {
    if common::require(&[]) {
        return;
    }
    let mut lab = common::lab(2);
    let before = lab.mesh("app", 33, &[0, 1]);
    let (c0, a0) = lab.attach(0, "app");
    let (c1, a1) = lab.attach(1, "app");
    assert!(ping_until(&c0, a1, Duration::from_secs(5)).is_some());
    lab.stop_netd(0, true);
    assert!(
        netns::exists(&before[0].netns),
        "the namespace outlives netd"
    );
    assert!(sh(&["ip", "-n", &c0, "addr", "show", "eth0"]).contains(&a0.to_string()));
    let start = lab.start_netd(0);
    let resumed = ping_until(&c0, a1, Duration::from_secs(5)).expect("traffic resumes");
    eprintln!("netd up in {start:?}, traffic back {resumed:?} later");
    assert!(resumed < Duration::from_secs(1), "took {resumed:?}");
    assert!(ping_until(&c1, a0, Duration::from_secs(1)).is_some());
    let after = lab
        .call::<GetNetwork>(0, &NetworkId { id: "app".into() })
        .unwrap();
    assert_eq!(after.public_key, before[0].public_key);
    assert_eq!(after.listen_port, before[0].listen_port);
    assert_eq!(after.attachments.len(), 1);
}

/// What a namespace holds that netd could leave behind: links, routes, nft tables, sockets.
fn footprint(ns: &str) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    v.extend(
        sh(&["ip", "-n", ns, "-o", "link", "show"])
            .lines()
            .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string()),
    );
    v.extend(
        sh(&["ip", "-n", ns, "route", "show", "table", "all"])
            .lines()
            .map(str::to_string),
    );
    v.extend(
        sh(&["ip", "netns", "exec", ns, "nft", "list", "tables"])
            .lines()
            .map(str::to_string),
    );
    v.extend(
        sh(&["ip", "netns", "exec", ns, "ss", "-Hanu"])
            .lines()
            .map(str::to_string),
    );
    v.sort();
    v
}

#[test]
fn delete_leaves_no_namespace_link_route_rule_or_socket() {
    if common::require(&["ss"]) {
        return;
    }
    let mut lab = common::lab(2);
    let node = lab.nodes[0].ns.clone();
    let clean = footprint(&node);
    let nets = lab.mesh("tmp", 34, &[0, 1]);
    let (c0, _) = lab.attach(0, "tmp");
    let c0_clean = {
        let (_, a1) = lab.attach(1, "tmp");
        assert!(ping_until(&c0, a1, Duration::from_secs(5)).is_some());
        footprint(&c0)
    };
    assert_ne!(footprint(&node), clean);
    for _ in 0..2 {
        lab.call::<DeleteNetwork>(0, &NetworkId { id: "tmp".into() })
            .unwrap();
    }
    assert!(!netns::exists(&nets[0].netns));
    assert!(
        !std::path::Path::new("/run/netns")
            .join(&nets[0].netns)
            .exists()
    );
    assert_eq!(footprint(&node), clean);
    assert!(!ok(&["ip", "-n", &c0, "link", "show", "eth0"]));
    assert_ne!(footprint(&c0), c0_clean);
    assert!(!sh(&["ip", "-n", &c0, "route"]).contains("default"));
    // It stays deleted across a restart; the other node is untouched.
    lab.stop_netd(0, false);
    lab.start_netd(0);
    assert_eq!(footprint(&node), clean);
    assert!(netns::exists(&nets[1].netns));
}

/// Kills a child process on drop.
struct Reap(std::process::Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_wireguard_go_peer_interoperates() {
    if common::require(&["wireguard-go", "wg"]) {
        return;
    }
    let lab = common::lab(1);
    let ns = format!("{}-wg", lab.tag);
    let ifname: String = format!("wg{}", &lab.tag[2..]).chars().take(15).collect();
    sh(&["ip", "netns", "add", &ns]);
    lab.plug(&ns, "pwg", Ipv4Addr::new(203, 0, 113, 50));
    let _wg = Reap(
        Command::new("ip")
            .args(["netns", "exec", &ns, "wireguard-go", "-f", &ifname])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let sock = format!("/var/run/wireguard/{ifname}.sock");
    let t0 = std::time::Instant::now();
    while !std::path::Path::new(&sock).exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "wireguard-go did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("key");
    let private = sh(&["wg", "genkey"]);
    std::fs::write(&key_file, &private).unwrap();
    let public = {
        let mut c = Command::new("wg")
            .arg("pubkey")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin
            .take()
            .unwrap()
            .write_all(private.as_bytes())
            .unwrap();
        String::from_utf8(c.wait_with_output().unwrap().stdout).unwrap()
    };
    let net = lab
        .call::<ApplyNetwork>(
            0,
            &NetworkSpec {
                id: "mix".into(),
                ip_range: "10.35.0.0/16".into(),
                subnet: "10.35.1.0/24".into(),
                peers: vec![PeerSpec {
                    public_key: public.trim().into(),
                    endpoint: Some("203.0.113.50:51999".into()),
                    subnets: vec!["10.35.9.0/24".into()],
                    keepalive_secs: None,
                }],
            },
        )
        .unwrap();
    sh(&[
        "ip",
        "netns",
        "exec",
        &ns,
        "wg",
        "set",
        &ifname,
        "private-key",
        key_file.to_str().unwrap(),
        "listen-port",
        "51999",
        "peer",
        &net.public_key,
        "endpoint",
        "203.0.113.1:51820",
        "allowed-ips",
        "10.35.0.0/16",
    ]);
    sh(&[
        "ip",
        "-n",
        &ns,
        "addr",
        "add",
        "10.35.9.1/16",
        "dev",
        &ifname,
    ]);
    sh(&["ip", "-n", &ns, "link", "set", &ifname, "mtu", "1420", "up"]);
    let (c, addr) = lab.attach(0, "mix");
    assert!(
        ping_until(&ns, addr, Duration::from_secs(5)).is_some(),
        "wireguard-go -> netd"
    );
    assert!(
        ping(&c, Ipv4Addr::new(10, 35, 9, 1), 2000),
        "netd -> wireguard-go"
    );
    assert_eq!(
        tcp(&ns, &c, SocketAddr::from((addr, 7300))),
        Some(Ipv4Addr::new(10, 35, 9, 1))
    );
}
