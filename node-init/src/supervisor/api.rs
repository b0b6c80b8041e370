//! `node.services@1` and `node.services.restart@1` on node-init's bus socket: the supervisor's snapshot, with each running
//! daemon's live health (the readiness test passed once says nothing about now: zinit's weak
//! spot), and node-init's version.

use super::policy::State;
use super::process::{Processes, System, binary_version};
use super::service::Readiness;
use super::{Handle, Snapshot};
use bus::api::supervisor::{ListServices, RestartService, ServiceList, ServiceStatus};
use bus::{ErrorCode, RemoteError};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OnceCell;

/// Registers `node.services@1` and `node.services.restart@1`.
pub fn register(server: &mut bus::Server, handle: Handle) {
    let restart = handle.clone();
    let version: Arc<OnceCell<String>> = Arc::default();
    server.handle::<ListServices, _, _>(move |_| {
        let (handle, version) = (handle.clone(), version.clone());
        async move {
            let node_init_version = version
                .get_or_init(|| async {
                    let hash = tokio::task::spawn_blocking(|| {
                        std::env::current_exe()
                            .ok()
                            .and_then(|p| binary_version(&p))
                    })
                    .await
                    .ok()
                    .flatten();
                    match hash {
                        Some(h) => format!("{} ({h})", env!("CARGO_PKG_VERSION")),
                        None => env!("CARGO_PKG_VERSION").to_string(),
                    }
                })
                .await
                .clone();
            let mut services = Vec::new();
            for s in handle.snapshot() {
                services.push(status(s).await);
            }
            Ok(ServiceList {
                node_init_version,
                services,
            })
        }
    });
    server.handle::<RestartService, _, _>(move |req| {
        let handle = restart.clone();
        async move {
            let timeout = Duration::from_secs(req.timeout_secs.clamp(1, MAX_RESTART_WAIT_SECS));
            handle.restart(&req.name, timeout).await.map_err(|e| {
                match e.starts_with("no service") {
                    true => RemoteError::not_found(e),
                    false => RemoteError::new(ErrorCode::Unavailable, e),
                }
            })?;
            let snap = handle
                .snapshot()
                .into_iter()
                .find(|s| s.name == req.name)
                .ok_or_else(|| RemoteError::not_found(format!("no service {}", req.name)))?;
            Ok(status(snap).await)
        }
    });
}

/// Longest wait of a restart for readiness (under the client's bus timeout).
const MAX_RESTART_WAIT_SECS: u64 = 120;

/// What `zos services` shows of one service.
async fn status(s: Snapshot) -> ServiceStatus {
    ServiceStatus {
        readiness: readiness(&s.state, &s.ready).await,
        name: s.name,
        state: s.state.name().into(),
        pid: s.state.pid(),
        uptime_secs: s.since.map(|t| t.elapsed().as_secs()),
        restarts: s.restarts,
        version: s.version,
        detail: match s.state {
            State::Failed { reason } => Some(reason),
            _ => s.detail,
        },
        adopted: s.adopted,
    }
}

/// Live readiness of a service in `state`.
async fn readiness(state: &State, ready: &Readiness) -> String {
    if !matches!(state, State::Running { .. } | State::Starting { .. }) {
        return "-".into();
    }
    if let Readiness::Bus(socket) = ready {
        let c = bus::Client::new(socket)
            .connect_timeout(Duration::from_millis(500))
            .call_timeout(Duration::from_secs(1));
        return match c.health().await {
            Ok(h) => serde_json::to_value(h.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            Err(_) => "no answer".into(),
        };
    }
    if System.probe(ready).await.ready {
        "ready".into()
    } else {
        "not ready".into()
    }
}
