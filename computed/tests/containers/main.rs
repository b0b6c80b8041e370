//! Real containers from a busybox flist: isolation, limits, policies, logs, stop, delete,
//! re-adoption, and slow operations that must not block the daemon. Needs root (see
//! `harness`), except `bare`, which runs a daemon without containers.
#![expect(clippy::unwrap_used, reason = "tests")]

mod bare;
mod harness;
mod isolation;
mod lifecycle;
mod requests;
mod slow;

use bus::ErrorCode;
use bus::api::compute::*;
use harness::Env;

pub(crate) fn code(e: &bus::BusError) -> Option<ErrorCode> {
    e.remote().map(|r| r.code)
}

pub(crate) async fn create(env: &Env, spec: &ContainerSpec) -> Container {
    env.client.call::<CreateContainer>(spec).await.unwrap()
}

pub(crate) async fn stop(env: &Env, name: &str) -> Container {
    env.client
        .call::<StopContainer>(&Name { name: name.into() })
        .await
        .unwrap()
}

/// Alive and not a zombie (an orphan reparented to a pid 1 that does not reap stays one).
pub(crate) fn pid_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')))
        .unwrap_or(false)
}
