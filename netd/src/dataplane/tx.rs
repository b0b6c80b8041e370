//! Tun to network: read (a TSO superframe comes out as up to ~48 MTU-size segments), encrypt
//! each for the peer routing its destination, and send each run of equal-size datagrams to one
//! endpoint as one segmented send.
//!
//! Two threads may read: this module's own, woken by the tun, and the receive thread right
//! after it wrote to the tun, when what it wrote caused replies (a ping's echo, TCP's ACKs):
//! sending them at once saves a thread wake-up per round trip. One lock keeps them in order.

use super::Shared;
use super::io::MAX_GSO_BYTES;
use super::packet::{DATA, DATA_OVERHEAD, MIN_DST, ipv4_dst};
use super::sched::{Placement, SlicePolicy};
use boringtun::noise::TunnResult;
use std::net::SocketAddr;
use std::time::Instant;
use tun_rs::{IDEAL_BATCH_SIZE, VIRTIO_NET_HDR_LEN};

/// Largest packet the tun hands out after splitting (its MTU is smaller).
const SEGMENT_BUF: usize = 2048;

/// Encrypted datagrams waiting for one segmented send.
struct Batch {
    buf: Vec<u8>,
    len: usize,
    segment: usize,
    count: usize,
    to: Option<SocketAddr>,
    /// A shorter datagram ended the run: only a new batch may follow.
    closed: bool,
    max_segments: usize,
}

impl Batch {
    /// Room for the next datagram of `size` bytes to `to`, flushing first when it cannot join.
    fn room(&mut self, sh: &Shared, to: SocketAddr, size: usize) -> &mut [u8] {
        let joins = self.count > 0
            && self.to == Some(to)
            && !self.closed
            && size <= self.segment
            && self.count < self.max_segments
            && self.len + size <= MAX_GSO_BYTES;
        if !joins {
            self.flush(sh);
        }
        let end = self.len + size.max(MIN_DST);
        if self.buf.len() < end {
            self.buf.resize(end, 0);
        }
        &mut self.buf[self.len..end]
    }

    /// Counts the datagram just written at the end of the batch.
    fn push(&mut self, to: SocketAddr, size: usize) {
        if self.count == 0 {
            self.to = Some(to);
            self.segment = size;
        } else if size < self.segment {
            self.closed = true;
        }
        self.len += size;
        self.count += 1;
    }

    fn flush(&mut self, sh: &Shared) {
        if let (Some(to), true) = (self.to, self.count > 0) {
            sh.udp
                .send(to, &self.buf[..self.len], self.segment, &sh.stop);
        }
        self.len = 0;
        self.count = 0;
        self.closed = false;
        self.to = None;
    }
}

/// How a drain of the tun ended.
pub(super) enum Drained {
    /// Nothing left to read.
    Empty,
    /// Read as many times as allowed; more may wait.
    Limit,
    /// The interface is gone (its namespace was deleted).
    Closed,
}

/// The buffers of the tun-to-network path. One thread at a time reads the tun, holding this
/// (in `Shared::tx`): read order is send order, so no packet overtakes another.
pub(super) struct Tx {
    /// Packets read since the owner last reset it (the slice policy counts rounds).
    pub(super) packets: usize,
    original: Vec<u8>,
    bufs: Vec<Vec<u8>>,
    sizes: Vec<usize>,
    batch: Batch,
}

impl Tx {
    pub(super) fn new(max_segments: usize) -> Tx {
        Tx {
            packets: 0,
            original: vec![0u8; VIRTIO_NET_HDR_LEN + 65_535],
            bufs: vec![vec![0u8; SEGMENT_BUF]; IDEAL_BATCH_SIZE],
            sizes: vec![0usize; IDEAL_BATCH_SIZE],
            batch: Batch {
                buf: vec![0u8; MAX_GSO_BYTES + SEGMENT_BUF],
                len: 0,
                segment: 0,
                count: 0,
                to: None,
                closed: false,
                max_segments,
            },
        }
    }

    /// Reads, encrypts and sends until the tun is empty, or `limit` reads were done.
    pub(super) fn drain(&mut self, sh: &Shared, limit: usize) -> Drained {
        for _ in 0..limit {
            if sh.stop.raised() {
                return Drained::Empty;
            }
            let n =
                match sh
                    .tun
                    .recv_multiple(&mut self.original, &mut self.bufs, &mut self.sizes, 0)
                {
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Drained::Empty,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) if e.raw_os_error() == Some(77) => {
                        // EBADFD
                        tracing::warn!(error = %e, "tun closed");
                        return Drained::Closed;
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "tun read");
                        continue;
                    }
                };
            self.packets += n;
            self.send(sh, n);
        }
        Drained::Limit
    }

    /// Encrypts and sends the `n` packets read.
    fn send(&mut self, sh: &Shared, n: usize) {
        let table = sh.table();
        let (bufs, sizes, batch) = (&self.bufs, &self.sizes, &mut self.batch);
        let mut i = 0;
        while i < n {
            let Some(peer) = bufs[i]
                .get(..sizes[i])
                .and_then(ipv4_dst)
                .and_then(|d| table.route(d))
                .and_then(|p| table.peers.get(p))
            else {
                i += 1;
                continue;
            };
            // Segments of one superframe share a destination: encrypt the run under one lock.
            let mut io = peer.lock();
            let first = i;
            while i < n {
                let pkt = &bufs[i][..sizes[i]];
                if i > first && pkt.get(16..20) != bufs[first].get(16..20) {
                    break;
                }
                i += 1;
                let Some(to) = io.endpoint else { continue };
                let size = pkt.len() + DATA_OVERHEAD;
                let room = batch.room(sh, to, size);
                match io.tunn.encapsulate(pkt, room) {
                    TunnResult::WriteToNetwork(out) if out.len() == size && out[0] == DATA => {
                        batch.push(to, size)
                    }
                    r => {
                        sh.send_result(r, Some(to));
                    }
                }
            }
        }
        batch.flush(sh);
    }
}

/// The tun reader thread: waits for packets, then drains the tun under the `tx` lock (which
/// the receive thread also takes to send replies it just caused, without waking this one).
/// Its scheduler slice and cores follow its traffic ([`SlicePolicy`], [`Placement`]).
pub(super) fn run(sh: &Shared) {
    let mut slice = SlicePolicy::default();
    let place = Placement::of_this_thread();
    while !sh.stop.raised() {
        let _ = sh.stop.wait(&sh.tun, false, None);
        let mut tx = sh.tx.lock().unwrap_or_else(|p| p.into_inner());
        tx.packets = 0;
        let drained = tx.drain(sh, usize::MAX);
        let packets = tx.packets;
        drop(tx);
        if let Drained::Closed = drained {
            return;
        }
        place.apply(slice.after_round(packets, Instant::now()));
    }
}
