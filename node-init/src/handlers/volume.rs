//! `volume` workloads: a btrfs subvolume with a quota, made by storaged.

use super::{not_a, parse_err};
use crate::blueprint::WorkloadSpec;
use crate::engine::{BoxFuture, HandlerError, WorkloadCtx, WorkloadHandler};
use bus::api::node::Workload;
use bus::api::storage::{CreateVolume, DeleteVolume, Name, VolumeCreate};
use serde_json::{Value, json};

/// Talks to storaged.
pub struct VolumeHandler(pub bus::Client);

impl WorkloadHandler for VolumeHandler {
    fn apply<'a>(
        &'a self,
        ctx: &'a WorkloadCtx,
        wl: &'a Workload,
    ) -> BoxFuture<'a, Result<Value, HandlerError>> {
        Box::pin(async move {
            let WorkloadSpec::Volume(spec) = WorkloadSpec::parse(wl).map_err(parse_err)? else {
                return Err(not_a(wl, "volume"));
            };
            let req = VolumeCreate {
                name: ctx.global_name(),
                size: spec.size,
            };
            let v = self.0.call::<CreateVolume>(&req).await?;
            Ok(json!({"name": v.name, "path": v.path, "size": v.size}))
        })
    }

    fn remove<'a>(
        &'a self,
        ctx: &'a WorkloadCtx,
        _wl: &'a Workload,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            self.0
                .call::<DeleteVolume>(&Name {
                    name: ctx.global_name(),
                })
                .await?;
            Ok(())
        })
    }
}
