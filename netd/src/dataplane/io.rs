//! The data path's two descriptors, driven without an async runtime: a non-blocking UDP socket
//! in the node's namespace (batched receive with GRO, segmented send with GSO, through
//! `quinn-udp`) and waits that also wake on netd's stop signal (an eventfd).

use quinn_udp::{RecvMeta, Transmit, UdpSockRef, UdpSocketState};
use rustix::event::{EventfdFlags, PollFd, PollFlags, Timespec};
use std::io::{self, IoSliceMut};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Largest payload one segmented send may carry (a UDP datagram's limit, with room to spare).
pub const MAX_GSO_BYTES: usize = 65_000;
/// Socket buffer sizes asked for (the kernel caps them at its `*mem_max`).
const SOCKET_BUFFER: usize = 8 << 20;

/// Stop flag plus an eventfd that makes every wait return once set.
pub struct Stop {
    flag: AtomicBool,
    fd: OwnedFd,
}

impl Stop {
    /// A stop signal not yet raised.
    pub fn new() -> io::Result<Self> {
        let fd = rustix::event::eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
        Ok(Stop {
            flag: AtomicBool::new(false),
            fd,
        })
    }

    /// Raises it: every thread's wait returns now and from now on.
    pub fn raise(&self) {
        self.flag.store(true, Ordering::Release);
        let _ = rustix::io::write(&self.fd, &1u64.to_ne_bytes());
    }

    /// Lowers it again (threads started after this wait as usual): a hand-over that failed
    /// gives the threads back their descriptors.
    pub fn clear(&self) {
        let mut buf = [0u8; 8];
        let _ = rustix::io::read(&self.fd, &mut buf);
        self.flag.store(false, Ordering::Release);
    }

    /// Whether it was raised.
    pub fn raised(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }

    /// Waits until `fd` is readable (or writable with `out`), the stop is raised, or `timeout`.
    pub fn wait(&self, fd: impl AsFd, out: bool, timeout: Option<Duration>) -> io::Result<()> {
        let flags = if out { PollFlags::OUT } else { PollFlags::IN };
        let mut fds = [
            PollFd::new(&fd, flags),
            PollFd::new(&self.fd, PollFlags::IN),
        ];
        let ts = timeout.map(|t| Timespec {
            tv_sec: i64::try_from(t.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: i64::from(t.subsec_nanos()),
        });
        match rustix::event::poll(&mut fds, ts.as_ref()) {
            Ok(_) | Err(rustix::io::Errno::INTR) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Sleeps for `d` or until the stop is raised.
    pub fn sleep(&self, d: Duration) {
        let mut fds = [PollFd::new(&self.fd, PollFlags::IN)];
        let ts = Timespec {
            tv_sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: i64::from(d.subsec_nanos()),
        };
        let _ = rustix::event::poll(&mut fds, Some(&ts));
    }
}

/// The network's UDP socket.
pub struct Udp {
    socket: UdpSocket,
    state: UdpSocketState,
}

impl Udp {
    /// Wraps a bound socket (made non-blocking, with GRO on when the kernel has it).
    pub fn new(socket: UdpSocket) -> io::Result<Self> {
        let state = UdpSocketState::new(UdpSockRef::from(&socket))?;
        let _ = state.set_send_buffer_size(UdpSockRef::from(&socket), SOCKET_BUFFER);
        let _ = state.set_recv_buffer_size(UdpSockRef::from(&socket), SOCKET_BUFFER);
        Ok(Udp { socket, state })
    }

    /// The descriptor, for waits.
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.socket.as_fd()
    }

    /// Most segments one send may carry (1 without GSO).
    pub fn max_segments(&self) -> usize {
        self.state.max_gso_segments().clamp(1, 64)
    }

    /// Receives a batch of datagrams (each possibly several coalesced segments of
    /// `meta.stride` bytes); `WouldBlock` when none is waiting.
    pub fn recv(&self, bufs: &mut [IoSliceMut<'_>], meta: &mut [RecvMeta]) -> io::Result<usize> {
        self.state.recv(UdpSockRef::from(&self.socket), bufs, meta)
    }

    /// Sends `data` to `to` as segments of `segment` bytes (the last may be shorter), waiting
    /// while the socket buffer is full unless `stop` is raised. A datagram the network refuses
    /// is dropped, as a router would.
    pub fn send(&self, to: SocketAddr, data: &[u8], segment: usize, stop: &Stop) {
        let t = Transmit {
            destination: to,
            ecn: None,
            contents: data,
            segment_size: (segment < data.len()).then_some(segment),
            src_ip: None,
        };
        loop {
            match self.state.try_send(UdpSockRef::from(&self.socket), &t) {
                Ok(()) => return,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && !stop.raised() => {
                    let _ = stop.wait(self.socket.as_fd(), true, Some(Duration::from_millis(100)));
                }
                Err(e) => {
                    tracing::trace!(%to, error = %e, "udp send failed");
                    return;
                }
            }
        }
    }

    /// Sends one small control message (handshake, cookie, keepalive) without waiting.
    pub fn send_one(&self, to: SocketAddr, data: &[u8]) {
        let t = Transmit {
            destination: to,
            ecn: None,
            contents: data,
            segment_size: None,
            src_ip: None,
        };
        if let Err(e) = self.state.try_send(UdpSockRef::from(&self.socket), &t) {
            tracing::debug!(%to, error = %e, "control message not sent");
        }
    }
}
