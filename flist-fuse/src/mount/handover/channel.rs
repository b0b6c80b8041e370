//! The hand-over socket: a unix `SOCK_SEQPACKET` socket, owner-only, spoken with blocking
//! calls under per-call timeouts. Descriptors travel as `SCM_RIGHTS` (rustix).

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags,
    SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketAddrUnix, SocketFlags, SocketType,
    sockopt,
};

use super::wire::{Frame, MAX_FRAME, WireError};

/// A hand-over failure.
#[derive(Debug, thiserror::Error)]
pub enum HandoverError {
    /// The socket failed or timed out (`EAGAIN`).
    #[error("hand-over socket: {0}")]
    Io(#[from] std::io::Error),
    /// A message could not be read.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// The peer closed the socket.
    #[error("hand-over peer went away")]
    Closed,
    /// A message out of turn, or with the wrong descriptors.
    #[error("hand-over protocol: {0}")]
    Protocol(String),
    /// The peer gave up.
    #[error("hand-over refused by the peer: {0}")]
    Refused(String),
}

impl From<rustix::io::Errno> for HandoverError {
    fn from(e: rustix::io::Errno) -> Self {
        HandoverError::Io(e.into())
    }
}

/// One end of a hand-over.
pub struct Channel(OwnedFd);

impl Channel {
    /// Connect to a mount's hand-over socket.
    pub fn connect(path: &Path) -> Result<Channel, HandoverError> {
        let fd = rustix::net::socket_with(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC,
            None,
        )?;
        rustix::net::connect(&fd, &SocketAddrUnix::new(path)?)?;
        Ok(Channel(fd))
    }

    /// Give up on a send or receive after `d`.
    pub fn set_timeout(&self, d: Duration) -> Result<(), HandoverError> {
        sockopt::set_socket_timeout(&self.0, sockopt::Timeout::Recv, Some(d))?;
        sockopt::set_socket_timeout(&self.0, sockopt::Timeout::Send, Some(d))?;
        Ok(())
    }

    /// The peer's user id.
    fn peer_uid(&self) -> Result<u32, HandoverError> {
        Ok(sockopt::socket_peercred(&self.0)?.uid.as_raw())
    }

    /// Send a message with exactly the descriptors it carries.
    pub fn send(&self, frame: &Frame, fds: &[BorrowedFd<'_>]) -> Result<(), HandoverError> {
        if frame.fds() != fds.len() {
            return Err(HandoverError::Protocol(
                "descriptors do not match the message".into(),
            ));
        }
        let bytes = frame.encode();
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(2))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
            return Err(HandoverError::Protocol("no room for descriptors".into()));
        }
        let sent = rustix::net::sendmsg(
            &self.0,
            &[IoSlice::new(&bytes)],
            &mut control,
            SendFlags::NOSIGNAL,
        )?;
        if sent != bytes.len() {
            return Err(HandoverError::Protocol("message sent in part".into()));
        }
        Ok(())
    }

    /// Receive a message and its descriptors (exactly as many as it carries). A Refuse
    /// comes back as [`HandoverError::Refused`].
    pub fn recv(&self) -> Result<(Frame, Vec<OwnedFd>), HandoverError> {
        let mut buf = vec![0u8; MAX_FRAME + 1];
        // Room for more than we take, so that extra descriptors are received (and closed)
        // rather than silently truncating the message.
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(4))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let msg = rustix::net::recvmsg(
            &self.0,
            &mut [IoSliceMut::new(&mut buf)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        )?;
        let mut fds = Vec::new();
        for m in control.drain() {
            if let RecvAncillaryMessage::ScmRights(rights) = m {
                fds.extend(rights);
            }
        }
        if msg.bytes == 0 {
            return Err(HandoverError::Closed);
        }
        if msg.flags.contains(ReturnFlags::TRUNC) || msg.flags.contains(ReturnFlags::CTRUNC) {
            return Err(HandoverError::Protocol("message truncated".into()));
        }
        let frame = Frame::decode(buf.get(..msg.bytes).unwrap_or_default())?;
        if let Frame::Refuse { reason } = frame {
            return Err(HandoverError::Refused(reason));
        }
        if fds.len() != frame.fds() {
            return Err(HandoverError::Protocol(format!(
                "message came with {} descriptors, {} expected",
                fds.len(),
                frame.fds()
            )));
        }
        Ok((frame, fds))
    }

    /// Tell the peer why we give up (best effort: it may be gone).
    pub fn refuse(&self, reason: &str) {
        let _ = self.send(
            &Frame::Refuse {
                reason: reason.to_string(),
            },
            &[],
        );
    }
}

/// A mount's hand-over socket at `path`, owner-only (a stale file is replaced).
pub fn listen(path: &Path) -> Result<OwnedFd, HandoverError> {
    let _ = std::fs::remove_file(path);
    let fd = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )?;
    rustix::net::bind(&fd, &SocketAddrUnix::new(path)?)?;
    rustix::fs::chmod(path, rustix::fs::Mode::from_raw_mode(0o600))?;
    rustix::net::listen(&fd, 1)?;
    Ok(fd)
}

/// The next peer on a hand-over socket; only a process of our own user is taken.
pub fn accept(listener: BorrowedFd<'_>) -> Result<Channel, HandoverError> {
    loop {
        let chan = Channel(rustix::net::accept_with(
            listener.as_fd(),
            SocketFlags::CLOEXEC,
        )?);
        if chan.peer_uid()? == rustix::process::geteuid().as_raw() {
            return Ok(chan);
        }
        crate::mount::log::log("hand-over refused: the peer runs as another user");
    }
}
