//! netd's frames on the node's shared hand-over socket (`nodeutil::handover`: a unix
//! `SOCK_SEQPACKET` socket, owner-only, descriptors as `SCM_RIGHTS`).

use super::wire::Frame;
use std::os::fd::BorrowedFd;

pub use nodeutil::handover::{HandoverError, listen};

/// One end of a take-over.
pub type Channel = nodeutil::handover::Channel<Frame>;

/// Waits for the next peer; only a process of our own user is taken.
pub fn accept(listener: BorrowedFd<'_>) -> Result<Channel, HandoverError> {
    nodeutil::handover::accept(listener, |uid| {
        tracing::warn!(uid, "take-over refused: peer runs as another user");
    })
}
