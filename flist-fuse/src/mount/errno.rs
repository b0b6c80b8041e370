//! The one place where failures become errno values for the kernel.

use fuser::Errno;

use super::fetch::FetchError;

/// Every failure a filesystem operation can report.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FsError {
    /// No such entry in a folder, or an inode number the image does not have.
    #[error("no such entry")]
    NotFound,
    /// A path component that is not a folder.
    #[error("not a folder")]
    NotDir,
    /// Reading a folder as a file.
    #[error("is a folder")]
    IsDir,
    /// `readlink` on something that is not a symlink, or a bad argument.
    #[error("invalid argument")]
    Invalid,
    /// Any attempt to change the image.
    #[error("read-only image")]
    ReadOnly,
    /// Permission denied by the mode bits (`access`).
    #[error("permission denied")]
    Access,
    /// No such extended attribute.
    #[error("no such attribute")]
    NoXattr,
    /// The caller's buffer is too small for the value.
    #[error("buffer too small")]
    Range,
    /// File content could not be had: store down, block missing or failing verification.
    #[error("{0}")]
    Fetch(FetchError),
}

impl From<FetchError> for FsError {
    fn from(e: FetchError) -> Self {
        FsError::Fetch(e)
    }
}

/// Map an error to the errno the kernel passes on.
pub fn errno(e: &FsError) -> Errno {
    match e {
        FsError::NotFound => Errno::ENOENT,
        FsError::NotDir => Errno::ENOTDIR,
        FsError::IsDir => Errno::EISDIR,
        FsError::Invalid => Errno::EINVAL,
        FsError::ReadOnly => Errno::EROFS,
        FsError::Access => Errno::EACCES,
        FsError::NoXattr => Errno::ENODATA,
        FsError::Range => Errno::ERANGE,
        // Never ENOENT for an I/O failure: the file exists, its bytes could not be had.
        FsError::Fetch(_) => Errno::EIO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping() {
        assert_eq!(errno(&FsError::NotFound), Errno::ENOENT);
        assert_eq!(errno(&FsError::NoXattr), Errno::ENODATA);
        let f = FetchError::Missing {
            id: "ab".into(),
            msg: "x".into(),
        };
        assert_eq!(errno(&FsError::Fetch(f)), Errno::EIO);
        assert_eq!(errno(&FsError::ReadOnly), Errno::EROFS);
    }
}
