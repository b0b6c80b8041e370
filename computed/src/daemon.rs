//! The daemon: adopt the containers left by a previous computed (or restart those a reboot
//! stopped), serve the bus API, and every second restart dead shims and publish state changes
//! ([`crate::supervise`]). Shims and containers keep running when computed exits.

use crate::api::{self, TOPIC};
use crate::engine::{Config, Engine};
use crate::supervise::Supervision;
use crate::system::System;
use bus::api::compute::ContainerState;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Runs computed until `shutdown` completes.
pub async fn run(
    cfg: Config,
    sys: Arc<dyn System>,
    run_dir: &std::path::Path,
    shutdown: impl Future<Output = ()>,
) -> Result<(), crate::Error> {
    let engine = Engine::new(cfg, sys)?;
    let recovering = engine.supervise();
    tracing::info!(containers = engine.names().len(), recovering = ?recovering, "containers adopted");
    let sup = Arc::new(Supervision::new(engine.clone()));
    let mut server = api::server(engine);
    let events = server.publisher();
    {
        let s = sup.clone();
        server.health_check(Arc::new(move || s.health()));
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
            let mut last: BTreeMap<String, ContainerState> = BTreeMap::new();
            loop {
                let s = sup.clone();
                if let Ok(Some(list)) = tokio::task::spawn_blocking(move || s.pass()).await {
                    for c in &list {
                        if last.get(&c.name) != Some(&c.state) {
                            events.publish(TOPIC, c);
                        }
                    }
                    last = list.iter().map(|c| (c.name.clone(), c.state)).collect();
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
