//! The new process's side: receive a running mount's /dev/fuse descriptor and build a
//! fuser session on it.
//!
//! fuser's `Session::from_fd` insists on the INIT handshake, which an initialised
//! connection never sends again. So the session is built on one end of a socketpair (its
//! channel keeps only the descriptor number): the INIT the kernel sent the old process is
//! replayed into the other end, fuser's reply is read back and dropped (the kernel has the
//! old one's), and then the received /dev/fuse is `dup2`ed onto that number before the
//! session reads anything.

use std::io::{Read, Write};
use std::mem::ManuallyDrop;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use fuser::{Config, Filesystem, Session};
use rustix::net::{AddressFamily, SocketFlags, SocketType};

use super::channel::{Channel, HandoverError};
use super::wire::{Frame, InitParams, VERSION};
use crate::mount::args::MountArgs;

/// How long each step of the conversation may take.
const STEP: Duration = Duration::from_secs(30);
/// FUSE_INIT's opcode.
const FUSE_INIT: u32 = 26;
/// The INIT flag saying flags2 carries the high capability bits.
const FUSE_INIT_EXT: u64 = 1 << 30;

/// A mount taken over, not yet announced: [`Taken::serving`] tells the old process.
pub struct Taken<FS: Filesystem> {
    /// The session on the running mount's /dev/fuse; `run()` it.
    pub session: Session<FS>,
    /// The hand-over listener, for the next upgrade.
    pub listener: OwnedFd,
    /// The old process.
    pub old_pid: u32,
    chan: Channel,
}

impl<FS: Filesystem> Taken<FS> {
    /// Tell the old process we serve; it then drains. Returns the channel to wait for its
    /// Done on ([`wait_done`]).
    pub fn serving(self) -> Result<(Session<FS>, OwnedFd, u32, Channel), HandoverError> {
        self.chan.send(
            &Frame::Serving {
                pid: std::process::id(),
            },
            &[],
        )?;
        Ok((self.session, self.listener, self.old_pid, self.chan))
    }
}

/// Wait for the old process's Done (it drained and exits); `limit` bounds it.
pub fn wait_done(chan: &Channel, limit: Duration) -> Result<(), HandoverError> {
    chan.set_timeout(limit)?;
    match chan.recv()? {
        (Frame::Done, _) => Ok(()),
        (f, _) => Err(HandoverError::Protocol(format!(
            "expected done, got {}",
            f.name()
        ))),
    }
}

/// A running mount offered by its process: its arguments, for the new process to load the
/// same image the same way. Nothing has been read from /dev/fuse; dropping it leaves the
/// old process serving.
pub struct Offered {
    chan: Channel,
    /// How the old process serves the mount.
    pub args: MountArgs,
    /// The identity of the image it serves, hex.
    pub identity: String,
    /// The old process.
    pub old_pid: u32,
    init: InitParams,
    fuse: OwnedFd,
    listener: OwnedFd,
}

/// Ask the mount process behind hand-over socket `path` for its mount.
pub fn connect(path: &Path) -> Result<Offered, HandoverError> {
    let chan = Channel::connect(path)?;
    chan.set_timeout(STEP)?;
    chan.send(&Frame::Hello { version: VERSION }, &[])?;
    let (frame, mut fds) = chan.recv()?;
    let Frame::Offer {
        args,
        identity,
        pid: old_pid,
        init,
    } = frame
    else {
        return Err(HandoverError::Protocol(format!(
            "expected an offer, got {}",
            frame.name()
        )));
    };
    let (Some(listener), Some(fuse)) = (fds.pop(), fds.pop()) else {
        return Err(HandoverError::Protocol("offer without descriptors".into()));
    };
    Ok(Offered {
        chan,
        args: *args,
        identity,
        old_pid,
        init,
        fuse,
        listener,
    })
}

impl Offered {
    /// Build our session on the mount, serving `fs` whose image has identity `ours` (hex):
    /// refused unless it is the image served (inode numbers are the image's own).
    pub fn session<FS: Filesystem>(
        self,
        ours: &str,
        fs: FS,
        cfg: &Config,
    ) -> Result<Taken<FS>, HandoverError> {
        if ours != self.identity {
            let why = format!(
                "image {} is served there, this process loaded {ours}",
                self.identity
            );
            self.chan.refuse(&why);
            return Err(HandoverError::Protocol(why));
        }
        match session_on(self.fuse, self.init, fs, cfg) {
            Ok(session) => Ok(Taken {
                session,
                listener: self.listener,
                old_pid: self.old_pid,
                chan: self.chan,
            }),
            Err(e) => {
                self.chan
                    .refuse(&format!("new process could not start its session: {e}"));
                Err(e)
            }
        }
    }

    /// Give up (the old process serves on), telling it why.
    pub fn refuse(self, why: &str) {
        self.chan.refuse(why);
    }
}

/// The INIT request the kernel sent, rebuilt from its parameters.
fn init_request(p: InitParams) -> Vec<u8> {
    let mut caps = p.capabilities;
    if caps >> 32 != 0 {
        caps |= FUSE_INIT_EXT;
    }
    let mut b = Vec::with_capacity(104);
    // fuse_in_header: len, opcode, unique, nodeid, uid, gid, pid, padding.
    b.extend_from_slice(&104u32.to_ne_bytes());
    b.extend_from_slice(&FUSE_INIT.to_ne_bytes());
    b.extend_from_slice(&1u64.to_ne_bytes());
    b.extend_from_slice(&0u64.to_ne_bytes());
    b.extend_from_slice(&[0u8; 16]);
    // fuse_init_in: major, minor, max_readahead, flags, flags2, unused[11].
    b.extend_from_slice(&p.major.to_ne_bytes());
    b.extend_from_slice(&p.minor.to_ne_bytes());
    b.extend_from_slice(&(1u32 << 20).to_ne_bytes());
    b.extend_from_slice(&(caps as u32).to_ne_bytes());
    b.extend_from_slice(&((caps >> 32) as u32).to_ne_bytes());
    b.extend_from_slice(&[0u8; 44]);
    b
}

/// A fuser session on `fuse` (an initialised /dev/fuse), its INIT replayed from `init`.
fn session_on<FS: Filesystem>(
    fuse: OwnedFd,
    init: InitParams,
    fs: FS,
    cfg: &Config,
) -> Result<Session<FS>, HandoverError> {
    let (ours, theirs) = rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )?;
    let mut peer = std::fs::File::from(theirs);
    peer.write_all(&init_request(init))?;
    rustix::net::sockopt::set_socket_timeout(
        &peer,
        rustix::net::sockopt::Timeout::Recv,
        Some(STEP),
    )?;
    let session = Session::from_fd(fs, ours, cfg.acl, cfg.clone())?;
    // fuser's INIT reply: an error in its header means it refused our INIT.
    let mut reply = [0u8; 4096];
    let n = peer.read(&mut reply)?;
    let err = reply
        .get(4..8)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(i32::from_ne_bytes);
    if n < 16 || err != Some(0) {
        return Err(HandoverError::Protocol(format!(
            "the session refused the replayed INIT (error {err:?})"
        )));
    }
    let number = session.as_fd().as_raw_fd();
    // SAFETY: `number` is the open descriptor the session owns and keeps for its whole
    // life; it is borrowed here as an OwnedFd that is never dropped (ManuallyDrop), only to
    // have dup2 atomically replace the socket behind it with /dev/fuse. No thread reads it
    // yet: the session has not been run.
    #[expect(
        unsafe_code,
        reason = "fuser offers no way to swap its channel's descriptor"
    )]
    let mut slot = ManuallyDrop::new(unsafe { OwnedFd::from_raw_fd(number) });
    rustix::io::dup2(&fuse, &mut slot)?;
    Ok(session)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_request_has_the_kernel_layout() {
        let b = init_request(InitParams {
            major: 7,
            minor: 41,
            capabilities: (1 << 33) | 1,
        });
        assert_eq!(b.len(), 104);
        let word = |k: usize| u32::from_ne_bytes([b[k], b[k + 1], b[k + 2], b[k + 3]]);
        assert_eq!((word(0), word(4)), (104, FUSE_INIT));
        assert_eq!((word(40), word(44)), (7, 41));
        assert_eq!(word(52), 1 | (1 << 30));
        assert_eq!(word(56), 2);
    }
}
