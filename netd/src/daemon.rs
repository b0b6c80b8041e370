//! The daemon: re-adopt the networks of the records (namespaces and containers' interfaces
//! outlive netd; tunnels are re-made), serve the bus API, and every second retry failed networks
//! and restart dead tunnels.

use crate::api::{self, Shared};
use crate::engine::{Config, Engine};
use crate::host::Host;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often failed networks are retried.
const TICK: Duration = Duration::from_secs(1);

/// Runs netd until `shutdown` completes. Tunnels stop with it; namespaces, rules and
/// attachments stay for the next start.
pub async fn run<H: Host>(
    host: H,
    cfg: Config,
    run_dir: &std::path::Path,
    shutdown: impl Future<Output = ()>,
) -> Result<(), crate::Error> {
    let shared: Shared<H> = Arc::new(Mutex::new(Engine::open(host, cfg)?));
    api::blocking(&shared, |e| {
        e.adopt_all();
        Ok(())
    })
    .await
    .map_err(|e| crate::Error::State(e.message))?;
    let mut server = api::server(shared.clone());
    {
        let sh = shared.clone();
        server.health_check(Arc::new(move || match sh.try_lock() {
            Ok(e) => e.health(),
            // Busy with a request: it is alive; the next probe reads the details.
            Err(_) => (bus::api::health::HealthStatus::Ok, None),
        }));
    }
    let socket = bus::service_socket(run_dir, api::SERVICE);
    let listener = bus::bind(&socket).await.map_err(|e| crate::Error::Kernel {
        what: format!("bus socket {}", socket.display()),
        source: std::io::Error::other(e.to_string()),
    })?;
    tracing::info!(socket = %socket.display(), "serving");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut srv_rx = stop_rx.clone();
    let serve = tokio::spawn(server.serve(listener, async move {
        let _ = srv_rx.wait_for(|s| *s).await;
    }));
    let supervise = {
        let mut rx = stop_rx.clone();
        let sh = shared.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(TICK) => {}
                    _ = rx.wait_for(|s| *s) => break,
                }
                let _ = api::blocking(&sh, |e| {
                    e.tick();
                    Ok(())
                })
                .await;
            }
        })
    };
    shutdown.await;
    let _ = stop_tx.send(true);
    let _ = supervise.await;
    let _ = serve.await;
    Ok(())
}
