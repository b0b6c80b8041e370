//! Recovery and supervision: a container that should run (`creating`, `running`,
//! `restarting`, no `stop` file) but whose shim lock is free lost its shim (a crash, a
//! reboot): it gets a new one. One whose shim runs on a root filesystem that is gone (its
//! overlay unmounted, its flist daemon dead) is stopped and started again on a new mount. [`Engine::supervise`] looks every second and starts a
//! recovery operation per such container; it never waits for one.

use super::Engine;
use super::ops::Op;
use crate::error::Result;
use crate::state::Dir;
use bus::api::compute::ContainerState;
use std::sync::Arc;

impl Engine {
    /// Whether the container in `dir` should run but has no shim (a cheap look).
    fn lost_shim(&self, dir: &Dir) -> bool {
        dir.status()
            .ok()
            .flatten()
            .is_some_and(|s| !s.state.is_final())
            && !dir.stop_requested()
            && !self.sys.shim_alive(&dir.0)
    }

    /// Whether the container in `dir` runs (a live shim, not stopping) on a root filesystem
    /// that is gone: its overlay unmounted or its flist mount dead.
    fn lost_rootfs(&self, dir: &Dir) -> bool {
        dir.status()
            .ok()
            .flatten()
            .is_some_and(|s| !s.state.is_final())
            && !dir.stop_requested()
            && self.sys.shim_alive(&dir.0)
            && !self.sys.rootfs_ok(&dir.file("rootfs"))
    }

    /// Starts a recovery for every container that lost its shim or its root filesystem and
    /// has no operation running; returns their names.
    pub fn supervise(self: &Arc<Self>) -> Vec<String> {
        let mut begun = Vec::new();
        for n in self.names() {
            if self.ops.running(&n).is_some() {
                continue;
            }
            let dir = self.dir(&n);
            let remount = if self.lost_shim(&dir) {
                false
            } else if self.lost_rootfs(&dir) {
                true
            } else {
                continue;
            };
            let name = n.clone();
            let work = move |e: &Arc<Engine>| {
                let r = if remount {
                    e.remount_now(&name)
                } else {
                    e.recover_now(&name)
                };
                if let Err(err) = r {
                    e.mark_recovery_failed(&name, &err);
                    return Err(err);
                }
                Ok(None)
            };
            if self.submit(&n, Op::Recover, |_| Ok(()), work).is_ok() {
                begun.push(n);
            }
        }
        begun
    }

    /// Restarts the shim of a container that should run but has none: the overlay and the
    /// network namespace are made again if missing. False when it needed nothing.
    pub(super) fn recover_now(&self, name: &str) -> Result<bool> {
        let dir = self.dir(name);
        let Some(mut status) = dir.status()? else {
            return Ok(false);
        };
        if status.state.is_final() || self.sys.shim_alive(&dir.0) || dir.stop_requested() {
            return Ok(false);
        }
        tracing::info!(name, state = ?status.state, "no shim: recovering the container");
        status.state = ContainerState::Restarting;
        status.pid = None;
        dir.set_status(&status)?;
        self.relaunch(&dir, &status.netns)?;
        Ok(true)
    }

    /// Restarts a running container whose root filesystem is gone on a new mount (same
    /// writable layer): stop it, drop the stale mount (and the dead flist mount with its last
    /// reference), start it again. False when it needed nothing.
    pub(super) fn remount_now(&self, name: &str) -> Result<bool> {
        let dir = self.dir(name);
        if !self.lost_rootfs(&dir) {
            return Ok(false);
        }
        tracing::warn!(
            name,
            "root filesystem lost: restarting the container on a new mount"
        );
        self.stop_now(name)?;
        if let Err(e) = self.sys.rootfs_unmount(&dir.file("rootfs")) {
            tracing::warn!(name, error = %e, "dropping the lost mount failed");
        }
        self.start_now(name)?;
        Ok(true)
    }

    fn mark_recovery_failed(&self, name: &str, err: &crate::Error) {
        tracing::warn!(name, error = %err, "recovery failed");
        self.mark_failed(name, &format!("recovery failed: {err}"));
    }

    /// Records that the container cannot run, unless it already ended.
    pub(super) fn mark_failed(&self, name: &str, message: &str) {
        let dir = self.dir(name);
        if let Ok(Some(mut s)) = dir.status()
            && !s.state.is_final()
        {
            s.state = ContainerState::Failed;
            s.message = crate::error::redacted(message);
            let _ = dir.set_status(&s);
        }
    }
}
