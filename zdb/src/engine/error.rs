//! Engine errors: what stops a namespace from opening, and why an operation was refused
//! (whose `Display` is 0-db's exact reply).

use std::path::{Path, PathBuf};

/// Errors that prevent a namespace from opening at all.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// A file could not be read, created or written.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The namespace descriptor is unreadable.
    #[error("corrupt namespace descriptor {path}: {source}")]
    Descriptor {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: crate::format::FormatError,
    },
    /// An operation refused by the engine (a rotation before compaction on a failing disk).
    #[error("{op}: {source}")]
    Refused {
        /// What was being done.
        op: &'static str,
        /// Why it was refused.
        #[source]
        source: OpError,
    },
    /// The index was written in a mode other than the server's `--mode`.
    #[error("index {path} created in another mode than running mode")]
    ModeMismatch {
        /// The index file.
        path: PathBuf,
    },
}

/// Why an operation was refused; `Display` is the exact 0-db error reply (without `-`).
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum OpError {
    /// Missing or deleted key.
    #[error("Key not found")]
    KeyNotFound,
    /// Overwrite in worm mode.
    #[error("Namespace is protected by worm mode")]
    Worm,
    /// Delete in worm mode.
    #[error("Cannot delete a key when namespace is in worm mode")]
    WormDelete,
    /// Over `maxsize`.
    #[error("No space left on this namespace")]
    NoSpace,
    /// Sequential mode: only existing, live ids may be set.
    #[error("Invalid key, only update authorized")]
    SeqUpdateOnly,
    /// Writing the data file failed (the namespace is now poisoned).
    #[error("Cannot write data right now")]
    DataWrite,
    /// Writing the index file failed (the namespace is now poisoned).
    #[error("Cannot write index right now")]
    IndexWrite,
    /// An earlier write or fsync failed; writes stay refused until a restart.
    #[error(
        "Cannot write data right now (namespace poisoned by an earlier i/o error, restart required)"
    )]
    Poisoned,
    /// The stored value does not match its checksum.
    #[error("Data corrupted")]
    Corrupted,
    /// The data file could not be read.
    #[error("Internal Error")]
    ReadFailed,
    /// Data file number N is gone (offloaded); the server runs the `missing-data` hook with
    /// its path ([`Namespace::data_path`]). A number, not the path, to keep `OpError` at 8
    /// bytes (see [`SetOutcome`]).
    #[error("Internal Error")]
    MissingData(u32),
    /// Tombstone write failed.
    #[error("Cannot delete key (data)")]
    DeleteData,
    /// Index flag write failed.
    #[error("Cannot delete key (index)")]
    DeleteIndex,
}

/// Map an I/O error on `path` during `op` to an [`OpenError`].
pub(crate) fn io_err<'a>(
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> OpenError + 'a {
    move |source| OpenError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}
