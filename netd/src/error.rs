//! netd's errors, each mapped to a bus error class.

use bus::{ErrorCode, RemoteError};

/// A failure of netd.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad request (spec, name, address, a field that cannot change).
    #[error("{0}")]
    Invalid(String),
    /// Unknown network.
    #[error("no network named {0}")]
    NotFound(String),
    /// No port, transfer link or address left.
    #[error("{0}")]
    NoCapacity(String),
    /// A kernel operation (netlink, nft, tun, socket) failed.
    #[error("{what}: {source}")]
    Kernel {
        /// What was being done.
        what: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// A record could not be written; netd refuses changes until restarted.
    #[error("state not written: {0}")]
    State(String),
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Names the kernel operation an I/O error came from.
pub trait KernelContext<T> {
    /// Wraps the error with `what`.
    fn kernel(self, what: impl Into<String>) -> Result<T>;
}

impl<T> KernelContext<T> for std::io::Result<T> {
    fn kernel(self, what: impl Into<String>) -> Result<T> {
        self.map_err(|source| Error::Kernel {
            what: what.into(),
            source,
        })
    }
}

impl From<Error> for RemoteError {
    fn from(e: Error) -> Self {
        let code = match &e {
            Error::Invalid(_) => ErrorCode::InvalidArgument,
            Error::NotFound(_) => ErrorCode::NotFound,
            Error::NoCapacity(_) => ErrorCode::NoCapacity,
            Error::Kernel { .. } | Error::State(_) => ErrorCode::Internal,
        };
        RemoteError::new(code, e.to_string())
    }
}
