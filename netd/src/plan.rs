//! What a network looks like in the kernel, decided as pure functions: names, addresses, the
//! packet filter rule sets, the choice of a port, a transfer link and a container address.
//!
//! Layout of one network on a node (namespace `n-<id>`):
//! ```text
//!  node namespace                         | network namespace n-<id>
//!  UDP :port (netd) <- WireGuard -> tun   |  wg0   (the node's /16 routed here)
//!  ntx<k> 169.254.a.b+1/30  <--veth-->    |  up0   169.254.a.b+2/30, default route, masquerade
//!  masquerade 169.254.64.0/18 outwards    |  br0   <subnet>.1/24, containers' veths va<n>
//! ```
//! Containers reach peers through wg0 and the outside through up0 (NAT twice: to the transfer
//! address, then to the node's address). Nothing new enters through up0.

use ipnet::Ipv4Net;
use std::collections::BTreeSet;
use std::net::Ipv4Addr;

/// Interface names inside a network namespace.
pub const TUN_IF: &str = "wg0";
/// The bridge containers attach to.
pub const BRIDGE_IF: &str = "br0";
/// The network side of the transfer link to the node namespace.
pub const UPLINK_IF: &str = "up0";
/// The interface a container gets.
pub const CONTAINER_IF: &str = "eth0";
/// MTU of the tunnel and of containers' interfaces: 1500 less WireGuard's IPv4 overhead (80).
pub const MTU: u32 = 1420;
/// Node-side names of transfer links start so (nft matches them with `ntx*`).
pub const TRANSFER_PREFIX: &str = "ntx";
/// Transfer links use /30s from this range (link-local: it never collides with a user range).
pub const TRANSFER_RANGE: &str = "169.254.64.0/18";
/// Transfer links one node can have: 169.254.64.0/18 in /30s.
pub const MAX_TRANSFER: u16 = 4096;
/// The packet filter table netd owns, in every namespace it touches.
pub const NFT_TABLE: &str = "netd";

/// Where one network lives on this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetPlan {
    /// Network id.
    pub id: String,
    /// Namespace name (a file under `/run/netns`).
    pub netns: String,
    /// The network's `/16`.
    pub ip_range: Ipv4Net,
    /// The node's `/24`; its `.1` sits on the bridge.
    pub subnet: Ipv4Net,
    /// Transfer link number.
    pub transfer: u16,
    /// UDP port.
    pub listen_port: u16,
}

impl NetPlan {
    /// The gateway address (`.1` of the subnet) with its prefix.
    pub fn gateway(&self) -> Ipv4Net {
        net(crate::spec::gateway(&self.subnet), 24)
    }

    /// Node-side name of the transfer link.
    pub fn transfer_if(&self) -> String {
        format!("{TRANSFER_PREFIX}{}", self.transfer)
    }

    /// Name the tun has in the node namespace before it moves (unique per node).
    pub fn tun_temp_name(&self) -> String {
        format!("ntun{}", self.transfer)
    }

    /// Node-side and network-side addresses of the transfer link (a /30).
    pub fn transfer_addrs(&self) -> (Ipv4Net, Ipv4Net) {
        let base = transfer_base() + u32::from(self.transfer) * 4;
        (
            net(Ipv4Addr::from(base + 1), 30),
            net(Ipv4Addr::from(base + 2), 30),
        )
    }
}

fn transfer_base() -> u32 {
    u32::from(Ipv4Addr::new(169, 254, 64, 0))
}

fn net(addr: Ipv4Addr, prefix: u8) -> Ipv4Net {
    // Prefixes here are constants <= 32, so this cannot fail; keep the address as is if it did.
    Ipv4Net::new(addr, prefix).unwrap_or_else(|_| Ipv4Net::from(addr))
}

/// One container namespace attached to a network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachPlan {
    /// The container's namespace (a name under `/run/netns`).
    pub netns: String,
    /// Its address (prefix /24).
    pub address: Ipv4Addr,
    /// Attachment number, naming its veth ends.
    pub number: u32,
}

impl AttachPlan {
    /// The veth end on the bridge, inside the network namespace.
    pub fn host_if(&self) -> String {
        format!("va{}", self.number)
    }

    /// The container's end before it moves (and is renamed `eth0`).
    pub fn temp_if(&self) -> String {
        format!("vp{}", self.number)
    }
}

/// The lowest port of `range` that no network uses and `free` accepts (it tries a bind).
pub fn choose_port(
    range: std::ops::RangeInclusive<u16>,
    used: &BTreeSet<u16>,
    mut free: impl FnMut(u16) -> bool,
) -> Option<u16> {
    range.filter(|p| !used.contains(p)).find(|p| free(*p))
}

/// The lowest transfer link number no network uses.
pub fn choose_transfer(used: &BTreeSet<u16>) -> Option<u16> {
    (0..MAX_TRANSFER).find(|k| !used.contains(k))
}

/// Checks a wanted container address, or picks the lowest free one from `.2` to `.254`.
pub fn choose_address(
    subnet: &Ipv4Net,
    wanted: Option<Ipv4Addr>,
    used: &BTreeSet<Ipv4Addr>,
) -> Result<Ipv4Addr, String> {
    let first = u32::from(subnet.network()) + 2;
    let last = u32::from(subnet.broadcast()).saturating_sub(1);
    match wanted {
        Some(a) => {
            let n = u32::from(a);
            if !(first..=last).contains(&n) {
                Err(format!(
                    "address {a} is not a host address of {subnet} (.2 to .254; .1 is the gateway)"
                ))
            } else if used.contains(&a) {
                Err(format!("address {a} is already attached"))
            } else {
                Ok(a)
            }
        }
        None => (first..=last)
            .map(Ipv4Addr::from)
            .find(|a| !used.contains(a))
            .ok_or_else(|| format!("no free address left in {subnet}")),
    }
}

/// The packet filter of a network namespace, as one `nft -f` transaction that replaces netd's
/// table: containers may go anywhere, peers may reach containers, nothing new comes in through
/// the uplink, and what leaves through it is masqueraded.
pub fn network_ruleset() -> String {
    format!(
        r#"table inet {NFT_TABLE}
delete table inet {NFT_TABLE}
table inet {NFT_TABLE} {{
  chain forward {{
    type filter hook forward priority filter; policy drop;
    ct state established,related accept
    ct state invalid drop
    iifname "{BRIDGE_IF}" accept
    iifname "{TUN_IF}" oifname "{BRIDGE_IF}" accept
  }}
  chain input {{
    type filter hook input priority filter; policy accept;
    iifname "{UPLINK_IF}" ct state established,related accept
    iifname "{UPLINK_IF}" drop
  }}
  chain postrouting {{
    type nat hook postrouting priority srcnat; policy accept;
    oifname "{UPLINK_IF}" masquerade
  }}
}}
"#
    )
}

/// The packet filter of the node namespace: masquerade what comes from the networks' transfer
/// links and leaves elsewhere; let nothing new into a transfer link.
pub fn node_ruleset() -> String {
    format!(
        r#"table ip {NFT_TABLE}
delete table ip {NFT_TABLE}
table ip {NFT_TABLE} {{
  chain forward {{
    type filter hook forward priority filter; policy accept;
    oifname "{TRANSFER_PREFIX}*" ct state established,related accept
    oifname "{TRANSFER_PREFIX}*" drop
  }}
  chain postrouting {{
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr {TRANSFER_RANGE} oifname != "{TRANSFER_PREFIX}*" masquerade
  }}
}}
"#
    )
}

/// Removes netd's table from the node namespace (absent is fine: declared first).
pub fn node_ruleset_delete() -> String {
    format!("table ip {NFT_TABLE}\ndelete table ip {NFT_TABLE}\n")
}

#[cfg(test)]
mod test {
    #![expect(clippy::unwrap_used, reason = "tests")]
    use super::*;

    fn plan(transfer: u16) -> NetPlan {
        NetPlan {
            id: "x".into(),
            netns: "n-x".into(),
            ip_range: "10.1.0.0/16".parse().unwrap(),
            subnet: "10.1.3.0/24".parse().unwrap(),
            transfer,
            listen_port: 51820,
        }
    }

    #[test]
    fn transfer_links_get_distinct_30s_inside_the_range() {
        let range: Ipv4Net = TRANSFER_RANGE.parse().unwrap();
        let (a, b) = plan(0).transfer_addrs();
        assert_eq!(a.to_string(), "169.254.64.1/30");
        assert_eq!(b.to_string(), "169.254.64.2/30");
        let (a, b) = plan(MAX_TRANSFER - 1).transfer_addrs();
        assert!(
            range.contains(&a.addr()) && range.contains(&b.addr()),
            "{a} {b}"
        );
        assert_eq!(plan(7).transfer_if(), "ntx7");
        assert!(plan(MAX_TRANSFER - 1).tun_temp_name().len() <= 15);
        assert_eq!(plan(1).gateway().to_string(), "10.1.3.1/24");
    }

    #[test]
    fn ports_skip_used_and_busy_ones() {
        let used: BTreeSet<u16> = [51820].into();
        assert_eq!(
            choose_port(51820..=51830, &used, |p| p != 51821),
            Some(51822)
        );
        assert_eq!(choose_port(51820..=51820, &used, |_| true), None);
        assert_eq!(choose_transfer(&[0, 1, 3].into()), Some(2));
    }

    #[test]
    fn addresses_are_checked_or_picked() {
        let subnet: Ipv4Net = "10.1.3.0/24".parse().unwrap();
        let used: BTreeSet<Ipv4Addr> = [Ipv4Addr::new(10, 1, 3, 2)].into();
        assert_eq!(
            choose_address(&subnet, None, &used).unwrap(),
            Ipv4Addr::new(10, 1, 3, 3)
        );
        let want = Ipv4Addr::new(10, 1, 3, 9);
        assert_eq!(choose_address(&subnet, Some(want), &used).unwrap(), want);
        for bad in [[10, 1, 3, 1], [10, 1, 3, 255], [10, 1, 4, 5], [10, 1, 3, 2]] {
            assert!(
                choose_address(&subnet, Some(bad.into()), &used).is_err(),
                "{bad:?}"
            );
        }
        let full: BTreeSet<Ipv4Addr> = (2..=254).map(|i| Ipv4Addr::new(10, 1, 3, i)).collect();
        assert!(
            choose_address(&subnet, None, &full)
                .unwrap_err()
                .contains("no free")
        );
    }

    #[test]
    fn rulesets_replace_netds_table_only() {
        let r = network_ruleset();
        assert!(r.starts_with("table inet netd\ndelete table inet netd\n"));
        assert!(r.contains("policy drop"));
        assert!(r.contains("oifname \"up0\" masquerade"));
        let n = node_ruleset();
        assert!(n.contains("ip saddr 169.254.64.0/18 oifname != \"ntx*\" masquerade"));
        assert!(node_ruleset_delete().ends_with("delete table ip netd\n"));
    }
}
