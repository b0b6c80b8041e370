//! `store` workloads: the shard namespace of an owner's store on this node, a user-mode zdb
//! namespace allocated by storaged exactly like a `zdb` workload's (idempotent allocate
//! converges password and size). Its result is the endpoint the node advertises in its farm
//! registration (`node_init::farm_node`).

use super::TypedHandler;
use crate::blueprint::{StoreSpec, WorkloadSpec};
use crate::engine::{HandlerError, WorkloadCtx};
use bus::api::node::Workload;
use bus::api::storage::{AllocateZdb, DeleteZdb, Name, ZdbAllocate, ZdbMode};
use serde_json::{Value, json};

/// Talks to storaged.
pub struct StoreHandler(pub bus::Client);

impl TypedHandler for StoreHandler {
    const KIND: &'static str = "store";
    type Spec = StoreSpec;

    fn spec(spec: WorkloadSpec) -> Option<StoreSpec> {
        match spec {
            WorkloadSpec::Store(s) => Some(s),
            _ => None,
        }
    }

    async fn apply(
        &self,
        ctx: &WorkloadCtx,
        _wl: &Workload,
        spec: StoreSpec,
    ) -> Result<Value, HandlerError> {
        let req = ZdbAllocate {
            name: ctx.global_name(),
            size: spec.size,
            mode: ZdbMode::User,
            password: Some(spec.password),
            public: false,
        };
        let ns = self.0.call::<AllocateZdb>(&req).await?;
        Ok(json!({
            "farm": spec.farm,
            "namespace": ns.namespace,
            "address": ns.address,
            "port": ns.port,
            "size": ns.size,
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
