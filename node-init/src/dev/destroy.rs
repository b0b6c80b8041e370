//! `node-init --dev DIR --destroy`: removes a dev node and everything it runs or holds. Its
//! containers are deleted through computed when it answers (that also stops their entrypoints
//! and releases their network namespaces and cgroups), then its networks through netd (their
//! namespaces, links and packet filter tables); then every process naming DIR is
//! stopped (node-init, storaged, zdb, computed, shims, flist mounts), everything mounted below
//! DIR is unmounted (pools, overlays, flist mounts), the loop devices of `DIR/disks/*.img` are
//! detached and DIR is removed. Running it again, or on a DIR already gone, is fine.

use bus::api::Empty;
use bus::api::compute::{DeleteContainer, ListContainers, Name};
use bus::api::network::{DeleteNetwork, ListNetworks, NetworkId};
use nodeutil::teardown::{Released, TeardownError, release};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What [`destroy`] did.
#[derive(Debug, Default)]
pub struct Destroyed {
    /// Containers deleted through computed.
    pub containers: Vec<String>,
    /// Networks deleted through netd.
    pub networks: Vec<String>,
    /// Processes stopped, mounts unmounted, loop devices detached.
    pub released: Released,
    /// Whether DIR existed and was removed.
    pub removed: bool,
}

/// Why a dev node could not be removed.
#[derive(Debug, thiserror::Error)]
pub enum DestroyError {
    /// DIR holds none of a dev node's files: refusing to remove someone's folder.
    #[error(
        "{} does not look like a dev node (no storaged.json, identity.key or disks/): not removing it",
        .0.display()
    )]
    NotADevNode(PathBuf),
    /// A process, mount or loop device would not go.
    #[error(transparent)]
    Teardown(#[from] TeardownError),
    /// Removing the folder failed.
    #[error("cannot remove {}: {source}", path.display())]
    Remove {
        /// The folder.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

/// Seconds between SIGTERM and SIGKILL for the node's processes: zdb saves its key map and
/// shims stop their containers on SIGTERM.
const GRACE: Duration = Duration::from_secs(15);

/// Removes the dev node in `dir` (absolute); see the module doc.
pub async fn destroy(dir: &Path) -> Result<Destroyed, DestroyError> {
    let exists = dir.exists();
    let looks_like_node = ["storaged.json", "identity.key", "disks"]
        .iter()
        .any(|m| dir.join(m).exists());
    if dir.parent().is_none() || (exists && !looks_like_node) {
        return Err(DestroyError::NotADevNode(dir.to_path_buf()));
    }
    let containers = delete_containers(&dir.join("run")).await;
    let networks = delete_networks(&dir.join("run")).await;
    let dir_owned = dir.to_path_buf();
    let released = tokio::task::spawn_blocking(move || release(&dir_owned, GRACE))
        .await
        .map_err(|e| DestroyError::Remove {
            path: dir.to_path_buf(),
            source: std::io::Error::other(e),
        })??;
    if exists {
        std::fs::remove_dir_all(dir).map_err(|source| DestroyError::Remove {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    Ok(Destroyed {
        containers,
        networks,
        released,
        removed: exists,
    })
}

/// Deletes every container of the node's computed, if it answers; failures are logged (the
/// teardown that follows stops their shims anyway).
async fn delete_containers(run_dir: &Path) -> Vec<String> {
    let computed = bus::Client::new(bus::service_socket(run_dir, "computed"))
        .connect_timeout(Duration::from_secs(2))
        .call_timeout(Duration::from_secs(60));
    let Ok(list) = computed.call::<ListContainers>(&Empty {}).await else {
        return Vec::new();
    };
    let mut deleted = Vec::new();
    for c in list.containers {
        match computed
            .call::<DeleteContainer>(&Name {
                name: c.name.clone(),
            })
            .await
        {
            Ok(_) => deleted.push(c.name),
            Err(e) => tracing::warn!(container = %c.name, error = %e, "cannot delete container"),
        }
    }
    deleted
}

/// Deletes every network of the node's netd, if it answers; failures are logged.
async fn delete_networks(run_dir: &Path) -> Vec<String> {
    let netd = bus::Client::new(bus::service_socket(run_dir, "netd"))
        .connect_timeout(Duration::from_secs(2))
        .call_timeout(Duration::from_secs(60));
    let Ok(list) = netd.call::<ListNetworks>(&Empty {}).await else {
        return Vec::new();
    };
    let mut deleted = Vec::new();
    for n in list.networks {
        match netd
            .call::<DeleteNetwork>(&NetworkId { id: n.id.clone() })
            .await
        {
            Ok(_) => deleted.push(n.id),
            Err(e) => tracing::warn!(network = %n.id, error = %e, "cannot delete network"),
        }
    }
    deleted
}

#[cfg(test)]
mod test {
    #![expect(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[tokio::test]
    async fn refuses_a_folder_that_is_not_a_node_and_removes_one_that_is() {
        let d = tempfile::tempdir().unwrap();
        let other = d.path().join("photos");
        std::fs::create_dir_all(&other).unwrap();
        std::fs::write(other.join("cat.jpg"), b"meow").unwrap();
        let e = destroy(&other).await.unwrap_err();
        assert!(matches!(e, DestroyError::NotADevNode(_)), "{e}");
        assert!(other.join("cat.jpg").exists());
        assert!(matches!(
            destroy(Path::new("/")).await,
            Err(DestroyError::NotADevNode(_))
        ));

        let node = d.path().join("node");
        std::fs::create_dir_all(node.join("run")).unwrap();
        std::fs::write(node.join("storaged.json"), b"{}").unwrap();
        // A process of the node (names a path in it), as storaged would be. It waits in a
        // builtin: a loop forking `sleep` showed its short-lived children (same command line
        // until their exec) as processes of the node too, now and then.
        let mut p = std::process::Command::new("sh")
            .arg("-c")
            .arg("read _")
            .arg(node.join("storaged.json"))
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let done = destroy(&node).await.unwrap();
        assert_eq!(done.released.processes, [p.id()]);
        assert!(done.removed && !node.exists());
        let _ = p.wait();
        // Again: nothing left to do, still fine.
        let again = destroy(&node).await.unwrap();
        assert!(!again.removed && again.released.processes.is_empty());
    }
}
