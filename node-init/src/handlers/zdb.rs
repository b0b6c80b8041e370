//! `zdb` workloads: a namespace allocated by storaged (idempotent allocate converges password,
//! public flag and size, and makes a namespace missing on its server again).

use super::TypedHandler;
use crate::blueprint::{WorkloadSpec, ZdbSpec};
use crate::engine::{HandlerError, Observed, WorkloadCtx};
use bus::api::node::Workload;
use bus::api::storage::{AllocateZdb, DeleteZdb, Name, ZdbAllocate};
use serde_json::{Value, json};
use std::time::Duration;

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

    /// Asks the namespace's zdb server itself, as a client would (NSINFO needs no password):
    /// a namespace it does not know (an `NSDEL` behind the node's back, a lost folder) is
    /// drift, and storaged's allocate makes it again. A server that does not answer is
    /// storaged's to restart, so unknown here.
    async fn observe(&self, _ctx: &WorkloadCtx, recorded: &Value) -> Observed {
        let (Some(ns), Some(addr), Some(port)) = (
            recorded["namespace"].as_str(),
            recorded["address"].as_str(),
            recorded["port"].as_u64(),
        ) else {
            return Observed::Unknown;
        };
        let host = if addr.contains(':') {
            format!("[{addr}]:{port}")
        } else {
            format!("{addr}:{port}")
        };
        let cfg = zdb_client::Config::tcp(host)
            .with_connect_timeout(Duration::from_secs(2))
            .with_timeout(Duration::from_secs(3));
        let Ok(mut c) = zdb_client::AsyncClient::connect(cfg).await else {
            return Observed::Unknown;
        };
        match c.nsinfo(ns).await {
            Ok(Some(_)) => Observed::Live(serde_json::Map::new()),
            Ok(None) => Observed::Drifted(format!("namespace {ns} missing on its zdb")),
            Err(_) => Observed::Unknown,
        }
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
