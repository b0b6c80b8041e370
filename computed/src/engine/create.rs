//! Create (or converge): same spec and not failed = kept as is (a dead shim is replaced);
//! otherwise the container is replaced with a fresh writable layer. A new container gets its
//! flist pinned, its overlay, network namespace and bundle, then a shim; if a step before the
//! shim fails, what the earlier steps made is undone and the container is left `failed`.

use super::admission::{self, Snapshot};
use super::ops::Op;
use super::{Engine, validate};
use crate::error::{Error, IoContext, Result};
use crate::state::{Dir, initial_status};
use bus::api::compute::{Container, ContainerSpec, ContainerState};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

impl Engine {
    /// Creates the container or converges an existing one (see the module doc).
    pub fn create(self: &Arc<Self>, spec: ContainerSpec) -> Result<Container> {
        validate::spec(&spec)?;
        let name = spec.name.clone();
        let keeps = self.keeps(&spec);
        let snapshot = |others| Snapshot {
            memory_total: self.sys.memory_total(),
            memory_system: self.cfg.memory_system,
            memory_others: others,
        };
        let memory = spec.memory;
        let admit = |others| match keeps {
            true => Ok(()),
            false => admission::admit(&snapshot(others), memory),
        };
        let op = Op::Create(Box::new(spec.clone()));
        self.run_container(&name, op, admit, move |e| e.create_now(&spec))
    }

    /// Whether `spec` names the existing container as it is (same spec, not failed).
    fn keeps(&self, spec: &ContainerSpec) -> bool {
        let dir = self.dir(&spec.name);
        let Ok(old) = dir.spec() else {
            return false;
        };
        let failed = dir
            .status()
            .ok()
            .flatten()
            .is_none_or(|s| s.state == ContainerState::Failed);
        old == *spec && !failed
    }

    fn create_now(&self, spec: &ContainerSpec) -> Result<Container> {
        let dir = self.dir(&spec.name);
        if dir.spec().is_ok() {
            if self.keeps(spec) {
                self.recover_now(&spec.name)?;
                return self.read(&spec.name);
            }
            tracing::info!(name = %spec.name, "spec changed or failed: replacing the container");
            self.delete_now(&spec.name)?;
        }
        if !spec.rw.is_dir() {
            return Err(Error::Invalid(format!(
                "writable layer folder {} does not exist",
                spec.rw.display()
            )));
        }
        let t0 = Instant::now();
        let flist = self.pin(spec)?;
        std::fs::create_dir_all(&dir.0).ctx(&dir.0)?;
        let netns = self.netns_name(&spec.name);
        let mut status = initial_status(spec, &spec.identity.to_ascii_lowercase(), &netns);
        dir.set_spec(spec)?;
        dir.set_status(&status)?;
        if let Err(e) = self.build(spec, &dir, &flist, &netns, &mut status, t0) {
            self.undo_build(&dir, &netns);
            status.state = ContainerState::Failed;
            status.message = crate::error::redacted(&e.to_string());
            let _ = dir.set_status(&status);
            return Err(Error::Runtime(format!("{}: {e}", spec.name)));
        }
        self.sys.spawn_shim(&self.cfg.shim_exe, &dir.0)?;
        self.wait_started(&spec.name)
    }

    /// Fresh writable layer, overlay, network namespace and bundle.
    fn build(
        &self,
        spec: &ContainerSpec,
        dir: &Dir,
        flist: &Path,
        netns: &str,
        status: &mut Container,
        t0: Instant,
    ) -> Result<()> {
        for sub in ["upper", "work"] {
            let p = spec.rw.join(sub);
            if p.exists() {
                std::fs::remove_dir_all(&p).ctx(&p)?;
            }
        }
        let target = dir.file("rootfs");
        self.sys
            .rootfs_mount(flist, &spec.stores, &spec.rw, &target)?;
        status.timings.rootfs_ms = millis(t0);
        let t1 = Instant::now();
        self.sys.netns_create(netns)?;
        status.timings.network_ms = millis(t1);
        self.write_bundle(spec, dir, netns)?;
        dir.set_status(status)
    }

    /// Releases what a failed [`Engine::build`] made: the overlay (and with it a reference on
    /// the shared flist mount) and the network namespace. Best effort: a later delete retries.
    fn undo_build(&self, dir: &Dir, netns: &str) {
        let target = dir.file("rootfs");
        if self.sys.is_overlay(&target)
            && let Err(e) = self.sys.rootfs_unmount(&target)
        {
            tracing::warn!(error = %e, "undo: unmount failed");
        }
        if let Err(e) = self.sys.netns_delete(netns) {
            tracing::warn!(error = %e, "undo: netns delete failed");
        }
    }

    /// Writes the OCI bundle of `spec`.
    pub(super) fn write_bundle(&self, spec: &ContainerSpec, dir: &Dir, netns: &str) -> Result<()> {
        let cgroup = format!(
            "/{}/{}",
            self.cfg.cgroup_parent.trim_matches('/'),
            spec.name
        );
        let rootfs = dir.file("rootfs");
        let netns_path = crate::system::netns_path(netns);
        let cfg = crate::bundle::config(
            spec,
            &crate::bundle::Placement {
                rootfs: &rootfs,
                netns: &netns_path,
                cgroup: &cgroup,
            },
        )?;
        let b = dir.file("bundle");
        std::fs::create_dir_all(&b).ctx(&b)?;
        Ok(nodeutil::fs::write_json(&b.join("config.json"), &cfg)?)
    }
}

/// Milliseconds since `t0`.
fn millis(t0: Instant) -> u64 {
    u64::try_from(t0.elapsed().as_millis()).unwrap_or(u64::MAX)
}
