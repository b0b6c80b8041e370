//! Crash-safe file writes: temp file, fsync, rename, fsync of the folder.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// A write that did not reach the disk.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {} durably: {step}", path.display())]
pub struct WriteError {
    /// The file.
    pub path: PathBuf,
    /// The step that failed.
    pub step: &'static str,
    /// Cause.
    #[source]
    pub source: std::io::Error,
}

/// Creates `dir` and its parents with mode 0700 where missing.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Replaces `path` with `data` atomically and durably (mode 0600): after a crash the file holds
/// either the old or the new contents, never a mix.
pub fn atomic_write(path: &Path, data: &[u8]) -> Result<(), WriteError> {
    let err = |step, source| WriteError {
        path: path.to_path_buf(),
        step,
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    create_private_dir(dir).map_err(|e| err("create folder", e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| err("create temp file", e))?;
    f.write_all(data).map_err(|e| err("write", e))?;
    f.sync_all().map_err(|e| err("fsync", e))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| err("rename", e))?;
    sync_dir(dir).map_err(|e| err("fsync folder", e))
}

/// fsyncs a folder so a rename or unlink in it is durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod test {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn replaces_with_private_mode() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a/b/f.json");
        atomic_write(&p, b"one").unwrap();
        atomic_write(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(std::fs::read_dir(p.parent().unwrap()).unwrap().count(), 1);
    }
}
