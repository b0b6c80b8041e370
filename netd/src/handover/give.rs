//! The running netd's side: serve the take-over socket; on a Hello, stop accepting API calls
//! and answer those accepted, pause every tunnel, send each one's UDP socket, wait for Ready,
//! send the API's listener, answer Commit and let the daemon exit. Any failure before Commit
//! starts the tunnels' threads and the API's serving again.

use super::api_gate::ApiGate;
use super::channel::{self, Channel, HandoverError};
use super::wire::{Frame, VERSION};
use super::{READY_TIMEOUT, STEP_TIMEOUT};
use crate::api::Shared;
use crate::host::Host;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

/// Serves the take-over socket `listener` on a thread of its own; `done` fires once a new
/// netd took the tunnels (and, through `api`, the bus socket) over: this one must then exit
/// without touching anything.
pub fn serve<H: Host>(
    listener: OwnedFd,
    shared: Shared<H>,
    api: ApiGate,
    done: tokio::sync::oneshot::Sender<()>,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("netd-handover".into())
        .spawn(move || {
            loop {
                let chan = match channel::accept(listener.as_fd()) {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "take-over socket");
                        std::thread::sleep(Duration::from_millis(100));
                        continue;
                    }
                };
                match give(&chan, &shared, &api) {
                    Ok(n) => {
                        tracing::info!(networks = n, "tunnels handed over: exiting");
                        let _ = done.send(());
                        return;
                    }
                    Err(e) => tracing::warn!(error = %e, "take-over failed: carrying on"),
                }
            }
        })?;
    Ok(())
}

/// One take-over; returns how many tunnels went.
fn give<H: Host>(
    chan: &Channel,
    shared: &Shared<H>,
    api: &ApiGate,
) -> Result<usize, HandoverError> {
    chan.set_timeout(STEP_TIMEOUT)?;
    let refuse = |why: String| {
        chan.refuse(&why);
        Err(HandoverError::Protocol(why))
    };
    match chan.recv()? {
        (Frame::Hello(VERSION), _) => {}
        (Frame::Hello(v), _) => {
            return refuse(format!("version {v}; this netd speaks {VERSION}"));
        }
        (f, _) => return refuse(format!("expected hello, got {f:?}")),
    }
    // New callers wait in the API's backlog from here (until the new netd accepts them, or
    // this one again), and those accepted are answered first.
    if !api.pause() {
        api.resume();
        return refuse("API calls still being answered after 12 s".into());
    }
    // Held to the end: nothing changes a network meanwhile.
    let Ok(mut engine) = shared.lock() else {
        api.resume();
        return refuse("engine lock poisoned".into());
    };
    let sockets = match engine.pause_for_handover() {
        Ok(s) => s,
        Err(e) => {
            api.resume();
            return refuse(e.to_string());
        }
    };
    tracing::info!(networks = sockets.len(), "tunnels paused for a take-over");
    match send_all(chan, &sockets, api) {
        Ok(()) => {
            engine.set_handed_over();
            Ok(sockets.len())
        }
        Err(e) => {
            chan.refuse(&e.to_string());
            engine.resume_after_handover();
            api.resume();
            Err(e)
        }
    }
}

fn send_all(
    chan: &Channel,
    sockets: &[(String, OwnedFd)],
    api: &ApiGate,
) -> Result<(), HandoverError> {
    for (id, fd) in sockets {
        chan.send(&Frame::Net(id.clone()), &[fd.as_fd()])?;
    }
    let n = u32::try_from(sockets.len())
        .map_err(|_| HandoverError::Protocol("too many networks".into()))?;
    chan.send(&Frame::End(n), &[])?;
    chan.set_timeout(READY_TIMEOUT)?;
    match chan.recv()? {
        (Frame::Ready, _) => {}
        (f, _) => {
            return Err(HandoverError::Protocol(format!(
                "expected ready, got {f:?}"
            )));
        }
    }
    chan.send(&Frame::Api, &[api.listener()])?;
    chan.send(&Frame::Commit, &[])
}
