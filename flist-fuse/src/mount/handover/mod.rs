//! Live hand-over of a mount to a new `flist` binary (issue 21): the new process takes
//! over the running mount's `/dev/fuse` descriptor; nothing is unmounted, and a reader of
//! the mount sees no error, only a pause.
//!
//! `flist mount --handover PATH` serves an owner-only `SOCK_SEQPACKET` socket at PATH; a new
//! `flist take-over PATH` connects, says Hello, and gets the mount's arguments (image,
//! stores, options), the image identity, the kernel's INIT parameters and two descriptors
//! through `SCM_RIGHTS`: /dev/fuse and the hand-over listener itself ([`wire`],
//! [`channel`]). It loads the same image and refuses if its identity differs (inode numbers are the image's own: FUSE inode = flist inode + 1,
//! so the same image means the same numbers; file handles are all 0, opens being
//! kernel-side), builds its session without reading /dev/fuse ([`take`]), says Serving and
//! reads. From then on both processes answer requests; for a read-only image that is
//! harmless. The old one then drains ([`drain`]: each thread parks after a reply, never
//! holding a request), says Done and exits; the new one serves the listener. Anything
//! failing before Serving leaves the old one as it was; a drain that does not end in
//! [`give::DRAIN_LIMIT`] is cancelled: the old one serves on and the new one drains and exits
//! (or, should that stall too, both serve).

pub mod channel;
pub mod drain;
pub mod give;
pub mod take;
pub mod wire;

pub use channel::{HandoverError, listen};
pub use drain::Drain;
pub use wire::InitParams;
