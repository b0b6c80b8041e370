//! The new netd's side: ask the running one for its tunnels, load the records, say Ready, wait
//! for Commit and for the old process to exit (its tun descriptors closed), then run the data
//! path on the handed sockets.

use super::channel::{Channel, HandoverError};
use super::wire::{Frame, VERSION};
use super::{READY_TIMEOUT, STEP_TIMEOUT};
use rustix::net::{SocketType, sockopt};
use std::collections::BTreeSet;
use std::net::UdpSocket;
use std::os::unix::net::UnixListener;
use std::path::Path;

/// Most networks one take-over carries (bounds what a hostile peer can make us hold).
pub const MAX_NETS: usize = 4096;

/// What the running netd handed over, Commit not yet received.
pub struct Offer {
    chan: Channel,
    /// The old netd's pid, to wait for its exit.
    old: Option<rustix::process::Pid>,
    /// Each network's UDP socket.
    pub sockets: Vec<(String, UdpSocket)>,
}

/// Connects to the running netd at `path` and receives its sockets (its tunnels now paused).
pub fn request(path: &Path) -> Result<Offer, HandoverError> {
    let chan = Channel::connect(path)?;
    chan.set_timeout(STEP_TIMEOUT)?;
    chan.send(&Frame::Hello(VERSION), &[])?;
    let old = chan.peer()?.0;
    let mut sockets = Vec::new();
    let mut ids = BTreeSet::new();
    loop {
        match chan.recv()? {
            (Frame::Net(id), fds) => {
                let Some(fd) = fds.into_iter().next() else {
                    return Err(HandoverError::Protocol(format!("{id}: no socket")));
                };
                if sockets.len() >= MAX_NETS || !ids.insert(id.clone()) {
                    return Err(HandoverError::Protocol(format!(
                        "network {id} again or too many"
                    )));
                }
                if sockopt::socket_type(&fd)? != SocketType::DGRAM {
                    return Err(HandoverError::Protocol(format!("{id}: not a UDP socket")));
                }
                sockets.push((id, UdpSocket::from(fd)));
            }
            (Frame::End(n), _) if usize::try_from(n).ok() == Some(sockets.len()) => break,
            (f, _) => {
                return Err(HandoverError::Protocol(format!("unexpected {f:?}")));
            }
        }
    }
    Ok(Offer {
        chan,
        old: rustix::process::Pid::from_raw(old),
        sockets,
    })
}

impl Offer {
    /// Says Ready and waits for Commit: from then on the tunnels are ours, and the bus API's
    /// listener when the old netd sent it. Then waits (10 s at most) for the old process to
    /// exit, so that its tun descriptors are closed.
    pub fn commit(&self) -> Result<Option<UnixListener>, HandoverError> {
        self.chan.send(&Frame::Ready, &[])?;
        self.chan.set_timeout(READY_TIMEOUT)?;
        let mut api = None;
        loop {
            match self.chan.recv()? {
                (Frame::Api, fds) if api.is_none() => {
                    let fd = fds
                        .into_iter()
                        .next()
                        .ok_or_else(|| HandoverError::Protocol("api: no socket".into()))?;
                    if sockopt::socket_domain(&fd)? != rustix::net::AddressFamily::UNIX
                        || sockopt::socket_type(&fd)? != SocketType::STREAM
                        || !sockopt::socket_acceptconn(&fd)?
                    {
                        return Err(HandoverError::Protocol(
                            "api: not a listening socket".into(),
                        ));
                    }
                    api = Some(UnixListener::from(fd));
                }
                (Frame::Commit, _) => break,
                (f, _) => {
                    return Err(HandoverError::Protocol(format!(
                        "expected commit, got {f:?}"
                    )));
                }
            }
        }
        if let Some(pid) = self.old
            && let Err(e) = wait_exit(pid)
        {
            tracing::warn!(error = %e, "the old netd did not exit after its commit");
        }
        Ok(api)
    }

    /// Gives up before Commit: the old netd carries on.
    pub fn abort(&self, why: &str) {
        self.chan.refuse(why);
    }
}

/// Waits (at most [`STEP_TIMEOUT`]) until process `pid` exited: a pidfd turns readable only
/// after the process closed all its files (here: its tun descriptors, which must be closed
/// before the tun can be attached again).
fn wait_exit(pid: rustix::process::Pid) -> std::io::Result<()> {
    use rustix::event::{PollFd, PollFlags, Timespec};
    let fd = match rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::SRCH) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let deadline = std::time::Instant::now() + STEP_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("pid {} still runs", pid.as_raw_nonzero()),
            ));
        }
        let ts = Timespec {
            tv_sec: i64::try_from(left.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: i64::from(left.subsec_nanos()),
        };
        let mut fds = [PollFd::new(&fd, PollFlags::IN)];
        match rustix::event::poll(&mut fds, Some(&ts)) {
            Ok(n) if n > 0 => return Ok(()),
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}
