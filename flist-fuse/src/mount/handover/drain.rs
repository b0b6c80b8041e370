//! Stopping a mount process's FUSE threads without dropping a request.
//!
//! fuser's reader threads block in read(2) on /dev/fuse and cannot be told to stop; a
//! request one of them has read but not answered when the process dies is lost (the caller
//! hangs, or gets ECONNABORTED on a cloned descriptor). So a process that hands its mount
//! over never kills its threads: once [`Drain::begin`] is called, each thread that answers a
//! request on a parking path ([`Drain::after_reply`], called after the reply is written)
//! parks there for good. A parked thread holds no request: it answered the one it had and
//! reads no more. When every thread is parked the process may exit. A thread blocked in
//! read(2) holds nothing either, but may take a request at any moment, so it is not counted:
//! [`Drain::wait`] wakes such threads by making requests itself (`poke`, a statfs of the
//! mount: never cached by the kernel), each answered by whoever reads first, until every
//! thread has parked. [`Drain::cancel`] lets the parked threads go on serving.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
struct State {
    stopping: bool,
    parked: usize,
    /// Bumped by `cancel`, so a thread parked in an earlier drain leaves it.
    round: u64,
}

/// The parking gate of one mount process's FUSE threads.
#[derive(Debug, Default)]
pub struct Drain {
    state: Mutex<State>,
    cv: Condvar,
}

impl Drain {
    /// A gate that parks nobody until [`Drain::begin`].
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Called by a FUSE thread after it wrote a reply: parks it while a drain is on.
    pub fn after_reply(&self) {
        let mut g = self.lock();
        if !g.stopping {
            return;
        }
        let round = g.round;
        g.parked += 1;
        self.cv.notify_all();
        while g.stopping && g.round == round {
            g = self.cv.wait(g).unwrap_or_else(|p| p.into_inner());
        }
        g.parked -= 1;
    }

    /// Park every thread at its next reply.
    pub fn begin(&self) {
        self.lock().stopping = true;
    }

    /// Threads parked now.
    pub fn parked(&self) -> usize {
        self.lock().parked
    }

    /// Wait until `threads` threads are parked, calling `poke` (on a thread of its own:
    /// it may block until someone reads) to wake readers; false after `limit`.
    pub fn wait(&self, threads: usize, limit: Duration, poke: impl Fn() + Send + 'static) -> bool
    where
        Self: Sync,
    {
        let t0 = Instant::now();
        let (tx, rx) = std::sync::mpsc::sync_channel::<()>(0);
        // The poker stops at the first poke after the wait ended (its channel is gone).
        let _ = std::thread::Builder::new()
            .name("drain-poke".into())
            .spawn(move || {
                loop {
                    poke();
                    if tx
                        .try_send(())
                        .is_err_and(|e| matches!(e, std::sync::mpsc::TrySendError::Disconnected(_)))
                    {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
            });
        let mut g = self.lock();
        loop {
            if g.parked >= threads {
                drop(rx);
                return true;
            }
            let left = limit.saturating_sub(t0.elapsed());
            if left.is_zero() {
                drop(rx);
                return false;
            }
            g = self
                .cv
                .wait_timeout(g, left.min(Duration::from_millis(20)))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// End a drain: parked threads serve again.
    pub fn cancel(&self) {
        let mut g = self.lock();
        g.stopping = false;
        g.round += 1;
        self.cv.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Four "reader" threads take requests from a queue, answer each, then call
    /// `after_reply`; the poke puts requests in. The wait ends with all four parked, each
    /// request answered or still queued; a cancel lets them go.
    #[test]
    fn drain_parks_every_thread_after_a_reply_and_loses_nothing() {
        let d = Arc::new(Drain::new());
        let (tx, rx) = std::sync::mpsc::channel::<u32>();
        let rx = Arc::new(Mutex::new(rx));
        let answered = Arc::new(AtomicUsize::new(0));
        for _ in 0..4 {
            let (d, rx, answered) = (d.clone(), rx.clone(), answered.clone());
            std::thread::spawn(move || {
                loop {
                    let r = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                    if r.is_err() {
                        return;
                    }
                    answered.fetch_add(1, Ordering::SeqCst);
                    d.after_reply();
                }
            });
        }
        for k in 0..100 {
            let _ = tx.send(k);
        }
        d.begin();
        let pokes = Arc::new(AtomicUsize::new(0));
        let (tx2, p2) = (Mutex::new(tx.clone()), pokes.clone());
        assert!(d.wait(4, Duration::from_secs(10), move || {
            let g = tx2.lock().unwrap_or_else(|p| p.into_inner());
            p2.fetch_add(1, Ordering::SeqCst);
            let _ = g.send(0);
        }));
        assert_eq!(d.parked(), 4);
        // Nothing lost: every request was answered or is still queued (for the next server).
        // (the poker makes at most one more poke after the wait ended)
        std::thread::sleep(Duration::from_millis(100));
        let queued = rx.lock().map(|r| r.try_iter().count()).unwrap_or(0);
        assert_eq!(
            answered.load(Ordering::SeqCst) + queued,
            100 + pokes.load(Ordering::SeqCst)
        );
        d.cancel();
        let t0 = Instant::now();
        while d.parked() > 0 && t0.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(d.parked(), 0);
        // Not draining: a reply does not park.
        d.after_reply();
    }

    #[test]
    fn wait_gives_up_after_its_limit() {
        let d = Drain::new();
        d.begin();
        assert!(!d.wait(1, Duration::from_millis(50), || {
            std::thread::sleep(Duration::from_millis(1))
        }));
        d.cancel();
    }
}
