//! The new process's side of a hand-over.

use std::os::fd::OwnedFd;
use std::path::Path;
use std::time::Duration;

use super::channel::{Channel, HandoverError};
use super::wire::{FdKind, Frame, MAX_INPUT, VERSION};
use crate::shared::ConnState;

/// How long the old process may take to park its connections, sync and send everything (it
/// gives up on its connections after 10 s).
const RECEIVE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long Commit may take once Ready is sent.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(10);
/// More descriptors than this in one hand-over is a hostile peer.
const MAX_FDS: usize = 1 << 20;

/// What a new process received.
#[derive(Default)]
pub struct Taken {
    /// Listeners and locks.
    pub fds: Vec<(FdKind, OwnedFd)>,
    /// Connections with their state and input.
    pub conns: Vec<(OwnedFd, ConnState)>,
    /// Next client id.
    pub next_client: u64,
}

impl Taken {
    /// Take the first descriptor of `kind`.
    pub fn take(&mut self, kind: FdKind) -> Option<OwnedFd> {
        let at = self.fds.iter().position(|(k, _)| *k == kind)?;
        Some(self.fds.remove(at).1)
    }
}

/// The exchange, until the new process confirms (or gives up).
pub struct Pending(Channel);

impl Pending {
    /// Say Ready and wait for Commit: Ok means the old process serves nothing more.
    pub fn confirm(self) -> Result<(), HandoverError> {
        self.0.send(&Frame::Ready, &[])?;
        self.0.set_timeout(COMMIT_TIMEOUT)?;
        match self.0.recv()? {
            (Frame::Commit, _) => Ok(()),
            _ => Err(HandoverError::Protocol("expected commit".into())),
        }
    }

    /// Give up: the old process serves on.
    pub fn abort(self, reason: &str) {
        self.0.refuse(reason);
    }
}

/// Connect to the old process at `path` and receive everything it hands over (blocking).
pub fn receive(path: &Path) -> Result<(Taken, Pending), HandoverError> {
    let chan = Channel::connect(path)?;
    chan.set_timeout(RECEIVE_TIMEOUT)?;
    chan.send(&Frame::Hello(VERSION), &[])?;
    let mut taken = Taken::default();
    loop {
        let (frame, fd) = chan.recv()?;
        match frame {
            Frame::Fd(kind) => taken.fds.extend(fd.into_iter().map(|fd| (kind, fd))),
            Frame::Conn {
                mut state,
                input_len,
            } => {
                let input_len = input_len as usize;
                state.input.reserve_exact(input_len.min(MAX_INPUT));
                while state.input.len() < input_len {
                    match chan.recv()? {
                        (Frame::Input(data), _) if state.input.len() + data.len() <= input_len => {
                            state.input.extend_from_slice(&data);
                        }
                        _ => return Err(HandoverError::Protocol("expected input".into())),
                    }
                }
                taken
                    .conns
                    .extend(fd.into_iter().next().map(|fd| (fd, state)));
            }
            Frame::End {
                next_client,
                fds,
                conns,
            } => {
                if fds as usize != taken.fds.len() || conns as usize != taken.conns.len() {
                    return Err(HandoverError::Protocol(
                        "descriptor or connection count does not match".into(),
                    ));
                }
                taken.next_client = next_client;
                return Ok((taken, Pending(chan)));
            }
            _ => return Err(HandoverError::Protocol("unexpected frame".into())),
        }
        if taken.fds.len() + taken.conns.len() > MAX_FDS {
            return Err(HandoverError::Protocol("too many descriptors".into()));
        }
    }
}
