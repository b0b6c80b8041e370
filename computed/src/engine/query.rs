//! Queries: read the state on disk and the operations in flight, never wait for one.

use super::ops::Op;
use super::{Engine, validate};
use crate::error::{Error, Result};
use crate::state::initial_status;
use bus::api::compute::{ComputeCapacity, Container, ContainerState, LogsChunk};

impl Engine {
    /// The container's status, marked when an operation runs on it (`message`: "stop in
    /// progress"), or when its shim died unexpectedly.
    pub fn get(&self, name: &str) -> Result<Container> {
        validate::name(name)?;
        let running = self.ops.running(name);
        let mut c = match (self.read(name), &running) {
            (Ok(c), _) => c,
            // a create still fetching its flist has no state on disk yet
            (Err(Error::NotFound(_)), Some(slot)) => match &slot.op {
                Op::Create(spec) => initial_status(
                    spec,
                    &spec.identity.to_ascii_lowercase(),
                    &self.netns_name(name),
                ),
                _ => return Err(Error::NotFound(name.to_string())),
            },
            (Err(e), _) => return Err(e),
        };
        if let Some(slot) = running
            && c.message.is_empty()
        {
            c.message = format!("{} in progress", slot.op.label());
        }
        Ok(c)
    }

    /// The container's status on disk.
    pub(super) fn read(&self, name: &str) -> Result<Container> {
        let dir = self.dir(name);
        let Some(mut s) = dir.status().ok().flatten() else {
            return Err(Error::NotFound(name.to_string()));
        };
        if !s.state.is_final()
            && s.state != ContainerState::Creating
            && !self.sys.shim_alive(&dir.0)
        {
            s.message = "its shim is gone; computed restarts it".into();
        }
        Ok(s)
    }

    /// Every container, those being created included.
    pub fn list(&self) -> Vec<Container> {
        let mut names = self.names();
        names.extend(self.ops.all().into_iter().map(|(n, _)| n));
        names.sort();
        names.dedup();
        names.iter().filter_map(|n| self.get(n).ok()).collect()
    }

    /// Captured output from `offset`.
    pub fn logs(&self, name: &str, offset: u64, max: u64) -> Result<LogsChunk> {
        validate::name(name)?;
        let dir = self.dir(name);
        if !dir.file("spec.json").exists() {
            return Err(Error::NotFound(name.to_string()));
        }
        let finished =
            !self.sys.shim_alive(&dir.0) && dir.status()?.is_none_or(|s| s.state.is_final());
        let (start, data, next) = crate::logs::read(&dir.0, offset, max)?;
        Ok(LogsChunk {
            offset: start,
            data: String::from_utf8_lossy(&data).into_owned(),
            next,
            finished,
        })
    }

    /// Memory and CPU of the node and what containers hold.
    pub fn capacity(&self) -> ComputeCapacity {
        ComputeCapacity {
            cpus: self.sys.cpus(),
            memory_total: self.sys.memory_total(),
            memory_system: self.cfg.memory_system,
            memory_reserved: self.ops.memory_reserved(),
        }
    }
}
