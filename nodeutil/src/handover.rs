//! The socket every live hand-over speaks (zdb servers, netd, flist mounts): a unix
//! `SOCK_SEQPACKET` socket, so message boundaries are kept and each frame arrives whole with
//! its descriptors; owner-only, and only a peer of our own user is taken; blocking calls under
//! per-call timeouts, on a plain thread. Descriptors travel as `SCM_RIGHTS` (rustix). Each
//! protocol brings its frames ([`Frame`]); this module owns only the transport.

use std::io::{self, IoSlice, IoSliceMut};
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags,
    SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketAddrUnix, SocketFlags, SocketType,
    sockopt,
};

/// Most descriptors one frame may carry.
pub const MAX_FDS: usize = 4;

/// One protocol's messages.
pub trait Frame: Sized {
    /// Largest encoded frame: a longer message is refused unread.
    const MAX: usize;
    /// Why bytes are not a frame.
    type Error: std::error::Error + Send + Sync + 'static;
    /// Its bytes.
    fn encode(&self) -> Vec<u8>;
    /// From bytes; never panics on any input.
    fn decode(bytes: &[u8]) -> Result<Self, Self::Error>;
    /// How many descriptors travel with it (at most [`MAX_FDS`]).
    fn fds(&self) -> usize;
    /// The reason, when this frame is the peer giving up.
    fn refusal(&self) -> Option<&str>;
    /// The frame that gives up, saying why.
    fn refuse(reason: String) -> Self;
}

/// A hand-over failure.
#[derive(Debug, thiserror::Error)]
pub enum HandoverError {
    /// The socket failed (or timed out: `EAGAIN`).
    #[error("hand-over socket: {0}")]
    Io(#[from] io::Error),
    /// A frame did not decode.
    #[error("hand-over frame: {0}")]
    Wire(Box<dyn std::error::Error + Send + Sync>),
    /// The peer closed the socket.
    #[error("hand-over peer went away")]
    Closed,
    /// The peer broke the protocol (a frame out of turn, the wrong descriptors ...).
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

/// One end of a hand-over speaking frames `F`.
pub struct Channel<F> {
    fd: OwnedFd,
    frames: PhantomData<fn() -> F>,
}

impl<F: Frame> Channel<F> {
    fn new(fd: OwnedFd) -> Self {
        Channel {
            fd,
            frames: PhantomData,
        }
    }

    /// Connects to the hand-over socket at `path`.
    pub fn connect(path: &Path) -> Result<Self, HandoverError> {
        let fd = socket()?;
        rustix::net::connect(&fd, &SocketAddrUnix::new(path)?)?;
        Ok(Self::new(fd))
    }

    /// Gives up waiting for the peer after `d` (per call).
    pub fn set_timeout(&self, d: Duration) -> Result<(), HandoverError> {
        sockopt::set_socket_timeout(&self.fd, sockopt::Timeout::Recv, Some(d))?;
        sockopt::set_socket_timeout(&self.fd, sockopt::Timeout::Send, Some(d))?;
        Ok(())
    }

    /// The peer's process id and user id.
    pub fn peer(&self) -> Result<(i32, u32), HandoverError> {
        let cred = sockopt::socket_peercred(&self.fd)?;
        Ok((cred.pid.as_raw_nonzero().get(), cred.uid.as_raw()))
    }

    /// Sends `frame` with exactly the descriptors it carries.
    pub fn send(&self, frame: &F, fds: &[BorrowedFd<'_>]) -> Result<(), HandoverError> {
        if frame.fds() != fds.len() || fds.len() > MAX_FDS {
            return Err(HandoverError::Protocol(
                "descriptors do not match the frame".into(),
            ));
        }
        let bytes = frame.encode();
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
            return Err(HandoverError::Protocol("no room for descriptors".into()));
        }
        let sent = rustix::net::sendmsg(
            &self.fd,
            &[IoSlice::new(&bytes)],
            &mut control,
            SendFlags::NOSIGNAL,
        )?;
        if sent != bytes.len() {
            return Err(HandoverError::Protocol("frame sent in part".into()));
        }
        Ok(())
    }

    /// Receives a frame and its descriptors (exactly as many as it carries); a refusal comes
    /// back as [`HandoverError::Refused`].
    pub fn recv(&self) -> Result<(F, Vec<OwnedFd>), HandoverError> {
        let mut buf = vec![0u8; F::MAX + 1];
        // Room for more than a frame may carry, so that extra descriptors are received (and
        // closed) rather than silently truncating the message.
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS + 4))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let msg = rustix::net::recvmsg(
            &self.fd,
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
        let frame = F::decode(buf.get(..msg.bytes).unwrap_or_default())
            .map_err(|e| HandoverError::Wire(Box::new(e)))?;
        if let Some(reason) = frame.refusal() {
            return Err(HandoverError::Refused(reason.to_string()));
        }
        if fds.len() != frame.fds() {
            // Not the frame itself: its fields may hold secrets (store URLs, client input).
            return Err(HandoverError::Protocol(format!(
                "a frame came with {} descriptors, {} expected",
                fds.len(),
                frame.fds()
            )));
        }
        Ok((frame, fds))
    }

    /// Tells the peer why we give up (best effort: it may be gone).
    pub fn refuse(&self, reason: &str) {
        let _ = self.send(&F::refuse(reason.to_string()), &[]);
    }
}

impl<F> AsFd for Channel<F> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

fn socket() -> Result<OwnedFd, HandoverError> {
    Ok(rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )?)
}

/// The bytes of a refusal `reason` a frame carries: at most `max`, cut on a character
/// boundary so that the peer decodes whole characters.
pub fn reason_bytes(reason: &str, max: usize) -> &[u8] {
    let mut end = reason.len().min(max);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason.as_bytes().get(..end).unwrap_or_default()
}

/// The hand-over socket at `path`, owner-only (a stale file is replaced).
pub fn listen(path: &Path) -> Result<OwnedFd, HandoverError> {
    let _ = std::fs::remove_file(path);
    let fd = socket()?;
    rustix::net::bind(&fd, &SocketAddrUnix::new(path)?)?;
    rustix::fs::chmod(path, rustix::fs::Mode::from_raw_mode(0o600))?;
    rustix::net::listen(&fd, 1)?;
    Ok(fd)
}

/// Waits for the next peer on a hand-over socket; only a process of our own user is taken,
/// any other is dropped and its user id given to `stranger` (to log).
pub fn accept<F: Frame>(
    listener: BorrowedFd<'_>,
    mut stranger: impl FnMut(u32),
) -> Result<Channel<F>, HandoverError> {
    loop {
        let chan = Channel::new(rustix::net::accept_with(listener, SocketFlags::CLOEXEC)?);
        let (_, uid) = chan.peer()?;
        if uid == rustix::process::geteuid().as_raw() {
            return Ok(chan);
        }
        stranger(uid);
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn a_reason_is_cut_on_a_character_boundary() {
        assert_eq!(reason_bytes("short", 64), b"short");
        // "é" is two bytes: 3 bytes allow one of them, not one and a half
        assert_eq!(reason_bytes("éé", 3), "é".as_bytes());
        assert_eq!(reason_bytes("é", 1), b"");
    }

    /// A test protocol: a byte, then descriptors as the byte says; 0xff is a refusal.
    #[derive(Debug, PartialEq)]
    struct T(u8);

    #[derive(Debug, thiserror::Error)]
    #[error("empty")]
    struct Empty;

    impl Frame for T {
        const MAX: usize = 8;
        type Error = Empty;
        fn encode(&self) -> Vec<u8> {
            vec![self.0]
        }
        fn decode(b: &[u8]) -> Result<Self, Empty> {
            b.first().map(|&x| T(x)).ok_or(Empty)
        }
        fn fds(&self) -> usize {
            if self.0 == 0xff {
                0
            } else {
                usize::from(self.0.min(2))
            }
        }
        fn refusal(&self) -> Option<&str> {
            (self.0 == 0xff).then_some("no")
        }
        fn refuse(_: String) -> Self {
            T(0xff)
        }
    }

    fn pair() -> (Channel<T>, Channel<T>, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("h.sock");
        let l = listen(&path).expect("listen");
        let a = Channel::<T>::connect(&path).expect("connect");
        let b = accept::<T>(l.as_fd(), |_| {}).expect("accept");
        a.set_timeout(Duration::from_secs(2)).expect("timeout");
        b.set_timeout(Duration::from_secs(2)).expect("timeout");
        (a, b, dir)
    }

    #[test]
    fn frames_and_descriptors_go_through_and_mismatches_are_refused() {
        let (a, b, dir) = pair();
        let f = std::fs::File::create(dir.path().join("x")).expect("file");
        a.send(&T(0), &[]).expect("send");
        assert_eq!(b.recv().expect("recv").0, T(0));
        a.send(&T(2), &[f.as_fd(), f.as_fd()]).expect("send");
        let (t, fds) = b.recv().expect("recv");
        assert_eq!((t, fds.len()), (T(2), 2));
        // the frame says one descriptor, none is given: refused before sending
        assert!(matches!(
            a.send(&T(1), &[]),
            Err(HandoverError::Protocol(_))
        ));
        a.refuse("why");
        assert!(matches!(b.recv(), Err(HandoverError::Refused(r)) if r == "no"));
        drop(a);
        assert!(matches!(b.recv(), Err(HandoverError::Closed)));
    }

    #[test]
    fn a_frame_over_the_limit_or_with_other_descriptors_is_an_error() {
        let (a, b, dir) = pair();
        let raw = |bytes: &[u8], fds: &[BorrowedFd<'_>]| {
            let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(4))];
            let mut control = SendAncillaryBuffer::new(&mut space);
            if !fds.is_empty() {
                assert!(control.push(SendAncillaryMessage::ScmRights(fds)));
            }
            rustix::net::sendmsg(
                &a.fd,
                &[IoSlice::new(bytes)],
                &mut control,
                SendFlags::empty(),
            )
            .expect("sendmsg");
        };
        raw(&[0u8; 20], &[]);
        assert!(matches!(b.recv(), Err(HandoverError::Protocol(_))));
        let f = std::fs::File::create(dir.path().join("x")).expect("file");
        raw(&[0], &[f.as_fd()]);
        assert!(matches!(b.recv(), Err(HandoverError::Protocol(_))));
    }
}
