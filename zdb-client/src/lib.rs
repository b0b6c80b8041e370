//! A client for [0-db](https://github.com/threefoldtech/0-db) and zdb, its Rust
//! reimplementation: TCP or unix socket; namespaces selected with a password or through the
//! SECURE challenge; user and sequential modes; the data, scan and admin commands;
//! pipelining; blocking ([`Client`]) and tokio ([`AsyncClient`], feature `tokio`) flavours.
//!
//! A server is remote and may be broken or hostile: every connect, send and reply has a
//! deadline, and replies are bounded ([`Limits`]: bulk length, line length, array depth,
//! memory per reply). Breaking a bound is a typed [`ProtocolError`], never a panic, an
//! abort or a hang, and nothing is allocated for a declared length before its bytes arrive.
//!
//! Layers: [`codec`] (sans-io encoder and decoder), `handshake` (login as a state
//! machine), [`reply`] (what each reply means), and the two thin shells that move bytes.
//!
//! ```no_run
//! use zdb_client::{Client, Config};
//! # fn main() -> zdb_client::Result<()> {
//! let mut c = Client::connect(Config::tcp("127.0.0.1:9900").with_namespace("blocks"))?;
//! c.set(b"key", b"value")?;
//! assert_eq!(c.get(b"key")?.as_deref(), Some(&b"value"[..]));
//! # Ok(()) }
//! ```
#![deny(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

#[cfg(feature = "tokio")]
mod aio;
mod blocking;
pub mod codec;
mod commands;
mod config;
mod core;
mod error;
#[cfg(feature = "fake")]
pub mod fake;
pub mod handshake;
pub mod nsinfo;
pub mod pipeline;
pub mod reply;
pub mod scan;
mod value;

#[cfg(feature = "tokio")]
pub use aio::{Client as AsyncClient, Scan as AsyncScan, Split};
pub use blocking::{Client, ScanIter};
pub use codec::Limits;
pub use config::{Address, AuthMethod, Config, DEFAULT_PORT, Reconnect, Secret};
pub use error::{Error, ProtocolError, Result};
pub use nsinfo::{Mode, NsInfo};
pub use pipeline::Pipeline;
pub use reply::Check;
pub use scan::{Direction, ScanEntry, ScanPage};
pub use value::Value;

/// The key of sequential-mode id `id` (8 bytes, little-endian), for GET, SET and DEL.
pub fn seq_key(id: u64) -> [u8; 8] {
    id.to_le_bytes()
}
