//! The hand-over gate: how a live hand-over (`crate::handover`) stops accepting, brings every
//! connection to a request boundary and takes it, or lets everything go on as before.
//!
//! Freezing is a `watch` value rather than a lock on the request path: a connection looks at
//! it only when it is about to wait for input (its replies flushed, no whole request left in
//! its buffer), so a connection in a pipeline never pays for it. A frozen connection hands a
//! copy of its socket and its state to the collector and waits for the verdict: resume (the
//! hand-over failed: it goes on with its own buffer, as if nothing happened) or gone (the new
//! process serves it now: it returns without closing the connection, since the new process
//! holds the same socket).

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use parking_lot::Mutex;
use tokio::sync::{Notify, mpsc, oneshot, watch};

/// Which listener a connection came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnKind {
    /// TCP.
    Tcp,
    /// Unix stream socket.
    Unix,
}

/// What a connection at a request boundary carries to another process: everything its
/// `cmd::Session` holds that is not derived from the server, and the bytes of a request it has
/// received but not yet parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnState {
    /// Client id (kept: the client sees the same id).
    pub id: u64,
    /// Listener kind.
    pub kind: ConnKind,
    /// Selected namespace's name.
    pub ns: Vec<u8>,
    /// May write in it.
    pub writable: bool,
    /// Logged in as admin.
    pub admin: bool,
    /// MASTER mode.
    pub master: bool,
    /// MIRROR mode (it subscribes again on the other side; copies in between are lost).
    pub mirror: bool,
    /// Pending AUTH SECURE challenge.
    pub nonce: Option<String>,
    /// Received bytes not yet parsed (at most one partial request).
    pub input: Vec<u8>,
}

/// A connection waiting at a request boundary for the hand-over's verdict.
pub struct Parked {
    /// A duplicate of its socket.
    pub fd: OwnedFd,
    /// Its state.
    pub state: ConnState,
    /// Where the verdict goes.
    pub verdict: oneshot::Sender<Verdict>,
}

/// What a parked connection does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Serve on: the hand-over did not happen.
    Resume,
    /// Another process serves it: leave without closing the connection.
    Gone,
}

/// Hand-over state shared by listeners, connections and the hand-over coordinator.
pub struct Gate {
    frozen: watch::Sender<bool>,
    live: AtomicUsize,
    collector: Mutex<Option<mpsc::UnboundedSender<Parked>>>,
    handed_over: AtomicBool,
    done: Notify,
}

impl Default for Gate {
    fn default() -> Self {
        Gate {
            frozen: watch::Sender::new(false),
            live: AtomicUsize::new(0),
            collector: Mutex::new(None),
            handed_over: AtomicBool::new(false),
            done: Notify::new(),
        }
    }
}

impl Gate {
    /// Watch the frozen flag (listeners and connections).
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.frozen.subscribe()
    }

    /// Whether a hand-over holds the server still (background work waits).
    pub fn is_frozen(&self) -> bool {
        *self.frozen.borrow()
    }

    /// Connections counted now (accepted, not yet gone).
    pub fn live(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }

    /// Count a connection from its accept on (before its task runs, so a freeze right after
    /// the accept still waits for it).
    pub fn connection(self: &std::sync::Arc<Self>) -> Live {
        self.live.fetch_add(1, Ordering::SeqCst);
        Live(self.clone())
    }

    /// Stop accepting and ask every connection to park; parked connections arrive on the
    /// returned channel. (The channel is unbounded: at most one message per connection.)
    pub fn freeze(&self) -> mpsc::UnboundedReceiver<Parked> {
        let (tx, rx) = mpsc::unbounded_channel();
        *self.collector.lock() = Some(tx);
        self.frozen.send_replace(true);
        rx
    }

    /// Frozen with nobody collecting: a new process holds its listeners still until the old
    /// one confirms the hand-over.
    pub fn hold(&self) {
        self.frozen.send_replace(true);
    }

    /// Accept and serve again (the hand-over failed, or a new process got its go).
    pub fn thaw(&self) {
        *self.collector.lock() = None;
        self.frozen.send_replace(false);
    }

    /// Give a connection to the collector; `None` if nobody collects (the freeze is over).
    pub fn park(&self, fd: OwnedFd, state: ConnState) -> Option<oneshot::Receiver<Verdict>> {
        let (verdict, rx) = oneshot::channel();
        // Sent under the lock: once `thaw` took the collector, nothing parks any more, so
        // the coordinator can answer every connection it holds.
        let collector = self.collector.lock();
        collector
            .as_ref()?
            .send(Parked { fd, state, verdict })
            .ok()?;
        Some(rx)
    }

    /// The new process took over: the server loop ends without touching the namespaces.
    pub fn set_handed_over(&self) {
        self.handed_over.store(true, Ordering::SeqCst);
        self.done.notify_waiters();
    }

    /// Whether the server was handed over.
    pub fn is_handed_over(&self) -> bool {
        self.handed_over.load(Ordering::SeqCst)
    }

    /// Completes once the server was handed over.
    pub async fn handed_over(&self) {
        loop {
            let notified = self.done.notified();
            if self.is_handed_over() {
                return;
            }
            notified.await;
        }
    }
}

/// A counted connection (see [`Gate::connection`]).
pub struct Live(std::sync::Arc<Gate>);

impl Drop for Live {
    fn drop(&mut self) {
        self.0.live.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Wait while `rx` says frozen (a listener does not accept meanwhile).
pub async fn while_frozen(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|frozen| !*frozen).await;
}
