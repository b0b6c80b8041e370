//! The data path of one network: packets between its tun (in the network's namespace) and its
//! UDP socket (in the node's), encrypted with boringtun's `noise::Tunn`, one per peer.
//!
//! Three threads, so neither direction waits for the other and encryption and decryption run on
//! different cores without reordering anything (each direction keeps its order):
//! * [`tx`]: reads the tun with offloads (one read is up to 64 KiB of TCP segments, split by
//!   `tun-rs`), encrypts each segment for its peer and sends runs of equal-size datagrams to one
//!   endpoint with a single segmented (GSO) send; the receive thread drains the tun too, under
//!   the same lock, right after a write that caused replies;
//! * [`rx`]: receives batches of datagrams (`recvmmsg`, GRO-coalesced), decrypts them, checks each
//!   packet's source against its peer's subnets, and writes them to the tun coalesced back into
//!   large TCP segments (GRO on write);
//! * [`timers`]: drives every `Tunn`'s timers (rekey, keepalive, expiry) every 100 ms.
//!
//! The peer table ([`peers`]) is swapped whole on an update; unchanged peers keep their state.

pub mod io;
pub mod packet;
pub mod peers;
mod rx;
pub mod sched;
mod timers;
mod tx;

use crate::keys::{PrivateKey, PublicKey};
use boringtun::noise::rate_limiter::RateLimiter;
use boringtun::noise::{Tunn, TunnResult};
use boringtun::x25519;
use peers::{Peer, PeerConfig, PeerTable};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

/// Handshake initiations per second a network answers before it asks for cookies.
const HANDSHAKE_RATE_LIMIT: u64 = 100;

/// A peer's traffic, for replies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStats {
    /// Its public key.
    pub public_key: PublicKey,
    /// Current endpoint.
    pub endpoint: Option<SocketAddr>,
    /// Time since the last completed handshake.
    pub last_handshake: Option<Duration>,
    /// Payload bytes received.
    pub rx_bytes: u64,
    /// Payload bytes sent.
    pub tx_bytes: u64,
}

/// What the three threads share.
struct Shared {
    peers: RwLock<Arc<PeerTable>>,
    udp: io::Udp,
    tun: tun_rs::SyncDevice,
    secret: x25519::StaticSecret,
    public: x25519::PublicKey,
    rate_limiter: Arc<RateLimiter>,
    stop: io::Stop,
    next_index: AtomicU32,
    /// The tun-to-network path; whoever holds it reads the tun.
    tx: Mutex<tx::Tx>,
}

impl Shared {
    fn table(&self) -> Arc<PeerTable> {
        self.peers.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Sends what a `Tunn` call asked to send, to `to` (dropped without an endpoint).
    fn send_result(&self, r: TunnResult<'_>, to: Option<SocketAddr>) -> bool {
        match (r, to) {
            (TunnResult::WriteToNetwork(p), Some(to)) => {
                self.udp.send_one(to, p);
                true
            }
            (TunnResult::WriteToNetwork(_), None) => true,
            (TunnResult::Err(e), _) => {
                tracing::trace!(error = ?e, "wireguard");
                false
            }
            _ => false,
        }
    }

    /// A new peer with a session index no other peer of the table uses.
    fn make_peer(&self, table: &PeerTable, cfg: &PeerConfig) -> Arc<Peer> {
        let index = loop {
            let i = self.next_index.fetch_add(1, Ordering::Relaxed) & 0x00ff_ffff;
            if !table.index_taken(i) {
                break i;
            }
        };
        let tunn = Tunn::new(
            self.secret.clone(),
            x25519::PublicKey::from(cfg.public_key),
            None,
            cfg.keepalive,
            index,
            Some(self.rate_limiter.clone()),
        );
        Arc::new(Peer::new(cfg, index, tunn))
    }
}

/// A running data path; stopped on [`Dataplane::stop`] or drop.
pub struct Dataplane {
    id: String,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl Dataplane {
    /// Starts the threads on `tun` (opened with offloads) and `socket` (bound, in the node's
    /// namespace), and starts a handshake with every peer that has an endpoint.
    pub fn start(
        id: &str,
        key: &PrivateKey,
        tun: tun_rs::SyncDevice,
        socket: UdpSocket,
        peers: &[PeerConfig],
    ) -> std::io::Result<Dataplane> {
        tun.set_nonblocking(true)?;
        let secret = key.secret();
        let public = x25519::PublicKey::from(&secret);
        let udp = io::Udp::new(socket)?;
        let tx = Mutex::new(tx::Tx::new(udp.max_segments()));
        let shared = Arc::new(Shared {
            peers: RwLock::new(Arc::new(PeerTable::default())),
            udp,
            tx,
            tun,
            rate_limiter: Arc::new(RateLimiter::new(&public, HANDSHAKE_RATE_LIMIT)),
            secret,
            public,
            stop: io::Stop::new()?,
            next_index: AtomicU32::new(nodeutil::random::u64() as u32),
        });
        let mut dp = Dataplane {
            id: id.to_string(),
            shared,
            threads: Vec::new(),
        };
        dp.spawn()?;
        dp.set_peers(peers);
        Ok(dp)
    }

    /// Starts the three threads (stopped ones are joined first).
    fn spawn(&mut self) -> std::io::Result<()> {
        let spawn = |name: &str, f: fn(&Shared)| {
            let sh = self.shared.clone();
            std::thread::Builder::new()
                .name(format!("{name}-{}", self.id).chars().take(15).collect())
                .spawn(move || f(&sh))
        };
        let threads = [
            spawn("nd-tx", tx::run),
            spawn("nd-rx", rx::run),
            spawn("nd-tm", timers::run),
        ];
        let mut failed = None;
        for t in threads {
            match t {
                Ok(t) => self.threads.push(t),
                Err(e) => failed = Some(e),
            }
        }
        match failed {
            // the ones that started stop again: a data path runs whole or not at all
            Some(e) => {
                self.stop();
                Err(e)
            }
            None => Ok(()),
        }
    }

    /// For a hand-over: stops the threads (nothing of this process reads the tun or the socket
    /// any more), makes the tun persistent (it outlives this process's descriptor, so the next
    /// netd attaches to the same interface) and returns a duplicate of the UDP socket.
    pub fn pause(&mut self) -> std::io::Result<std::os::fd::OwnedFd> {
        let udp = self.shared.udp.fd().try_clone_to_owned()?;
        self.shared.tun.persist()?;
        self.stop();
        Ok(udp)
    }

    /// Starts the threads again after [`Dataplane::pause`] (a hand-over that failed).
    pub fn resume(&mut self) -> std::io::Result<()> {
        if !self.threads.is_empty() {
            return Ok(());
        }
        self.shared.stop.clear();
        self.spawn()
    }

    /// Replaces the peer set; peers with an unchanged key keep their sessions. New peers with
    /// an endpoint get a handshake at once.
    pub fn set_peers(&self, peers: &[PeerConfig]) {
        let sh = &self.shared;
        let mut guard = sh.peers.write().unwrap_or_else(|p| p.into_inner());
        let old = guard.clone();
        let mut fresh = Vec::new();
        let table = PeerTable::build(&old, peers, |cfg| {
            let p = sh.make_peer(&old, cfg);
            fresh.push(p.clone());
            p
        });
        *guard = Arc::new(table);
        drop(guard);
        let mut buf = [0u8; packet::MIN_DST];
        for p in fresh {
            let mut io = p.lock();
            let to = io.endpoint;
            let r = io.tunn.format_handshake_initiation(&mut buf, false);
            sh.send_result(r, to);
        }
    }

    /// Traffic of every peer.
    pub fn stats(&self) -> Vec<PeerStats> {
        let table = self.shared.table();
        table
            .peers
            .iter()
            .map(|p| {
                let io = p.lock();
                let (last, tx, rx, _, _) = io.tunn.stats();
                PeerStats {
                    public_key: p.public_key,
                    endpoint: io.endpoint,
                    last_handshake: last,
                    rx_bytes: rx as u64,
                    tx_bytes: tx as u64,
                }
            })
            .collect()
    }

    /// Whether all threads still run (a thread ends only on stop or a broken descriptor).
    pub fn alive(&self) -> bool {
        self.threads.iter().all(|t| !t.is_finished())
    }

    /// Stops the threads and closes the tun and the socket.
    pub fn stop(&mut self) {
        self.shared.stop.raise();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Dataplane {
    fn drop(&mut self) {
        self.stop();
    }
}
