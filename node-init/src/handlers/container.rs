//! `container` workloads: a volume from storaged for the writable layer (`<name>-rootfs`), the
//! deployment's volumes as mounts, the container itself from computed, and, when it names a
//! network, its namespace attached to that network by netd once computed made it.

use super::TypedHandler;
use super::network::{attach_only, network_id};
use crate::blueprint::{ContainerSpec, WorkloadSpec};
use crate::engine::{HandlerError, Observed, WorkloadCtx};
use bus::ErrorCode;
use bus::api::compute::{self, ContainerState, CreateContainer, DeleteContainer, GetContainer};
use bus::api::network::Attachment;
use bus::api::node::Workload;
use bus::api::storage::{CreateVolume, DeleteVolume, GetVolume, Name, VolumeCreate};
use serde_json::{Value, json};
use std::path::PathBuf;

/// Talks to storaged, computed and netd.
pub struct ContainerHandler {
    /// storaged.
    pub storaged: bus::Client,
    /// computed.
    pub computed: bus::Client,
    /// netd.
    pub netd: bus::Client,
}

/// Attaches namespace `netns` to the network workload `network` of the deployment (detaching
/// it from any other); with none, detaches it from every network. A node without netd has no
/// attachments, so none needs no netd.
async fn converge_network(
    netd: &bus::Client,
    ctx: &WorkloadCtx,
    netns: &str,
    network: Option<&str>,
    address: Option<std::net::Ipv4Addr>,
) -> Result<Option<Attachment>, HandlerError> {
    let id = network.map(|n| {
        network_id(&WorkloadCtx {
            name: n.to_string(),
            ..ctx.clone()
        })
    });
    match attach_only(netd, netns, id.as_deref(), address).await {
        Err(e) if id.is_none() && e.is_unreachable() => Ok(None),
        r => Ok(r?),
    }
}

/// Name of the writable-layer volume; workload names have no `-`, so it cannot collide with
/// a `volume` workload's name.
fn rootfs_volume(ctx: &WorkloadCtx) -> String {
    format!("{}-rootfs", ctx.global_name())
}

/// The one conversion from a blueprint's container (what an owner writes) to computed's
/// [`compute::ContainerSpec`] (what computed runs), given what the node made for it: its node
/// name, writable layer and resolved volume mounts. The blueprint is deliberately narrower:
/// whole CPU cores (`cpu` u32, computed takes fractions), no grace period or log bound (node
/// defaults), the host name defaulting to the workload's name. Both structs are destructured
/// field by field, so a field added to either does not compile until it is placed here.
pub fn compute_spec(
    spec: ContainerSpec,
    name: String,
    workload: &str,
    rw: PathBuf,
    mounts: Vec<compute::Mount>,
) -> compute::ContainerSpec {
    let ContainerSpec {
        flist,
        identity,
        stores,
        entrypoint,
        env,
        workdir,
        hostname,
        cpu,
        memory,
        pids,
        rootfs_size: _,
        mounts: _,
        restart,
        network: _,
        address: _,
    } = spec;
    compute::ContainerSpec {
        name,
        flist,
        identity,
        stores,
        entrypoint,
        env,
        workdir: workdir.unwrap_or_else(|| compute::DEFAULT_WORKDIR.into()),
        hostname: Some(hostname.unwrap_or_else(|| workload.replace('_', "-"))),
        cpu: f64::from(cpu),
        memory,
        pids: pids.unwrap_or(compute::DEFAULT_PIDS),
        rw,
        mounts,
        restart,
        stop_grace_secs: compute::DEFAULT_STOP_GRACE_SECS,
        log_max_bytes: compute::DEFAULT_LOG_MAX_BYTES,
    }
}

impl TypedHandler for ContainerHandler {
    const KIND: &'static str = "container";
    type Spec = ContainerSpec;

    fn spec(spec: WorkloadSpec) -> Option<ContainerSpec> {
        match spec {
            WorkloadSpec::Container(s) => Some(s),
            _ => None,
        }
    }

    async fn apply(
        &self,
        ctx: &WorkloadCtx,
        wl: &Workload,
        spec: ContainerSpec,
    ) -> Result<Value, HandlerError> {
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
        let (network, address) = (spec.network.clone(), spec.address);
        let req = compute_spec(spec, ctx.global_name(), &wl.name, rw.path.clone(), mounts);
        let c = self.computed.call::<CreateContainer>(&req).await?;
        if c.state == ContainerState::Failed {
            return Err(HandlerError(format!("container failed: {}", c.message)));
        }
        let attachment =
            converge_network(&self.netd, ctx, &c.netns, network.as_deref(), address).await?;
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
            "network": attachment.map(|a| json!({
                "address": a.address,
                "gateway": a.gateway,
                "interface": a.interface,
            })),
        }))
    }

    /// computed's view: gone or failed is drift (a re-apply makes it again); otherwise its
    /// live state, so a container that exited shows `exited`, not the `running` of its apply.
    /// A killed shim is computed's own to restart (it looks every second).
    async fn observe(&self, ctx: &WorkloadCtx, _recorded: &Value) -> Observed {
        let name = compute::Name {
            name: ctx.global_name(),
        };
        match self.computed.call::<GetContainer>(&name).await {
            Ok(c) if c.state == ContainerState::Failed => {
                Observed::Drifted(format!("container failed: {}", c.message))
            }
            Ok(c) => {
                let live = json!({
                    "state": c.state,
                    "pid": c.pid,
                    "exit_code": c.exit_code,
                    "restarts": c.restarts,
                });
                match live {
                    Value::Object(m) => Observed::Live(m),
                    _ => Observed::Unknown,
                }
            }
            Err(e) if e.remote().is_some_and(|r| r.code == ErrorCode::NotFound) => {
                Observed::Drifted("container missing on computed".into())
            }
            Err(_) => Observed::Unknown,
        }
    }

    async fn remove(&self, ctx: &WorkloadCtx) -> Result<(), HandlerError> {
        let name = compute::Name {
            name: ctx.global_name(),
        };
        // detach first: a retry still finds the namespace's name with the container
        match self.computed.call::<GetContainer>(&name).await {
            Ok(c) => {
                converge_network(&self.netd, ctx, &c.netns, None, None).await?;
            }
            Err(e) if e.remote().is_some_and(|r| r.code == ErrorCode::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
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
    }
}

#[cfg(test)]
mod test {
    #![expect(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use serde_json::json;

    fn blueprint(data: Value) -> ContainerSpec {
        serde_json::from_value(data).unwrap()
    }

    #[test]
    fn every_field_reaches_computed() {
        let spec = blueprint(json!({
            "flist": "https://hub/app.flist",
            "identity": "ab".repeat(32),
            "stores": ["zdb://h:9900/ns"],
            "entrypoint": ["/bin/app", "-v"],
            "env": {"A": "1"},
            "workdir": "/srv",
            "hostname": "web1",
            "cpu": 2,
            "memory": 64 << 20,
            "pids": 50,
            "rootfs_size": 1 << 30,
            "mounts": [{"volume": "data", "path": "/data"}],
            "restart": {"policy": "on_failure", "max_retries": 3},
        }));
        let mounts = vec![compute::Mount {
            source: "/pool/volumes/x-data".into(),
            target: "/data".into(),
            readonly: false,
        }];
        let c = compute_spec(
            spec,
            "o-d-app".into(),
            "app",
            "/pool/rw".into(),
            mounts.clone(),
        );
        assert_eq!(
            serde_json::to_value(&c).unwrap(),
            json!({
                "name": "o-d-app",
                "flist": "https://hub/app.flist",
                "identity": "ab".repeat(32),
                "stores": ["zdb://h:9900/ns"],
                "entrypoint": ["/bin/app", "-v"],
                "env": {"A": "1"},
                "workdir": "/srv",
                "hostname": "web1",
                "cpu": 2.0,
                "memory": 64 << 20,
                "pids": 50,
                "rw": "/pool/rw",
                "mounts": [{"source": "/pool/volumes/x-data", "target": "/data", "readonly": false}],
                "restart": {"policy": "on_failure", "max_retries": 3},
                "stop_grace_secs": compute::DEFAULT_STOP_GRACE_SECS,
                "log_max_bytes": compute::DEFAULT_LOG_MAX_BYTES,
            })
        );
    }

    #[test]
    fn a_minimal_blueprint_gets_computeds_own_defaults() {
        let spec = blueprint(json!({
            "flist": "/f.flist", "identity": "cd".repeat(32), "entrypoint": ["/bin/sh"],
            "memory": 8 << 20, "rootfs_size": 1 << 20,
        }));
        let c = compute_spec(spec, "o-d-my_app".into(), "my_app", "/rw".into(), vec![]);
        // What computed fills in for a request that leaves the optional fields out.
        let defaults: compute::ContainerSpec = serde_json::from_value(json!({
            "name": "o-d-my_app", "flist": "/f.flist", "identity": "cd".repeat(32),
            "entrypoint": ["/bin/sh"], "memory": 8 << 20, "rw": "/rw", "hostname": "my-app",
        }))
        .unwrap();
        assert_eq!(c, defaults);
    }
}
