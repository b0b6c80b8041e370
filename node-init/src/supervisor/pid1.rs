//! node-init as PID 1 (`getpid() == 1`, or `--pid1`): collect every orphan (through the one
//! [`reaper`](super::reaper), which never takes the status of a child someone else waits
//! for), shut down in order on SIGTERM, SIGINT or SIGPWR (the signal a UPS or `poweroff` of a
//! container runtime sends init), and flush the filesystems before exiting. Powering off or
//! rebooting after that is the early-boot module's decision (a container's PID 1 just exits).
//! In dev mode node-init is a plain process and none of this applies.

use tokio::signal::unix::{SignalKind, signal};

/// True when this process is PID 1 (of the machine or of a pid namespace).
pub fn is_pid1() -> bool {
    std::process::id() == 1
}

/// Starts collecting orphans. Call from inside the tokio runtime.
pub fn become_init() {
    super::reaper::global().reap_orphans();
    tracing::info!("running as init: reaping orphans");
}

/// Completes on SIGTERM or SIGINT, and as init on SIGPWR too.
pub async fn shutdown_signal(init: bool) {
    let pwr = SignalKind::from_raw(rustix::process::Signal::POWER.as_raw());
    let mut pwr = if init { signal(pwr).ok() } else { None };
    tokio::select! {
        _ = bus::daemon::shutdown_signal() => {}
        _ = async {
            match pwr.as_mut() {
                Some(s) => { s.recv().await; }
                None => std::future::pending().await,
            }
        } => {}
    }
}

/// Flushes the filesystems (before init exits and the kernel tears everything down).
pub fn finish() {
    rustix::fs::sync();
}
