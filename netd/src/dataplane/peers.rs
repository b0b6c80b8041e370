//! The peer table the data path reads: one WireGuard state machine (`Tunn`) per peer behind its
//! own lock, found by destination address (sending), by session index (receiving) or by public
//! key (handshake initiations). An update builds a new table and swaps it in; peers whose key
//! did not change keep their `Tunn` (sessions, counters), so the others' traffic is untouched.

use crate::keys::PublicKey;
use boringtun::noise::Tunn;
use ipnet::Ipv4Net;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};

/// A peer as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerConfig {
    /// Its public key.
    pub public_key: PublicKey,
    /// Where to send, until it shows up elsewhere.
    pub endpoint: Option<SocketAddr>,
    /// Subnets routed to it (and accepted from it).
    pub subnets: Vec<Ipv4Net>,
    /// Keepalive interval in seconds.
    pub keepalive: Option<u16>,
}

/// What a peer's lock protects: its protocol state and where it is.
pub struct PeerIo {
    /// Protocol state.
    pub tunn: Tunn,
    /// Current endpoint: configured, or learnt from its last authenticated packet.
    pub endpoint: Option<SocketAddr>,
    /// The endpoint in the config, to notice when the operator changes it.
    configured: Option<SocketAddr>,
}

/// One peer.
pub struct Peer {
    /// Its public key.
    pub public_key: PublicKey,
    /// Upper 24 bits of our session indexes with it.
    pub index: u32,
    keepalive: Option<u16>,
    io: Mutex<PeerIo>,
}

impl Peer {
    /// A new peer; `tunn` was made with `index`.
    pub fn new(cfg: &PeerConfig, index: u32, tunn: Tunn) -> Self {
        Peer {
            public_key: cfg.public_key,
            index,
            keepalive: cfg.keepalive,
            io: Mutex::new(PeerIo {
                tunn,
                endpoint: cfg.endpoint,
                configured: cfg.endpoint,
            }),
        }
    }

    /// Locks its state (a poisoned lock is taken over: the state is plain data).
    pub fn lock(&self) -> MutexGuard<'_, PeerIo> {
        self.io.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// All peers of a network, indexed three ways.
#[derive(Default)]
pub struct PeerTable {
    /// Peers in config order.
    pub peers: Vec<Arc<Peer>>,
    /// Subnets of each peer (same order).
    pub subnets: Vec<Vec<Ipv4Net>>,
    by_index: HashMap<u32, usize>,
    by_key: HashMap<PublicKey, usize>,
    /// (subnet, peer) by decreasing prefix length: the first match is the longest.
    routes: Vec<(Ipv4Net, usize)>,
}

impl PeerTable {
    /// A table for `configs`, reusing the peers of `old` whose key and keepalive are unchanged
    /// (their endpoint follows a changed config); `make` creates the others.
    pub fn build(
        old: &PeerTable,
        configs: &[PeerConfig],
        mut make: impl FnMut(&PeerConfig) -> Arc<Peer>,
    ) -> PeerTable {
        let mut t = PeerTable::default();
        for cfg in configs {
            let reused = old
                .by_key
                .get(&cfg.public_key)
                .and_then(|i| old.peers.get(*i))
                .filter(|p| p.keepalive == cfg.keepalive)
                .cloned();
            let peer = match reused {
                Some(p) => {
                    let mut io = p.lock();
                    if io.configured != cfg.endpoint {
                        io.configured = cfg.endpoint;
                        if cfg.endpoint.is_some() {
                            io.endpoint = cfg.endpoint;
                        }
                    }
                    drop(io);
                    p
                }
                None => make(cfg),
            };
            let i = t.peers.len();
            t.by_index.insert(peer.index, i);
            t.by_key.insert(peer.public_key, i);
            for s in &cfg.subnets {
                t.routes.push((*s, i));
            }
            t.subnets.push(cfg.subnets.clone());
            t.peers.push(peer);
        }
        t.routes
            .sort_by_key(|(net, _)| std::cmp::Reverse(net.prefix_len()));
        t
    }

    /// The peer a packet to `dst` goes to.
    pub fn route(&self, dst: Ipv4Addr) -> Option<usize> {
        self.routes
            .iter()
            .find(|(net, _)| net.contains(&dst))
            .map(|(_, i)| *i)
    }

    /// The peer owning session index `receiver`.
    pub fn by_receiver(&self, receiver: u32) -> Option<usize> {
        self.by_index.get(&(receiver >> 8)).copied()
    }

    /// The peer with public key `key`.
    pub fn by_key(&self, key: &PublicKey) -> Option<usize> {
        self.by_key.get(key).copied()
    }

    /// Whether peer `i` may send from `src` (WireGuard's cryptokey routing).
    pub fn allows(&self, i: usize, src: Ipv4Addr) -> bool {
        self.subnets
            .get(i)
            .is_some_and(|s| s.iter().any(|n| n.contains(&src)))
    }

    /// Whether session index `index` (upper 24 bits) is taken.
    pub fn index_taken(&self, index: u32) -> bool {
        self.by_index.contains_key(&index)
    }
}

#[cfg(test)]
mod test {
    #![expect(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use crate::keys::PrivateKey;

    fn cfg(key: &PrivateKey, subnets: &[&str]) -> PeerConfig {
        PeerConfig {
            public_key: key.public(),
            endpoint: Some("192.0.2.1:1".parse().unwrap()),
            subnets: subnets.iter().map(|s| s.parse().unwrap()).collect(),
            keepalive: None,
        }
    }

    fn maker(me: &PrivateKey) -> impl FnMut(&PeerConfig) -> Arc<Peer> + '_ {
        let mut n = 0;
        move |c| {
            n += 1;
            let tunn = Tunn::new(
                me.secret(),
                boringtun::x25519::PublicKey::from(c.public_key),
                None,
                None,
                n,
                None,
            );
            Arc::new(Peer::new(c, n, tunn))
        }
    }

    #[test]
    fn routes_by_longest_prefix_and_checks_sources() {
        let me = PrivateKey::generate();
        let (a, b) = (PrivateKey::generate(), PrivateKey::generate());
        let t = PeerTable::build(
            &PeerTable::default(),
            &[cfg(&a, &["10.1.0.0/20"]), cfg(&b, &["10.1.2.0/24"])],
            maker(&me),
        );
        assert_eq!(t.route("10.1.2.9".parse().unwrap()), Some(1));
        assert_eq!(t.route("10.1.3.9".parse().unwrap()), Some(0));
        assert_eq!(t.route("10.2.0.1".parse().unwrap()), None);
        assert!(t.allows(1, "10.1.2.200".parse().unwrap()));
        assert!(!t.allows(1, "10.1.3.1".parse().unwrap()));
        assert!(!t.allows(7, "10.1.3.1".parse().unwrap()));
        assert_eq!(t.by_receiver((2 << 8) | 0x37), Some(1));
        assert_eq!(t.by_key(&a.public()), Some(0));
    }

    #[test]
    fn an_update_keeps_unchanged_peers_and_follows_a_new_endpoint() {
        let me = PrivateKey::generate();
        let (a, b, c) = (
            PrivateKey::generate(),
            PrivateKey::generate(),
            PrivateKey::generate(),
        );
        let mut make = maker(&me);
        let t1 = PeerTable::build(
            &PeerTable::default(),
            &[cfg(&a, &["10.1.1.0/24"]), cfg(&b, &["10.1.2.0/24"])],
            &mut make,
        );
        let mut b2 = cfg(&b, &["10.1.2.0/24"]);
        b2.endpoint = Some("192.0.2.9:9".parse().unwrap());
        let t2 = PeerTable::build(&t1, &[b2, cfg(&c, &["10.1.3.0/24"])], &mut make);
        assert!(Arc::ptr_eq(&t1.peers[1], &t2.peers[0]));
        assert_eq!(
            t2.peers[0].lock().endpoint,
            Some("192.0.2.9:9".parse().unwrap())
        );
        assert_eq!(t2.by_key(&a.public()), None);
        assert_eq!(t2.peers[1].index, 3);
        assert!(!t2.index_taken(1));
    }
}
