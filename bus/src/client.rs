//! The client side: one connection per call (so a restarted daemon is picked up without any
//! reconnect logic), with a connect timeout and a call timeout.

use crate::Method;
use crate::error::BusError;
use crate::frame::{ClientFrame, Event, FrameError, ServerFrame, read_frame, write_frame};
use crate::socket::service_name;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::net::UnixStream;

/// Default time allowed to connect.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Default time allowed for a reply.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// A handle to one daemon's socket. Cheap; holds no connection between calls.
#[derive(Debug)]
pub struct Client {
    path: PathBuf,
    service: String,
    connect_timeout: Duration,
    call_timeout: Duration,
    next_id: AtomicU64,
}

impl Clone for Client {
    fn clone(&self) -> Self {
        Client {
            path: self.path.clone(),
            service: self.service.clone(),
            connect_timeout: self.connect_timeout,
            call_timeout: self.call_timeout,
            next_id: AtomicU64::new(1),
        }
    }
}

/// A stream of events from one subscription.
pub struct Subscription {
    stream: UnixStream,
    service: String,
}

impl Client {
    /// A client for the socket at `path`; the service name in errors is the file stem.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        Client {
            service: service_name(&path),
            path,
            connect_timeout: CONNECT_TIMEOUT,
            call_timeout: CALL_TIMEOUT,
            next_id: AtomicU64::new(1),
        }
    }

    /// Sets the connect timeout.
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }

    /// Sets the reply timeout.
    pub fn call_timeout(mut self, t: Duration) -> Self {
        self.call_timeout = t;
        self
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The service name used in errors.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// Calls a typed method.
    pub async fn call<M: Method>(&self, req: &M::Request) -> Result<M::Reply, BusError> {
        let params = serde_json::to_value(req).map_err(|e| self.protocol(e.to_string()))?;
        let v = self.call_raw(M::NAME, M::VERSION, params).await?;
        serde_json::from_value(v).map_err(|e| {
            self.protocol(format!(
                "reply to {}@{} has the wrong shape: {e}",
                M::NAME,
                M::VERSION
            ))
        })
    }

    /// Calls a method by name and version with JSON parameters.
    pub async fn call_raw(
        &self,
        method: &str,
        version: u32,
        params: Value,
    ) -> Result<Value, BusError> {
        let spec = format!("{method}@{version}");
        let mut stream = self.connect().await?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = ClientFrame::Call {
            id,
            method: method.to_string(),
            version,
            params,
        };
        let exchange = async {
            write_frame(&mut stream, &frame).await?;
            loop {
                let reply: ServerFrame = read_frame(&mut stream).await?;
                if let ServerFrame::Reply {
                    id: rid,
                    result,
                    error,
                } = reply
                    && rid == id
                {
                    return Ok::<_, FrameError>((result, error));
                }
            }
        };
        let (result, error) = match tokio::time::timeout(self.call_timeout, exchange).await {
            Err(_) => {
                return Err(BusError::Timeout {
                    service: self.service.clone(),
                    method: spec,
                    after: self.call_timeout,
                });
            }
            Ok(Err(e)) => return Err(self.frame_error(e)),
            Ok(Ok(r)) => r,
        };
        match (result, error) {
            (_, Some(source)) => Err(BusError::Remote {
                service: self.service.clone(),
                method: spec,
                source,
            }),
            (Some(v), None) => Ok(v),
            (None, None) => Ok(Value::Null),
        }
    }

    /// Checks that the daemon answers `health@1`.
    pub async fn health(&self) -> Result<crate::api::health::Health, BusError> {
        self.call::<crate::api::health::GetHealth>(&crate::api::Empty {})
            .await
    }

    /// Subscribes to events whose topic equals `topic` or starts with `topic.` (empty: all).
    /// Returns once the server has registered the subscription.
    pub async fn subscribe(&self, topic: &str) -> Result<Subscription, BusError> {
        let mut stream = self.connect().await?;
        let frame = ClientFrame::Subscribe {
            topic: topic.to_string(),
        };
        let ack = async {
            write_frame(&mut stream, &frame).await?;
            read_frame::<_, ServerFrame>(&mut stream).await
        };
        match tokio::time::timeout(self.call_timeout, ack).await {
            Err(_) => Err(BusError::Timeout {
                service: self.service.clone(),
                method: "subscribe".into(),
                after: self.call_timeout,
            }),
            Ok(Err(e)) => Err(self.frame_error(e)),
            Ok(Ok(ServerFrame::Subscribed { .. })) => Ok(Subscription {
                stream,
                service: self.service.clone(),
            }),
            Ok(Ok(other)) => Err(self.protocol(format!("expected subscribed, got {other:?}"))),
        }
    }

    async fn connect(&self) -> Result<UnixStream, BusError> {
        if !self.path.exists() {
            return Err(BusError::NotRunning {
                service: self.service.clone(),
                path: self.path.clone(),
                reason: "no socket",
            });
        }
        match tokio::time::timeout(self.connect_timeout, UnixStream::connect(&self.path)).await {
            Err(_) => Err(BusError::ConnectTimeout {
                service: self.service.clone(),
                path: self.path.clone(),
                after: self.connect_timeout,
            }),
            Ok(Ok(s)) => Ok(s),
            Ok(Err(e)) => match e.kind() {
                std::io::ErrorKind::ConnectionRefused => Err(BusError::NotRunning {
                    service: self.service.clone(),
                    path: self.path.clone(),
                    reason: "connection refused",
                }),
                std::io::ErrorKind::NotFound => Err(BusError::NotRunning {
                    service: self.service.clone(),
                    path: self.path.clone(),
                    reason: "no socket",
                }),
                _ => Err(BusError::Io {
                    service: self.service.clone(),
                    path: self.path.clone(),
                    source: e,
                }),
            },
        }
    }

    fn protocol(&self, message: String) -> BusError {
        BusError::Protocol {
            service: self.service.clone(),
            message,
        }
    }

    fn frame_error(&self, e: FrameError) -> BusError {
        match e {
            FrameError::Closed => BusError::Closed {
                service: self.service.clone(),
            },
            FrameError::Io(source) if source.kind() == std::io::ErrorKind::BrokenPipe => {
                BusError::Closed {
                    service: self.service.clone(),
                }
            }
            FrameError::Io(source) => BusError::Io {
                service: self.service.clone(),
                path: self.path.clone(),
                source,
            },
            other => self.protocol(other.to_string()),
        }
    }
}

impl Subscription {
    /// The next event; `None` when the server ended the stream (shut down, or dropped this
    /// subscriber after a [`DROPPED_TOPIC`](crate::DROPPED_TOPIC) event).
    pub async fn next(&mut self) -> Result<Option<Event>, BusError> {
        loop {
            match read_frame::<_, ServerFrame>(&mut self.stream).await {
                Ok(ServerFrame::Event(e)) => return Ok(Some(e)),
                Ok(_) => continue,
                Err(FrameError::Closed) => return Ok(None),
                Err(FrameError::Io(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                    return Ok(None);
                }
                Err(e) => {
                    return Err(BusError::Protocol {
                        service: self.service.clone(),
                        message: e.to_string(),
                    });
                }
            }
        }
    }
}
