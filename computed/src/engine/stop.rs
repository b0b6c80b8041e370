//! Stop: the `stop` file tells the shim (and any shim started later) to stop the container:
//! SIGTERM to the entrypoint, SIGKILL after the grace period. The operation waits until the
//! shim is gone, on its own thread: queries and other containers go on meanwhile.

use super::ops::Op;
use super::{Engine, validate};
use crate::error::{Error, IoContext, Result};
use crate::state::now;
use bus::api::compute::{Container, ContainerState};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long past the grace period a shim may take to stop.
const STOP_SLACK: Duration = Duration::from_secs(15);

impl Engine {
    /// Stops a container and waits until its shim is done.
    pub fn stop(self: &Arc<Self>, name: &str) -> Result<Container> {
        validate::name(name)?;
        if self.dir(name).spec().is_err() && self.ops.running(name).is_none() {
            return Err(Error::NotFound(name.to_string()));
        }
        let n = name.to_string();
        self.run_container(name, Op::Stop, |_| Ok(()), move |e| e.stop_now(&n))
    }

    pub(super) fn stop_now(&self, name: &str) -> Result<Container> {
        let dir = self.dir(name);
        let spec = dir.spec()?;
        std::fs::write(dir.file("stop"), b"").ctx(dir.file("stop"))?;
        let deadline =
            Instant::now() + Duration::from_secs(u64::from(spec.stop_grace_secs)) + STOP_SLACK;
        while self.sys.shim_alive(&dir.0) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if self.sys.shim_alive(&dir.0) {
            return Err(Error::Runtime(format!(
                "{name}: the shim did not stop in time"
            )));
        }
        if let Some(mut s) = dir.status()?
            && !s.state.is_final()
        {
            s.state = ContainerState::Stopped;
            s.pid = None;
            s.finished_at.get_or_insert_with(now);
            dir.set_status(&s)?;
        }
        self.read(name)
    }
}
