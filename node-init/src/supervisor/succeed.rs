//! A successor started beside the running process of a service, for a daemon that hands its
//! work over live (netd's tunnels): the upgrade's new binary runs with extra arguments
//! (`--take-over PATH`) while the old process still serves, takes the work over, and the old
//! one exits by itself. The service's state follows the successor from its start:
//!
//! | event                                   | then                                          |
//! |-----------------------------------------|-----------------------------------------------|
//! | successor ready (its own pid answers)   | running with the successor                    |
//! | predecessor exits                       | nothing (it handed over, or will be missed)   |
//! | successor exits, predecessor still runs | running with the predecessor and its old      |
//! |                                         | definition: the take-over failed, nothing lost |
//! | successor exits, predecessor gone       | a crash of the old definition: restarted      |
//! | service stopped meanwhile               | both get SIGTERM                              |
//!
//! The extra arguments go to this one start only: a restart after a crash runs the definition
//! as written.

use super::policy::State;
use super::process::{Processes, Sig};
use super::reaper::Exit;
use super::service::{Service, ServiceDef};
use super::{Handle, Msg, Supervisor, logs};
use std::time::{Duration, Instant};

/// The process a starting successor takes over from.
pub(super) struct Predecessor {
    pid: u32,
    def: ServiceDef,
    alive: bool,
}

impl<P: Processes> Supervisor<P> {
    /// Starts `def` with `extra` arguments beside the running process of `name`; the
    /// successor's pid.
    pub(super) async fn succeed(
        &mut self,
        name: &str,
        def: ServiceDef,
        extra: Vec<String>,
    ) -> Result<u32, String> {
        if self.stopping {
            return Err("node-init is shutting down".into());
        }
        let Some(old) = self.service(name) else {
            return Err(format!("no service {name}"));
        };
        let Some(State::Running { pid: old_pid }) = self.states.get(name).cloned() else {
            return Err(format!("{name} is not running: nothing to take over"));
        };
        let mut start = Service {
            name: name.to_string(),
            def: def.clone(),
        };
        start.def.args.extend(extra);
        let log = logs::log_path(&self.log_dir, name);
        let r = self
            .procs
            .spawn(&start, &log)
            .await
            .map_err(|e| format!("cannot start {}: {e}", def.exec.display()))?;
        tracing::info!(service = name, pid = r.pid, predecessor = old_pid, exec = %def.exec.display(), "successor started");
        if let Some(s) = self.services.iter_mut().find(|s| s.name == name) {
            s.def = def;
        }
        self.defs.send_replace(self.services.clone());
        let u = self.unit(name);
        u.predecessor = Some(Predecessor {
            pid: old_pid,
            def: old.def,
            alive: true,
        });
        u.since = Some(Instant::now());
        u.adopted = false;
        u.detail = None;
        u.version = None;
        u.crashes.clear();
        self.set(name, State::Starting { pid: r.pid });
        self.find_version(&start, r.pid, false);
        self.watch_exit(name, r.pid, r.exit);
        self.watch_ready(&start, r.pid, true);
        Ok(r.pid)
    }

    /// A process of `name` that is not its current one ended: the predecessor of a
    /// successor, which no longer needs watching.
    pub(super) fn predecessor_exited(&mut self, name: &str, pid: u32) {
        if let Some(p) = self
            .unit(name)
            .predecessor
            .as_mut()
            .filter(|p| p.pid == pid)
        {
            tracing::info!(service = name, pid, "predecessor exited");
            p.alive = false;
        }
    }

    /// The successor of `name` ended before it was ready: back to the predecessor.
    pub(super) fn successor_exited(&mut self, name: &str, pid: u32, exit: Exit) {
        let Some(p) = self.unit(name).predecessor.take() else {
            return;
        };
        let why = match self.unit(name).detail.take() {
            Some(d) if d.starts_with("not ready") => format!("{d}; {exit}"),
            _ => exit.to_string(),
        };
        if let Some(s) = self.services.iter_mut().find(|s| s.name == name) {
            s.def = p.def;
        }
        self.defs.send_replace(self.services.clone());
        if p.alive && !self.stopping {
            tracing::warn!(service = name, pid, predecessor = p.pid, reason = %why, "successor failed: the predecessor serves on");
            let u = self.unit(name);
            u.detail = Some(format!("take-over failed: {why}"));
            u.since = Some(Instant::now());
            self.set(name, State::Running { pid: p.pid });
            if let Some(svc) = self.service(name) {
                self.find_version(&svc, p.pid, true);
            }
        } else if self.stopping {
            self.set(name, State::Stopped);
        } else {
            self.crashed(
                name,
                format!("successor failed after its predecessor exited: {why}"),
            );
        }
    }

    /// On a stop: the predecessor of a starting successor is stopped too.
    pub(super) fn stop_predecessor(&mut self, name: &str) {
        if let Some(p) = self.unit(name).predecessor.as_ref().filter(|p| p.alive) {
            let pid = p.pid;
            tracing::info!(service = name, pid, "stopping the predecessor");
            self.procs.signal(pid, Sig::Term);
        }
    }
}

impl Handle {
    /// Starts `def` for service `name` with `extra` arguments beside its running process, to
    /// take its work over (see the module doc); the successor's pid.
    pub async fn succeed(
        &self,
        name: &str,
        def: ServiceDef,
        extra: Vec<String>,
    ) -> Result<u32, String> {
        self.ask(|ack| Msg::Succeed {
            name: name.to_string(),
            def,
            extra,
            ack,
        })
        .await
    }

    /// Waits for the successor `pid` of `name`: Ok once it is ready; the reason once it
    /// ended (the service then runs its predecessor again, or restarts it). Past `timeout`
    /// the successor is killed and its end awaited.
    pub async fn wait_succeeded(
        &self,
        name: &str,
        pid: u32,
        timeout: Duration,
    ) -> Result<u32, String> {
        let decide = |state: &State, detail: Option<String>| match state {
            State::Running { pid: p } if *p == pid => Some(Ok(pid)),
            State::Starting { pid: p } if *p == pid => None,
            _ => Some(Err(detail.unwrap_or_else(|| "the successor ended".into()))),
        };
        if let Some(outcome) = self.wait_for(name, timeout, decide).await {
            return outcome;
        }
        let _ = self
            .cmd
            .send(Msg::NotReady {
                name: name.to_string(),
                pid,
            })
            .await;
        match self.wait_for(name, Duration::from_secs(10), decide).await {
            Some(outcome) => outcome,
            None => Err(format!("not ready within {} s; killed", timeout.as_secs())),
        }
    }
}
