//! Crash-safe file writes: a temp file with a unique name beside the target, fsync, rename,
//! fsync of the folder. After a crash the target holds the old or the new bytes, never a mix,
//! and no reader ever trusts a half-written temp file (its name starts with `.` and ends in
//! `.tmp-<pid>-<n>`; a failed write removes it).

use serde::{Serialize, de::DeserializeOwned};
use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A write that did not reach the disk; names the file and the step.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {} durably: {step}: {source}", path.display())]
pub struct WriteError {
    /// The file.
    pub path: PathBuf,
    /// The step that failed.
    pub step: &'static str,
    /// Cause.
    #[source]
    pub source: io::Error,
}

impl From<WriteError> for io::Error {
    fn from(e: WriteError) -> Self {
        io::Error::new(e.source.kind(), e.to_string())
    }
}

/// The folder that holds `path`: `.` for a bare file name (`alice.key`), whose
/// `Path::parent()` is the empty path.
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Creates `dir` and its missing parents with mode 0700.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// fsyncs a folder so that a rename or unlink in it survives a power cut.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Replaces `path` with `data` atomically and durably; the new file gets `mode` (the umask
/// still applies to bits it clears). The folder must exist (see [`write_durable_creating`]).
pub fn write_durable(path: &Path, data: &[u8], mode: u32) -> Result<(), WriteError> {
    let err = |step, source| WriteError {
        path: path.to_path_buf(),
        step,
        source,
    };
    let dir = parent_dir(path);
    let name = path
        .file_name()
        .ok_or_else(|| err("name", io::Error::other("the path names no file")))?;
    let tmp = dir.join(temp_name(name));
    let written = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .map_err(|e| err("create temp file", e))?;
        f.write_all(data).map_err(|e| err("write", e))?;
        f.sync_all().map_err(|e| err("fsync", e))?;
        std::fs::rename(&tmp, path).map_err(|e| err("rename", e))
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written?;
    sync_dir(dir).map_err(|e| err("fsync folder", e))
}

/// [`write_durable`], creating the missing folders first (mode 0700).
pub fn write_durable_creating(path: &Path, data: &[u8], mode: u32) -> Result<(), WriteError> {
    create_private_dir(parent_dir(path)).map_err(|source| WriteError {
        path: path.to_path_buf(),
        step: "create folder",
        source,
    })?;
    write_durable(path, data, mode)
}

/// Writes `value` as pretty JSON (with a final newline) through [`write_durable`], mode 0600.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), WriteError> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|e| WriteError {
        path: path.to_path_buf(),
        step: "encode",
        source: io::Error::other(e),
    })?;
    bytes.push(b'\n');
    write_durable(path, &bytes, 0o600)
}

/// Reads a JSON file; `Ok(None)` when it does not exist, `InvalidData` when it does not parse.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> io::Result<Option<T>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// `.NAME.tmp-PID-N`: unique per process and call, so concurrent writers of one file (threads
/// or processes) never share a temp file.
fn temp_name(name: &std::ffi::OsStr) -> OsString {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut t = OsString::from(".");
    t.push(name);
    t.push(format!(".tmp-{}-{n}", std::process::id()));
    t
}

#[cfg(test)]
mod test {
    #![expect(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn replaces_with_the_given_mode_and_leaves_no_temp_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a/b/f.json");
        write_durable_creating(&p, b"one", 0o600).unwrap();
        write_durable(&p, b"two", 0o644).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o600, 0o600);
        assert_eq!(std::fs::read_dir(p.parent().unwrap()).unwrap().count(), 1);
    }

    #[test]
    fn a_bare_file_name_lives_in_the_current_folder() {
        assert_eq!(parent_dir(Path::new("alice.key")), Path::new("."));
        assert_eq!(parent_dir(Path::new("/x")), Path::new("/"));
        assert_eq!(parent_dir(Path::new("a/b")), Path::new("a"));
        // The real call, from a child process so the test's own working folder is untouched.
        let d = tempfile::tempdir().unwrap();
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "fs::test::write_bare_name_child", "--nocapture"])
            .env("NODEUTIL_CHILD_DIR", d.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(std::fs::read(d.path().join("alice.key")).unwrap(), b"k");
    }

    #[test]
    fn write_bare_name_child() {
        let Some(dir) = std::env::var_os("NODEUTIL_CHILD_DIR") else {
            return;
        };
        std::env::set_current_dir(dir).unwrap();
        write_durable(Path::new("alice.key"), b"k", 0o600).unwrap();
    }

    #[test]
    fn a_failed_write_names_the_step_and_leaves_nothing() {
        let d = tempfile::tempdir().unwrap();
        let e = write_durable(&d.path().join("missing/f"), b"x", 0o600).unwrap_err();
        assert_eq!(e.step, "create temp file");
        assert!(e.to_string().contains("missing/f"), "{e}");
    }

    #[test]
    fn json_round_trips_and_absent_is_none() {
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct S {
            a: u32,
        }
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("s.json");
        assert_eq!(read_json::<S>(&p).unwrap(), None);
        write_json(&p, &S { a: 7 }).unwrap();
        assert_eq!(read_json::<S>(&p).unwrap(), Some(S { a: 7 }));
        std::fs::write(&p, b"{").unwrap();
        assert_eq!(
            read_json::<S>(&p).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
    }
}
