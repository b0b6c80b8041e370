//! Crate-level error, aggregating the module errors, and its mapping to bus errors.

use crate::system::SysError;
use bus::{ErrorCode, RemoteError};
use std::path::PathBuf;

/// Any storaged failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request argument is invalid (bad name, zero size).
    #[error("invalid argument: {0}")]
    Invalid(String),
    /// The named object does not exist.
    #[error("{kind} {name} not found")]
    NotFound {
        /// `namespace` or `volume`.
        kind: &'static str,
        /// Its name.
        name: String,
    },
    /// The request conflicts with the current state (mode change, shrink).
    #[error("conflict: {0}")]
    Conflict(String),
    /// No disk has the room.
    #[error("no capacity: {0}")]
    NoCapacity(String),
    /// A dependency (a zdb server, a pool) is not available now.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A blocking step on a disk missed its deadline: the disk hangs (now marked failed).
    #[error("{0}")]
    Hung(String),
    /// A system command failed.
    #[error(transparent)]
    System(#[from] SysError),
    /// A zdb admin command failed.
    #[error(transparent)]
    Zdb(#[from] crate::zdbs::ZdbError),
    /// Reading or writing a state file failed.
    #[error("state file {path}: {source}")]
    State {
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Another I/O failure.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// On which path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// Builds an [`Error::Io`].
    pub fn io(
        what: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { what, path, source }
    }
    /// Builds an [`Error::State`].
    pub fn state(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::State { path, source }
    }
}

impl From<Error> for RemoteError {
    fn from(e: Error) -> Self {
        let code = match &e {
            Error::Invalid(_) => ErrorCode::InvalidArgument,
            Error::NotFound { .. } => ErrorCode::NotFound,
            Error::Conflict(_) => ErrorCode::Conflict,
            Error::NoCapacity(_) => ErrorCode::NoCapacity,
            Error::Unavailable(_) | Error::Hung(_) => ErrorCode::Unavailable,
            _ => ErrorCode::Internal,
        };
        let message = match e {
            Error::Invalid(m)
            | Error::Conflict(m)
            | Error::NoCapacity(m)
            | Error::Unavailable(m) => m,
            other => other.to_string(),
        };
        RemoteError::new(code, message)
    }
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
