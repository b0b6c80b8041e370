//! `container` workloads: a volume from storaged for the writable layer (`<name>-rootfs`), the
//! deployment's volumes as mounts, and the container itself from computed.

use super::{not_a, parse_err};
use crate::blueprint::WorkloadSpec;
use crate::engine::{BoxFuture, HandlerError, WorkloadCtx, WorkloadHandler};
use bus::api::compute::{self, ContainerState, CreateContainer, DeleteContainer};
use bus::api::node::Workload;
use bus::api::storage::{CreateVolume, DeleteVolume, GetVolume, Name, VolumeCreate};
use serde_json::{Value, json};

/// Talks to storaged and computed.
pub struct ContainerHandler {
    /// storaged.
    pub storaged: bus::Client,
    /// computed.
    pub computed: bus::Client,
}

/// Name of the writable-layer volume; workload names have no `-`, so it cannot collide with
/// a `volume` workload's name.
fn rootfs_volume(ctx: &WorkloadCtx) -> String {
    format!("{}-rootfs", ctx.global_name())
}

impl WorkloadHandler for ContainerHandler {
    fn apply<'a>(
        &'a self,
        ctx: &'a WorkloadCtx,
        wl: &'a Workload,
    ) -> BoxFuture<'a, Result<Value, HandlerError>> {
        Box::pin(async move {
            let WorkloadSpec::Container(spec) = WorkloadSpec::parse(wl).map_err(parse_err)? else {
                return Err(not_a(wl, "container"));
            };
            let rw = self
                .storaged
                .call::<CreateVolume>(&VolumeCreate {
                    name: rootfs_volume(ctx),
                    size: spec.rootfs_size,
                })
                .await?;
            let mut mounts = Vec::with_capacity(spec.mounts.len());
            for m in &spec.mounts {
                let vctx = WorkloadCtx {
                    name: m.volume.clone(),
                    ..ctx.clone()
                };
                let v = self
                    .storaged
                    .call::<GetVolume>(&Name {
                        name: vctx.global_name(),
                    })
                    .await?;
                mounts.push(compute::Mount {
                    source: v.path,
                    target: m.path.clone(),
                    readonly: m.readonly,
                });
            }
            let req = compute::ContainerSpec {
                name: ctx.global_name(),
                flist: spec.flist.clone(),
                identity: spec.identity.clone(),
                stores: spec.stores.clone(),
                entrypoint: spec.entrypoint.clone(),
                env: spec.env.clone(),
                workdir: spec
                    .workdir
                    .clone()
                    .unwrap_or_else(|| compute::DEFAULT_WORKDIR.into()),
                hostname: Some(
                    spec.hostname
                        .clone()
                        .unwrap_or_else(|| wl.name.replace('_', "-")),
                ),
                cpu: f64::from(spec.cpu),
                memory: spec.memory,
                pids: spec.pids.unwrap_or(compute::DEFAULT_PIDS),
                rw: rw.path.clone(),
                mounts,
                restart: spec.restart,
                stop_grace_secs: compute::DEFAULT_STOP_GRACE_SECS,
                log_max_bytes: compute::DEFAULT_LOG_MAX_BYTES,
            };
            let c = self.computed.call::<CreateContainer>(&req).await?;
            if c.state == ContainerState::Failed {
                return Err(HandlerError(format!("container failed: {}", c.message)));
            }
            Ok(json!({
                "state": c.state,
                "pid": c.pid,
                "exit_code": c.exit_code,
                "restarts": c.restarts,
                "netns": c.netns,
                "identity": c.identity,
                "rootfs_volume": rw.name,
                "rw": rw.path,
                "timings": c.timings,
            }))
        })
    }

    fn remove<'a>(
        &'a self,
        ctx: &'a WorkloadCtx,
        _wl: &'a Workload,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            self.computed
                .call::<DeleteContainer>(&compute::Name {
                    name: ctx.global_name(),
                })
                .await?;
            self.storaged
                .call::<DeleteVolume>(&Name {
                    name: rootfs_volume(ctx),
                })
                .await?;
            Ok(())
        })
    }
}
