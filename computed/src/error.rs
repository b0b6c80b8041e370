//! computed's errors, each mapped to a bus error class.

use bus::{ErrorCode, RemoteError};
use std::path::PathBuf;

/// A failure of computed or its shim.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad request (name, spec, flist identity).
    #[error("{0}")]
    Invalid(String),
    /// Unknown container.
    #[error("no container named {0}")]
    NotFound(String),
    /// Not enough memory or CPU.
    #[error("{0}")]
    NoCapacity(String),
    /// A file operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// A helper program (`flist`, `ip`) failed.
    #[error("{cmd} failed: {detail}")]
    Command {
        /// What ran.
        cmd: String,
        /// Its exit status and the end of its output.
        detail: String,
    },
    /// The container runtime refused.
    #[error("runtime: {0}")]
    Runtime(String),
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaches a path to an I/O error.
pub trait IoContext<T> {
    /// Wraps the error with `path`.
    fn ctx(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| Error::Io {
            path: path.into(),
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
            Error::Io { .. } | Error::Command { .. } | Error::Runtime(_) => ErrorCode::Internal,
        };
        RemoteError::new(code, e.to_string())
    }
}
