//! The new image's side of a re-exec ([`at_start`]): a trial that commits once its API is
//! served, or execs the old binary back in place ([`Running::fall_back`]); and the guard
//! process that starts the old binary again when the new one dies outright ([`guard`]).

use super::*;

/// A trial under way in this process (the new image): commit it once ready, or fall back.
pub struct Running {
    node: PathBuf,
    trial: Trial,
    done: AtomicBool,
}

static RUNNING: OnceLock<Arc<Running>> = OnceLock::new();

/// What [`at_start`] found.
#[derive(Default)]
pub struct Started {
    /// This process is the new image on trial: it falls back by itself on a panic or when not
    /// committed ([`Running::commit`]) before the deadline.
    pub trial: Option<Arc<Running>>,
    /// The supervised processes the previous image of this process left running (service ->
    /// pid), for the supervisor to adopt: only those still our children (a pid reused
    /// meanwhile is not).
    pub handed: BTreeMap<String, u32>,
}

/// At start, before the node starts anything: settles a re-exec journal.
pub fn at_start(node: &Path) -> Started {
    let path = trial_path(node);
    let trial = match nodeutil::fs::read_json::<Trial>(&path) {
        Ok(Some(t)) => t,
        Ok(None) => return Started::default(),
        Err(e) => {
            tracing::warn!(error = %e, path = %path.display(), "unreadable re-exec journal: ignored");
            let _ = crate::upgrade::journal::remove(&path);
            return Started::default();
        }
    };
    let mut handed = if trial.pid == std::process::id() {
        trial.children.clone()
    } else {
        BTreeMap::new()
    };
    let trial = settle(node, trial);
    // after `settle` collected the zombies: a daemon that ended during the exec is started
    handed.retain(|_, pid| crate::supervisor::reaper::is_our_child(*pid));
    Started { trial, handed }
}

/// [`at_start`] with the journal read.
fn settle(node: &Path, trial: Trial) -> Option<Arc<Running>> {
    let path = trial_path(node);
    let me = current_exe().ok();
    let same_pid = trial.pid == std::process::id();
    if same_pid {
        // children the old image left as zombies (a daemon that ended during the exec): no
        // one else here waits for them yet
        reap_left_zombies(trial.guard);
        if let Some(g) = trial.guard {
            drop(crate::supervisor::reaper::global().watch(g));
        }
    }
    if same_pid && me.as_deref() == Some(trial.to.as_path()) && trial.failed.is_none() {
        tracing::info!(from = %trial.from_version, to = %trial.to_version, "re-executed: on trial until ready");
        let r = Arc::new(Running {
            node: node.to_path_buf(),
            trial,
            done: AtomicBool::new(false),
        });
        let _ = RUNNING.set(r.clone());
        arm(r.clone());
        let points = std::env::var(FAILPOINT).unwrap_or_default();
        for p in points.split(',') {
            if p == r.trial.to_version {
                r.fall_back(&format!("{FAILPOINT} names this build (a test)"));
            }
            if p.strip_prefix("hang:") == Some(r.trial.to_version.as_str()) {
                // never ready: the deadline's watchdog takes it back
                loop {
                    std::thread::park();
                }
            }
        }
        return Some(r);
    }
    let why = trial.failed.clone().unwrap_or_else(|| {
        "the new node-init ended before it was ready; the old one was started again".into()
    });
    if me.as_deref() == Some(trial.from.as_path()) {
        tracing::warn!(reason = %why, version = %trial.from_version, "node-init upgrade reverted");
        if let Err(e) = finish(node, &trial, Outcome::Reverted, Some(why)) {
            tracing::warn!(error = %e, "cannot record the reverted upgrade");
        }
    } else {
        // someone started yet another binary: the attempt is over
        tracing::warn!(to = %trial.to_version, "a node-init upgrade did not finish: dropped");
        let _ = crate::upgrade::journal::remove(&path);
    }
    None
}

/// Collects zombie children the previous image left, except `keep` (watched by the reaper).
fn reap_left_zombies(keep: Option<u32>) {
    for pid in crate::supervisor::reaper::zombie_children() {
        if Some(pid as u32) == keep {
            continue;
        }
        if let Some(p) = rustix::process::Pid::from_raw(pid) {
            let _ = rustix::process::waitpid(Some(p), rustix::process::WaitOptions::NOHANG);
        }
    }
}

/// The deadline watchdog and the panic hook of a trial.
fn arm(r: Arc<Running>) {
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        prev(info);
        if let Some(r) = RUNNING.get() {
            r.fall_back(&format!("the new node-init panicked: {info}"));
        }
    }));
    let left = r.trial.deadline.saturating_sub(now_secs());
    let spawned = std::thread::Builder::new()
        .name("reexec-deadline".into())
        .spawn(move || {
            std::thread::sleep(Duration::from_secs(left));
            r.fall_back(&format!("the new node-init was not ready within {left} s"));
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "no re-exec deadline");
    }
}

impl Running {
    /// The new image is ready: the upgrade is committed.
    pub fn commit(&self) {
        if self.done.swap(true, Ordering::SeqCst) {
            return;
        }
        let outcome = if self.trial.rollback {
            Outcome::RolledBack
        } else {
            Outcome::Upgraded
        };
        match finish(&self.node, &self.trial, outcome, None) {
            Ok(()) => {
                tracing::info!(version = %self.trial.to_version, "node-init upgrade committed")
            }
            Err(e) => tracing::error!(error = %e, "cannot commit the node-init upgrade"),
        }
    }

    /// The new image failed before it was ready: exec the old binary in place (same pid).
    pub fn fall_back(&self, why: &str) {
        if self.done.swap(true, Ordering::SeqCst) {
            return;
        }
        tracing::error!(reason = why, version = %self.trial.from_version, "going back to the old node-init");
        let mut t = self.trial.clone();
        t.failed = Some(why.to_string());
        if let Err(e) = crate::upgrade::journal::write(&trial_path(&self.node), &t) {
            tracing::error!(error = %e, "cannot write the re-exec journal");
        }
        let e = exec(&t.from, &t.args);
        tracing::error!(error = %e, "cannot re-execute the old node-init");
        std::process::exit(1);
    }
}

/// `node-init --reexec-guard JOURNAL`, started from the old binary before the exec: waits
/// until the attempt ends; when the process on trial dies first (its parent changes), starts
/// the old binary again with the same command line; kills a trial past its deadline (plus
/// 10 s: the new image's own watchdog goes first).
pub fn guard(journal: &Path) -> ! {
    let first: Option<Trial> = nodeutil::fs::read_json(journal).ok().flatten();
    let Some(first) = first else {
        std::process::exit(0)
    };
    let mut killed = false;
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let now: Option<Trial> = nodeutil::fs::read_json(journal).ok().flatten();
        let Some(mut t) = now.filter(|t| t.attempt == first.attempt) else {
            std::process::exit(0)
        };
        if rustix::process::getppid().map(|p| p.as_raw_nonzero().get() as u32) != Some(t.pid) {
            if t.failed.is_none() {
                t.failed = Some(if killed {
                    "the new node-init was not ready in time; the old one was started again".into()
                } else {
                    "the new node-init ended before it was ready; the old one was started again"
                        .into()
                });
                let _ = crate::upgrade::journal::write(journal, &t);
            }
            eprintln!(
                "node-init upgrade guard: {}",
                t.failed.as_deref().unwrap_or("")
            );
            let mut c = std::process::Command::new(&t.from);
            if let Some((first, rest)) = t.args.split_first() {
                c.arg0(first).args(rest);
            }
            if let Err(e) = c.stdin(std::process::Stdio::null()).spawn() {
                eprintln!(
                    "node-init upgrade guard: cannot start {}: {e}",
                    t.from.display()
                );
                std::process::exit(1);
            }
            std::process::exit(0);
        }
        if !killed && now_secs() > t.deadline + 10 {
            if let Some(p) = rustix::process::Pid::from_raw(t.pid as i32) {
                let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
            }
            killed = true;
        }
    }
}

#[cfg(test)]
mod test {
    #![expect(clippy::unwrap_used, reason = "tests")]
    use super::*;

    fn trial(from: PathBuf, to: PathBuf, pid: u32) -> Trial {
        Trial {
            attempt: "a1".into(),
            pid,
            from,
            to,
            args: vec!["node-init".into()],
            from_version: "b3:old".into(),
            to_version: "b3:new".into(),
            deadline: now_secs() + 60,
            rollback: false,
            guard: None,
            failed: None,
            children: BTreeMap::new(),
        }
    }

    #[test]
    fn the_old_binary_started_again_records_the_revert() {
        let d = tempfile::tempdir().unwrap();
        let me = current_exe().unwrap();
        // another pid: the guard (or an operator) started the old binary after the new died
        let t = trial(me, "/nonexistent/new".into(), std::process::id() + 1);
        crate::upgrade::journal::write(&trial_path(d.path()), &t).unwrap();
        assert!(at_start(d.path()).trial.is_none());
        assert!(!trial_path(d.path()).exists());
        let r: UpgradeReply = nodeutil::fs::read_json(&result_path(d.path()))
            .unwrap()
            .unwrap();
        assert_eq!(r.outcome, Outcome::Reverted);
        assert_eq!(r.attempt.as_deref(), Some("a1"));
        assert_eq!(r.running_version, "b3:old");
        assert!(r.detail.unwrap().contains("before it was ready"));
        // no rollback target from a failed attempt
        assert!(!previous_path(d.path()).exists());
    }

    #[test]
    fn a_journal_of_other_binaries_or_unreadable_is_dropped() {
        let d = tempfile::tempdir().unwrap();
        let t = trial("/a".into(), "/b".into(), std::process::id() + 1);
        crate::upgrade::journal::write(&trial_path(d.path()), &t).unwrap();
        assert!(at_start(d.path()).trial.is_none());
        assert!(!trial_path(d.path()).exists());
        assert!(!result_path(d.path()).exists());
        std::fs::write(trial_path(d.path()), "{not json").unwrap();
        assert!(at_start(d.path()).trial.is_none());
        assert!(!trial_path(d.path()).exists());
        assert!(
            at_start(d.path()).trial.is_none(),
            "no journal: a plain start"
        );
    }

    #[test]
    fn a_commit_records_the_rollback_target_and_ends_the_attempt() {
        let d = tempfile::tempdir().unwrap();
        let t = trial("/old/node-init".into(), "/new/node-init".into(), 7);
        crate::upgrade::journal::write(&trial_path(d.path()), &t).unwrap();
        let r = Running {
            node: d.path().to_path_buf(),
            trial: t,
            done: AtomicBool::new(false),
        };
        r.commit();
        assert!(!trial_path(d.path()).exists());
        let prev: PreviousExec = nodeutil::fs::read_json(&previous_path(d.path()))
            .unwrap()
            .unwrap();
        assert_eq!(prev.exec, PathBuf::from("/old/node-init"));
        let cur: PreviousExec = nodeutil::fs::read_json(&current_path(d.path()))
            .unwrap()
            .unwrap();
        assert_eq!(cur.exec, PathBuf::from("/new/node-init"));
        let res: UpgradeReply = nodeutil::fs::read_json(&result_path(d.path()))
            .unwrap()
            .unwrap();
        assert_eq!(res.outcome, Outcome::Upgraded);
        assert_eq!(res.running_version, "b3:new");
        // once committed, a late deadline does nothing (it would exec otherwise)
        r.fall_back("late");
    }
}
