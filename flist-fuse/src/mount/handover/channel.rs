//! The mount hand-over's frames on the node's shared hand-over socket (`nodeutil::handover`:
//! a unix `SOCK_SEQPACKET` socket, owner-only, descriptors as `SCM_RIGHTS`).

use super::wire::{Frame, MAX_FRAME, WireError};
use std::os::fd::BorrowedFd;

pub use nodeutil::handover::{HandoverError, listen};

/// One end of a mount hand-over.
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
        Frame::fds(self)
    }
    fn refusal(&self) -> Option<&str> {
        match self {
            Frame::Refuse { reason } => Some(reason),
            _ => None,
        }
    }
    fn refuse(reason: String) -> Self {
        Frame::Refuse { reason }
    }
}

/// The next peer on a hand-over socket; only a process of our own user is taken.
pub fn accept(listener: BorrowedFd<'_>) -> Result<Channel, HandoverError> {
    nodeutil::handover::accept(listener, |_| {
        crate::mount::log::log("hand-over refused: the peer runs as another user");
    })
}
