//! The server: shared state, listeners, and the per-connection loop.
//!
//! `run` takes bound listeners and a shutdown future, so tests can bind port 0 and stop the
//! server when they like; `main.rs` only parses flags and calls it.

mod conn;
pub mod metrics_http;
pub mod replica;

pub use crate::shared::Shared;
use crate::shared::{ConnKind, ConnState, while_frozen};

use std::future::Future;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use tokio::net::{TcpListener, UnixListener};

/// Bound sockets to serve.
#[derive(Default)]
pub struct Listeners {
    /// TCP listener.
    pub tcp: Option<TcpListener>,
    /// Unix socket listener.
    pub unix: Option<UnixListener>,
}

/// How [`run`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Shutdown or STOP: the namespaces were made durable.
    Stopped,
    /// Handed over to a new process (`crate::handover`), or a take-over stopped before it
    /// was confirmed: the namespaces are the other process's; this one touches nothing.
    HandedOver,
}

/// Serve clients until `shutdown` completes or a client runs STOP; then make every namespace
/// durable. Ends at once, touching nothing, once handed over to a new process.
pub async fn run(
    listeners: Listeners,
    shared: Arc<Shared>,
    shutdown: impl Future<Output = ()>,
) -> Ended {
    let accept_tcp = {
        let shared = shared.clone();
        async move {
            let Some(l) = listeners.tcp else {
                return std::future::pending().await;
            };
            let mut gate = shared.gate.subscribe();
            loop {
                while_frozen(&mut gate).await;
                let accepted = tokio::select! {
                    biased;
                    _ = gate.changed() => continue,
                    a = l.accept() => a,
                };
                match accepted {
                    Ok((s, _)) => {
                        let _ = s.set_nodelay(true);
                        let _ = socket2_keepalive(&s);
                        let live = shared.gate.connection();
                        tokio::spawn(conn::serve(s, shared.clone(), live));
                    }
                    Err(e) => accept_error(e).await,
                }
            }
        }
    };
    let accept_unix = {
        let shared = shared.clone();
        async move {
            let Some(l) = listeners.unix else {
                return std::future::pending().await;
            };
            let mut gate = shared.gate.subscribe();
            loop {
                while_frozen(&mut gate).await;
                let accepted = tokio::select! {
                    biased;
                    _ = gate.changed() => continue,
                    a = l.accept() => a,
                };
                match accepted {
                    Ok((s, _)) => {
                        let live = shared.gate.connection();
                        tokio::spawn(conn::serve(s, shared.clone(), live));
                    }
                    Err(e) => accept_error(e).await,
                }
            }
        }
    };
    let compactor = background_compaction(shared.clone());
    let snapshots = idle_snapshots(shared.clone());
    tokio::select! {
        () = shared.gate.handed_over() => return Ended::HandedOver,
        () = compactor => {}
        () = snapshots => {}
        () = accept_tcp => {}
        () = accept_unix => {}
        () = shutdown => {}
        () = shared.stopped() => {}
    }
    // A stop while a hand-over runs waits for its outcome: once committed, the files are
    // the new process's; once failed, this one stops as usual.
    if shared.gate.is_frozen() && shared.loading.is_ready() {
        let mut gate = shared.gate.subscribe();
        tokio::select! {
            () = shared.gate.handed_over() => {}
            () = while_frozen(&mut gate) => {}
        }
    }
    // Handed over, or a take-over stopped before the old process confirmed it: the files
    // belong to the other process.
    if shared.gate.is_handed_over() || (shared.gate.is_frozen() && !shared.loading.is_ready()) {
        return Ended::HandedOver;
    }
    shared.sync_all();
    Ended::Stopped
}

/// Serve a connection handed over by another process (`crate::handover`), where it was.
pub fn adopt(shared: &Arc<Shared>, fd: OwnedFd, state: ConnState) -> std::io::Result<()> {
    let live = shared.gate.connection();
    match state.kind {
        ConnKind::Tcp => {
            let s = std::net::TcpStream::from(fd);
            s.set_nonblocking(true)?;
            let s = tokio::net::TcpStream::from_std(s)?;
            tokio::spawn(conn::resume(s, shared.clone(), live, state));
        }
        ConnKind::Unix => {
            let s = std::os::unix::net::UnixStream::from(fd);
            s.set_nonblocking(true)?;
            let s = tokio::net::UnixStream::from_std(s)?;
            tokio::spawn(conn::resume(s, shared.clone(), live, state));
        }
    }
    Ok(())
}

/// Compact namespaces whose dead bytes passed `--compact-dead-bytes`.
async fn background_compaction(shared: Arc<Shared>) {
    let threshold = shared.cfg.compact_dead_bytes;
    if threshold == 0 {
        return std::future::pending().await;
    }
    shared.loading.wait_ready().await;
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(2));
    loop {
        tick.tick().await;
        if shared.gate.is_frozen() {
            continue;
        }
        for name in shared.names() {
            let Some(handle) = shared.get(&name) else {
                continue;
            };
            let (due, active_min) = {
                let ns = handle.ns.read();
                let dead = ns.dead_bytes();
                // The active pair is closed for it only when it holds at least half of what
                // is reclaimable: each such rotation then stands for threshold/2 or more of
                // dead bytes written into it (never a new pair every round).
                let active_min = (dead / 2).max(1);
                let due = dead >= threshold
                    && ns.poisoned().is_none()
                    && (!ns.compactable_files().is_empty() || ns.active_dead_bytes() >= active_min);
                (due, active_min)
            };
            if !due {
                continue;
            }
            let ns_name = String::from_utf8_lossy(&name).into_owned();
            match handle.compact_now(shared.hooks.clone(), active_min).await {
                Some(Ok(st)) => {
                    tracing::info!(namespace = %ns_name, files = st.files, reclaimed = st.reclaimed, "compacted")
                }
                Some(Err(e)) => {
                    tracing::error!(namespace = %ns_name, error = %e, "background compaction failed")
                }
                None => {}
            }
        }
    }
}

/// Save the key map snapshot of user-mode namespaces that changed and then had no write for
/// `--snapshot-idle`: a power cut while idle then restarts from the snapshot, not a replay.
async fn idle_snapshots(shared: Arc<Shared>) {
    let idle = shared.cfg.snapshot_idle;
    if idle.is_zero() {
        return std::future::pending().await;
    }
    shared.loading.wait_ready().await;
    let mut tick = tokio::time::interval((idle / 4).clamp(
        std::time::Duration::from_millis(100),
        std::time::Duration::from_secs(15),
    ));
    // Per namespace: its change marker and since when it has not moved.
    let mut quiet: std::collections::HashMap<Vec<u8>, (u64, std::time::Instant)> =
        Default::default();
    loop {
        tick.tick().await;
        let names = shared.names();
        quiet.retain(|k, _| names.contains(k));
        for name in names {
            let Some(handle) = shared.get(&name) else {
                continue;
            };
            let (marker, wanted) = {
                let ns = handle.ns.read();
                (ns.change_marker(), ns.snapshot_wanted())
            };
            let since = match quiet.get(&name) {
                Some(&(m, t)) if m == marker => t,
                _ => {
                    quiet.insert(name.clone(), (marker, std::time::Instant::now()));
                    continue;
                }
            };
            if !wanted || since.elapsed() < idle {
                continue;
            }
            if shared.gate.is_frozen() {
                continue;
            }
            // Whatever the outcome, the next attempt waits for another quiet period.
            quiet.insert(name.clone(), (marker, std::time::Instant::now()));
            let _ = tokio::task::spawn_blocking(move || handle.sync_and_snapshot("idle")).await;
        }
    }
}

/// Out of file descriptors and similar: log, back off briefly, keep accepting.
async fn accept_error(e: std::io::Error) {
    tracing::warn!(error = %e, "accept failed");
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
}

fn socket2_keepalive(s: &tokio::net::TcpStream) -> std::io::Result<()> {
    rustix::net::sockopt::set_socket_keepalive(s, true).map_err(std::io::Error::from)
}
