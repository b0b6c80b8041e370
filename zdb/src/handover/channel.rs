//! The hand-over socket: a unix `SOCK_SEQPACKET` socket (message boundaries kept, so each
//! frame arrives whole with its descriptor), owner-only, spoken on a plain thread with
//! blocking calls under timeouts. Descriptors travel as `SCM_RIGHTS` through rustix.

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
    /// The socket failed (or timed out: `EAGAIN`).
    #[error("hand-over socket: {0}")]
    Io(#[from] std::io::Error),
    /// A frame could not be read.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// The peer closed the socket.
    #[error("hand-over peer went away")]
    Closed,
    /// The peer broke the protocol (a frame out of turn, a missing descriptor ...).
    #[error("hand-over protocol: {0}")]
    Protocol(String),
    /// The peer gave up.
    #[error("hand-over aborted by the peer: {0}")]
    Aborted(String),
}

impl From<rustix::io::Errno> for HandoverError {
    fn from(e: rustix::io::Errno) -> Self {
        HandoverError::Io(e.into())
    }
}

/// One end of a hand-over.
pub struct Channel(OwnedFd);

impl Channel {
    /// Connect to a server's hand-over socket.
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

    /// Give up waiting for the peer after `d` (per call).
    pub fn set_timeout(&self, d: Duration) -> Result<(), HandoverError> {
        sockopt::set_socket_timeout(&self.0, sockopt::Timeout::Recv, Some(d))?;
        sockopt::set_socket_timeout(&self.0, sockopt::Timeout::Send, Some(d))?;
        Ok(())
    }

    /// The peer's process id and user id.
    pub fn peer(&self) -> Result<(i32, u32), HandoverError> {
        let cred = sockopt::socket_peercred(&self.0)?;
        Ok((cred.pid.as_raw_nonzero().get(), cred.uid.as_raw()))
    }

    /// Send a frame, with its descriptor when it carries one.
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

    /// Receive a frame and its descriptor (present exactly when the frame carries one).
    pub fn recv(&self) -> Result<(Frame, Option<OwnedFd>), HandoverError> {
        let mut buf = vec![0u8; MAX_FRAME + 1];
        // Room for more than one descriptor, so that extra ones are received (and closed)
        // rather than left to truncate the message silently.
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
                "frame {:?} came with {n} descriptors",
                frame_name(&frame)
            ))),
        }
    }

    /// Tell the peer why we give up (best effort: it may be gone).
    pub fn abort(&self, reason: &str) {
        let _ = self.send(&Frame::Abort(reason.to_string()), None);
    }
}

fn frame_name(f: &Frame) -> &'static str {
    match f {
        Frame::Hello(_) => "hello",
        Frame::Fd(_) => "fd",
        Frame::Conn { .. } => "conn",
        Frame::Input(_) => "input",
        Frame::End { .. } => "end",
        Frame::Ready => "ready",
        Frame::Commit => "commit",
        Frame::Abort(_) => "abort",
    }
}

/// The server's hand-over socket at `path`, owner-only (replaces a stale file).
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

/// Wait for the next peer on a hand-over socket; only a process of our own user is taken.
pub fn accept(listener: BorrowedFd<'_>) -> Result<Channel, HandoverError> {
    loop {
        let fd = rustix::net::accept_with(listener.as_fd(), SocketFlags::CLOEXEC)?;
        let chan = Channel(fd);
        let (_, uid) = chan.peer()?;
        if uid == rustix::process::geteuid().as_raw() {
            return Ok(chan);
        }
        tracing::warn!(uid, "hand-over refused: peer runs as another user");
    }
}
