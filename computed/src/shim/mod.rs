//! The shim: one small single-threaded process per container (`computed shim DIR`). It calls the
//! runtime (libcontainer forks its caller, which is why this is not done inside the tokio
//! daemon), owns the output pipe and the log, waits for the exit status, applies the restart
//! policy ([`restart`], pure) and honours stop requests. It outlives computed, which re-adopts
//! it through its lock.
//!
//! Stop protocol: computed creates `DIR/stop` (or the shim gets SIGTERM/SIGINT); the shim sends
//! SIGTERM to the entrypoint, SIGKILL to the whole container after the grace period, records
//! `stopped` and exits.

pub mod restart;
mod runtime;

use crate::error::{Error, IoContext, Result};
use crate::logs::LogWriter;
use crate::state::{Dir, now};
use bus::api::compute::{ContainerSpec, ContainerState};
use restart::{Decision, Restarts};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How often the wait loop looks at the stop flag and the child.
const TICK: Duration = Duration::from_millis(50);

/// Runs the shim of the container in `dir` until the container is final. Returns the process
/// exit code.
pub fn run(dir: &Path) -> i32 {
    let dir = Dir(dir.to_path_buf());
    match run_inner(&dir) {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!(error = %e, "shim failed");
            if let Ok(Some(mut st)) = dir.status() {
                st.state = ContainerState::Failed;
                st.pid = None;
                st.message = crate::error::redacted(&e.to_string());
                st.finished_at = Some(now());
                let _ = dir.set_status(&st);
            }
            1
        }
    }
}

fn run_inner(dir: &Dir) -> Result<()> {
    let Some(_lock) = dir.lock_shim()? else {
        tracing::info!("another shim runs this container");
        return Ok(());
    };
    rustix::process::set_child_subreaper(Some(rustix::process::getpid()))
        .map_err(|e| Error::Runtime(format!("cannot become a subreaper: {e}")))?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, stop.clone())
            .map_err(|e| Error::Runtime(format!("signal handler: {e}")))?;
    }
    let spec: ContainerSpec = dir.spec()?;
    let mut status = dir
        .status()?
        .ok_or_else(|| Error::Invalid(format!("{}: no status.json", dir.0.display())))?;
    let mut log = LogWriter::open(&dir.0, spec.log_max_bytes)?;
    let cgroup = runtime::cgroup_path(dir);
    let runtime_root = dir.file("runtime");
    std::fs::create_dir_all(&runtime_root).ctx(&runtime_root)?;
    let mut restarts = Restarts::default();
    loop {
        if stop_requested(dir, &stop) {
            break;
        }
        runtime::remove_old(&runtime_root, &spec.name);
        let t0 = Instant::now();
        let (pid, out) = match runtime::start(dir, &spec, &runtime_root) {
            Ok(x) => x,
            Err(e) => {
                runtime::remove_old(&runtime_root, &spec.name);
                return Err(e);
            }
        };
        status.state = ContainerState::Running;
        status.pid = Some(pid.as_raw_nonzero().get());
        status.started_at = Some(now());
        status.message.clear();
        status.timings.runtime_ms = u64::try_from(t0.elapsed().as_millis()).unwrap_or(u64::MAX);
        dir.set_status(&status)?;
        tracing::info!(
            pid = pid.as_raw_nonzero().get(),
            ms = status.timings.runtime_ms,
            "container started"
        );

        let grace = Duration::from_secs(u64::from(spec.stop_grace_secs));
        let exit = runtime::wait(pid, out, &mut log, grace, cgroup.as_deref(), || {
            stop_requested(dir, &stop)
        });
        runtime::remove_old(&runtime_root, &spec.name);
        status.pid = None;
        status.exit_code = exit.code;
        status.signal = exit.signal;
        status.oom_killed = exit.oom;
        status.finished_at = Some(now());
        tracing::info!(?exit, "container exited");

        if stop_requested(dir, &stop) {
            break;
        }
        let (decision, next) = restart::decide(spec.restart, exit.failed(), t0.elapsed(), restarts);
        restarts = next;
        let Decision::RestartAfter(pause) = decision else {
            status.state = ContainerState::Exited;
            dir.set_status(&status)?;
            return Ok(());
        };
        status.restarts += 1;
        status.state = ContainerState::Restarting;
        dir.set_status(&status)?;
        let until = Instant::now() + pause;
        while Instant::now() < until {
            if stop_requested(dir, &stop) {
                break;
            }
            std::thread::sleep(TICK);
        }
    }
    status.state = ContainerState::Stopped;
    status.pid = None;
    status.finished_at.get_or_insert_with(now);
    dir.set_status(&status)?;
    tracing::info!("container stopped");
    Ok(())
}

fn stop_requested(dir: &Dir, flag: &AtomicBool) -> bool {
    flag.load(Ordering::Relaxed) || dir.stop_requested()
}
