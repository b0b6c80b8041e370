//! A clean power-off of the node image. Ctrl-Alt-Del (the kernel signals PID 1 with SIGINT
//! once PID 1 has turned the key combination's immediate reboot off), SIGTERM or SIGPWR to
//! PID 1: stop the node daemon (SIGTERM: it stops its daemons in order), sync the file
//! systems, power off. A reset or power cut keeps only what zdb's durability contract
//! promises (acknowledged writes may still be in the page cache); this path loses nothing
//! acknowledged. Under qemu, `sendkey ctrl-alt-delete` on the monitor asks for it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How long the node daemon gets to stop before the file systems are synced anyway.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// What PID 1's reap loop and the power-off share.
#[derive(Default)]
pub struct State {
    /// The node daemon's pid (0: not started).
    main: AtomicU32,
    /// A power-off was asked for: the node daemon's exit is expected.
    requested: AtomicBool,
    /// The node daemon has exited.
    main_exited: AtomicBool,
}

impl State {
    /// Records the node daemon's pid.
    pub fn set_main(&self, pid: Option<u32>) {
        self.main.store(pid.unwrap_or(0), Ordering::Release);
    }

    /// The node daemon's pid.
    pub fn main(&self) -> Option<u32> {
        Some(self.main.load(Ordering::Acquire)).filter(|p| *p != 0)
    }

    /// Whether a power-off is under way.
    pub fn requested(&self) -> bool {
        self.requested.load(Ordering::Acquire)
    }

    /// Called by the reap loop when the node daemon exited.
    pub fn main_exited(&self) {
        self.main_exited.store(true, Ordering::Release);
    }
}

/// Turns Ctrl-Alt-Del into a signal to PID 1 and starts the thread that waits for the
/// signals asking for a power-off. Call before anything is started.
pub fn arm() -> Arc<State> {
    let state = Arc::new(State::default());
    if let Err(e) = rustix::system::reboot(rustix::system::RebootCommand::CadOff) {
        eprintln!("init: cannot turn Ctrl-Alt-Del into a signal: {e}");
    }
    let st = state.clone();
    let spawned = std::thread::Builder::new()
        .name("power-off".into())
        .spawn(move || {
            if let Some(why) = wait_for_signal() {
                power_off(&st, why);
            }
        });
    if let Err(e) = spawned {
        eprintln!("init: no clean power-off: {e}");
    }
    state
}

/// Blocks until SIGINT, SIGTERM or SIGPWR; returns its name (None if they cannot be caught).
fn wait_for_signal() -> Option<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| eprintln!("init: no clean power-off: {e}"))
        .ok()?;
    rt.block_on(async {
        let pwr = SignalKind::from_raw(rustix::process::Signal::POWER.as_raw());
        let (mut int, mut term, mut pwr) = match (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
            signal(pwr),
        ) {
            (Ok(i), Ok(t), Ok(p)) => (i, t, p),
            _ => {
                eprintln!("init: no clean power-off: cannot catch the signals");
                return None;
            }
        };
        Some(tokio::select! {
            _ = int.recv() => "Ctrl-Alt-Del (SIGINT)",
            _ = term.recv() => "SIGTERM",
            _ = pwr.recv() => "SIGPWR",
        })
    })
}

/// Stops the node daemon, syncs, powers off.
fn power_off(st: &State, why: &str) {
    eprintln!("init: {why}: stopping the node, then powering off");
    st.requested.store(true, Ordering::Release);
    if let Some(pid) = st
        .main()
        .and_then(|p| rustix::process::Pid::from_raw(p as i32))
    {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        let deadline = Instant::now() + STOP_TIMEOUT;
        while !st.main_exited.load(Ordering::Acquire) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        if !st.main_exited.load(Ordering::Acquire) {
            eprintln!("init: node-init still runs after {STOP_TIMEOUT:?}; powering off anyway");
        }
    }
    rustix::fs::sync();
    eprintln!("init: file systems synced, powering off");
    if let Err(e) = rustix::system::reboot(rustix::system::RebootCommand::PowerOff) {
        eprintln!("init: power off: {e}");
    }
}
