//! The daemon: adopt the containers left by a previous computed (or restart those a reboot
//! stopped), serve the bus API, and every second restart dead shims and publish state changes.
//! Shims and containers keep running when computed exits.

use crate::api::{self, Shared, TOPIC};
use crate::engine::{Config, Engine};
use bus::api::health::HealthStatus;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Runs computed until `shutdown` completes.
pub async fn run(
    cfg: Config,
    run_dir: &std::path::Path,
    shutdown: impl Future<Output = ()>,
) -> Result<(), crate::Error> {
    let engine = Engine::new(cfg)?;
    let recovered = engine.recover_all();
    let names = engine.names();
    tracing::info!(containers = names.len(), recovered = ?recovered, "containers adopted");
    let shared: Shared = Arc::new(Mutex::new(engine));
    let mut server = api::server(shared.clone());
    let events = server.publisher();
    let problems: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    {
        let p = problems.clone();
        server.health_check(Arc::new(move || {
            match p.lock().ok().and_then(|g| g.clone()) {
                None => (HealthStatus::Ok, None),
                Some(d) => (HealthStatus::Degraded, Some(d)),
            }
        }));
    }
    let socket = bus::service_socket(run_dir, api::SERVICE);
    let listener = bus::bind(&socket)
        .await
        .map_err(|e| crate::Error::Runtime(format!("bus socket {}: {e}", socket.display())))?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut srv_rx = stop_rx.clone();
    let serve = tokio::spawn(server.serve(listener, async move {
        let _ = srv_rx.wait_for(|s| *s).await;
    }));
    let supervise = {
        let mut rx = stop_rx.clone();
        tokio::spawn(async move {
            let mut last: BTreeMap<String, bus::api::compute::ContainerState> = BTreeMap::new();
            loop {
                let sh = shared.clone();
                let pass = tokio::task::spawn_blocking(move || {
                    let e = sh.lock().ok()?;
                    let failed: Vec<String> = e.recover_all().into_iter().collect();
                    Some((e.list(), failed))
                })
                .await
                .ok()
                .flatten();
                if let Some((list, recovered)) = pass {
                    if !recovered.is_empty() {
                        tracing::warn!(?recovered, "shims restarted");
                    }
                    let failed: Vec<&str> = list
                        .iter()
                        .filter(|c| c.state == bus::api::compute::ContainerState::Failed)
                        .map(|c| c.name.as_str())
                        .collect();
                    if let Ok(mut p) = problems.lock() {
                        *p = (!failed.is_empty()).then(|| format!("failed containers: {failed:?}"));
                    }
                    let now: BTreeMap<String, _> =
                        list.iter().map(|c| (c.name.clone(), c.state)).collect();
                    for c in &list {
                        if last.get(&c.name) != Some(&c.state) {
                            events.publish(TOPIC, c);
                        }
                    }
                    last = now;
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = rx.wait_for(|s| *s) => break,
                }
            }
        })
    };
    shutdown.await;
    let _ = stop_tx.send(true);
    let _ = supervise.await;
    let _ = serve.await;
    Ok(())
}
