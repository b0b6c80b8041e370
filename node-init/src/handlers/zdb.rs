//! `zdb` workloads: a namespace allocated by storaged (idempotent allocate converges password,
//! public flag and size).

use super::TypedHandler;
use crate::blueprint::{WorkloadSpec, ZdbSpec};
use crate::engine::{HandlerError, WorkloadCtx};
use bus::api::node::Workload;
use bus::api::storage::{AllocateZdb, DeleteZdb, Name, ZdbAllocate};
use serde_json::{Value, json};

/// Talks to storaged.
pub struct ZdbHandler(pub bus::Client);

impl TypedHandler for ZdbHandler {
    const KIND: &'static str = "zdb";
    type Spec = ZdbSpec;

    fn spec(spec: WorkloadSpec) -> Option<ZdbSpec> {
        match spec {
            WorkloadSpec::Zdb(s) => Some(s),
            _ => None,
        }
    }

    async fn apply(
        &self,
        ctx: &WorkloadCtx,
        _wl: &Workload,
        spec: ZdbSpec,
    ) -> Result<Value, HandlerError> {
        let req = ZdbAllocate {
            name: ctx.global_name(),
            size: spec.size,
            mode: spec.mode,
            password: spec.password,
            public: spec.public,
        };
        let ns = self.0.call::<AllocateZdb>(&req).await?;
        Ok(json!({
            "namespace": ns.namespace,
            "address": ns.address,
            "port": ns.port,
            "size": ns.size,
            "mode": ns.mode,
            "public": ns.public,
        }))
    }

    async fn remove(&self, ctx: &WorkloadCtx) -> Result<(), HandlerError> {
        self.0
            .call::<DeleteZdb>(&Name {
                name: ctx.global_name(),
            })
            .await?;
        Ok(())
    }
}
