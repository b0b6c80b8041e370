//! Prometheus metrics (`--metrics ADDR`): command counts, errors and latencies, bytes, and per
//! namespace live, data and dead bytes and compaction state, rendered as text (served on
//! `GET /metrics` by `server::metrics_http`).

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

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

/// One namespace's figures, sampled when the metrics are read.
#[derive(Debug, Clone)]
pub struct NamespaceSample {
    /// Namespace name.
    pub name: String,
    /// Live keys.
    pub entries: u64,
    /// Bytes of live values.
    pub data_bytes: u64,
    /// Bytes of superseded and deleted entries on disk.
    pub dead_bytes: u64,
    /// A compaction runs.
    pub compacting: bool,
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

    /// The text exposition, with the namespace gauges set from `namespaces`.
    pub fn render(&self, namespaces: impl IntoIterator<Item = NamespaceSample>) -> String {
        let gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        for ns in namespaces {
            let label = NamespaceLabel { namespace: ns.name };
            self.entries.get_or_create(&label).set(gauge(ns.entries));
            self.data_bytes
                .get_or_create(&label)
                .set(gauge(ns.data_bytes));
            self.dead_bytes
                .get_or_create(&label)
                .set(gauge(ns.dead_bytes));
            self.compacting
                .get_or_create(&label)
                .set(i64::from(ns.compacting));
        }
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
