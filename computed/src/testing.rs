//! Helpers for tests of computed and of its callers: a tiny real flist, and a spec with the
//! test defaults. Not used by the daemon.

use crate::error::{Error, Result};
use bus::api::compute::{ContainerSpec, RestartPolicy};
use std::path::{Path, PathBuf};

/// Packs a one-file tree (`/etc/motd`) into `dir/app.flist`, its blocks in a `dir://` store
/// under `dir`; returns the flist and its identity.
pub fn tiny_flist(dir: &Path) -> Result<(PathBuf, String)> {
    let tree = dir.join("tree");
    let motd = tree.join("etc/motd");
    std::fs::create_dir_all(tree.join("etc"))
        .and_then(|()| std::fs::write(&motd, "hello\n"))
        .map_err(|e| Error::Invalid(format!("{}: {e}", motd.display())))?;
    let flist = dir.join("app.flist");
    let opts = flist_fuse::pack::PackOptions {
        stores: vec![format!("dir://{}", dir.join("store").display())],
        ..Default::default()
    };
    flist_fuse::pack::pack(&tree, &flist, &opts)
        .map_err(|e| Error::Invalid(format!("pack: {e}")))?;
    let identity = crate::rootfs::identity_of(&flist)?;
    Ok((flist, identity))
}

/// A spec running `entrypoint` from `flist` with a writable layer in `rw`: 0.5 CPU, 64 MiB,
/// 64 tasks, no restart, 2 s grace, 1 MiB of logs.
pub fn spec(
    name: &str,
    flist: &Path,
    identity: &str,
    rw: PathBuf,
    entrypoint: Vec<String>,
) -> ContainerSpec {
    ContainerSpec {
        name: name.into(),
        flist: flist.display().to_string(),
        identity: identity.to_string(),
        stores: vec![],
        entrypoint,
        env: Default::default(),
        workdir: "/".into(),
        hostname: None,
        cpu: 0.5,
        memory: 64 << 20,
        pids: 64,
        rw,
        mounts: vec![],
        restart: RestartPolicy::Never,
        stop_grace_secs: 2,
        log_max_bytes: 1 << 20,
    }
}
