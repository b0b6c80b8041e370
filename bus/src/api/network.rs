//! netd's API (socket `netd.sock`): private WireGuard networks spanning nodes.
//!
//! A network is named `[a-z0-9_-]{1,64}` (node-init passes `<owner>-<deployment>-<name>` cut to
//! fit). It has a private IPv4 `/16`, this node's `/24` inside it, and peers (other nodes of the
//! same network, or any standard WireGuard endpoint). netd makes the network's key on the first
//! `apply` and keeps the private key on the node; replies carry only the public key. The listen
//! port is chosen on the first `apply` and never changes afterwards.
//!
//! Every mutating method is idempotent:
//! * `network.apply` of an existing network converges it to the new spec: peers are added,
//!   removed or re-keyed without disturbing the others; the `/16` and the `/24` cannot change
//!   (delete and apply again).
//! * `network.delete` of an absent network succeeds; it removes the namespace, its links,
//!   routes, packet filter rules and the UDP socket.
//! * `network.attach` of a namespace already attached returns the attachment (re-made if the
//!   namespace was re-created); `network.detach` of one not attached succeeds.
//!
//! Errors: `not_found` (no such network), `invalid_argument` (bad spec, address taken or outside
//! the node's subnet, immutable field changed), `no_capacity` (no free port or address).

use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

/// A peer of a network: a node (or any WireGuard endpoint) routing some of its subnets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerSpec {
    /// The peer's WireGuard public key, base64 (44 characters, as `wg` prints it).
    pub public_key: String,
    /// Where to reach it, `host:port`; absent for a peer that only connects to us (its
    /// endpoint is then learnt from its first authenticated packet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// IPv4 subnets it routes (`10.1.2.0/24`); packets to them go to this peer, and only packets
    /// from them are accepted from it.
    pub subnets: Vec<String>,
    /// Seconds between keepalives (for a peer behind NAT); absent or 0 = none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keepalive_secs: Option<u16>,
}

/// What a network looks like on this node: request of `network.apply@1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkSpec {
    /// Network id.
    pub id: String,
    /// The network's private IPv4 range, a `/16` (`10.1.0.0/16`).
    pub ip_range: String,
    /// This node's subnet of it, a `/24` (`10.1.3.0/24`); `.1` is the gateway.
    pub subnet: String,
    /// The other nodes of the network.
    #[serde(default)]
    pub peers: Vec<PeerSpec>,
}

/// A peer as it is now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerStatus {
    /// Its public key (base64).
    pub public_key: String,
    /// Where packets to it go now (`ip:port`), the configured one or the last one it sent from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Subnets it routes.
    pub subnets: Vec<String>,
    /// Seconds since the last completed handshake; absent when none completed yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handshake_secs: Option<u64>,
    /// Bytes of packets received from it (decrypted payload).
    pub rx_bytes: u64,
    /// Bytes of packets sent to it (payload before encryption).
    pub tx_bytes: u64,
}

/// A container namespace attached to a network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// Network id.
    pub network: String,
    /// The attached namespace (a file under `/run/netns`).
    pub netns: String,
    /// Its address in the node's subnet.
    pub address: Ipv4Addr,
    /// The interface inside the namespace (`eth0`).
    pub interface: String,
    /// Its default gateway (the node's `.1`).
    pub gateway: Ipv4Addr,
}

/// Whether the network carries traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkState {
    /// Namespace, interfaces, rules and data path are in place.
    Ready,
    /// Something failed (see `message`); netd retries.
    Failed,
}

/// A network: reply of `network.apply@1` and `network.get@1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    /// Network id.
    pub id: String,
    /// The private `/16`.
    pub ip_range: String,
    /// This node's `/24`.
    pub subnet: String,
    /// This node's WireGuard public key for the network (base64): give it to the peers.
    pub public_key: String,
    /// UDP port this node listens on for the network; fixed for the network's life.
    pub listen_port: u16,
    /// `ip:port` where peers can reach this node (its own addresses with the port).
    pub endpoints: Vec<String>,
    /// The network namespace on this node.
    pub netns: String,
    /// State.
    pub state: NetworkState,
    /// Why it failed, when it did.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// Peers and their traffic.
    pub peers: Vec<PeerStatus>,
    /// Attached namespaces.
    pub attachments: Vec<Attachment>,
}

/// Reply of `network.list@1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkList {
    /// Every network.
    pub networks: Vec<Network>,
}

/// Names a network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkId {
    /// Network id.
    pub id: String,
}

/// Request of `network.attach@1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachRequest {
    /// Network id.
    pub network: String,
    /// The namespace to attach (a name under `/run/netns`, e.g. computed's `c-<name>`).
    pub netns: String,
    /// Address wanted in the node's subnet; absent = the next free one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Ipv4Addr>,
}

/// Request of `network.detach@1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DetachRequest {
    /// Network id.
    pub network: String,
    /// The attached namespace.
    pub netns: String,
}

crate::method!(
    /// Creates a network or converges it to the spec.
    ApplyNetwork, "network.apply" @ 1, NetworkSpec => Network
);
crate::method!(
    /// Removes a network and everything it made; absent is fine.
    DeleteNetwork, "network.delete" @ 1, NetworkId => super::Empty
);
crate::method!(
    /// Reads a network with its peers' state.
    GetNetwork, "network.get" @ 1, NetworkId => Network
);
crate::method!(
    /// Lists networks.
    ListNetworks, "network.list" @ 1, super::Empty => NetworkList
);
crate::method!(
    /// Gives a namespace an interface in the network (address, default route via `.1`).
    AttachNetwork, "network.attach" @ 1, AttachRequest => Attachment
);
crate::method!(
    /// Removes a namespace's interface in the network; not attached is fine.
    DetachNetwork, "network.detach" @ 1, DetachRequest => super::Empty
);
