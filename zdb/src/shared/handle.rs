//! One namespace as the server holds it: the engine object behind its lock, and the flags and
//! gates connections coordinate on.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::RwLock;

use super::Feed;
use crate::engine::Namespace;

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
}

impl NsHandle {
    /// Compact every closed file pair with dead entries, one at a time, holding the exclusive
    /// lock only while each rewritten pair is swapped in. `None` if one is already running.
    pub fn compact(&self) -> Option<Result<crate::engine::CompactStats, crate::engine::OpenError>> {
        if self.compacting.swap(true, Ordering::SeqCst) {
            return None;
        }
        let result = (|| {
            let mut total = crate::engine::CompactStats::default();
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
        })();
        self.compacting.store(false, Ordering::SeqCst);
        Some(result)
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
        })
    }
}
