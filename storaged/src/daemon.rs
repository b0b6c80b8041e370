//! The daemon: serve the bus API, scan disks, supervise zdb servers, until shutdown. zdb
//! servers are left running on exit; the next storaged adopts them.
//!
//! The disk scan (every `refresh_secs`) and the zdb supervision (every second) are two loops,
//! so a scan waiting for a hung disk's deadline never delays a zdb restart elsewhere; bus
//! methods wait for neither.

use crate::api;
use crate::config::{Config, Paths};
use crate::node::Storage;
use crate::system::System;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Runs storaged until `shutdown` completes.
pub async fn run(
    cfg: Config,
    config_file: Option<std::path::PathBuf>,
    paths: Paths,
    sys: Arc<dyn System>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), bus::BusError> {
    let refresh_every = Duration::from_secs(cfg.refresh_secs.max(1));
    let storage = Storage::new(sys, cfg, paths.clone());
    let server = api::server(storage.clone());
    storage.set_events(Arc::new(server.publisher()));
    if let Some(f) = config_file {
        storage.watch_config(f);
    }
    let listener = bus::bind(&paths.socket()).await?;
    tracing::info!(socket = %paths.socket().display(), root = %paths.root.display(), "storaged serving");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut srv_rx = stop_rx.clone();
    let serve = tokio::spawn(server.serve(listener, async move {
        let _ = srv_rx.wait_for(|s| *s).await;
    }));
    let every = |period: Duration, mut rx: tokio::sync::watch::Receiver<bool>, step| {
        let storage = storage.clone();
        tokio::spawn(async move {
            loop {
                match step {
                    Loop::Scan => storage.refresh().await,
                    Loop::Supervise => storage.supervise().await,
                }
                // While starting (first scan, zdb servers coming up), supervise often, so a
                // restarted storaged reports ready as soon as its servers are re-adopted.
                let wait = match step {
                    Loop::Supervise if storage.health().is_none() => STARTING_TICK,
                    _ => period,
                };
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = rx.wait_for(|s| *s) => break,
                }
            }
        })
    };
    let scan = every(refresh_every, stop_rx.clone(), Loop::Scan);
    let supervise = every(Duration::from_secs(1), stop_rx, Loop::Supervise);
    shutdown.await;
    let _ = stop_tx.send(true);
    let _ = scan.await;
    let _ = supervise.await;
    let _ = serve.await;
    Ok(())
}

/// The supervise period while storaged reports `starting`.
const STARTING_TICK: Duration = Duration::from_millis(100);

#[derive(Clone, Copy)]
enum Loop {
    Scan,
    Supervise,
}
