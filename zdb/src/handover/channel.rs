//! zdb's frames on the node's shared hand-over socket (`nodeutil::handover`: a unix
//! `SOCK_SEQPACKET` socket, owner-only, descriptors as `SCM_RIGHTS`).

use std::os::fd::BorrowedFd;

use super::wire::Frame;

pub use nodeutil::handover::{HandoverError, listen};

/// One end of a zdb hand-over.
pub type Channel = nodeutil::handover::Channel<Frame>;

/// Waits for the next peer on a hand-over socket; only a process of our own user is taken.
pub fn accept(listener: BorrowedFd<'_>) -> Result<Channel, HandoverError> {
    nodeutil::handover::accept(listener, |uid| {
        tracing::warn!(uid, "hand-over refused: peer runs as another user");
    })
}
