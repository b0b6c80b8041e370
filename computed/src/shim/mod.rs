//! The shim: one small single-threaded process per container (`computed shim DIR`). It calls the
//! runtime (libcontainer forks its caller, which is why this is not done inside the tokio
//! daemon), owns the output pipe and the log, waits for the exit status, applies the restart
//! policy and honours stop requests. It outlives computed, which re-adopts it through its lock.
//!
//! Stop protocol: computed creates `DIR/stop` (or the shim gets SIGTERM/SIGINT); the shim sends
//! SIGTERM to the entrypoint, SIGKILL to the whole container after the grace period, records
//! `stopped` and exits.

use crate::error::{Error, IoContext, Result};
use crate::logs::LogWriter;
use crate::state::{Dir, now};
use bus::api::compute::{Container, ContainerSpec, ContainerState, RestartPolicy};
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;
use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::process::{Pid, Signal, WaitOptions};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Shortest and longest pause before a restart; a run that lasted longer than `RESET` starts
/// the backoff over.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(10);
const RESET: Duration = Duration::from_secs(10);
/// How often the wait loop looks at the stop flag and the child.
const TICK_MS: i64 = 50;

/// How one run ended.
#[derive(Debug, Clone, Copy)]
struct Exit {
    code: Option<i32>,
    signal: Option<i32>,
    oom: bool,
}

impl Exit {
    fn failed(&self) -> bool {
        self.code != Some(0)
    }
}

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
                st.message = e.to_string();
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
    let cgroup = cgroup_path(dir);
    let runtime_root = dir.file("runtime");
    std::fs::create_dir_all(&runtime_root).ctx(&runtime_root)?;
    let mut backoff = BACKOFF_MIN;
    let mut consecutive: u32 = 0;
    loop {
        if stop_requested(dir, &stop) {
            break;
        }
        remove_old(&runtime_root, &spec.name);
        let t0 = Instant::now();
        let (pid, out) = match start(dir, &spec, &runtime_root) {
            Ok(x) => x,
            Err(e) => {
                remove_old(&runtime_root, &spec.name);
                return Err(e);
            }
        };
        status.state = ContainerState::Running;
        status.pid = Some(pid.as_raw_nonzero().get());
        status.started_at = Some(now());
        status.message.clear();
        status.timings.runtime_ms = t0.elapsed().as_millis() as u64;
        dir.set_status(&status)?;
        tracing::info!(
            pid = pid.as_raw_nonzero().get(),
            ms = status.timings.runtime_ms,
            "container started"
        );

        let exit = wait(dir, &spec, pid, out, &mut log, &stop, cgroup.as_deref());
        remove_old(&runtime_root, &spec.name);
        status.pid = None;
        status.exit_code = exit.code;
        status.signal = exit.signal;
        status.oom_killed = exit.oom;
        status.finished_at = Some(now());
        tracing::info!(?exit, "container exited");

        if stop_requested(dir, &stop) {
            break;
        }
        if t0.elapsed() > RESET {
            backoff = BACKOFF_MIN;
            consecutive = 0;
        }
        let again = match spec.restart {
            RestartPolicy::Never => false,
            RestartPolicy::Always => true,
            RestartPolicy::OnFailure { max_retries } => exit.failed() && consecutive < max_retries,
        };
        if !again {
            status.state = ContainerState::Exited;
            dir.set_status(&status)?;
            return Ok(());
        }
        consecutive += 1;
        status.restarts += 1;
        status.state = ContainerState::Restarting;
        dir.set_status(&status)?;
        let until = Instant::now() + backoff;
        while Instant::now() < until {
            if stop_requested(dir, &stop) {
                break;
            }
            std::thread::sleep(Duration::from_millis(TICK_MS as u64));
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
    status.state = ContainerState::Stopped;
    status.pid = None;
    status.finished_at.get_or_insert_with(now);
    dir.set_status(&status)?;
    tracing::info!("container stopped");
    Ok(())
}

fn stop_requested(dir: &Dir, flag: &AtomicBool) -> bool {
    flag.load(Ordering::Relaxed) || dir.file("stop").exists()
}

/// Forgets the runtime state of a previous run (and kills what is left of it).
fn remove_old(runtime_root: &Path, id: &str) {
    let root = runtime_root.join(id);
    if !root.exists() {
        return;
    }
    match libcontainer::container::Container::load(root.clone()) {
        Ok(mut c) => {
            if let Err(e) = c.delete(true) {
                tracing::warn!(error = %e, "deleting the previous run failed");
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot load the previous run"),
    }
    let _ = std::fs::remove_dir_all(&root);
}

/// Creates and starts one run; returns the entrypoint's pid and the read end of its output.
fn start(dir: &Dir, spec: &ContainerSpec, runtime_root: &Path) -> Result<(Pid, OwnedFd)> {
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| Error::Runtime(format!("pipe: {e}")))?;
    let w2 = w
        .try_clone()
        .map_err(|e| Error::Runtime(format!("pipe: {e}")))?;
    let null = std::fs::File::open("/dev/null").ctx("/dev/null")?;
    let rt = |e: libcontainer::error::LibcontainerError| Error::Runtime(e.to_string());
    let mut c = ContainerBuilder::new(spec.name.clone(), SyscallType::default())
        .with_root_path(runtime_root)
        .map_err(rt)?
        .with_stdin(OwnedFd::from(null))
        .with_stdout(w)
        .with_stderr(w2)
        .as_init(dir.file("bundle"))
        .with_systemd(false)
        .with_detach(true)
        .build()
        .map_err(rt)?;
    c.start().map_err(rt)?;
    let pid = c
        .pid()
        .and_then(|p| Pid::from_raw(p.as_raw()))
        .ok_or_else(|| Error::Runtime("the runtime reported no pid".into()))?;
    Ok((pid, r))
}

/// Copies output to the log until the entrypoint exits; handles a stop request meanwhile.
fn wait(
    dir: &Dir,
    spec: &ContainerSpec,
    pid: Pid,
    out: OwnedFd,
    log: &mut LogWriter,
    stop: &AtomicBool,
    cgroup: Option<&str>,
) -> Exit {
    let mut buf = vec![0u8; 64 << 10];
    let mut out = Some(out);
    let mut term_at: Option<Instant> = None;
    let mut killed = false;
    let tick = Timespec {
        tv_sec: 0,
        tv_nsec: TICK_MS * 1_000_000,
    };
    loop {
        if let Some(fd) = out.as_ref() {
            let mut fds = [PollFd::new(fd, PollFlags::IN)];
            let ready = poll(&mut fds, Some(&tick)).unwrap_or(0);
            if ready > 0 {
                match rustix::io::read(fd.as_fd(), &mut buf) {
                    Ok(0) | Err(_) => out = None,
                    Ok(n) => {
                        if let Err(e) = log.write(&buf[..n]) {
                            tracing::warn!(error = %e, "output dropped");
                        }
                    }
                }
            }
        } else {
            std::thread::sleep(Duration::from_millis(TICK_MS as u64));
        }
        if let Some(st) = reap(pid) {
            // drain what is left in the pipe without blocking on writers outside the container
            if let Some(fd) = out.take() {
                let mut fds = [PollFd::new(&fd, PollFlags::IN)];
                let zero = Timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                };
                while poll(&mut fds, Some(&zero)).unwrap_or(0) > 0 {
                    match rustix::io::read(fd.as_fd(), &mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            let _ = log.write(&buf[..n]);
                        }
                    }
                }
            }
            return Exit {
                code: st.exit_status(),
                signal: st.terminating_signal(),
                oom: cgroup.is_some_and(oom_kills),
            };
        }
        if stop_requested(dir, stop) {
            match term_at {
                None => {
                    tracing::info!("stop: SIGTERM");
                    let _ = rustix::process::kill_process(pid, Signal::TERM);
                    term_at = Some(Instant::now());
                }
                Some(t)
                    if !killed
                        && t.elapsed() >= Duration::from_secs(u64::from(spec.stop_grace_secs)) =>
                {
                    tracing::info!("stop: grace period over, SIGKILL");
                    // the pid namespace dies with its init
                    let _ = rustix::process::kill_process(pid, Signal::KILL);
                    killed = true;
                }
                Some(_) => {}
            }
        }
    }
}

/// Reaps children; returns the entrypoint's status once it exited.
fn reap(pid: Pid) -> Option<rustix::process::WaitStatus> {
    loop {
        match rustix::process::wait(WaitOptions::NOHANG) {
            Ok(Some((p, st))) if p == pid => return Some(st),
            Ok(Some(_)) => continue,
            Ok(None) | Err(_) => return None,
        }
    }
}

/// The container's cgroup path, from its OCI config.
fn cgroup_path(dir: &Dir) -> Option<String> {
    let spec = oci_spec::runtime::Spec::load(dir.file("bundle").join("config.json")).ok()?;
    spec.linux()
        .as_ref()?
        .cgroups_path()
        .as_ref()
        .map(|p| p.display().to_string())
}

/// Whether the memory controller killed a task of the cgroup (v1 `memory.oom_control`, v2
/// `memory.events`).
fn oom_kills(cgroup: &str) -> bool {
    let rel = cgroup.trim_start_matches('/');
    let candidates = [
        (
            format!("/sys/fs/cgroup/memory/{rel}/memory.oom_control"),
            "oom_kill ",
        ),
        (format!("/sys/fs/cgroup/{rel}/memory.events"), "oom_kill "),
    ];
    candidates.iter().any(|(path, key)| {
        std::fs::read_to_string(path).is_ok_and(|s| {
            s.lines().any(|l| {
                l.strip_prefix(key)
                    .and_then(|n| n.trim().parse::<u64>().ok())
                    .is_some_and(|n| n > 0)
            })
        })
    })
}

/// The status a new container starts with.
pub fn initial_status(spec: &ContainerSpec, identity: &str, netns: &str) -> Container {
    Container {
        name: spec.name.clone(),
        state: ContainerState::Creating,
        pid: None,
        exit_code: None,
        signal: None,
        oom_killed: false,
        restarts: 0,
        started_at: None,
        finished_at: None,
        message: String::new(),
        identity: identity.to_string(),
        netns: netns.to_string(),
        timings: Default::default(),
    }
}
