//! The node's small shared pieces, written once: durable file writes ([`fs`]), size strings
//! ([`size`]), randomness ([`random`]), hex ([`hex`], the `hex` crate re-exported), daemon
//! logging ([`log`], feature `log`), credentials cut out of messages ([`redact`]), the "skip
//! locally, fail under CI" rule for tests ([`skip`]), the mount table ([`mounts`]) and
//! releasing what was started under a folder ([`teardown`]), the live hand-over socket
//! ([`handover`]) and bounded downloads ([`http`], feature `http`).
#![deny(
    missing_docs,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    unsafe_code
)]

pub mod fs;
pub mod handover;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "log")]
pub mod log;
pub mod mounts;
pub mod random;
pub mod redact;
pub mod size;
pub mod skip;
pub mod teardown;

pub use hex;
