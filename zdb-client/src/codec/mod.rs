//! The wire codec, with no I/O: [`encode_command`] appends a request to a buffer, [`Decoder`]
//! takes replies off a buffer as their bytes arrive. The blocking and async clients are
//! shells that move bytes between these and a socket.

mod decode;
mod encode;
mod split;

pub use decode::Decoder;
pub use encode::{LARGE_ARG, encode_command, encode_framing, encoded_len, segments};
pub use split::{BulkHead, bulk_head};

/// Bounds on what a server may make the client hold. Each one breached is a
/// [`crate::ProtocolError`] and closes the connection; nothing is allocated for a declared
/// length before its bytes arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest bulk string (0-db's values are at most 8 MiB).
    pub max_bulk: usize,
    /// Longest status, error or header line, CRLF excluded.
    pub max_line: usize,
    /// Deepest array nesting (0-db's replies nest at most 3 deep).
    pub max_depth: usize,
    /// Most memory one reply may take: wire bytes plus the size of a [`crate::Value`] per
    /// element, so that a million tiny elements count for what they cost.
    pub max_reply: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bulk: 8 << 20,
            max_line: 64 << 10,
            max_depth: 8,
            max_reply: 64 << 20,
        }
    }
}
