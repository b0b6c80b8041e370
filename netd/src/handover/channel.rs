//! netd's frames on the node's shared hand-over socket (`nodeutil::handover`: a unix
//! `SOCK_SEQPACKET` socket, owner-only, descriptors as `SCM_RIGHTS`).

use super::wire::{Frame, MAX_FRAME, WireError};
use std::os::fd::BorrowedFd;

pub use nodeutil::handover::{HandoverError, listen};

/// One end of a take-over.
pub type Channel = nodeutil::handover::Channel<Frame>;

impl nodeutil::handover::Frame for Frame {
    const MAX: usize = MAX_FRAME;
    type Error = WireError;
    fn encode(&self) -> Vec<u8> {
        Frame::encode(self)
    }
    fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        Frame::decode(bytes)
    }
    fn fds(&self) -> usize {
        usize::from(self.carries_fd())
    }
    fn refusal(&self) -> Option<&str> {
        match self {
            Frame::Abort(reason) => Some(reason),
            _ => None,
        }
    }
    fn refuse(reason: String) -> Self {
        Frame::Abort(reason)
    }
}

/// Waits for the next peer; only a process of our own user is taken.
pub fn accept(listener: BorrowedFd<'_>) -> Result<Channel, HandoverError> {
    nodeutil::handover::accept(listener, |uid| {
        tracing::warn!(uid, "take-over refused: peer runs as another user");
    })
}
