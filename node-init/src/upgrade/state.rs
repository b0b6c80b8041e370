//! A daemon's state folder during an upgrade: the copy a migration works on (`DIR.next`),
//! the atomic exchange of the two folders (`renameat2(RENAME_EXCHANGE)`: at every instant
//! `DIR` is one whole version of the state, never a mix or missing), and the inode that
//! tells after a crash which version `DIR` holds.

use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// `DIR` + `suffix` (a sibling: same file system, so renames work).
pub fn sibling(dir: &Path, suffix: &str) -> PathBuf {
    let mut s = dir.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

/// Where the migrated copy is prepared and, after the exchange, where the other version waits.
pub fn next(dir: &Path) -> PathBuf {
    sibling(dir, ".next")
}

/// The state kept for `zos upgrade --rollback`.
pub fn rollback(dir: &Path) -> PathBuf {
    sibling(dir, ".rollback")
}

/// The inode of a folder (`None` when it does not exist).
pub fn inode(dir: &Path) -> Option<u64> {
    std::fs::symlink_metadata(dir).ok().map(|m| m.ino())
}

/// Removes a folder tree if it exists.
pub fn remove(dir: &Path) -> io::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Copies the tree `from` to the new folder `to` (files, folders, symlinks; modes kept), every
/// file and folder fsynced.
pub fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    let mode = std::fs::metadata(from)?.permissions().mode() & 0o7777;
    std::fs::DirBuilder::new().mode(mode).create(to)?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(mode))?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let ty = entry.file_type()?;
        if ty.is_dir() {
            copy_tree(&src, &dst)?;
        } else if ty.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, &dst)?;
        } else if ty.is_file() {
            let mode = entry.metadata()?.permissions().mode() & 0o7777;
            let mut out = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode)
                .open(&dst)?;
            io::copy(&mut std::fs::File::open(&src)?, &mut out)?;
            out.sync_all()?;
        }
        // sockets and fifos are not state
    }
    nodeutil::fs::sync_dir(to)
}

/// A digest of the tree `dir`: relative paths, kinds, modes, contents and link targets, in
/// name order. Equal digests before and after a migration on a copy mean the migration changed
/// nothing: the running daemon's state suits the new binary as it is.
pub fn digest(dir: &Path) -> io::Result<blake3::Hash> {
    fn walk(h: &mut blake3::Hasher, root: &Path, dir: &Path) -> io::Result<()> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let path = e.path();
            let rel = path.strip_prefix(root).unwrap_or(&path);
            let meta = std::fs::symlink_metadata(&path)?;
            h.update(rel.as_os_str().as_encoded_bytes());
            h.update(&[0]);
            h.update(&meta.mode().to_be_bytes());
            if meta.is_dir() {
                walk(h, root, &path)?;
            } else if meta.is_symlink() {
                h.update(std::fs::read_link(&path)?.as_os_str().as_encoded_bytes());
            } else if meta.is_file() {
                h.update(&meta.len().to_be_bytes());
                h.update_reader(std::fs::File::open(&path)?)?;
            }
            h.update(&[0]);
        }
        Ok(())
    }
    let mut h = blake3::Hasher::new();
    walk(&mut h, dir, dir)?;
    Ok(h.finalize())
}

/// Swaps the folders `a` and `b` atomically, then fsyncs their parent.
pub fn exchange(a: &Path, b: &Path) -> io::Result<()> {
    rustix::fs::renameat_with(
        rustix::fs::CWD,
        a,
        rustix::fs::CWD,
        b,
        rustix::fs::RenameFlags::EXCHANGE,
    )?;
    nodeutil::fs::sync_dir(nodeutil::fs::parent_dir(a))
}

/// Renames `from` to `to` and fsyncs the parent.
pub fn rename(from: &Path, to: &Path) -> io::Result<()> {
    std::fs::rename(from, to)?;
    nodeutil::fs::sync_dir(nodeutil::fs::parent_dir(to))
}

#[cfg(test)]
mod test {
    #![expect(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn a_tree_is_copied_and_exchanged_whole() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("state");
        std::fs::create_dir_all(a.join("networks")).unwrap();
        std::fs::write(a.join("networks/n1.json"), b"{}").unwrap();
        std::os::unix::fs::symlink("networks/n1.json", a.join("link")).unwrap();
        let b = next(&a);
        copy_tree(&a, &b).unwrap();
        assert_eq!(std::fs::read(b.join("networks/n1.json")).unwrap(), b"{}");
        assert_eq!(
            std::fs::read_link(b.join("link")).unwrap(),
            Path::new("networks/n1.json")
        );
        std::fs::write(b.join("schema"), b"1").unwrap();
        let (ia, ib) = (inode(&a).unwrap(), inode(&b).unwrap());
        exchange(&a, &b).unwrap();
        assert_eq!((inode(&a), inode(&b)), (Some(ib), Some(ia)));
        assert!(a.join("schema").exists() && !b.join("schema").exists());
        remove(&b).unwrap();
        remove(&b).unwrap();
        assert!(!b.exists());
    }

    #[test]
    fn a_digest_changes_with_any_file_name_or_byte() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("state");
        std::fs::create_dir_all(a.join("networks")).unwrap();
        std::fs::write(a.join("networks/n1.json"), b"{}").unwrap();
        let first = digest(&a).unwrap();
        let b = next(&a);
        copy_tree(&a, &b).unwrap();
        assert_eq!(digest(&b).unwrap(), first, "a copy digests the same");
        std::fs::write(b.join("networks/n1.json"), b"{ }").unwrap();
        assert_ne!(digest(&b).unwrap(), first);
        std::fs::write(b.join("networks/n1.json"), b"{}").unwrap();
        std::fs::write(b.join("schema.json"), b"").unwrap();
        assert_ne!(digest(&b).unwrap(), first);
    }
}
