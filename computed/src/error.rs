//! computed's errors, each mapped to a bus error class.
//!
//! Errors reach the bus, logs and workload results, so none may carry a credential: messages
//! that quote something from outside (a URL, a child's stderr) are built through
//! [`Error::command`] or [`redacted`], and [`RemoteError`] conversion redacts once more.

use bus::{ErrorCode, RemoteError};
use std::path::PathBuf;
use std::sync::Arc;

/// A failure of computed or its shim. Cloneable: callers that join a running operation all get
/// its outcome.
#[derive(Debug, Clone, thiserror::Error)]
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
    /// Another operation on the container is running; asking again later may succeed (a
    /// repeat of the same operation joins it).
    #[error("{name}: {running} in progress for {secs} s; ask again later")]
    Busy {
        /// Container.
        name: String,
        /// The operation that runs (`create`, `stop`, ...).
        running: &'static str,
        /// For how long it has run.
        secs: u64,
    },
    /// A file operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// A helper program (`flist`, `ip`) or a download failed.
    #[error("{cmd} failed: {detail}")]
    Command {
        /// What ran (program and subcommand, never its arguments: they may hold credentials).
        cmd: String,
        /// Its exit status and the end of its output, redacted.
        detail: String,
    },
    /// The container runtime refused.
    #[error("runtime: {0}")]
    Runtime(String),
}

impl Error {
    /// A failed helper program or download; `detail` is redacted here.
    pub fn command(cmd: impl Into<String>, detail: &str) -> Error {
        Error::Command {
            cmd: redacted(&cmd.into()),
            detail: redacted(detail),
        }
    }
}

/// `text` with the credentials of every URL in it removed.
pub fn redacted(text: &str) -> String {
    nodeutil::redact::text(text)
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
            source: Arc::new(source),
        })
    }
}

impl From<nodeutil::fs::WriteError> for Error {
    fn from(e: nodeutil::fs::WriteError) -> Self {
        let message = format!("cannot write durably: {}: {}", e.step, e.source);
        Error::Io {
            path: e.path,
            source: Arc::new(std::io::Error::new(e.source.kind(), message)),
        }
    }
}

impl From<Error> for RemoteError {
    fn from(e: Error) -> Self {
        let code = match &e {
            Error::Invalid(_) => ErrorCode::InvalidArgument,
            Error::NotFound(_) => ErrorCode::NotFound,
            Error::NoCapacity(_) => ErrorCode::NoCapacity,
            Error::Busy { .. } => ErrorCode::Unavailable,
            Error::Io { .. } | Error::Command { .. } | Error::Runtime(_) => ErrorCode::Internal,
        };
        RemoteError::new(code, redacted(&e.to_string()))
    }
}
