//! Network to tun: receive a batch of datagrams (GRO hands over runs of equal-size segments),
//! find each one's peer (session index, or the static key inside a handshake initiation),
//! decrypt, keep only packets from the peer's own subnets, and write them to the tun, where
//! `tun-rs` coalesces TCP segments of one flow into one large packet (GRO on write).

use super::Shared;
use super::packet::{COOKIE_REPLY, HANDSHAKE_INIT, MIN_DST, receiver};
use super::peers::PeerTable;
use super::sched::{Placement, SlicePolicy};
use boringtun::noise::handshake::parse_handshake_anon;
use boringtun::noise::{Packet, TunnResult};
use quinn_udp::RecvMeta;
use std::io::IoSliceMut;
use std::net::SocketAddr;
use std::time::Instant;
use tun_rs::{GROTable, VIRTIO_NET_HDR_LEN};

/// Datagrams per receive call; each may hold up to 64 coalesced segments.
const BATCH: usize = 8;
/// Room for one coalesced datagram.
const DATAGRAM_BUF: usize = 65_536;
/// Packets written to the tun per batch at most (64 segments per datagram).
const MAX_OUT: usize = BATCH * 64;
/// Where the IP packet starts in an output buffer: room for the virtio header.
const OFFSET: usize = VIRTIO_NET_HDR_LEN;
/// Tun reads the receive thread does after a write, at most, before it goes back to the network.
const REPLY_READS: usize = 4;
/// Capacity of an output buffer: `tun-rs` coalesces a flow's segments into its first buffer
/// only when that one can hold 64 KiB (pages are touched only as far as they are written).
const OUT_CAPACITY: usize = 2 * OFFSET + 65_535;

/// Decrypted packets waiting for the tun.
struct Out {
    bufs: Vec<Vec<u8>>,
    count: usize,
}

impl Out {
    /// The next free buffer, sized for a packet of up to `len` bytes after the header room.
    fn next(&mut self, len: usize) -> Option<&mut Vec<u8>> {
        if self.count == self.bufs.len() {
            return None;
        }
        let b = &mut self.bufs[self.count];
        b.resize(OFFSET + len.max(MIN_DST), 0);
        Some(b)
    }
}

pub(super) fn run(sh: &Shared) {
    let mut datagrams = vec![0u8; BATCH * DATAGRAM_BUF];
    let mut meta = [RecvMeta::default(); BATCH];
    let mut out = Out {
        bufs: (0..MAX_OUT)
            .map(|_| Vec::with_capacity(OUT_CAPACITY))
            .collect(),
        count: 0,
    };
    let mut gro = GROTable::default();
    let mut scratch = vec![0u8; 2048];
    let mut slice = SlicePolicy::default();
    let place = Placement::of_this_thread();
    while !sh.stop.raised() {
        let n = {
            let mut iovs: Vec<IoSliceMut<'_>> = datagrams
                .chunks_mut(DATAGRAM_BUF)
                .map(IoSliceMut::new)
                .collect();
            match sh.udp.recv(&mut iovs, &mut meta) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    let _ = sh.stop.wait(sh.udp.fd(), false, None);
                    continue;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "udp receive");
                    continue;
                }
            }
        };
        let table = sh.table();
        let mut segments = 0;
        for (m, chunk) in meta.iter().zip(datagrams.chunks(DATAGRAM_BUF)).take(n) {
            let Some(data) = chunk.get(..m.len) else {
                continue;
            };
            let stride = if m.stride == 0 { m.len } else { m.stride };
            for seg in data.chunks(stride.max(1)) {
                segments += 1;
                handle(sh, &table, seg, m.addr, &mut out, &mut scratch);
            }
        }
        if out.count > 0 {
            if let Err(e) = sh
                .tun
                .send_multiple(&mut gro, &mut out.bufs[..out.count], OFFSET)
            {
                tracing::debug!(error = %e, "tun write");
            }
            out.count = 0;
            // What the kernel answered while taking those packets (echo replies, ACKs) is in
            // the tun now: send it from here rather than wake the tun thread for it.
            if let Ok(mut tx) = sh.tx.try_lock() {
                tx.drain(sh, REPLY_READS);
            }
        }
        place.apply(slice.after_round(segments, Instant::now()));
    }
}

/// One datagram from `from`.
fn handle(
    sh: &Shared,
    table: &PeerTable,
    msg: &[u8],
    from: SocketAddr,
    out: &mut Out,
    scratch: &mut [u8],
) {
    let (kind, peer) = match receiver(msg) {
        Some((kind, idx)) => (kind, table.by_receiver(idx)),
        None if msg.first() == Some(&HANDSHAKE_INIT) => {
            (HANDSHAKE_INIT, handshake_peer(sh, table, msg, from))
        }
        None => return,
    };
    let Some(p) = peer else { return };
    let Some(peer) = table.peers.get(p) else {
        return;
    };
    let Some(buf) = out.next(msg.len()) else {
        return;
    };
    let mut io = peer.lock();
    let Some(dst) = buf.get_mut(OFFSET..) else {
        return;
    };
    match io.tunn.decapsulate(Some(from.ip()), msg, dst) {
        TunnResult::WriteToTunnelV4(pkt, src) => {
            let len = pkt.len();
            io.endpoint = Some(from);
            if table.allows(p, src) {
                buf.truncate(OFFSET + len);
                out.count += 1;
            } else {
                tracing::debug!(%src, "packet from outside the peer's subnets dropped");
            }
        }
        TunnResult::WriteToNetwork(reply) => {
            // A handshake answered (or a cookie asked for): reply, then send what waited.
            io.endpoint = Some(from);
            sh.udp.send_one(from, reply);
            while let TunnResult::WriteToNetwork(q) = io.tunn.decapsulate(None, &[], scratch) {
                sh.udp.send_one(from, q);
            }
        }
        TunnResult::Done => {
            // A handshake response or keepalive authenticated: the peer is there.
            if kind != COOKIE_REPLY {
                io.endpoint = Some(from);
            }
        }
        r => {
            sh.send_result(r, None);
        }
    }
}

/// The peer whose static key a handshake initiation carries (after the rate limiter, which
/// answers with a cookie instead when under load).
fn handshake_peer(sh: &Shared, table: &PeerTable, msg: &[u8], from: SocketAddr) -> Option<usize> {
    let mut cookie = [0u8; 64];
    let packet = match sh
        .rate_limiter
        .verify_packet(Some(from.ip()), msg, &mut cookie)
    {
        Ok(p) => p,
        Err(TunnResult::WriteToNetwork(c)) => {
            sh.udp.send_one(from, c);
            return None;
        }
        Err(_) => return None,
    };
    let Packet::HandshakeInit(init) = packet else {
        return None;
    };
    let half = parse_handshake_anon(&sh.secret, &sh.public, &init).ok()?;
    table.by_key(&half.peer_static_public)
}
