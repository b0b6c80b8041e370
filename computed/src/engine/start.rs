//! Start a stopped or exited container again (same writable layer), and the relaunch it
//! shares with recovery: overlay mounted again if a reboot took it, network namespace and
//! bundle made again, a new shim.

use super::ops::Op;
use super::{Engine, validate};
use crate::error::{Error, Result};
use crate::state::Dir;
use bus::api::compute::{Container, ContainerState};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a start may take before the caller is answered with the state so far.
const START_WAIT: Duration = Duration::from_secs(30);

impl Engine {
    /// Starts a stopped or exited container again (same writable layer).
    pub fn start(self: &Arc<Self>, name: &str) -> Result<Container> {
        validate::name(name)?;
        if self.dir(name).spec().is_err() && self.ops.running(name).is_none() {
            return Err(Error::NotFound(name.to_string()));
        }
        let n = name.to_string();
        self.run_container(name, Op::Start, |_| Ok(()), move |e| e.start_now(&n))
    }

    pub(super) fn start_now(&self, name: &str) -> Result<Container> {
        let dir = self.dir(name);
        if dir.spec().is_err() {
            return Err(Error::NotFound(name.to_string()));
        }
        let _ = std::fs::remove_file(dir.file("stop"));
        if self.sys.shim_alive(&dir.0) {
            return self.read(name);
        }
        let mut s = dir.status()?.ok_or_else(|| Error::NotFound(name.into()))?;
        s.state = ContainerState::Creating;
        s.message.clear();
        dir.set_status(&s)?;
        self.relaunch(&dir, &s.netns)?;
        self.wait_started(name)
    }

    /// Mounts the overlay again if it is gone (a reboot took it; the writable layer is kept:
    /// this is the same container), makes the network namespace and the bundle, starts a shim.
    pub(super) fn relaunch(&self, dir: &Dir, netns: &str) -> Result<()> {
        let spec = dir.spec()?;
        let target = dir.file("rootfs");
        if !self.sys.is_overlay(&target) {
            let flist = self.pin(&spec)?;
            // drop the stale reference of the lost mount first
            let _ = self.sys.rootfs_unmount(&target);
            self.sys
                .rootfs_mount(&flist, &spec.stores, &spec.rw, &target)?;
        }
        self.sys.netns_create(netns)?;
        self.write_bundle(&spec, dir, netns)?;
        self.sys.spawn_shim(&self.cfg.shim_exe, &dir.0)
    }

    /// Waits until the shim reports the first run (or gives up with the state so far).
    pub(super) fn wait_started(&self, name: &str) -> Result<Container> {
        let dir = self.dir(name);
        let t0 = Instant::now();
        loop {
            if let Some(s) = dir.status()?
                && s.state != ContainerState::Creating
            {
                if s.state == ContainerState::Failed {
                    return Err(Error::Runtime(format!("{name}: {}", s.message)));
                }
                return Ok(s);
            }
            if t0.elapsed() > START_WAIT {
                return self.read(name);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
