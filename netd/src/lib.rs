//! netd: private WireGuard networks spanning nodes.
//!
//! Each network gets a namespace on the node with a bridge for containers, a tun interface whose
//! packets netd's own [`dataplane`] encrypts with boringtun's protocol and sends from a UDP
//! socket in the node's namespace, and an uplink that masquerades outbound traffic while nothing
//! new comes in. The daemon ([`daemon`], bus API in [`api`]) keeps networks in [`engine`], which
//! decides with pure functions ([`spec`], [`plan`]) and acts through the [`host::Host`] trait
//! (real kernel: rtnetlink, `nft`, tun; or a fake in tests). Records on disk: [`state`].
#![deny(missing_docs, clippy::unwrap_used, unsafe_code)]

pub mod api;
pub mod cli;
pub mod daemon;
pub mod dataplane;
pub mod engine;
pub mod error;
pub mod handover;
pub mod host;
pub mod keys;
pub mod plan;
mod report;
pub mod schema;
pub mod spec;
pub mod state;

pub use error::{Error, Result};
