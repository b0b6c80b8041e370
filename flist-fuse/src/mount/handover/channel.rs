//! The mount hand-over's frames on the node's shared hand-over socket (`nodeutil::handover`:
//! a unix `SOCK_SEQPACKET` socket, owner-only, descriptors as `SCM_RIGHTS`).

use super::wire::Frame;
use std::os::fd::BorrowedFd;

pub use nodeutil::handover::{HandoverError, listen};

/// One end of a mount hand-over.
pub type Channel = nodeutil::handover::Channel<Frame>;

/// The next peer on a hand-over socket; only a process of our own user is taken.
pub fn accept(listener: BorrowedFd<'_>) -> Result<Channel, HandoverError> {
    nodeutil::handover::accept(listener, |_| {
        crate::mount::log::log("hand-over refused: the peer runs as another user");
    })
}
