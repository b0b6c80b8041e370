//! `volume` workloads: a btrfs subvolume with a quota, made by storaged.

use super::TypedHandler;
use crate::blueprint::{VolumeSpec, WorkloadSpec};
use crate::engine::{HandlerError, Observed, WorkloadCtx};
use bus::api::node::Workload;
use bus::api::storage::{CreateVolume, DeleteVolume, GetVolume, Name, VolumeCreate};
use serde_json::{Value, json};
use std::time::Duration;

/// Bound on storaged's answer when looking at a volume.
const OBSERVE_TIMEOUT: Duration = Duration::from_secs(2);

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

    /// Drifted when storaged lost the record or the subvolume is gone from its pool (deleted
    /// behind the node's back); storaged makes a missing subvolume again on the repair's apply.
    async fn observe(&self, ctx: &WorkloadCtx, _recorded: &Value) -> Observed {
        let name = Name {
            name: ctx.global_name(),
        };
        let v = match tokio::time::timeout(OBSERVE_TIMEOUT, self.0.call::<GetVolume>(&name)).await {
            Ok(Ok(v)) => v,
            Ok(Err(e))
                if e.remote()
                    .is_some_and(|r| r.code == bus::ErrorCode::NotFound) =>
            {
                return Observed::Drifted("volume missing on storaged".into());
            }
            _ => return Observed::Unknown,
        };
        match tokio::fs::symlink_metadata(&v.path).await {
            Ok(m) if m.is_dir() => Observed::Live(serde_json::Map::new()),
            Ok(_) => Observed::Unknown,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Observed::Drifted(format!("subvolume {} missing", v.path.display()))
            }
            Err(_) => Observed::Unknown,
        }
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
