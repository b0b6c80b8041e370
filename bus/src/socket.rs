//! Socket paths and binding with root-only permissions.

use crate::error::BusError;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use tokio::net::{UnixListener, UnixStream};

/// The socket of `service` in the node's run folder: `<run_dir>/<service>.sock`.
pub fn service_socket(run_dir: &Path, service: &str) -> PathBuf {
    run_dir.join(format!("{service}.sock"))
}

/// The service name a socket path stands for (its file stem), for error messages.
pub(crate) fn service_name(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// Binds a listening socket at `path`, readable and writable by its owner only (mode 0600).
///
/// The parent folder is created with mode 0700 when missing. A stale socket file left by a dead
/// server is replaced; a live server at the same path gives [`BusError::AlreadyRunning`].
pub async fn bind(path: &Path) -> Result<UnixListener, BusError> {
    let err = |source| BusError::Bind {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
        && !parent.exists()
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(err)?;
    }
    if path.exists() {
        if UnixStream::connect(path).await.is_ok() {
            return Err(BusError::AlreadyRunning(path.to_path_buf()));
        }
        std::fs::remove_file(path).map_err(err)?;
    }
    let listener = UnixListener::bind(path).map_err(err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
    Ok(listener)
}
