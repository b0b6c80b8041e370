//! Prometheus metrics (`--metrics ADDR`): command counts, errors and latencies, bytes, and per
//! namespace live, data and dead bytes and compaction state, served as text on `GET /metrics`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::server::Shared;

/// Label of per-command series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CommandLabel {
    /// Command name.
    pub command: &'static str,
}

/// Label of per-namespace series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NamespaceLabel {
    /// Namespace name.
    pub namespace: String,
}

/// Every series zdb exports.
pub struct Metrics {
    registry: Registry,
    commands: Family<CommandLabel, Counter>,
    errors: Family<CommandLabel, Counter>,
    latency: Family<CommandLabel, Histogram>,
    entries: Family<NamespaceLabel, Gauge>,
    data_bytes: Family<NamespaceLabel, Gauge>,
    dead_bytes: Family<NamespaceLabel, Gauge>,
    compacting: Family<NamespaceLabel, Gauge>,
    /// Bytes of values read.
    pub read_bytes: Counter,
    /// Bytes of values written.
    pub written_bytes: Counter,
    /// Clients connected now.
    pub clients: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("zdb");
        let commands = Family::<CommandLabel, Counter>::default();
        let errors = Family::<CommandLabel, Counter>::default();
        let latency = Family::<CommandLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.000_01, 4.0, 10))
        });
        let (entries, data_bytes, dead_bytes, compacting) = (
            Family::default(),
            Family::default(),
            Family::default(),
            Family::default(),
        );
        let (read_bytes, written_bytes, clients) =
            (Counter::default(), Counter::default(), Gauge::default());
        registry.register("commands", "Commands executed", commands.clone());
        registry.register(
            "command_errors",
            "Commands answered with an error",
            errors.clone(),
        );
        registry.register(
            "command_duration_seconds",
            "Time to execute a command",
            latency.clone(),
        );
        registry.register("namespace_entries", "Live keys", entries.clone());
        registry.register(
            "namespace_data_bytes",
            "Bytes of live values",
            data_bytes.clone(),
        );
        registry.register(
            "namespace_dead_bytes",
            "Bytes of overwritten or deleted entries on disk",
            dead_bytes.clone(),
        );
        registry.register(
            "namespace_compacting",
            "1 while a compaction runs",
            compacting.clone(),
        );
        registry.register(
            "value_read_bytes",
            "Bytes of values read",
            read_bytes.clone(),
        );
        registry.register(
            "value_written_bytes",
            "Bytes of values written",
            written_bytes.clone(),
        );
        registry.register("clients", "Connected clients", clients.clone());
        Self {
            registry,
            commands,
            errors,
            latency,
            entries,
            data_bytes,
            dead_bytes,
            compacting,
            read_bytes,
            written_bytes,
            clients,
        }
    }
}

impl Metrics {
    /// Count one command.
    pub fn command(&self, command: &'static str, took: Duration, failed: bool) {
        let label = CommandLabel { command };
        self.commands.get_or_create(&label).inc();
        if failed {
            self.errors.get_or_create(&label).inc();
        }
        self.latency
            .get_or_create(&label)
            .observe(took.as_secs_f64());
    }

    /// The text exposition, with namespace gauges read now.
    pub fn render(&self, shared: &Shared) -> String {
        for name in shared.names() {
            let Some(h) = shared.get(&name) else { continue };
            let label = NamespaceLabel {
                namespace: String::from_utf8_lossy(&name).into_owned(),
            };
            let ns = h.ns.read();
            let gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
            self.entries.get_or_create(&label).set(gauge(ns.entries()));
            self.data_bytes
                .get_or_create(&label)
                .set(gauge(ns.data_size_bytes()));
            self.dead_bytes
                .get_or_create(&label)
                .set(gauge(ns.dead_bytes()));
            self.compacting
                .get_or_create(&label)
                .set(i64::from(h.compacting.load(Ordering::Relaxed)));
        }
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// Serve `GET /metrics` until the listener fails.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((mut conn, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut req = Vec::with_capacity(1024);
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 8192 {
                match tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf)).await {
                    Ok(Ok(n)) if n > 0 => req.extend_from_slice(buf.get(..n).unwrap_or_default()),
                    _ => return,
                }
            }
            let (status, body) = if req.starts_with(b"GET /metrics") {
                ("200 OK", shared.metrics.render(&shared))
            } else {
                ("404 Not Found", "not found\n".to_string())
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = conn.write_all(head.as_bytes()).await;
            let _ = conn.write_all(body.as_bytes()).await;
        });
    }
}
