//! What a connection remembers between commands: its namespace, rights and modes.

use std::sync::Arc;

use crate::shared::{Listener, NsHandle, Tally};

/// Per-connection state.
pub struct Session {
    /// Client id.
    pub id: u64,
    /// Current namespace.
    pub ns: Arc<NsHandle>,
    /// May write in the current namespace.
    pub writable: bool,
    /// Logged in as admin (always true without `--admin`).
    pub admin: bool,
    /// Pending AUTH SECURE challenge.
    pub nonce: Option<String>,
    /// MASTER mode: requests carry a trailing owner id.
    pub master: bool,
    /// MIRROR mode: copies of other clients' commands arrive here.
    pub mirror: Option<Listener<bytes::Bytes>>,
    /// Set while this server follows a leader: client writes are refused.
    pub follower: Arc<std::sync::atomic::AtomicBool>,
    /// Counters not yet added to the shared ones.
    pub tally: Tally,
}
