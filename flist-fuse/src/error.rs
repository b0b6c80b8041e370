//! Typed errors of the library. Every variant names the file (or store) it is about.

use std::path::PathBuf;

use crate::store::StoreError;

/// Library error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O error on a named file.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The flist file is truncated, corrupt or of an unknown version.
    #[error("{path}: corrupt flist: {msg}")]
    Corrupt { path: PathBuf, msg: String },
    /// The input (source tree, tar, image, argument) is not acceptable.
    #[error("{path}: {msg}")]
    Invalid { path: PathBuf, msg: String },
    /// A block could not be fetched or does not match its id.
    #[error("{path}: block {id}: {source}")]
    Block {
        path: PathBuf,
        id: String,
        #[source]
        source: StoreError,
    },
    /// A store could not be opened or written.
    #[error("{path}: {source}")]
    Store {
        path: PathBuf,
        #[source]
        source: StoreError,
    },
    /// A signature is missing, malformed or does not verify.
    #[error("{path}: signature: {msg}")]
    Signature { path: PathBuf, msg: String },
}

/// Result alias of the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
    pub(crate) fn invalid(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::Invalid {
            path: path.into(),
            msg: msg.into(),
        }
    }
    pub(crate) fn corrupt(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::Corrupt {
            path: path.into(),
            msg: msg.into(),
        }
    }
}

/// Extension to attach a path to `std::io::Result`.
pub(crate) trait IoContext<T> {
    fn ctx(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}

impl<T> IoContext<T> for rustix::io::Result<T> {
    fn ctx(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::io(path, e.into()))
    }
}
