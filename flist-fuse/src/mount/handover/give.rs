//! The old process's side: serve the hand-over socket; offer the mount to a new process,
//! and once it serves, drain and exit.

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::channel::{Channel, HandoverError, accept};
use super::drain::Drain;
use super::wire::{Frame, InitParams, VERSION};
use crate::mount::args::MountArgs;
use crate::mount::log::log;

/// How long each step of the conversation may take (the new process loads its image
/// before it connects, so its steps are short).
const STEP: Duration = Duration::from_secs(30);
/// How long the old threads may take to answer what they hold and park (a read waiting on
/// a slow store holds its thread until the fetch gives up).
pub const DRAIN_LIMIT: Duration = Duration::from_secs(120);

/// What the old process hands over and how it stops.
pub struct Giver {
    /// The hand-over listener (sent along, so the next upgrade finds it at the same path).
    pub listener: OwnedFd,
    /// A duplicate of the session's /dev/fuse descriptor.
    pub fuse: OwnedFd,
    /// How this process serves the mount (sent to the new process).
    pub args: MountArgs,
    /// Identity of the image served, hex.
    pub identity: String,
    /// The kernel's INIT, recorded by the filesystem's `init`.
    pub init: Arc<Mutex<Option<InitParams>>>,
    /// The gate of this process's FUSE threads.
    pub drain: Arc<Drain>,
    /// Number of FUSE threads.
    pub threads: usize,
    /// The mount point (statfs'ed to wake readers while draining).
    pub mountpoint: PathBuf,
}

/// How one hand-over ended for the old process.
pub enum Outcome {
    /// Drained: every thread parked; the caller finishes and exits.
    Drained(u32),
    /// Nothing changed; the old process serves on.
    Failed(HandoverError),
}

impl Giver {
    /// Accept new processes one at a time until one takes the mount over and this one has
    /// drained: returns the new pid and the channel to say Done on (just before exiting).
    /// `on_drain(true)` is called before draining (so signals are ignored from then on),
    /// `on_drain(false)` when a drain is given up.
    pub fn serve(&self, on_drain: &dyn Fn(bool)) -> (u32, Channel) {
        loop {
            let chan = match accept(self.listener.as_fd()) {
                Ok(c) => c,
                Err(e) => {
                    log(&format!("hand-over socket: {e}"));
                    std::thread::sleep(Duration::from_secs(1));
                    continue;
                }
            };
            match self.one(&chan, on_drain) {
                Outcome::Drained(pid) => return (pid, chan),
                Outcome::Failed(e) => {
                    chan.refuse(&e.to_string());
                    log(&format!("hand-over failed, serving on: {e}"));
                }
            }
        }
    }

    fn one(&self, chan: &Channel, on_drain: &dyn Fn(bool)) -> Outcome {
        let r = (|| -> Result<u32, HandoverError> {
            chan.set_timeout(STEP)?;
            match chan.recv()?.0 {
                Frame::Hello { version } if version == VERSION => {}
                f => {
                    return Err(HandoverError::Protocol(format!(
                        "expected hello version {VERSION}, got {}",
                        f.name()
                    )));
                }
            }
            let init = (*self.init.lock().unwrap_or_else(|p| p.into_inner())).ok_or_else(|| {
                HandoverError::Protocol("the mount has not been initialised yet".into())
            })?;
            chan.send(
                &Frame::Offer {
                    args: Box::new(self.args.clone()),
                    identity: self.identity.clone(),
                    pid: std::process::id(),
                    init,
                },
                &[self.fuse.as_fd(), self.listener.as_fd()],
            )?;
            match chan.recv()?.0 {
                Frame::Serving { pid } => Ok(pid),
                f => Err(HandoverError::Protocol(format!(
                    "expected serving, got {}",
                    f.name()
                ))),
            }
        })();
        let pid = match r {
            Ok(pid) => pid,
            Err(e) => return Outcome::Failed(e),
        };
        log(&format!("pid {pid} serves the mount too; draining"));
        on_drain(true);
        self.drain.begin();
        let mp = self.mountpoint.clone();
        let poke = move || {
            let _ = rustix::fs::statfs(&mp);
        };
        if self.drain.wait(self.threads, DRAIN_LIMIT, poke) {
            log(&format!(
                "every FUSE thread answered and parked; pid {pid} has the mount"
            ));
            Outcome::Drained(pid)
        } else {
            self.drain.cancel();
            on_drain(false);
            Outcome::Failed(HandoverError::Protocol(format!(
                "the old process's threads did not drain in {} s",
                DRAIN_LIMIT.as_secs()
            )))
        }
    }
}
