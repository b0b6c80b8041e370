//! One namespace as the server holds it: the engine object behind its lock, and the flags and
//! gates connections coordinate on.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::RwLock;

use super::Feed;
use crate::engine::{CompactStats, Namespace, OpenError, Rotation};
use crate::hooks::Hooks;

/// One namespace as the server holds it.
pub struct NsHandle {
    /// The engine object; reads share the lock, writes take it exclusively.
    pub ns: RwLock<Namespace>,
    /// Set by NSDEL: clients still attached get an error and are disconnected.
    pub removed: AtomicBool,
    /// Commands executed in this namespace (for WAIT): (client id, command name).
    pub events: Feed<(u64, &'static str)>,
    /// A compaction is running.
    pub compacting: AtomicBool,
    /// Writers hold it shared; a blocking `jump-index` hook holds it exclusively, so only
    /// writers of this namespace wait for the hook (0-db stops the whole server).
    pub hook_gate: tokio::sync::RwLock<()>,
    /// Whether its disk was slow lately (its writes then run on blocking threads).
    pub io: super::IoPace,
}

impl NsHandle {
    /// COMPACT, or background compaction: close the active pair first if it holds at least
    /// `active_min` dead bytes (its rotation runs the hooks, as any rotation does), then rewrite
    /// every closed pair with dead entries, one at a time, on blocking threads, holding the
    /// exclusive lock only while each rewritten pair is swapped in. `None` if a compaction of
    /// this namespace already runs. The work runs in a task of its own: a caller that goes
    /// away does not leave half a compaction (or two at once).
    pub async fn compact_now(
        self: &Arc<Self>,
        hooks: Hooks,
        active_min: u64,
    ) -> Option<Result<CompactStats, OpenError>> {
        if self.compacting.swap(true, Ordering::SeqCst) {
            return None;
        }
        let this = self.clone();
        let task = tokio::spawn(async move {
            let result = this.rotate_and_compact(&hooks, active_min).await;
            this.compacting.store(false, Ordering::SeqCst);
            result
        });
        Some(
            task.await
                .unwrap_or_else(|e| Err(join_failed("compaction", e))),
        )
    }

    async fn rotate_and_compact(
        self: &Arc<Self>,
        hooks: &Hooks,
        active_min: u64,
    ) -> Result<CompactStats, OpenError> {
        let this = self.clone();
        // The rotation fsyncs the active pair: not on an async worker.
        let rotated =
            tokio::task::spawn_blocking(move || this.ns.write().rotate_for_compaction(active_min))
                .await
                .map_err(|e| join_failed("closing the active pair", e))?;
        match rotated {
            Ok(Some(rot)) => self.run_rotation_hooks(hooks, rot).await,
            Ok(None) => {}
            Err(source) => {
                return Err(OpenError::Refused {
                    op: "closing the active pair before compaction",
                    source,
                });
            }
        }
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.compact_closed_pairs())
            .await
            .unwrap_or_else(|e| Err(join_failed("compaction", e)))
    }

    fn compact_closed_pairs(&self) -> Result<CompactStats, OpenError> {
        let mut total = CompactStats::default();
        let files = self.ns.read().compactable_files();
        for file in files {
            let plan = self.ns.read().compact_plan(file);
            let Some(plan) = plan else { continue };
            let built = plan.build()?;
            let stats = self.ns.write().compact_commit(built)?;
            total.files += stats.files;
            total.reclaimed += stats.reclaimed;
        }
        Ok(total)
    }

    /// After a rotation (a full data file, NSJUMP, COMPACT): the blocking `jump-index` hook,
    /// while this namespace's writers wait (exit 0 resets the dirty list), then `jump-data`
    /// in the background.
    pub async fn run_rotation_hooks(&self, hooks: &Hooks, rot: Rotation) {
        if !hooks.enabled() {
            return;
        }
        let dirty = rot
            .dirty
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(" ");
        let writers_wait = self.hook_gate.write().await;
        let args = vec![
            rot.old_index.display().to_string(),
            rot.new_index.display().to_string(),
            dirty,
        ];
        if hooks.run_blocking("jump-index", &args).await == Some(0) {
            self.ns.write().reset_dirty();
        }
        drop(writers_wait);
        hooks.fire(
            "jump-data",
            vec![
                rot.old_data.display().to_string(),
                rot.new_data.display().to_string(),
            ],
        );
    }

    /// Run `f` (a write that may reach the disk) under the exclusive lock, and note how long
    /// it took (without the wait for the lock) in [`NsHandle::io`].
    pub fn with_timed_io<R>(&self, f: impl FnOnce(&mut Namespace) -> R) -> R {
        let mut ns = self.ns.write();
        let started = super::pace::coarse_ms();
        let result = f(&mut ns);
        self.io.observe(started);
        result
    }

    /// Verify every entry (NSCHECK) a step at a time, taking the shared lock for each step
    /// only, so writers get in between. Run it on a blocking thread: it reads every file.
    pub fn check(&self) -> crate::engine::CheckReport {
        /// Entries verified under one hold of the lock (a few ms of reads).
        const STEP: usize = 1024;
        /// Restarts (files rewritten under the check) before one step takes the whole walk.
        const MAX_RESTARTS: u32 = 3;
        let mut cursor = crate::engine::CheckCursor::default();
        let mut report = crate::engine::CheckReport::default();
        loop {
            let budget = if cursor.restarts >= MAX_RESTARTS {
                usize::MAX
            } else {
                STEP
            };
            if self.ns.read().check_step(&mut cursor, &mut report, budget) {
                return report;
            }
        }
    }

    /// fsync the namespace, then save its key map snapshot if one is wanted (`when` names the
    /// occasion in the log). Readers wait only for the fsync; writers until the map is out.
    pub fn sync_and_snapshot(&self, when: &str) {
        let mut ns = self.ns.write();
        let name = String::from_utf8_lossy(ns.name()).into_owned();
        if let Err(e) = ns.sync_now() {
            tracing::error!(namespace = %name, error = %e, "{when}: sync failed");
            return;
        }
        let ns = parking_lot::RwLockWriteGuard::downgrade(ns);
        let t = std::time::Instant::now();
        match ns.save_snapshot() {
            Ok(true) => tracing::info!(
                namespace = %name,
                keys = ns.entries(),
                ms = t.elapsed().as_millis() as u64,
                "{when}: key map snapshot saved"
            ),
            Ok(false) => {}
            Err(e) => tracing::warn!(
                namespace = %name,
                error = %e,
                "{when}: key map snapshot not saved (the next start replays the index)"
            ),
        }
    }

    pub(super) fn new(ns: Namespace) -> Arc<Self> {
        Arc::new(Self {
            ns: RwLock::new(ns),
            removed: AtomicBool::new(false),
            events: Feed::new(64),
            compacting: AtomicBool::new(false),
            hook_gate: tokio::sync::RwLock::new(()),
            io: super::IoPace::default(),
        })
    }
}

/// A blocking task that failed to finish (it panicked), as an engine error.
fn join_failed(op: &'static str, e: tokio::task::JoinError) -> OpenError {
    OpenError::Io {
        op,
        path: std::path::PathBuf::new(),
        source: std::io::Error::other(e.to_string()),
    }
}
