//! Tun to network: read (a TSO superframe comes out as up to ~48 MTU-size segments), encrypt
//! each for the peer routing its destination, and send each run of equal-size datagrams to one
//! endpoint as one segmented send.

use super::Shared;
use super::io::MAX_GSO_BYTES;
use super::packet::{DATA, DATA_OVERHEAD, MIN_DST, ipv4_dst};
use boringtun::noise::TunnResult;
use std::net::SocketAddr;
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

pub(super) fn run(sh: &Shared) {
    let mut original = vec![0u8; VIRTIO_NET_HDR_LEN + 65_535];
    let mut bufs = vec![vec![0u8; SEGMENT_BUF]; IDEAL_BATCH_SIZE];
    let mut sizes = vec![0usize; IDEAL_BATCH_SIZE];
    let mut batch = Batch {
        buf: vec![0u8; MAX_GSO_BYTES + SEGMENT_BUF],
        len: 0,
        segment: 0,
        count: 0,
        to: None,
        closed: false,
        max_segments: sh.udp.max_segments(),
    };
    while !sh.stop.raised() {
        let n = match sh
            .tun
            .recv_multiple(&mut original, &mut bufs, &mut sizes, 0)
        {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                batch.flush(sh);
                let _ = sh.stop.wait(&sh.tun, false, None);
                continue;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) if e.raw_os_error() == Some(77) => {
                // EBADFD: the interface is gone (its namespace was deleted).
                tracing::warn!(error = %e, "tun closed");
                return;
            }
            Err(e) => {
                tracing::debug!(error = %e, "tun read");
                continue;
            }
        };
        let table = sh.table();
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
