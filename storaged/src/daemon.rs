//! The daemon: serve the bus API, scan disks, supervise zdb servers, until shutdown. zdb
//! servers are left running on exit; the next storaged adopts them.

use crate::api::{self, HealthCell, Shared};
use crate::config::{Config, Paths};
use crate::node::Storage;
use crate::system::System;
use bus::api::health::HealthStatus;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Runs storaged until `shutdown` completes.
pub async fn run(
    cfg: Config,
    config_file: Option<std::path::PathBuf>,
    paths: Paths,
    sys: Arc<dyn System>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), bus::BusError> {
    let refresh_every = Duration::from_secs(cfg.refresh_secs.max(1));
    let health: HealthCell = Arc::new(Mutex::new((HealthStatus::Starting, None)));
    let shared: Shared = Arc::new(tokio::sync::Mutex::new(Storage::new(
        sys,
        cfg,
        paths.clone(),
    )));
    let server = api::server(shared.clone(), health.clone());
    {
        let mut s = shared.lock().await;
        s.set_events(Arc::new(server.publisher()));
        if let Some(f) = config_file {
            s.watch_config(f);
        }
    }
    let listener = bus::bind(&paths.socket()).await?;
    tracing::info!(socket = %paths.socket().display(), root = %paths.root.display(), "storaged serving");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut srv_rx = stop_rx.clone();
    let serve = tokio::spawn(server.serve(listener, async move {
        let _ = srv_rx.wait_for(|s| *s).await;
    }));
    let worker = {
        let shared = shared.clone();
        let mut rx = stop_rx.clone();
        tokio::spawn(async move {
            let mut last_refresh: Option<Instant> = None;
            loop {
                {
                    let mut s = shared.lock().await;
                    if last_refresh.is_none_or(|t| t.elapsed() >= refresh_every) {
                        s.refresh().await;
                        last_refresh = Some(Instant::now());
                    }
                    s.supervise().await;
                    let h = match s.problems() {
                        None => (HealthStatus::Ok, None),
                        Some(p) => (HealthStatus::Degraded, Some(p)),
                    };
                    if let Ok(mut cell) = health.lock() {
                        *cell = h;
                    }
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
    let _ = worker.await;
    let _ = serve.await;
    Ok(())
}
