//! The reply of an upgrade that hands live processes over to a new binary instead of
//! restarting a daemon (storaged's zdb servers, computed's flist mounts): each process either
//! took the new binary or serves on with the old one.

use bus::api::upgrade::{Outcome, UpgradeReply};

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
    UpgradeReply {
        service: service.into(),
        outcome: if all { success } else { Outcome::Reverted },
        running_version: if all {
            to_version.clone()
        } else if failed.len() == total {
            from_version.clone()
        } else {
            "mixed".into()
        },
        from_version,
        to_version,
        pid: None,
        migrated: false,
        detail: (!all).then(|| {
            format!(
                "hand-over failed, the old {what} serves on: {}",
                failed.join("; ")
            )
        }),
        zdb: Vec::new(),
        attempt: None,
        flist: Vec::new(),
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
