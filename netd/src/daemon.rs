//! The daemon: take over a running netd's tunnels when asked (see [`crate::handover`]),
//! re-adopt the networks of the records (namespaces and containers' interfaces outlive netd;
//! tunnels not handed over are re-made), serve the bus API and the take-over socket, and every
//! second retry failed networks and restart dead tunnels.

use crate::api::{self, Shared};
use crate::engine::{Config, Engine};
use crate::handover::{self, api_gate, channel, give, take};
use crate::host::Host;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often failed networks are retried.
const TICK: Duration = Duration::from_secs(1);

/// Runs netd until `shutdown` completes or a new netd took the tunnels over. Tunnels stop
/// with it; namespaces, rules and attachments stay for the next start. A take-over
/// (`opts.take_over`) that fails before its commit is an error: the old netd carries on.
pub async fn run<H: Host>(
    host: H,
    cfg: Config,
    run_dir: &std::path::Path,
    opts: handover::Options,
    shutdown: impl Future<Output = ()>,
) -> Result<(), crate::Error> {
    let shared: Shared<H> = Arc::new(Mutex::new(Engine::open(host, cfg)?));
    let mut handed_api = None;
    if let Some(path) = opts.take_over.clone() {
        let sh = shared.clone();
        handed_api = tokio::task::spawn_blocking(move || take_over(&path, &sh))
            .await
            .map_err(|e| crate::Error::State(e.to_string()))??;
    }
    api::blocking(&shared, |e| {
        e.adopt_all();
        Ok(())
    })
    .await
    .map_err(|e| crate::Error::State(e.message))?;
    let make_server = {
        let shared = shared.clone();
        move || {
            let mut server = api::server(shared.clone());
            let sh = shared.clone();
            server.health_check(Arc::new(move || match sh.try_lock() {
                Ok(e) => e.health(),
                // Busy with a request: it is alive; the next probe reads the details.
                Err(_) => (bus::api::health::HealthStatus::Ok, None),
            }));
            server
        }
    };
    let socket = bus::service_socket(run_dir, api::SERVICE);
    let bus_err = |e: std::io::Error| crate::Error::Kernel {
        what: format!("bus socket {}", socket.display()),
        source: e,
    };
    let listener = match handed_api {
        Some(l) => l,
        None => bus::bind(&socket)
            .await
            .map_err(|e| bus_err(std::io::Error::other(e.to_string())))?
            .into_std()
            .map_err(bus_err)?,
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (gate, serve) = api_gate::serve(listener, make_server, stop_rx.clone()).map_err(bus_err)?;
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    if let Some(path) = &opts.serve {
        let kernel = |e: std::io::Error| crate::Error::Kernel {
            what: format!("take-over socket {}", path.display()),
            source: e,
        };
        let listener = channel::listen(path).map_err(|e| kernel(std::io::Error::other(e)))?;
        give::serve(listener, shared.clone(), gate, done_tx).map_err(kernel)?;
    }
    tracing::info!(socket = %socket.display(), "serving");
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
    tokio::select! {
        _ = shutdown => {}
        // only a committed take-over sends; a dropped sender (no socket served) never ends
        Ok(()) = done_rx => {}
    }
    let _ = stop_tx.send(true);
    let _ = supervise.await;
    let _ = serve.await;
    Ok(())
}

/// Takes the tunnels of the netd serving `path`: sockets received, records loaded (already),
/// Ready, Commit, then each tunnel runs here. A tunnel that cannot be taken over is made anew
/// by the adoption that follows. The bus API's listener, when the old netd sent it.
fn take_over<H: Host>(
    path: &std::path::Path,
    shared: &Shared<H>,
) -> Result<Option<std::os::unix::net::UnixListener>, crate::Error> {
    let failed = |e: handover::channel::HandoverError| {
        crate::Error::State(format!("take-over from {}: {e}", path.display()))
    };
    let offer = take::request(path).map_err(failed)?;
    let mut engine = shared
        .lock()
        .map_err(|_| crate::Error::State("engine lock poisoned".into()))?;
    let unknown: Vec<&str> = offer
        .sockets
        .iter()
        .map(|(id, _)| id.as_str())
        .filter(|id| !engine.has(id))
        .collect();
    if !unknown.is_empty() {
        let why = format!("no record here for networks {}", unknown.join(", "));
        offer.abort(&why);
        return Err(crate::Error::State(format!("take-over: {why}")));
    }
    let api = offer.commit().map_err(failed)?;
    let n = offer.sockets.len();
    for (id, socket) in offer.sockets {
        if let Err(e) = engine.adopt_handed(&id, socket) {
            tracing::warn!(network = %id, error = %e, "tunnel not taken over: made anew");
        }
    }
    tracing::info!(networks = n, api = api.is_some(), "tunnels taken over");
    Ok(api)
}
