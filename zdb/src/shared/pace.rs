//! Whether a namespace's disk was slow lately. Writing buffered appends to the page cache
//! takes microseconds; a flush that took tens of milliseconds waited for the disk (dirty-page
//! throttling on a busy HDD, block allocation, the journal). After one, the namespace's
//! flushes run on tokio's blocking pool for a while instead of on an async worker, where the
//! next such wait would stall every connection of that worker. The first slow flush still
//! runs where it started: nothing tells it apart beforehand.
//!
//! Only long stalls count: on a machine short of CPU, a flush can also take milliseconds
//! because its thread was preempted, and moving every flush to another thread costs a
//! thread hand-over per batch (a pipelined SET's CPU nearly doubles), so the threshold is far
//! above a preemption's usual length, and slowness is measured with the coarse clock (a few
//! nanoseconds to read, a few milliseconds of resolution).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A flush that took this long waited for the disk.
const SLOW: Duration = Duration::from_millis(50);
/// How long a namespace stays slow after its last slow flush.
const STAY_SLOW: Duration = Duration::from_secs(5);

/// The coarse monotonic clock, in milliseconds.
pub fn coarse_ms() -> u64 {
    use rustix::time::{ClockId, clock_gettime};
    let t = clock_gettime(ClockId::MonotonicCoarse);
    let ms = i128::from(t.tv_sec) * 1000 + i128::from(t.tv_nsec) / 1_000_000;
    u64::try_from(ms).unwrap_or(0)
}

/// The slow-disk flag of one namespace.
#[derive(Default)]
pub struct IoPace {
    /// `coarse_ms()` until which flushes run on the blocking pool (0: never slow).
    slow_until: AtomicU64,
}

impl IoPace {
    /// Whether flushes should run on the blocking pool now.
    pub fn is_slow(&self) -> bool {
        let until = self.slow_until.load(Ordering::Relaxed);
        until != 0 && coarse_ms() < until
    }

    /// A flush that started at `started` (`coarse_ms()`) is over.
    pub fn observe(&self, started: u64) {
        let now = coarse_ms();
        if now.saturating_sub(started) >= SLOW.as_millis() as u64 {
            let until = now.saturating_add(STAY_SLOW.as_millis() as u64);
            self.slow_until.store(until.max(1), Ordering::Relaxed);
        }
    }
}
