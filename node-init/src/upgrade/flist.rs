//! `zos upgrade --flist URL` (`http(s)://`, `file://` or a path): a release is an flist
//! holding new daemon binaries (`bin/<name>` or `<name>` for storaged, netd, computed, zdb,
//! flist and node-init), signed with the release key pinned in the
//! node's config (`node-init --release-key HEX`). The flist is copied into a private folder,
//! checked there with `flist verify --pubkey KEY` (its signature over the flist's identity, and
//! every block against its hash), and only then unpacked and each binary upgraded in turn
//! like `zos upgrade NAME --from PATH`. Nothing is installed, stopped or written before the
//! signature verifies.

use super::reexec::NODE_INIT;
use super::{FLIST, Upgrader, ZDB, blocking};
use bus::RemoteError;
use bus::api::upgrade::FlistUpgradeReply;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Largest release flist accepted.
const MAX_FLIST: u64 = 64 << 20;

/// How long `flist verify` and `flist unpack` may take each.
const FLIST_TIMEOUT: Duration = Duration::from_secs(600);

/// The daemons a release may carry, in upgrade order (storage first, zdb then: its servers
/// are handed over by the new storaged; the flist mounts after computed, which hands them
/// over; node-init last: it re-executes itself, which ends this call).
pub const RELEASE_ORDER: [&str; 6] = ["storaged", "netd", "computed", ZDB, FLIST, NODE_INIT];

/// A release key as given: 64 hex digits of an ed25519 public key.
pub fn valid_key(key: &str) -> bool {
    key.len() == 64 && key.bytes().all(|b| b.is_ascii_hexdigit())
}

/// How long a release download may take.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(600);

/// Fetches the flist at `url` (`http(s)://`, `file://` or a path) into `dest`, bounded.
fn fetch(url: &str, dest: &Path) -> io::Result<()> {
    if url.starts_with("http://") || url.starts_with("https://") {
        return nodeutil::http::download(url, dest, MAX_FLIST, DOWNLOAD_TIMEOUT).map(drop);
    }
    let path = url.strip_prefix("file://").unwrap_or(url);
    if url.contains("://") && !url.starts_with("file://") {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{}: only http(s)://, file:// and local paths are supported",
                nodeutil::redact::text(url)
            ),
        ));
    }
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() || meta.len() > MAX_FLIST {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{path} is not an flist file of at most {MAX_FLIST} bytes"),
        ));
    }
    std::fs::copy(path, dest)?;
    Ok(())
}

/// Runs the `flist` tool; its stderr when it fails.
async fn flist_tool(args: &[&std::ffi::OsStr]) -> Result<(), String> {
    let bin = crate::daemon::default_bin("flist");
    let run = tokio::process::Command::new(&bin)
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(FLIST_TIMEOUT, run).await {
        Err(_) => Err(format!("{} did not end in time", bin.display())),
        Ok(Err(e)) => Err(format!("cannot run {}: {e}", bin.display())),
        Ok(Ok(o)) if o.status.success() => Ok(()),
        Ok(Ok(o)) => Err(String::from_utf8_lossy(&o.stderr).trim().to_string()),
    }
}

/// The release's binary for `name` in the unpacked `tree`.
fn binary_in(tree: &Path, name: &str) -> Option<PathBuf> {
    [tree.join("bin").join(name), tree.join(name)]
        .into_iter()
        .find(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_file()))
}

impl Upgrader {
    /// `zos upgrade --flist URL`.
    pub async fn upgrade_flist(
        &self,
        url: &str,
        ready_timeout_secs: Option<u64>,
    ) -> Result<FlistUpgradeReply, RemoteError> {
        let Some(key) = self.release_key.clone() else {
            return Err(RemoteError::new(
                bus::ErrorCode::Refused,
                "no release key is pinned in this node's config (node-init --release-key)",
            ));
        };
        let work =
            super::journal::dir(&self.node).join(format!(".release-{}", nodeutil::random::hex(8)));
        let result = self
            .verified_release(url, &key, &work, ready_timeout_secs)
            .await;
        let w = work.clone();
        let _ = blocking(move || super::state::remove(&w)).await;
        result
    }

    async fn verified_release(
        &self,
        url: &str,
        key: &str,
        work: &Path,
        ready_timeout_secs: Option<u64>,
    ) -> Result<FlistUpgradeReply, RemoteError> {
        let (w, u) = (work.to_path_buf(), url.to_string());
        let file = work.join("release.flist");
        let f = file.clone();
        blocking(move || {
            nodeutil::fs::create_private_dir(&w)?;
            fetch(&u, &f)
        })
        .await
        .map_err(|e| {
            RemoteError::invalid(format!(
                "cannot read the release {}: {e}",
                nodeutil::redact::text(url)
            ))
        })?;
        // nothing is touched before this passes
        flist_tool(&[
            "verify".as_ref(),
            "--pubkey".as_ref(),
            key.as_ref(),
            file.as_os_str(),
        ])
        .await
        .map_err(|e| {
            RemoteError::new(
                bus::ErrorCode::Refused,
                format!(
                    "release {} refused, it does not verify with the release key: {e}",
                    nodeutil::redact::text(url)
                ),
            )
        })?;
        let tree = work.join("tree");
        flist_tool(&["unpack".as_ref(), file.as_os_str(), tree.as_os_str()])
            .await
            .map_err(|e| RemoteError::internal(format!("cannot unpack the release: {e}")))?;
        let mut results = Vec::new();
        for name in RELEASE_ORDER {
            let Some(bin) = binary_in(&tree, name) else {
                continue;
            };
            // the daemon it upgrades (the flist mounts are computed's) must run here
            let runs = match name {
                ZDB | NODE_INIT => true,
                FLIST => self.sup.definition("computed").is_some(),
                _ => self.sup.definition(name).is_some(),
            };
            if !runs {
                continue;
            }
            let r = self.upgrade(name, &bin, ready_timeout_secs).await?;
            let failed = r.outcome == bus::api::upgrade::Outcome::Reverted;
            results.push(r);
            if failed {
                // the rest of the release waits for a fixed one
                break;
            }
        }
        if results.is_empty() {
            return Err(RemoteError::invalid(format!(
                "release {} holds none of {RELEASE_ORDER:?} (as bin/NAME)",
                nodeutil::redact::text(url)
            )));
        }
        Ok(FlistUpgradeReply {
            signer: key.to_string(),
            services: results,
        })
    }
}
