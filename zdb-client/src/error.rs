//! Errors: what the server said (the connection lives on) apart from what broke the
//! connection (it is dropped; `reconnect` or the auto policy makes a new one).

use std::time::Duration;

/// A reply that breaks the protocol or a limit. The connection is unusable after it: the
/// bytes that follow cannot be trusted to start a reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// A bulk string longer than [`crate::Limits::max_bulk`]; nothing was allocated for it.
    #[error("bulk of {declared} bytes exceeds the limit of {limit}")]
    BulkTooLarge {
        /// The length the server announced.
        declared: i64,
        /// The configured limit.
        limit: usize,
    },
    /// Arrays nested deeper than [`crate::Limits::max_depth`].
    #[error("arrays nested deeper than {limit}")]
    TooDeep {
        /// The configured limit.
        limit: usize,
    },
    /// A line with no CRLF within [`crate::Limits::max_line`] bytes.
    #[error("line longer than {limit} bytes")]
    LineTooLong {
        /// The configured limit.
        limit: usize,
    },
    /// One reply would hold more than [`crate::Limits::max_reply`] bytes.
    #[error("reply larger than {limit} bytes")]
    ReplyTooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// A type byte that 0-db never sends (RESP2: `+ - : $ *`).
    #[error("unexpected reply type byte 0x{0:02x}")]
    BadType(u8),
    /// A length or integer that is not a decimal `i64`.
    #[error("bad number in reply")]
    BadNumber,
    /// A negative length other than -1.
    #[error("negative length {0}")]
    BadLength(i64),
    /// A line ended by a bare LF, or a bulk not followed by CRLF.
    #[error("missing CRLF")]
    MissingCrlf,
    /// An empty line where a reply must start.
    #[error("empty line")]
    EmptyLine,
}

/// Every failure of the client.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No connection could be made to `addr` (never holds a password).
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// Where to (host:port or socket path).
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The connection failed while sending or reading.
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    /// The server closed the connection (`mid_reply`: in the middle of one).
    #[error("server closed the connection{}", if *.mid_reply { " in the middle of a reply" } else { "" })]
    Closed {
        /// Whether part of a reply had arrived.
        mid_reply: bool,
    },
    /// Nothing (or not all) arrived in time.
    #[error("{what} timed out after {after:?}")]
    Timeout {
        /// `connect`, `reply` or `send`.
        what: &'static str,
        /// The configured timeout.
        after: Duration,
    },
    /// The server broke the protocol or a limit.
    #[error("protocol error: {0}")]
    Protocol(#[from] ProtocolError),
    /// The server answered this command with an error reply.
    #[error("{command}: {message}")]
    Server {
        /// The command (its name, never its arguments).
        command: &'static str,
        /// The server's message, e.g. `Namespace not found`.
        message: String,
    },
    /// A reply of a kind this command never gets.
    #[error("{command}: unexpected reply {got}")]
    Unexpected {
        /// The command.
        command: &'static str,
        /// A short description of the reply.
        got: String,
    },
    /// A previous failure closed the connection and the policy is manual: call `reconnect`.
    #[error("not connected (an earlier error closed the connection; call reconnect)")]
    NotConnected,
    /// A malformed `zdb://` address (the password is never in the message).
    #[error("bad zdb url: {0}")]
    Url(String),
}

impl Error {
    /// Whether this error closed the connection (transport, timeout, protocol), as opposed
    /// to a refusal or surprise that left it usable.
    pub fn is_connection(&self) -> bool {
        matches!(
            self,
            Error::Connect { .. }
                | Error::Io(_)
                | Error::Closed { .. }
                | Error::Timeout { .. }
                | Error::Protocol(_)
                | Error::NotConnected
        )
    }

    /// Whether the server refused because it is still loading its namespaces (`-LOADING
    /// ...`, answered to every command but INFO and AUTH until it serves): worth retrying on
    /// the same connection.
    pub fn is_loading(&self) -> bool {
        self.server_message()
            .is_some_and(|m| m.starts_with("LOADING"))
    }

    /// The server's message when it refused the command.
    pub fn server_message(&self) -> Option<&str> {
        match self {
            Error::Server { message, .. } => Some(message),
            _ => None,
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod test {
    use super::Error;

    #[test]
    fn loading_is_told_apart_from_other_refusals() {
        let refused = |message: &str| Error::Server {
            command: "PING",
            message: message.into(),
        };
        assert!(refused("LOADING zdb is loading its namespaces").is_loading());
        assert!(!refused("Access denied").is_loading());
        assert!(!Error::NotConnected.is_loading());
    }
}
