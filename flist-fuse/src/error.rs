//! Typed errors of the library. Every variant names the file (or store) it is about.

use std::path::PathBuf;

/// Library error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O error on a named file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The flist file is truncated, corrupt or of an unknown version.
    #[error("{path}: corrupt flist: {msg}")]
    Corrupt {
        /// The flist file.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
    /// The input (source tree, tar, image, argument) is not acceptable.
    #[error("{path}: {msg}")]
    Invalid {
        /// What the message is about.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
    /// A block could not be fetched or does not match its id.
    #[error("{path}: block {id}: {source}")]
    Block {
        /// The flist file.
        path: PathBuf,
        /// The block id (hex).
        id: String,
        /// Cause.
        #[source]
        source: StoreError,
    },
    /// A store could not be opened or written.
    #[error("{path}: {source}")]
    Store {
        /// The flist file being read or written.
        path: PathBuf,
        /// Cause.
        #[source]
        source: StoreError,
    },
    /// A file could not be written durably (names the file and the step).
    #[error(transparent)]
    Write(#[from] nodeutil::fs::WriteError),
    /// A signature is missing, malformed or does not verify.
    #[error("{path}: signature: {msg}")]
    Signature {
        /// The flist file.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
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

/// Errors of a block store, and of checking what it returned.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store does not hold the block.
    #[error("not found in {store}")]
    NotFound {
        /// The store's URL (passwords removed).
        store: String,
    },
    /// The store could not be read or written.
    #[error("{store}: {source}")]
    Io {
        /// The store's URL (passwords removed).
        store: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The store answered something unexpected, or refused.
    #[error("{store}: {msg}")]
    Protocol {
        /// The store's URL (passwords removed).
        store: String,
        /// What went wrong.
        msg: String,
    },
    /// A write to a store that only reads.
    #[error("{store}: read-only store")]
    ReadOnly {
        /// The store's URL (passwords removed).
        store: String,
    },
    /// A store URL that does not parse.
    #[error("bad store url {url:?}: {msg}")]
    Url {
        /// The URL (passwords removed).
        url: String,
        /// What is wrong with it.
        msg: String,
    },
    /// The bytes do not hash to the block id.
    #[error("stored bytes do not match the block id")]
    Mismatch,
    /// The bytes match the id but do not decrypt, decompress or match the key.
    #[error("{0}")]
    Decode(String),
}
