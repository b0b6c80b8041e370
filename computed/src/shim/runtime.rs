//! One run of the entrypoint through youki's libcontainer: create and start it, copy its
//! output to the log until it exits, handle a stop request meanwhile (SIGTERM, SIGKILL after
//! the grace period), read how it ended, and forget a previous run.

use crate::error::{Error, IoContext, Result};
use crate::logs::LogWriter;
use crate::state::Dir;
use bus::api::compute::ContainerSpec;
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;
use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::process::{Pid, Signal, WaitOptions};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

/// How often the wait loop looks at the stop flag and the child, in nanoseconds.
const TICK_NS: i64 = 50_000_000;

/// How one run ended.
#[derive(Debug, Clone, Copy)]
pub struct Exit {
    /// Exit code, when it exited.
    pub code: Option<i32>,
    /// Signal, when one ended it.
    pub signal: Option<i32>,
    /// The memory controller killed a task of the container.
    pub oom: bool,
}

impl Exit {
    /// Anything but a clean exit.
    pub fn failed(&self) -> bool {
        self.code != Some(0)
    }
}

/// Forgets the runtime state of a previous run (and kills what is left of it).
pub fn remove_old(runtime_root: &Path, id: &str) {
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
pub fn start(dir: &Dir, spec: &ContainerSpec, runtime_root: &Path) -> Result<(Pid, OwnedFd)> {
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

/// Copies output to the log until the entrypoint exits; once `stop()` says so, SIGTERM, then
/// SIGKILL after `grace`.
pub fn wait(
    pid: Pid,
    out: OwnedFd,
    log: &mut LogWriter,
    grace: Duration,
    cgroup: Option<&str>,
    stop: impl Fn() -> bool,
) -> Exit {
    let mut buf = vec![0u8; 64 << 10];
    let mut out = Some(out);
    let mut term_at: Option<Instant> = None;
    let mut killed = false;
    let tick = Timespec {
        tv_sec: 0,
        tv_nsec: TICK_NS,
    };
    loop {
        if let Some(fd) = out.as_ref() {
            let mut fds = [PollFd::new(fd, PollFlags::IN)];
            let ready = poll(&mut fds, Some(&tick)).unwrap_or(0);
            if ready > 0 {
                match rustix::io::read(fd.as_fd(), &mut buf) {
                    Ok(0) | Err(_) => out = None,
                    Ok(n) => {
                        if let Err(e) = log.write(buf.get(..n).unwrap_or_default()) {
                            tracing::warn!(error = %e, "output dropped");
                        }
                    }
                }
            }
        } else {
            std::thread::sleep(Duration::from_nanos(TICK_NS.unsigned_abs()));
        }
        if let Some(st) = reap(pid) {
            if let Some(fd) = out.take() {
                drain(&fd, &mut buf, log);
            }
            return Exit {
                code: st.exit_status(),
                signal: st.terminating_signal(),
                oom: cgroup.is_some_and(oom_kills),
            };
        }
        if stop() {
            match term_at {
                None => {
                    tracing::info!("stop: SIGTERM");
                    let _ = rustix::process::kill_process(pid, Signal::TERM);
                    term_at = Some(Instant::now());
                }
                Some(t) if !killed && t.elapsed() >= grace => {
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

/// Copies what is left in the pipe without blocking on writers outside the container.
fn drain(fd: &OwnedFd, buf: &mut [u8], log: &mut LogWriter) {
    let mut fds = [PollFd::new(fd, PollFlags::IN)];
    let zero = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    while poll(&mut fds, Some(&zero)).unwrap_or(0) > 0 {
        match rustix::io::read(fd.as_fd(), &mut *buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let _ = log.write(buf.get(..n).unwrap_or_default());
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
pub fn cgroup_path(dir: &Dir) -> Option<String> {
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
