//! The old process's side of a hand-over.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::channel::{self, Channel, HandoverError};
use super::wire::{FdKind, Frame, INPUT_CHUNK, VERSION};
use crate::shared::{Parked, Shared, Verdict};

/// How long every connection may take to reach a request boundary (a client that does not
/// read its replies never does: the hand-over fails and the old process serves on).
const PARK_TIMEOUT: Duration = Duration::from_secs(10);
/// Per step of the exchange (one frame).
const STEP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the new process may take to load and run its hooks before it says Ready.
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// Descriptors handed to a new process besides the connections: duplicates of the listeners
/// and of the folder locks.
#[derive(Default)]
pub struct Handed {
    fds: Vec<(FdKind, OwnedFd)>,
}

impl Handed {
    /// Hand a duplicate of `fd` over as `kind`.
    pub fn add(&mut self, kind: FdKind, fd: impl AsFd) -> std::io::Result<()> {
        self.fds.push((kind, fd.as_fd().try_clone_to_owned()?));
        Ok(())
    }
}

/// Serve the hand-over socket on a thread of its own (blocking calls under timeouts; the
/// runtime is entered only to freeze the connections). Once a hand-over succeeds, the
/// server's loop ends ([`crate::shared::Gate::handed_over`]).
pub fn spawn(
    listener: OwnedFd,
    shared: Arc<Shared>,
    handed: Handed,
    rt: tokio::runtime::Handle,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("zdb-handover".into())
        .spawn(move || {
            loop {
                let chan = match channel::accept(listener.as_fd()) {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "hand-over accept failed");
                        std::thread::sleep(Duration::from_secs(1));
                        continue;
                    }
                };
                let pid = chan.peer().map(|(pid, _)| pid).unwrap_or(0);
                tracing::info!(pid, "hand-over requested");
                let t = Instant::now();
                match give(&chan, &shared, &handed, &rt) {
                    Ok(conns) => {
                        tracing::info!(
                            pid,
                            conns,
                            ms = t.elapsed().as_millis() as u64,
                            "handed over: exiting"
                        );
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(pid, error = %e, "hand-over failed: serving on");
                        chan.refuse(&e.to_string());
                    }
                }
            }
        })?;
    Ok(())
}

/// One hand-over: Ok(connections handed) once the new process got its Commit.
fn give(
    chan: &Channel,
    shared: &Arc<Shared>,
    handed: &Handed,
    rt: &tokio::runtime::Handle,
) -> Result<usize, HandoverError> {
    chan.set_timeout(STEP_TIMEOUT)?;
    match chan.recv()? {
        (Frame::Hello(VERSION), _) => {}
        (Frame::Hello(v), _) => {
            return Err(HandoverError::Protocol(format!(
                "new process speaks version {v}, this one {VERSION}"
            )));
        }
        _ => return Err(HandoverError::Protocol("expected hello".into())),
    }
    if !shared.loading.is_ready() {
        return Err(HandoverError::Protocol("still loading".into()));
    }
    if shared.is_follower() {
        return Err(HandoverError::Protocol(
            "a replication follower is not handed over".into(),
        ));
    }
    let mut rx = shared.gate.freeze();
    let collected = rt.block_on(collect(shared, &mut rx));
    let mut parked = match collected {
        Ok(p) => p,
        Err((e, p)) => {
            resume(shared, p, rx);
            return Err(e);
        }
    };
    let sent = exchange(chan, shared, handed, &parked);
    if let Err(e) = sent {
        resume(shared, parked, rx);
        return Err(e);
    }
    let n = parked.len();
    for p in parked.drain(..) {
        let _ = p.verdict.send(Verdict::Gone);
    }
    // Each connection task leaves its socket open (forgets its write half) before it ends;
    // one dropped with the runtime instead would shut its socket down under the client.
    let deadline = Instant::now() + STEP_TIMEOUT;
    while shared.gate.live() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    shared.gate.set_handed_over();
    Ok(n)
}

/// Everything after the freeze, up to Commit.
fn exchange(
    chan: &Channel,
    shared: &Shared,
    handed: &Handed,
    parked: &[Parked],
) -> Result<(), HandoverError> {
    wait_compactions(shared)?;
    shared.sync_all();
    send_all(chan, shared, handed, parked)?;
    chan.set_timeout(READY_TIMEOUT)?;
    match chan.recv()? {
        (Frame::Ready, _) => {}
        _ => return Err(HandoverError::Protocol("expected ready".into())),
    }
    chan.set_timeout(STEP_TIMEOUT)?;
    chan.send(&Frame::Commit, &[])
}

/// Wait until every counted connection is parked.
async fn collect(
    shared: &Shared,
    rx: &mut mpsc::UnboundedReceiver<Parked>,
) -> Result<Vec<Parked>, (HandoverError, Vec<Parked>)> {
    let deadline = tokio::time::Instant::now() + PARK_TIMEOUT;
    let mut parked = Vec::new();
    // A connection that leaves meanwhile lowers the count without parking: look again often.
    while parked.len() < shared.gate.live() {
        tokio::select! {
            p = rx.recv() => parked.extend(p),
            () = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
        if tokio::time::Instant::now() >= deadline {
            let msg = format!(
                "{} of {} connections reached a request boundary in time",
                parked.len(),
                shared.gate.live()
            );
            return Err((HandoverError::Protocol(msg), parked));
        }
    }
    Ok(parked)
}

/// The hand-over failed: every connection goes on, accepting resumes.
fn resume(shared: &Shared, parked: Vec<Parked>, mut rx: mpsc::UnboundedReceiver<Parked>) {
    shared.gate.thaw();
    // Nothing can park any more once thawed: collect the late ones too.
    let late = std::iter::from_fn(|| rx.try_recv().ok());
    for p in parked.into_iter().chain(late) {
        let _ = p.verdict.send(Verdict::Resume);
    }
}

/// A compaction rewrites files: it must be over before the new process opens them.
fn wait_compactions(shared: &Shared) -> Result<(), HandoverError> {
    let deadline = Instant::now() + PARK_TIMEOUT;
    loop {
        let busy = shared.names().into_iter().any(|n| {
            shared
                .get(&n)
                .is_some_and(|h| h.compacting.load(std::sync::atomic::Ordering::SeqCst))
        });
        if !busy {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(HandoverError::Protocol("a compaction is running".into()));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn send_all(
    chan: &Channel,
    shared: &Shared,
    handed: &Handed,
    parked: &[Parked],
) -> Result<(), HandoverError> {
    for (kind, fd) in &handed.fds {
        chan.send(&Frame::Fd(*kind), &[fd.as_fd()])?;
    }
    for p in parked {
        let input = &p.state.input;
        let input_len = u32::try_from(input.len())
            .map_err(|_| HandoverError::Protocol("connection input too long".into()))?;
        chan.send(
            &Frame::Conn {
                state: p.state.clone(),
                input_len,
            },
            &[p.fd.as_fd()],
        )?;
        for chunk in input.chunks(INPUT_CHUNK) {
            chan.send(&Frame::Input(chunk.to_vec()), &[])?;
        }
    }
    let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    chan.send(
        &Frame::End {
            next_client: shared.next_client_id(),
            fds: count(handed.fds.len()),
            conns: count(parked.len()),
        },
        &[],
    )
}
