//! The local node bus: typed, versioned request/reply methods and event streams between the
//! node's daemons, over unix sockets in the node's run folder.
//!
//! Daemons depend on this crate and never on each other: the API types of every daemon live in
//! [`api`], the transport in [`Server`] and [`Client`].
//!
//! # Wire format (version 1)
//!
//! Every frame is a 4-byte big-endian length followed by that many bytes of UTF-8 JSON (at most
//! [`MAX_FRAME`] bytes). A connection carries either calls or one subscription:
//!
//! ```text
//! client -> server  {"type":"call","id":1,"method":"storage.disk.list","version":1,"params":{}}
//! server -> client  {"type":"reply","id":1,"result":{...}}
//!                   {"type":"reply","id":1,"error":{"code":"not_found","message":"..."}}
//! client -> server  {"type":"subscribe","topic":"storage"}
//! server -> client  {"type":"subscribed","topic":"storage"}
//!                   {"type":"event","topic":"storage.zdb","seq":7,"data":{...}}   (repeated)
//! ```
//!
//! Calls on one connection are answered in order. A method is named `service.object.verb` and
//! versioned (`storage.zdb.allocate@1`); a new incompatible shape is a new version served beside
//! the old one. Every server answers `health@1`. A subscriber whose bounded queue fills up is
//! dropped: it receives one last event on topic [`DROPPED_TOPIC`] and the stream ends.
#![deny(missing_docs, clippy::unwrap_used, unsafe_code)]

pub mod api;
mod client;
pub mod daemon;
mod error;
mod events;
mod frame;
mod server;
mod socket;

pub use client::{Client, Subscription};
pub use error::{BusError, ErrorCode, RemoteError};
pub use events::Publisher;
pub use frame::{Event, MAX_FRAME};
pub use server::{HealthCheck, Server};
pub use socket::{bind, service_socket};

use serde::{Serialize, de::DeserializeOwned};

/// Topic of the last event a dropped (too slow) subscriber receives.
pub const DROPPED_TOPIC: &str = "bus.dropped";

/// A typed, versioned bus method: the one place where its name, version and shapes are fixed,
/// shared by the server that handles it and every client that calls it.
pub trait Method {
    /// Dotted method name, `service.object.verb`.
    const NAME: &'static str;
    /// Version of the request/reply shapes.
    const VERSION: u32;
    /// Request parameters.
    type Request: Serialize + DeserializeOwned + Send + 'static;
    /// Successful reply.
    type Reply: Serialize + DeserializeOwned + Send + 'static;
}

/// Declares a unit struct implementing [`Method`].
#[macro_export]
macro_rules! method {
    ($(#[$meta:meta])* $ty:ident, $name:literal @ $version:literal, $req:ty => $reply:ty) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy)]
        pub struct $ty;
        impl $crate::Method for $ty {
            const NAME: &'static str = $name;
            const VERSION: u32 = $version;
            type Request = $req;
            type Reply = $reply;
        }
    };
}

/// Splits `name@version` (version defaults to 1 when absent).
pub fn parse_method(spec: &str) -> Result<(String, u32), BusError> {
    match spec.rsplit_once('@') {
        None => Ok((spec.to_string(), 1)),
        Some((name, v)) => v
            .parse::<u32>()
            .map(|v| (name.to_string(), v))
            .map_err(|_| BusError::BadMethod(spec.to_string())),
    }
}
