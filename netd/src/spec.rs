//! Checks a requested network (`bus::api::network::NetworkSpec`) and turns it into typed values.
//! Pure: no I/O; host names in endpoints are resolved later, by the engine.

use crate::keys::{self, PublicKey};
use bus::api::network::{NetworkSpec, PeerSpec};
use ipnet::Ipv4Net;
use std::collections::BTreeSet;
use std::net::Ipv4Addr;

/// Longest network id (leaves room for the namespace prefix in a file name).
pub const MAX_ID: usize = 100;
/// Most peers a network may have (bounds memory and the per-packet route lookup).
pub const MAX_PEERS: usize = 1024;
/// Most subnets one peer may route.
pub const MAX_SUBNETS: usize = 64;

/// A peer, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// Its public key.
    pub public_key: PublicKey,
    /// `host:port` as given (resolved by the engine).
    pub endpoint: Option<(String, u16)>,
    /// Subnets it routes, each inside the network's range.
    pub subnets: Vec<Ipv4Net>,
    /// Keepalive interval in seconds.
    pub keepalive: Option<u16>,
}

/// A network spec, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// Network id.
    pub id: String,
    /// The private `/16`.
    pub ip_range: Ipv4Net,
    /// This node's `/24`.
    pub subnet: Ipv4Net,
    /// Peers.
    pub peers: Vec<Peer>,
}

/// Checks a network id: `[a-zA-Z0-9_-]{1,100}`.
pub fn check_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > MAX_ID {
        return Err(format!("network id must have 1 to {MAX_ID} characters"));
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(format!(
            "network id {id:?} may only hold letters, digits, '_' and '-'"
        ));
    }
    Ok(())
}

/// Checks a namespace name given to attach: a plain file name under `/run/netns`.
pub fn check_netns(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.len() > 200
        || name == "."
        || name == ".."
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
    {
        return Err(format!(
            "namespace {name:?} must be a name under /run/netns (letters, digits, '_', '-', '.')"
        ));
    }
    Ok(())
}

/// Whether `net` lies in a private IPv4 range (RFC 1918 or the shared 100.64.0.0/10).
fn is_private(net: &Ipv4Net) -> bool {
    [
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
    ]
    .iter()
    .filter_map(|r| r.parse::<Ipv4Net>().ok())
    .any(|r| r.contains(net))
}

fn parse_net(s: &str, what: &str) -> Result<Ipv4Net, String> {
    let net: Ipv4Net = s
        .trim()
        .parse()
        .map_err(|_| format!("{what} {s:?} is not an IPv4 subnet like 10.1.0.0/16"))?;
    if net.trunc() != net {
        return Err(format!(
            "{what} {s:?} has host bits set (did you mean {}?)",
            net.trunc()
        ));
    }
    Ok(net)
}

/// Splits `host:port` (`[v6]:port` too); the host is kept for resolution.
pub fn parse_endpoint(s: &str) -> Result<(String, u16), String> {
    let bad = || format!("endpoint {s:?} is not host:port");
    let (host, port) = s.trim().rsplit_once(':').ok_or_else(bad)?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let port: u16 = port.parse().map_err(|_| bad())?;
    if host.is_empty() || port == 0 || host.chars().any(|c| c.is_whitespace() || c == '/') {
        return Err(bad());
    }
    Ok((host.to_string(), port))
}

fn check_peer(p: &PeerSpec, range: &Ipv4Net, own: &Ipv4Net) -> Result<Peer, String> {
    let public_key = keys::decode(&p.public_key)
        .map_err(|why| format!("peer public key {:?}: {why}", p.public_key))?;
    let endpoint = p.endpoint.as_deref().map(parse_endpoint).transpose()?;
    if p.subnets.is_empty() || p.subnets.len() > MAX_SUBNETS {
        return Err(format!(
            "peer {}: needs 1 to {MAX_SUBNETS} subnets",
            p.public_key
        ));
    }
    let mut subnets = Vec::with_capacity(p.subnets.len());
    for s in &p.subnets {
        let net = parse_net(s, "peer subnet")?;
        if !range.contains(&net) {
            return Err(format!(
                "peer subnet {net} is outside the network's {range}"
            ));
        }
        if net.contains(own) || own.contains(&net) {
            return Err(format!(
                "peer subnet {net} overlaps this node's subnet {own}"
            ));
        }
        subnets.push(net);
    }
    Ok(Peer {
        public_key,
        endpoint,
        subnets,
        keepalive: p.keepalive_secs.filter(|k| *k > 0),
    })
}

/// Checks a spec: id, a private `/16`, a `/24` inside it, peers with valid keys, distinct keys
/// and non-overlapping subnets inside the `/16`.
pub fn check(spec: &NetworkSpec) -> Result<Spec, String> {
    check_id(&spec.id)?;
    let ip_range = parse_net(&spec.ip_range, "ip_range")?;
    if ip_range.prefix_len() != 16 || !is_private(&ip_range) {
        return Err(format!(
            "ip_range {ip_range} must be a private /16 (inside 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16 or 100.64.0.0/10)"
        ));
    }
    let subnet = parse_net(&spec.subnet, "subnet")?;
    if subnet.prefix_len() != 24 || !ip_range.contains(&subnet) {
        return Err(format!("subnet {subnet} must be a /24 inside {ip_range}"));
    }
    if spec.peers.len() > MAX_PEERS {
        return Err(format!("at most {MAX_PEERS} peers"));
    }
    let mut peers = Vec::with_capacity(spec.peers.len());
    let mut keys = BTreeSet::new();
    let mut claimed: Vec<Ipv4Net> = Vec::new();
    for p in &spec.peers {
        let peer = check_peer(p, &ip_range, &subnet)?;
        if !keys.insert(peer.public_key) {
            return Err(format!("peer {} is listed twice", p.public_key));
        }
        for net in &peer.subnets {
            if let Some(other) = claimed.iter().find(|c| c.contains(net) || net.contains(*c)) {
                return Err(format!(
                    "peer subnet {net} overlaps {other} of another peer"
                ));
            }
        }
        claimed.extend(peer.subnets.iter().copied());
        peers.push(peer);
    }
    Ok(Spec {
        id: spec.id.clone(),
        ip_range,
        subnet,
        peers,
    })
}

/// The gateway of a node subnet: its `.1`.
pub fn gateway(subnet: &Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(subnet.network()).saturating_add(1))
}

#[cfg(test)]
mod test {
    #![expect(clippy::unwrap_used, reason = "tests")]
    use super::*;

    const KEY_A: &str = "wfyx/9FjEqRIafX6ib8fd/23FsWZBntUOt+U8w2SqUQ=";
    const KEY_B: &str = "GHtkq/QKrZ2uWRhvaGdNFKDG9WDjRmQqPcUv0ZakEWM=";

    fn spec(peers: Vec<PeerSpec>) -> NetworkSpec {
        NetworkSpec {
            id: "net-1".into(),
            ip_range: "10.1.0.0/16".into(),
            subnet: "10.1.1.0/24".into(),
            peers,
        }
    }

    fn peer(key: &str, subnets: &[&str]) -> PeerSpec {
        PeerSpec {
            public_key: key.into(),
            endpoint: Some("192.0.2.1:51820".into()),
            subnets: subnets.iter().map(|s| s.to_string()).collect(),
            keepalive_secs: None,
        }
    }

    #[test]
    fn a_good_spec_is_typed() {
        let s = check(&spec(vec![peer(KEY_A, &["10.1.2.0/24"])])).unwrap();
        assert_eq!(s.subnet.to_string(), "10.1.1.0/24");
        assert_eq!(s.peers[0].endpoint, Some(("192.0.2.1".into(), 51820)));
        assert_eq!(gateway(&s.subnet), Ipv4Addr::new(10, 1, 1, 1));
    }

    #[test]
    fn bad_specs_say_why() {
        let cases: Vec<(NetworkSpec, &str)> = vec![
            (
                NetworkSpec {
                    id: "a/b".into(),
                    ..spec(vec![])
                },
                "may only hold",
            ),
            (
                NetworkSpec {
                    ip_range: "8.8.0.0/16".into(),
                    ..spec(vec![])
                },
                "private /16",
            ),
            (
                NetworkSpec {
                    ip_range: "10.1.0.0/8".into(),
                    ..spec(vec![])
                },
                "host bits",
            ),
            (
                NetworkSpec {
                    subnet: "10.2.1.0/24".into(),
                    ..spec(vec![])
                },
                "inside",
            ),
            (spec(vec![peer("xyz", &["10.1.2.0/24"])]), "base64"),
            (spec(vec![peer(KEY_A, &["10.9.2.0/24"])]), "outside"),
            (
                spec(vec![peer(KEY_A, &["10.1.0.0/20"])]),
                "overlaps this node",
            ),
            (
                spec(vec![
                    peer(KEY_A, &["10.1.2.0/24"]),
                    peer(KEY_B, &["10.1.2.128/25"]),
                ]),
                "another peer",
            ),
            (
                spec(vec![
                    peer(KEY_A, &["10.1.2.0/24"]),
                    peer(KEY_A, &["10.1.3.0/24"]),
                ]),
                "twice",
            ),
            (spec(vec![peer(KEY_A, &[])]), "1 to 64 subnets"),
        ];
        for (s, want) in cases {
            let e = check(&s).unwrap_err();
            assert!(e.contains(want), "{e} should contain {want}");
        }
    }

    #[test]
    fn endpoints_parse_or_fail_clearly() {
        assert_eq!(
            parse_endpoint("node-2.example:51820").unwrap(),
            ("node-2.example".into(), 51820)
        );
        assert_eq!(parse_endpoint("[::1]:7").unwrap(), ("::1".into(), 7));
        for bad in ["", "x", "x:0", ":5", "a b:5", "x:99999", "é:x"] {
            assert!(parse_endpoint(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_are_checked_without_panicking_on_any_input() {
        assert!(check_id("owner-dep-net_1").is_ok());
        assert!(check_id(&"a".repeat(101)).is_err());
        assert!(check_id("é").is_err());
        assert!(check_netns("c-web").is_ok());
        for bad in ["", "..", "a/b", "a b"] {
            assert!(check_netns(bad).is_err(), "{bad}");
        }
    }
}
