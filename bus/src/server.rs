//! The server side: a registry of typed handlers by `name@version`, the built-in `health@1`
//! method, and the accept loop.
//!
//! Limits a peer cannot grow: at most [`DEFAULT_MAX_CONNECTIONS`] connections at once (more
//! are closed at accept), a frame must arrive whole within the idle timeout
//! ([`DEFAULT_IDLE_TIMEOUT`], also the longest wait for the next call on a connection), and a
//! reply or event must be taken by the peer within it too. A subscription waits for events as
//! long as the peer stays.

use crate::Method;
use crate::api::health::{GetHealth, Health, HealthStatus};
use crate::error::RemoteError;
use crate::events::{DEFAULT_QUEUE, Publisher};
use crate::frame::{
    ClientFrame, Event, FrameError, ServerFrame, read_frame, write_frame, write_raw,
};
use serde_json::Value;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;

/// Connections served at once by default.
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;
/// Default idle timeout: the longest a connection may wait between frames, take to send one
/// frame, or take to accept one reply.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type Handler = Arc<dyn Fn(Value) -> BoxFuture<Result<Value, RemoteError>> + Send + Sync>;

/// A health probe: returns the status and an optional detail line (no secrets).
pub type HealthCheck = Arc<dyn Fn() -> (HealthStatus, Option<String>) + Send + Sync>;

/// A bus server for one daemon. Register handlers, then [`Server::serve`].
pub struct Server {
    service: String,
    handlers: HashMap<(String, u32), Handler>,
    publisher: Publisher,
    queue: usize,
    health: Option<HealthCheck>,
    max_connections: usize,
    idle: Duration,
    keep_socket: bool,
    drain: Option<Duration>,
}

/// The longest `serve` waits for its connections to drain ([`Server::drain_on_stop`]).
pub const DRAIN_LIMIT: Duration = Duration::from_secs(10);

struct Shared {
    service: String,
    handlers: HashMap<(String, u32), Handler>,
    publisher: Publisher,
    queue: usize,
    health: Option<HealthCheck>,
    started: Instant,
    idle: Duration,
    /// Set when serving ends with a drain; the grace a connection waits for its last call.
    draining: Option<(tokio::sync::watch::Receiver<bool>, Duration)>,
}

impl Server {
    /// A server for `service` (e.g. `storaged`), answering `health@1` already.
    pub fn new(service: impl Into<String>) -> Self {
        Server {
            service: service.into(),
            handlers: HashMap::new(),
            publisher: Publisher::default(),
            queue: DEFAULT_QUEUE,
            health: None,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            idle: DEFAULT_IDLE_TIMEOUT,
            keep_socket: false,
            drain: None,
        }
    }

    /// Registers the handler of method `M`. A later registration of the same method replaces it.
    pub fn handle<M, F, Fut>(&mut self, f: F) -> &mut Self
    where
        M: Method,
        F: Fn(M::Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<M::Reply, RemoteError>> + Send + 'static,
    {
        let f = Arc::new(f);
        let handler: Handler = Arc::new(move |params: Value| {
            let f = f.clone();
            Box::pin(async move {
                let params = if params.is_null() {
                    Value::Object(Default::default())
                } else {
                    params
                };
                let req: M::Request = serde_json::from_value(params).map_err(|e| {
                    RemoteError::invalid(format!(
                        "bad parameters for {}@{}: {e}",
                        M::NAME,
                        M::VERSION
                    ))
                })?;
                let reply = f(req).await?;
                serde_json::to_value(reply)
                    .map_err(|e| RemoteError::internal(format!("reply does not serialize: {e}")))
            })
        });
        self.handlers
            .insert((M::NAME.to_string(), M::VERSION), handler);
        self
    }

    /// Sets the probe behind `health@1` (default: always ok).
    pub fn health_check(&mut self, check: HealthCheck) -> &mut Self {
        self.health = Some(check);
        self
    }

    /// Sets the per-subscriber event queue length (default 256).
    pub fn event_queue(&mut self, len: usize) -> &mut Self {
        self.queue = len.max(1);
        self
    }

    /// Sets how many connections are served at once (default 256); more are closed at accept.
    pub fn max_connections(&mut self, n: usize) -> &mut Self {
        self.max_connections = n.max(1);
        self
    }

    /// Sets the idle timeout (default 60 s): a connection that sends no frame, or only part of
    /// one, or does not take its reply, for this long is closed.
    pub fn idle_timeout(&mut self, t: Duration) -> &mut Self {
        self.idle = t;
        self
    }

    /// Leaves the socket file when serving ends: for a daemon that hands its listening socket
    /// to the process replacing it, which serves the same file.
    pub fn keep_socket(&mut self) -> &mut Self {
        self.keep_socket = true;
        self
    }

    /// When serving ends, the connections already accepted are not cut: each answers at most
    /// one more call (waiting `grace` for it to arrive: a client that connected sends its call
    /// at once) and closes, subscriptions end, and `serve` returns once all are closed (or
    /// after [`DRAIN_LIMIT`]). With [`Self::keep_socket`], a daemon handing its listening
    /// socket to a successor loses no call.
    pub fn drain_on_stop(&mut self, grace: Duration) -> &mut Self {
        self.drain = Some(grace);
        self
    }

    /// The publisher for this server's events; clone it into the daemon's code.
    pub fn publisher(&self) -> Publisher {
        self.publisher.clone()
    }

    /// Serves connections from `listener` until `shutdown` completes, then removes the socket
    /// file so callers see promptly that the daemon is gone (unless [`Self::keep_socket`]).
    pub async fn serve(self, listener: UnixListener, shutdown: impl Future<Output = ()>) {
        let path = listener
            .local_addr()
            .ok()
            .and_then(|a| a.as_pathname().map(|p| p.to_path_buf()))
            .filter(|_| !self.keep_socket);
        let (drain_tx, drain_rx) = tokio::sync::watch::channel(false);
        let shared = Arc::new(Shared {
            service: self.service,
            handlers: self.handlers,
            publisher: self.publisher,
            queue: self.queue,
            health: self.health,
            started: Instant::now(),
            idle: self.idle,
            draining: self.drain.map(|grace| (drain_rx, grace)),
        });
        let slots = Arc::new(Semaphore::new(self.max_connections));
        let mut full = false;
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => match slots.clone().try_acquire_owned() {
                        Ok(slot) => {
                            full = false;
                            let shared = shared.clone();
                            tokio::spawn(async move {
                                connection(shared, stream).await;
                                drop(slot);
                            });
                        }
                        Err(_) => {
                            // Closed at once: the caller gets a prompt error, not a hang.
                            if !full {
                                tracing::warn!(service = %shared.service, max = self.max_connections, "connection limit reached: refusing connections");
                            }
                            full = true;
                            drop(stream);
                        }
                    },
                    Err(e) => {
                        tracing::warn!(service = %shared.service, error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                },
            }
        }
        if self.drain.is_some() {
            drain_tx.send_replace(true);
            let all = u32::try_from(self.max_connections).unwrap_or(u32::MAX);
            if tokio::time::timeout(DRAIN_LIMIT, slots.acquire_many(all))
                .await
                .is_err()
            {
                tracing::warn!(service = %shared.service, "connections still open after the drain limit");
            }
        }
        if let Some(path) = path {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Resolves once the server drains (never when it does not).
async fn drained(draining: &Option<(tokio::sync::watch::Receiver<bool>, Duration)>) {
    match draining {
        Some((rx, _)) => {
            let mut rx = rx.clone();
            if rx.wait_for(|d| *d).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending().await,
    }
}

/// Reads the next frame: within the idle timeout, or, once the server drains, within the
/// drain's grace. `None`: the connection is to be closed.
async fn next_frame(shared: &Shared, stream: &mut UnixStream) -> Option<ClientFrame> {
    let grace = shared.draining.as_ref().map(|(_, g)| *g);
    let read = read_frame(stream);
    tokio::pin!(read);
    let got = tokio::select! {
        r = tokio::time::timeout(shared.idle, &mut read) => r,
        _ = drained(&shared.draining) => {
            tokio::time::timeout(grace.unwrap_or_default(), &mut read).await
        }
    };
    match got {
        Ok(Ok(f)) => Some(f),
        Ok(Err(FrameError::Closed)) => None,
        Ok(Err(e)) => {
            tracing::debug!(service = %shared.service, error = %e, "dropping bad connection");
            None
        }
        Err(_) => {
            tracing::debug!(service = %shared.service, "closing idle connection");
            None
        }
    }
}

/// Whether the server drains (a connection then answers its call and closes).
fn draining(shared: &Shared) -> bool {
    shared.draining.as_ref().is_some_and(|(rx, _)| *rx.borrow())
}

impl Shared {
    async fn dispatch(
        &self,
        method: &str,
        version: u32,
        params: Value,
    ) -> Result<Value, RemoteError> {
        if method == <GetHealth as Method>::NAME && version == <GetHealth as Method>::VERSION {
            let (status, detail) = match &self.health {
                Some(check) => check(),
                None => (HealthStatus::Ok, None),
            };
            let health = Health {
                service: self.service.clone(),
                status,
                detail,
                pid: std::process::id(),
                uptime_secs: self.started.elapsed().as_secs(),
                methods: self.method_list(),
            };
            return serde_json::to_value(health).map_err(|e| RemoteError::internal(e.to_string()));
        }
        match self.handlers.get(&(method.to_string(), version)) {
            Some(h) => h(params).await,
            None => {
                let mut known: Vec<u32> = self
                    .handlers
                    .keys()
                    .filter(|(n, _)| n == method)
                    .map(|(_, v)| *v)
                    .collect();
                known.sort_unstable();
                let msg = if known.is_empty() {
                    format!("{} has no method {method}", self.service)
                } else {
                    format!(
                        "{} serves {method} only in versions {known:?}, not {version}",
                        self.service
                    )
                };
                Err(RemoteError::new(crate::ErrorCode::UnknownMethod, msg))
            }
        }
    }

    fn method_list(&self) -> Vec<String> {
        let mut m: Vec<String> = self
            .handlers
            .keys()
            .map(|(n, v)| format!("{n}@{v}"))
            .chain(std::iter::once("health@1".to_string()))
            .collect();
        m.sort();
        m
    }
}

async fn connection(shared: Arc<Shared>, mut stream: UnixStream) {
    loop {
        let Some(frame) = next_frame(&shared, &mut stream).await else {
            return;
        };
        match frame {
            ClientFrame::Call {
                id,
                method,
                version,
                params,
            } => {
                let reply = match shared.dispatch(&method, version, params).await {
                    Ok(v) => ServerFrame::Reply {
                        id,
                        result: Some(v),
                        error: None,
                    },
                    Err(e) => ServerFrame::Reply {
                        id,
                        result: None,
                        error: Some(e),
                    },
                };
                let sent =
                    tokio::time::timeout(shared.idle, write_frame(&mut stream, &reply)).await;
                if !matches!(sent, Ok(Ok(()))) || draining(&shared) {
                    return;
                }
            }
            ClientFrame::Subscribe { topic } => {
                subscription(&shared, stream, topic).await;
                return;
            }
        }
    }
}

async fn subscription(shared: &Shared, stream: UnixStream, topic: String) {
    let (mut rd, mut wr) = stream.into_split();
    let mut sub = shared.publisher.subscribe(&topic, shared.queue);
    let ack = ServerFrame::Subscribed {
        topic: topic.clone(),
    };
    if !matches!(
        tokio::time::timeout(shared.idle, write_frame(&mut wr, &ack)).await,
        Ok(Ok(()))
    ) {
        return;
    }
    let mut probe = [0u8; 64];
    loop {
        tokio::select! {
            next = sub.rx.recv() => match next {
                Some(body) => {
                    // A peer that stops reading is dropped, not waited for.
                    if !matches!(
                        tokio::time::timeout(shared.idle, write_raw(&mut wr, &body)).await,
                        Ok(Ok(()))
                    ) {
                        return;
                    }
                }
                None => break,
            },
            // The client sends nothing after subscribing; a read returning means it went away.
            _ = rd.read(&mut probe) => return,
            _ = drained(&shared.draining) => return,
        }
    }
    if sub.overflowed.load(Ordering::Acquire) {
        tracing::info!(service = %shared.service, topic = %topic, "dropped slow event subscriber");
        let notice = ServerFrame::Event(Event {
            topic: crate::DROPPED_TOPIC.to_string(),
            seq: shared.publisher.next_seq(),
            data: serde_json::json!({
                "reason": "subscriber too slow: event queue full",
                "queue": shared.queue,
                "topic": topic,
            }),
        });
        let _ = tokio::time::timeout(shared.idle, write_frame(&mut wr, &notice)).await;
    }
}
