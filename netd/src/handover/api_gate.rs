//! The bus API's listening socket across a take-over. It is served in rounds that a take-over
//! pauses before it holds the engine: nothing accepts then, callers wait in the socket's
//! backlog instead of failing, and each connection already accepted gets its call answered
//! first (`bus::Server::drain_on_stop`). A committed take-over hands the listener to the new
//! netd (the same socket, the same file), which accepts what waited; a failed one resumes
//! serving here.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::Duration;
use tokio::sync::watch;

/// How long an accepted connection may take to send its call once serving pauses.
const GRACE: Duration = Duration::from_millis(500);
/// How long a pause waits for the serving round to end (its drain is bounded by the bus).
const PAUSE_WAIT: Duration = Duration::from_secs(12);

/// The take-over's hold on the API's serving.
pub struct ApiGate {
    paused: watch::Sender<bool>,
    ended: Mutex<mpsc::Receiver<()>>,
    listener: OwnedFd,
}

impl ApiGate {
    /// Stops accepting and waits until the serving round ended, its accepted calls answered
    /// (12 s at most); whether it did.
    pub fn pause(&self) -> bool {
        let Ok(ended) = self.ended.lock() else {
            return false;
        };
        // the end of a round an earlier, timed-out pause asked for
        while ended.try_recv().is_ok() {}
        self.paused.send_replace(true);
        ended.recv_timeout(PAUSE_WAIT).is_ok()
    }

    /// Serves again after a failed take-over.
    pub fn resume(&self) {
        self.paused.send_replace(false);
    }

    /// The listening socket, to hand over.
    pub fn listener(&self) -> BorrowedFd<'_> {
        self.listener.as_fd()
    }
}

/// Serves `make()`'s server on `listener` until `stop` turns true, in rounds that the returned
/// gate pauses; the task ends when `stop` does, and removes the socket file unless it was
/// handed over (paused: a successor serves it now).
pub fn serve(
    listener: UnixListener,
    make: impl Fn() -> bus::Server + Send + 'static,
    stop: watch::Receiver<bool>,
) -> std::io::Result<(ApiGate, tokio::task::JoinHandle<()>)> {
    listener.set_nonblocking(true)?;
    let gate_fd = listener.as_fd().try_clone_to_owned()?;
    let (paused, paused_rx) = watch::channel(false);
    let (ended_tx, ended_rx) = mpsc::channel();
    let path = listener
        .local_addr()
        .ok()
        .and_then(|a| a.as_pathname().map(|p| p.to_path_buf()));
    let task = tokio::spawn(async move {
        let gone = |paused: &watch::Receiver<bool>| {
            if let Some(p) = path.as_ref().filter(|_| !*paused.borrow()) {
                let _ = std::fs::remove_file(p);
            }
        };
        loop {
            let round = match listener
                .try_clone()
                .and_then(tokio::net::UnixListener::from_std)
            {
                Ok(l) => l,
                Err(e) => {
                    tracing::error!(error = %e, "bus socket: cannot serve it");
                    return;
                }
            };
            let (mut p, mut s) = (paused_rx.clone(), stop.clone());
            let mut server = make();
            server.keep_socket().drain_on_stop(GRACE);
            server
                .serve(round, async move {
                    tokio::select! {
                        _ = s.wait_for(|v| *v) => {}
                        _ = p.wait_for(|v| *v) => {}
                    }
                })
                .await;
            if *stop.borrow() {
                return gone(&paused_rx);
            }
            let _ = ended_tx.send(());
            let (mut p, mut s) = (paused_rx.clone(), stop.clone());
            tokio::select! {
                _ = p.wait_for(|v| !*v) => tracing::info!("take-over failed: serving the API again"),
                _ = s.wait_for(|v| *v) => return gone(&paused_rx),
            }
        }
    });
    let gate = ApiGate {
        paused,
        ended: Mutex::new(ended_rx),
        listener: gate_fd,
    };
    Ok((gate, task))
}
