//! The flist a container stands on: fetched once, checked against the identity the request
//! names, and kept (pinned) in computed's own folder as `<identity>.flist`, so a restart does
//! not depend on the original file or URL. Mounting it is a [`crate::system::System`] effect.

use crate::error::{Error, IoContext, Result};
use crate::system::System;
use std::path::{Path, PathBuf};

/// Largest flist file accepted from a URL.
pub const MAX_FLIST: u64 = 512 << 20;

/// Identity (hex) of the flist at `path`.
pub fn identity_of(path: &Path) -> Result<String> {
    let fl = flist_fuse::rfs::read_any(path)
        .map_err(|e| Error::Invalid(format!("{}: not an flist: {e}", path.display())))?;
    Ok(flist_fuse::format::hex(&fl.identity))
}

/// Checks that `identity` is 64 hex digits; returns it lower-case.
pub fn check_identity(identity: &str) -> Result<String> {
    let identity = identity.to_ascii_lowercase();
    if identity.len() != 64 || !identity.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::Invalid(format!(
            "flist identity must be 64 hex digits, got {identity:?}"
        )));
    }
    Ok(identity)
}

/// Returns a local copy, in `flists`, of the flist named by `source` (path or http(s) URL)
/// whose identity is `identity`, fetching it once. Concurrent pins of one flist each write
/// their own temporary file; the renames leave the same bytes.
pub fn pin(sys: &dyn System, flists: &Path, source: &str, identity: &str) -> Result<PathBuf> {
    let identity = check_identity(identity)?;
    let pinned = flists.join(format!("{identity}.flist"));
    if pinned.exists() {
        return Ok(pinned);
    }
    std::fs::create_dir_all(flists).ctx(flists)?;
    let tmp = flists.join(format!(".{identity}.{}.tmp", nodeutil::random::hex(8)));
    let fetched = if source.starts_with("http://") || source.starts_with("https://") {
        sys.download(source, &tmp, MAX_FLIST)
    } else {
        std::fs::copy(source, &tmp)
            .map(drop)
            .ctx(crate::error::redacted(source))
    };
    let checked = fetched.and_then(|()| {
        let got = identity_of(&tmp)?;
        if got != identity {
            return Err(Error::Invalid(format!(
                "flist {} has identity {got}, not the pinned {identity}",
                crate::error::redacted(source)
            )));
        }
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .ctx(&tmp)?;
        std::fs::rename(&tmp, &pinned).ctx(&pinned)?;
        nodeutil::fs::sync_dir(flists).ctx(flists)
    });
    if checked.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    checked.map(|()| pinned)
}
