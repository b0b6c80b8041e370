//! API types of every daemon, so daemons depend on this crate and not on each other.
//!
//! Naming: methods are `service.object.verb@version`; events are published on
//! `service.object` topics. Mutating methods are idempotent unless their doc says otherwise.

pub mod compute;
pub mod health;
pub mod network;
pub mod node;
pub mod storage;

use serde::{Deserialize, Serialize};

/// Parameters or reply of a method that carries nothing (`{}`; `null` is accepted too).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

/// A secret string (a password): serialized as is on the bus, but never shown by `Debug` or
/// `Display`, so it cannot leak into logs by accident.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl Secret {
    /// The secret value. Do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}
