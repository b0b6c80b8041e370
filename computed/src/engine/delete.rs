//! Delete: stop, then release the overlay, the network namespace, the logs and the state.
//! Never the volumes passed in (they belong to storaged). Absent is fine.

use super::ops::Op;
use super::{Engine, validate};
use crate::error::{Error, IoContext, Result};
use std::sync::Arc;

impl Engine {
    /// Stops and removes a container. Absent is fine.
    pub fn delete(self: &Arc<Self>, name: &str) -> Result<()> {
        validate::name(name)?;
        if !self.dir(name).0.exists() && self.ops.running(name).is_none() {
            return Ok(());
        }
        let n = name.to_string();
        self.run(
            name,
            Op::Delete,
            |_| Ok(()),
            move |e| e.delete_now(&n).map(|()| None),
        )
        .map(drop)
    }

    pub(super) fn delete_now(&self, name: &str) -> Result<()> {
        let dir = self.dir(name);
        if !dir.0.exists() {
            return Ok(());
        }
        if dir.spec().is_ok() {
            self.stop_now(name)?;
        }
        let target = dir.file("rootfs");
        self.sys.rootfs_unmount(&target)?;
        if self.sys.is_overlay(&target) {
            return Err(Error::Runtime(format!("{name}: overlay still mounted")));
        }
        let netns = dir
            .status()
            .ok()
            .flatten()
            .map(|s| s.netns)
            .unwrap_or_else(|| self.netns_name(name));
        self.sys.netns_delete(&netns)?;
        std::fs::remove_dir_all(&dir.0).ctx(&dir.0)?;
        tracing::info!(name, "container deleted");
        Ok(())
    }
}
