//! Counters: the server-wide ones INFO reports, and the per-connection tally that feeds them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::Shared;

/// Server-wide counters reported by INFO.
#[derive(Default)]
pub struct Stats {
    /// Connections accepted since boot.
    pub clients_lifetime: AtomicU64,
    /// Clients waiting in WAIT now.
    pub blocked_clients: AtomicU64,
    /// Commands executed.
    pub commands_executed: AtomicU64,
    /// Commands that failed.
    pub commands_failed: AtomicU64,
    /// Commands refused for lack of rights.
    pub commands_unauthorized: AtomicU64,
    /// Bytes received.
    pub network_rx: AtomicU64,
    /// Bytes sent.
    pub network_tx: AtomicU64,
    /// Bytes read from data files.
    pub data_read_bytes: AtomicU64,
    /// Bytes written to data files.
    pub data_write_bytes: AtomicU64,
}

/// Counts a connection keeps on its own and hands over to [`Stats`] and the metrics once per
/// batch of requests, and before INFO. A shared counter costs a locked add per request, which
/// waits for the CPU's store buffer to drain; three per request were measurable in a pipelined
/// SET's profile. Atomics only so that `&Session` may cross an await: one task owns a tally,
/// so it adds with a plain load and store. Dropping it settles it.
pub struct Tally {
    shared: Arc<Shared>,
    commands: AtomicU64,
    failed: AtomicU64,
    read_bytes: AtomicU64,
    write_bytes: AtomicU64,
    /// The command running now failed (for its per-command error metric): set by
    /// [`Tally::failed`], cleared by [`Tally::take_failure`]. Per connection, so another
    /// client's failure is never counted against this one's command.
    failure: AtomicBool,
}

impl Tally {
    /// An empty tally for `shared`'s counters.
    pub fn new(shared: Arc<Shared>) -> Self {
        Tally {
            shared,
            commands: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            read_bytes: AtomicU64::new(0),
            write_bytes: AtomicU64::new(0),
            failure: AtomicBool::new(false),
        }
    }

    fn add(counter: &AtomicU64, n: u64) {
        counter.store(counter.load(Ordering::Relaxed) + n, Ordering::Relaxed);
    }

    fn take(counter: &AtomicU64) -> u64 {
        let n = counter.load(Ordering::Relaxed);
        counter.store(0, Ordering::Relaxed);
        n
    }

    /// A command ran.
    pub fn command(&self) {
        Self::add(&self.commands, 1);
    }

    /// A command (or request) failed.
    pub fn failed(&self) {
        Self::add(&self.failed, 1);
        self.failure.store(true, Ordering::Relaxed);
    }

    /// Whether a command failed since the last call (and forget it). A plain load, and a
    /// store only after a failure: no locked instruction on the request path.
    pub fn take_failure(&self) -> bool {
        let failed = self.failure.load(Ordering::Relaxed);
        if failed {
            self.failure.store(false, Ordering::Relaxed);
        }
        failed
    }

    /// A value of `n` bytes was read.
    pub fn read(&self, n: u64) {
        Self::add(&self.read_bytes, n);
    }

    /// A value of `n` bytes was written.
    pub fn wrote(&self, n: u64) {
        Self::add(&self.write_bytes, n);
    }

    /// Add everything counted so far to the shared counters.
    pub fn settle(&self) {
        let sh = &self.shared;
        let commands = Self::take(&self.commands);
        if commands > 0 {
            sh.stats
                .commands_executed
                .fetch_add(commands, Ordering::Relaxed);
        }
        let failed = Self::take(&self.failed);
        if failed > 0 {
            sh.stats
                .commands_failed
                .fetch_add(failed, Ordering::Relaxed);
        }
        let read = Self::take(&self.read_bytes);
        if read > 0 {
            sh.stats.data_read_bytes.fetch_add(read, Ordering::Relaxed);
            sh.metrics.read_bytes.inc_by(read);
        }
        let written = Self::take(&self.write_bytes);
        if written > 0 {
            sh.stats
                .data_write_bytes
                .fetch_add(written, Ordering::Relaxed);
            sh.metrics.written_bytes.inc_by(written);
        }
    }
}

impl Drop for Tally {
    fn drop(&mut self) {
        self.settle();
    }
}
