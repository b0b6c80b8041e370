//! `volume` workloads: a btrfs subvolume with a quota, made by storaged.

use super::TypedHandler;
use crate::blueprint::{VolumeSpec, WorkloadSpec};
use crate::engine::{HandlerError, WorkloadCtx};
use bus::api::node::Workload;
use bus::api::storage::{CreateVolume, DeleteVolume, Name, VolumeCreate};
use serde_json::{Value, json};

/// Talks to storaged.
pub struct VolumeHandler(pub bus::Client);

impl TypedHandler for VolumeHandler {
    const KIND: &'static str = "volume";
    type Spec = VolumeSpec;

    fn spec(spec: WorkloadSpec) -> Option<VolumeSpec> {
        match spec {
            WorkloadSpec::Volume(s) => Some(s),
            _ => None,
        }
    }

    async fn apply(
        &self,
        ctx: &WorkloadCtx,
        _wl: &Workload,
        spec: VolumeSpec,
    ) -> Result<Value, HandlerError> {
        let req = VolumeCreate {
            name: ctx.global_name(),
            size: spec.size,
        };
        let v = self.0.call::<CreateVolume>(&req).await?;
        Ok(json!({"name": v.name, "path": v.path, "size": v.size}))
    }

    async fn remove(&self, ctx: &WorkloadCtx) -> Result<(), HandlerError> {
        self.0
            .call::<DeleteVolume>(&Name {
                name: ctx.global_name(),
            })
            .await?;
        Ok(())
    }
}
