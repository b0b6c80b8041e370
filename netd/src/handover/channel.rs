//! The take-over socket: unix `SOCK_SEQPACKET` (each frame arrives whole, with its
//! descriptor), owner-only, spoken with blocking calls under timeouts on a plain thread.
//! Descriptors travel as `SCM_RIGHTS` through rustix.

use super::wire::{Frame, MAX_FRAME, WireError};
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags,
    SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketAddrUnix, SocketFlags, SocketType,
    sockopt,
};
use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

/// A take-over failure.
#[derive(Debug, thiserror::Error)]
pub enum HandoverError {
    /// The socket failed (or timed out: `EAGAIN`).
    #[error("take-over socket: {0}")]
    Io(#[from] std::io::Error),
    /// A frame did not decode.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// The peer closed the socket.
    #[error("take-over peer went away")]
    Closed,
    /// The peer broke the protocol.
    #[error("take-over protocol: {0}")]
    Protocol(String),
    /// The peer gave up.
    #[error("take-over aborted by the peer: {0}")]
    Aborted(String),
}

impl From<rustix::io::Errno> for HandoverError {
    fn from(e: rustix::io::Errno) -> Self {
        HandoverError::Io(e.into())
    }
}

/// One end of a take-over.
pub struct Channel(OwnedFd);

impl Channel {
    /// Connects to a running netd's take-over socket.
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

    /// Gives up waiting for the peer after `d` (per call).
    pub fn set_timeout(&self, d: Duration) -> Result<(), HandoverError> {
        sockopt::set_socket_timeout(&self.0, sockopt::Timeout::Recv, Some(d))?;
        sockopt::set_socket_timeout(&self.0, sockopt::Timeout::Send, Some(d))?;
        Ok(())
    }

    /// Sends a frame, with its descriptor when it carries one.
    pub fn send(&self, frame: &Frame, fd: Option<BorrowedFd<'_>>) -> Result<(), HandoverError> {
        if frame.carries_fd() != fd.is_some() {
            return Err(HandoverError::Protocol(
                "descriptor does not match frame".into(),
            ));
        }
        let bytes = frame.encode();
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        let fds;
        if let Some(fd) = fd {
            fds = [fd];
            if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
                return Err(HandoverError::Protocol("no room for a descriptor".into()));
            }
        }
        let sent = rustix::net::sendmsg(
            &self.0,
            &[IoSlice::new(&bytes)],
            &mut control,
            SendFlags::NOSIGNAL,
        )?;
        if sent != bytes.len() {
            return Err(HandoverError::Protocol("frame sent in part".into()));
        }
        Ok(())
    }

    /// Receives a frame and its descriptor (present exactly when the frame carries one).
    pub fn recv(&self) -> Result<(Frame, Option<OwnedFd>), HandoverError> {
        let mut buf = vec![0u8; MAX_FRAME + 1];
        // room for more than one, so extra descriptors are received (and closed) rather than
        // truncating the message unseen
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(4))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let msg = rustix::net::recvmsg(
            &self.0,
            &mut [IoSliceMut::new(&mut buf)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        )?;
        let mut fds: Vec<OwnedFd> = Vec::new();
        for m in control.drain() {
            if let RecvAncillaryMessage::ScmRights(rights) = m {
                fds.extend(rights);
            }
        }
        if msg.bytes == 0 {
            return Err(HandoverError::Closed);
        }
        if msg.flags.contains(ReturnFlags::TRUNC) || msg.flags.contains(ReturnFlags::CTRUNC) {
            return Err(HandoverError::Protocol("frame truncated".into()));
        }
        let frame = Frame::decode(&buf[..msg.bytes])?;
        if let Frame::Abort(reason) = frame {
            return Err(HandoverError::Aborted(reason));
        }
        match (frame.carries_fd(), fds.len()) {
            (true, 1) => Ok((frame, fds.pop())),
            (false, 0) => Ok((frame, None)),
            (_, n) => Err(HandoverError::Protocol(format!(
                "frame {frame:?} came with {n} descriptors"
            ))),
        }
    }

    /// The socket, for its peer's credentials.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }

    /// Tells the peer why we give up (best effort: it may be gone).
    pub fn abort(&self, reason: &str) {
        let _ = self.send(&Frame::Abort(reason.to_string()), None);
    }
}

/// The take-over socket at `path`, owner-only (a stale file is replaced).
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

/// Waits for the next peer; only a process of our own user is taken.
pub fn accept(listener: BorrowedFd<'_>) -> Result<Channel, HandoverError> {
    loop {
        let fd = rustix::net::accept_with(listener.as_fd(), SocketFlags::CLOEXEC)?;
        let uid = sockopt::socket_peercred(&fd)?.uid.as_raw();
        if uid == rustix::process::geteuid().as_raw() {
            return Ok(Channel(fd));
        }
        tracing::warn!(uid, "take-over refused: peer runs as another user");
    }
}
