//! `network` workload data: a private IPv4 network spanning nodes (netd makes it real), and
//! the static checks a blueprint's network and its containers' attachments pass before any
//! action. netd checks again (keys, endpoints, addresses in use); these catch what a blueprint
//! alone already shows.

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

/// Most peers of one network on one node.
pub const MAX_PEERS: usize = 256;
/// Most subnets one peer routes.
pub const MAX_PEER_SUBNETS: usize = 16;

/// A peer of the network: another node (or any WireGuard endpoint) and the subnets it routes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkPeer {
    /// Its WireGuard public key, base64 (44 characters, as `zos get` and `wg` print it).
    pub public_key: String,
    /// Where to reach it, `host:port`; absent for a peer that only connects to this node.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// IPv4 subnets it routes (`10.1.2.0/24`).
    pub subnets: Vec<String>,
    /// Seconds between keepalives (a peer behind NAT); absent or 0 = none.
    #[serde(default)]
    pub keepalive_secs: Option<u16>,
}

/// `network` workload data. `ip_range` and `subnet` are fixed at creation; peers change in
/// place without disturbing traffic to the others. The node makes the key and chooses the
/// listen port; both are in the workload's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSpec {
    /// The network's private IPv4 range, a `/16` (`10.1.0.0/16`).
    pub ip_range: String,
    /// This node's subnet of it, a `/24` (`10.1.3.0/24`); `.1` is the gateway.
    pub subnet: String,
    /// The other nodes of the network.
    #[serde(default)]
    pub peers: Vec<NetworkPeer>,
}

/// `a.b.c.d/len` with no host bits set and the given prefix length.
fn parse_net(what: &str, s: &str, len: Option<u8>) -> Result<Ipv4Net, String> {
    let net: Ipv4Net = s
        .parse()
        .map_err(|_| format!("{what} {s:?} is not an IPv4 subnet (a.b.c.d/len)"))?;
    if net.network() != net.addr() {
        return Err(format!("{what} {s:?} has host bits set"));
    }
    if let Some(l) = len
        && net.prefix_len() != l
    {
        return Err(format!("{what} {s:?} must be a /{l}"));
    }
    Ok(net)
}

/// Checks a network's data.
pub fn check_network(n: &NetworkSpec) -> Result<(), String> {
    let range = parse_net("ip_range", &n.ip_range, Some(16))?;
    let subnet = parse_net("subnet", &n.subnet, Some(24))?;
    if !range.contains(&subnet) {
        return Err(format!(
            "subnet {} is outside ip_range {}",
            n.subnet, n.ip_range
        ));
    }
    if n.peers.len() > MAX_PEERS {
        return Err(format!("more than {MAX_PEERS} peers"));
    }
    let mut keys = std::collections::HashSet::new();
    for p in &n.peers {
        let k = &p.public_key;
        let base64ish = k.len() == 44
            && k.ends_with('=')
            && k.bytes()
                .take(43)
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/');
        if !base64ish {
            return Err(format!(
                "peer key {k:?} is not a WireGuard public key (44 characters of base64)"
            ));
        }
        if !keys.insert(k.as_str()) {
            return Err(format!("peer key {k} listed twice"));
        }
        if let Some(e) = &p.endpoint {
            let port_ok = e
                .rsplit_once(':')
                .is_some_and(|(h, port)| !h.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
            if !port_ok {
                return Err(format!("peer endpoint {e:?} is not host:port"));
            }
        }
        if p.subnets.is_empty() || p.subnets.len() > MAX_PEER_SUBNETS {
            return Err(format!(
                "peer {k} must route 1 to {MAX_PEER_SUBNETS} subnets"
            ));
        }
        for s in &p.subnets {
            let net = parse_net("peer subnet", s, None)?;
            if net.contains(&subnet) || subnet.contains(&net) {
                return Err(format!("peer subnet {s} overlaps this node's {}", n.subnet));
            }
        }
    }
    Ok(())
}

/// Checks that `new` may replace `old`: the range and the node's subnet are fixed.
pub fn check_network_update(new: &NetworkSpec, old: &NetworkSpec) -> Result<(), String> {
    if new.ip_range != old.ip_range || new.subnet != old.subnet {
        return Err(format!(
            "ip_range and subnet are fixed at creation ({} {} -> {} {}); delete the network and \
             create it again",
            old.ip_range, old.subnet, new.ip_range, new.subnet
        ));
    }
    Ok(())
}

/// Checks a container's address in the subnet of the network it names: a host address, not
/// the gateway `.1`.
pub fn check_address(addr: Ipv4Addr, n: &NetworkSpec) -> Result<(), String> {
    let subnet = parse_net("subnet", &n.subnet, Some(24))?;
    let last = addr.octets()[3];
    if !subnet.contains(&addr) || last <= 1 || last == 255 {
        return Err(format!(
            "address {addr} must be a host of {} other than the gateway .1",
            n.subnet
        ));
    }
    Ok(())
}

#[cfg(test)]
mod test {
    #![expect(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use serde_json::json;

    const KEY: &str = "aGVsbG8gd29ybGQgaGVsbG8gd29ybGQgaGVsbG8gd28=";

    fn net(peers: serde_json::Value) -> NetworkSpec {
        serde_json::from_value(json!({
            "ip_range": "10.1.0.0/16", "subnet": "10.1.2.0/24", "peers": peers,
        }))
        .unwrap()
    }

    #[test]
    fn a_valid_network_passes() {
        let n = net(json!([{"public_key": KEY, "endpoint": "203.0.113.2:51820",
            "subnets": ["10.1.3.0/24"], "keepalive_secs": 25}]));
        assert_eq!(check_network(&n), Ok(()));
        assert_eq!(check_address("10.1.2.7".parse().unwrap(), &n), Ok(()));
    }

    #[test]
    fn bad_networks_say_why() {
        let cases = [
            (
                json!({"ip_range": "10.1.0.0/24", "subnet": "10.1.2.0/24"}),
                "/16",
            ),
            (
                json!({"ip_range": "10.1.0.1/16", "subnet": "10.1.2.0/24"}),
                "host bits",
            ),
            (
                json!({"ip_range": "10.1.0.0/16", "subnet": "10.2.2.0/24"}),
                "outside",
            ),
            (
                json!({"ip_range": "nope", "subnet": "10.1.2.0/24"}),
                "not an IPv4",
            ),
            (
                json!({"ip_range": "10.1.0.0/16", "subnet": "10.1.2.0/24",
                "peers": [{"public_key": "short", "subnets": ["10.1.3.0/24"]}]}),
                "44",
            ),
            (
                json!({"ip_range": "10.1.0.0/16", "subnet": "10.1.2.0/24",
                "peers": [{"public_key": KEY, "endpoint": "h", "subnets": ["10.1.3.0/24"]}]}),
                "host:port",
            ),
            (
                json!({"ip_range": "10.1.0.0/16", "subnet": "10.1.2.0/24",
                "peers": [{"public_key": KEY, "subnets": ["10.1.2.0/24"]}]}),
                "overlaps",
            ),
            (
                json!({"ip_range": "10.1.0.0/16", "subnet": "10.1.2.0/24",
                "peers": [{"public_key": KEY, "subnets": []}]}),
                "route 1",
            ),
            (
                json!({"ip_range": "10.1.0.0/16", "subnet": "10.1.2.0/24",
                "peers": [{"public_key": KEY, "subnets": ["10.1.3.0/24"]},
                          {"public_key": KEY, "subnets": ["10.1.4.0/24"]}]}),
                "twice",
            ),
        ];
        for (data, why) in cases {
            let n: NetworkSpec = serde_json::from_value(data.clone()).unwrap();
            let e = check_network(&n).unwrap_err();
            assert!(e.contains(why), "{data}: {e}");
        }
        let unknown = json!({"ip_range": "10.1.0.0/16", "subnet": "10.1.2.0/24", "port": 1});
        assert!(serde_json::from_value::<NetworkSpec>(unknown).is_err());
    }

    #[test]
    fn range_and_subnet_are_fixed_peers_are_not() {
        let old = net(json!([]));
        let more = net(json!([{"public_key": KEY, "subnets": ["10.1.3.0/24"]}]));
        assert_eq!(check_network_update(&more, &old), Ok(()));
        let mut moved = old.clone();
        moved.subnet = "10.1.9.0/24".into();
        assert!(
            check_network_update(&moved, &old)
                .unwrap_err()
                .contains("fixed")
        );
    }

    #[test]
    fn container_addresses_are_hosts_of_the_subnet() {
        let n = net(json!([]));
        for bad in ["10.1.3.5", "10.1.2.1", "10.1.2.0", "10.1.2.255"] {
            assert!(check_address(bad.parse().unwrap(), &n).is_err(), "{bad}");
        }
    }

    fn deployment(container: serde_json::Value, subnet: &str) -> bus::api::node::Deployment {
        let owner = crate::keys::KeyPair::from_seed([3; 32]);
        let mut d = super::super::test::zdb_deployment(&owner, 1 << 30);
        let wl = |name: &str, kind: &str, data| bus::api::node::Workload {
            name: name.into(),
            kind: kind.into(),
            version: 0,
            description: None,
            data,
            result: None,
        };
        let mut app = json!({"flist": "/f.flist", "identity": "ab".repeat(32),
            "entrypoint": ["/bin/sh"], "memory": 8 << 20, "rootfs_size": 2 << 20});
        for (k, v) in container.as_object().unwrap() {
            app[k] = v.clone();
        }
        d.workloads = vec![
            wl(
                "net",
                "network",
                json!({"ip_range": "10.1.0.0/16", "subnet": subnet}),
            ),
            wl("app", "container", app),
        ];
        d
    }

    #[test]
    fn containers_name_a_network_of_their_deployment_and_an_address_in_its_subnet() {
        use crate::blueprint::{BlueprintError, Pool, validate_deployment, validate_update};
        let ok = deployment(
            json!({"network": "net", "address": "10.1.2.9"}),
            "10.1.2.0/24",
        );
        validate_deployment(&ok).unwrap();
        // a network takes no bytes: only the container's writable layer is needed
        let need = validate_update(None, &ok).unwrap();
        assert_eq!(need.get(&Pool::Volume), Some(&(2 << 20)));
        for (bad, why) in [
            (json!({"network": "nope"}), "names no network"),
            (
                json!({"network": "net", "address": "10.1.3.9"}),
                "must be a host",
            ),
            (json!({"address": "10.1.2.9"}), "needs a network"),
        ] {
            let e = validate_deployment(&deployment(bad.clone(), "10.1.2.0/24")).unwrap_err();
            assert!(
                matches!(&e, BlueprintError::InvalidWorkload { reason, .. } if reason.contains(why)),
                "{bad}: {e}"
            );
        }
        // the subnet cannot move in an update; the peers can change
        let mut moved = deployment(json!({"network": "net"}), "10.1.7.0/24");
        moved.version = 1;
        moved.workloads[0].version = 1;
        let e = validate_update(Some(&ok), &moved).unwrap_err();
        assert!(matches!(e, BlueprintError::ImmutableChange { .. }), "{e}");
        let mut peered = ok.clone();
        peered.version = 1;
        peered.workloads[0].version = 1;
        peered.workloads[0].data["peers"] =
            json!([{"public_key": KEY, "endpoint": "h:1", "subnets": ["10.1.3.0/24"]}]);
        validate_update(Some(&ok), &peered).unwrap();
    }
}
