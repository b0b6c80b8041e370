//! `zdb` workloads: a namespace allocated by storaged (idempotent allocate converges password,
//! public flag and size).

use super::{not_a, parse_err};
use crate::blueprint::WorkloadSpec;
use crate::engine::{BoxFuture, HandlerError, WorkloadCtx, WorkloadHandler};
use bus::api::Secret;
use bus::api::node::Workload;
use bus::api::storage::{AllocateZdb, DeleteZdb, Name, ZdbAllocate};
use serde_json::{Value, json};

/// Talks to storaged.
pub struct ZdbHandler(pub bus::Client);

impl WorkloadHandler for ZdbHandler {
    fn apply<'a>(
        &'a self,
        ctx: &'a WorkloadCtx,
        wl: &'a Workload,
    ) -> BoxFuture<'a, Result<Value, HandlerError>> {
        Box::pin(async move {
            let WorkloadSpec::Zdb(spec) = WorkloadSpec::parse(wl).map_err(parse_err)? else {
                return Err(not_a(wl, "zdb"));
            };
            let req = ZdbAllocate {
                name: ctx.global_name(),
                size: spec.size,
                mode: spec.mode,
                password: spec.password.map(Secret),
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
        })
    }

    fn remove<'a>(
        &'a self,
        ctx: &'a WorkloadCtx,
        _wl: &'a Workload,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            self.0
                .call::<DeleteZdb>(&Name {
                    name: ctx.global_name(),
                })
                .await?;
            Ok(())
        })
    }
}
