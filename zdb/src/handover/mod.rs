//! Live hand-over: a running zdb gives its listening sockets and its established client
//! connections (each with its session and the bytes of a request it has not parsed yet) to a
//! new zdb process, so that a binary is replaced under its clients: they see a pause, never an
//! error or a disconnect.
//!
//! The old process serves a hand-over socket (`--handover PATH`, mode 0600, peers of another
//! user are refused); the new one is started with the same arguments plus `--take-over PATH`.
//! Two phases, so that a new process that dies or fails before it confirms leaves the old one
//! serving as if nothing happened:
//!
//! 1. The new one connects and says Hello. The old one stops accepting, brings every
//!    connection to a request boundary (what it ran is answered and flushed; each parks with
//!    its state, [`crate::shared::Gate`]), waits for a running compaction, fsyncs every
//!    namespace and saves key map snapshots (so the new one loads fast), then sends its
//!    listeners, its folder locks (the flock goes with the open file: the new process holds
//!    the same lock, the old one never lets go of it), its hand-over and metrics listeners, and
//!    every connection with its state and unparsed input.
//! 2. The new one loads the namespaces, runs its `namespaces-init` and `ready` hooks, and says
//!    Ready; until the old one answers Commit it accepts nothing and runs no request (requests
//!    that arrive wait in the sockets; nobody gets `-LOADING`).
//! 3. The old one answers Commit and exits without touching its files, closing its sockets or
//!    running its `close` hooks; the new one serves every connection from where it was.
//!
//! Any failure before Commit (the new process exits, times out, fails a hook, sends garbage)
//! makes the old one thaw: its parked connections go on with their own buffers and it accepts
//! again. Not handed over: a follower (`--replicate-from`, its stream would run twice).

mod channel;
mod give;
mod take;
pub mod wire;

pub use channel::HandoverError;
pub use channel::listen;
pub use give::{Handed, spawn};
pub use take::{Pending, Taken, receive};
