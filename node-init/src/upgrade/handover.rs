//! The reply of an upgrade that hands live processes over to a new binary instead of
//! restarting a daemon (storaged's zdb servers, computed's flist mounts): each process either
//! took the new binary or serves on with the old one.

use super::reexec::PreviousExec;
use super::{Upgrader, blocking, internal, journal, version_of};
use bus::RemoteError;
use bus::api::upgrade::{Outcome, UpgradeReply};
use std::path::{Path, PathBuf};

/// `name` itself when absolute, else found in `PATH` (storaged's and computed's default
/// binaries may be bare names).
fn absolute(name: &Path) -> Option<PathBuf> {
    if name.is_absolute() {
        return Some(name.to_path_buf());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

impl Upgrader {
    /// The binary `service`'s processes left at their last complete hand-over, and its
    /// version: what `--rollback` hands them back to.
    pub(super) async fn previous_binary(
        &self,
        service: &str,
    ) -> Result<(PathBuf, String), RemoteError> {
        let path = journal::previous_path(&self.node, service);
        let prev: PreviousExec = blocking(move || nodeutil::fs::read_json(&path))
            .await
            .map_err(internal("previous version"))?
            .ok_or_else(|| {
                RemoteError::not_found(format!("{service} has no previous version to roll back to"))
            })?;
        let exec = prev.exec.clone();
        let (exists, version) = blocking(move || Ok((exec.is_file(), version_of(&exec))))
            .await
            .map_err(internal("version"))?;
        if !exists {
            return Err(RemoteError::not_found(format!(
                "{service}'s previous binary {} is gone",
                prev.exec.display()
            )));
        }
        Ok((prev.exec, version))
    }

    /// After every process of `service` went from `left` to `binary`: `left` is the next
    /// rollback's target (so a second rollback goes forward again).
    pub(super) async fn record_previous(
        &self,
        service: &str,
        left: &Path,
        binary: &Path,
    ) -> Result<(), RemoteError> {
        let Some(left) = absolute(left).filter(|p| p != binary) else {
            return Ok(());
        };
        let path = journal::previous_path(&self.node, service);
        blocking(move || journal::write(&path, &PreviousExec { exec: left }))
            .await
            .map_err(internal("previous version"))
    }
}

/// What the hand-overs came to: `failed` names those that kept the old binary (and why), out
/// of `total`; `what` names one process in the detail ("server", "mount process").
pub(super) fn reply(
    service: &str,
    success: Outcome,
    from_version: String,
    to_version: String,
    failed: &[String],
    total: usize,
    what: &str,
) -> UpgradeReply {
    let all = failed.is_empty();
    let running = if all {
        to_version.clone()
    } else if failed.len() == total {
        from_version.clone()
    } else {
        "mixed".into()
    };
    let outcome = if all { success } else { Outcome::Reverted };
    UpgradeReply {
        taken_over: all && total > 0,
        detail: (!all).then(|| {
            format!(
                "hand-over failed, the old {what} serves on: {}",
                failed.join("; ")
            )
        }),
        ..UpgradeReply::new(service, outcome, from_version, to_version, running)
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn all_some_or_none_taken() {
        let r = reply(
            "zdb",
            Outcome::Upgraded,
            "a".into(),
            "b".into(),
            &[],
            2,
            "server",
        );
        assert_eq!(
            (r.outcome, r.running_version, r.detail),
            (Outcome::Upgraded, "b".into(), None)
        );
        let one = ["d1: refused".to_string()];
        let r = reply(
            "zdb",
            Outcome::Upgraded,
            "a".into(),
            "b".into(),
            &one,
            2,
            "server",
        );
        assert_eq!(
            (r.outcome, r.running_version.as_str()),
            (Outcome::Reverted, "mixed")
        );
        assert!(
            r.detail
                .is_some_and(|d| d.contains("old server serves on: d1: refused"))
        );
        let r = reply(
            "flist",
            Outcome::Upgraded,
            "a".into(),
            "b".into(),
            &one,
            1,
            "mount",
        );
        assert_eq!(r.running_version, "a");
    }
}
