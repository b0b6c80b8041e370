//! Kernel effects behind one trait, so the engine's decisions are tested against a fake
//! ([`fake::FakeHost`]) and run for real through [`real::RealHost`] (rtnetlink, `nft`, tun).
//! Every method is idempotent: the engine calls them again to converge after a failure or a
//! restart.

pub mod fake;
pub mod links;
pub mod netns;
pub mod nft;
pub mod real;

use crate::dataplane::peers::PeerConfig;
use crate::dataplane::{Dataplane, PeerStats};
use crate::keys::PrivateKey;
use crate::plan::{AttachPlan, NetPlan};
use std::io;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::OwnedFd;

/// A running tunnel (the data path of one network).
pub trait Tunnel: Send {
    /// Replaces the peers; unchanged ones keep their sessions.
    fn set_peers(&self, peers: &[PeerConfig]);
    /// Per-peer traffic.
    fn stats(&self) -> Vec<PeerStats>;
    /// Whether it still carries traffic.
    fn alive(&self) -> bool;
    /// For a hand-over: stops carrying traffic but keeps the interface for the next netd;
    /// returns the UDP socket to hand over.
    fn pause(&mut self) -> io::Result<OwnedFd> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this tunnel cannot be handed over",
        ))
    }
    /// Carries traffic again after [`Tunnel::pause`] (the hand-over failed).
    fn resume(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Tunnel for Dataplane {
    fn set_peers(&self, peers: &[PeerConfig]) {
        Dataplane::set_peers(self, peers)
    }
    fn stats(&self) -> Vec<PeerStats> {
        Dataplane::stats(self)
    }
    fn alive(&self) -> bool {
        Dataplane::alive(self)
    }
    fn pause(&mut self) -> io::Result<OwnedFd> {
        Dataplane::pause(self)
    }
    fn resume(&mut self) -> io::Result<()> {
        Dataplane::resume(self)
    }
}

/// What netd does to the kernel.
pub trait Host: Send + 'static {
    /// Node-wide set-up: forwarding on, netd's masquerade table in the node's namespace.
    fn ensure_node(&self) -> io::Result<()>;
    /// Removes netd's table from the node's namespace (no network left).
    fn clear_node(&self) -> io::Result<()>;
    /// A network's namespace, bridge, uplink, addresses, routes and packet filter.
    fn ensure_network(&self, p: &NetPlan) -> io::Result<()>;
    /// Opens the network's socket and tun (moved into its namespace) and starts the data path.
    fn start_tunnel(
        &self,
        p: &NetPlan,
        key: &PrivateKey,
        peers: &[PeerConfig],
    ) -> io::Result<Box<dyn Tunnel>>;
    /// Takes over a tunnel a previous netd handed over: attaches to the network's tun (still
    /// there, persistent, no longer read by anyone) and runs the data path on `socket`.
    fn adopt_tunnel(
        &self,
        p: &NetPlan,
        key: &PrivateKey,
        peers: &[PeerConfig],
        socket: UdpSocket,
    ) -> io::Result<Box<dyn Tunnel>> {
        let _ = (p, key, peers, socket);
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this host takes over no tunnel",
        ))
    }
    /// Removes a network's namespace and uplink (its tunnel is already stopped).
    fn delete_network(&self, p: &NetPlan) -> io::Result<()>;
    /// Whether the namespace `name` exists.
    fn netns_exists(&self, name: &str) -> bool;
    /// Gives a namespace its interface in the network.
    fn attach(&self, p: &NetPlan, a: &AttachPlan) -> io::Result<()>;
    /// Removes a namespace's interface in the network.
    fn detach(&self, p: &NetPlan, a: &AttachPlan) -> io::Result<()>;
    /// The node's own IPv4 addresses peers may reach it at.
    fn node_addresses(&self) -> io::Result<Vec<Ipv4Addr>>;
    /// Whether UDP port `port` can be bound now.
    fn port_free(&self, port: u16) -> bool;
    /// Resolves `host:port` (IPv4 preferred).
    fn resolve(&self, host: &str, port: u16) -> io::Result<SocketAddr>;
}
