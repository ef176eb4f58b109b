//! Observability: spans and events through [`tracing`](https://docs.rs/tracing)
//! (feature `tracing`) and measurements through the
//! [`metrics`](https://docs.rs/metrics) facade (feature `metrics`).
//!
//! Both features are off by default. Off, neither crate is a dependency and
//! every hook in this module is an empty inline function: the library's code
//! is what it would be without them.
//!
//! # Spans (feature `tracing`)
//!
//! Every public operation of a [`Dict`](crate::Dict), a
//! [`View`](crate::View) or a [`Field`](crate::Field) (and so of their
//! blocking mirrors) that is one `async fn` runs in one span named
//! `redis_pydict.operation`, at level `DEBUG`: reads, writes, updates,
//! `clear`, `repair`, `to_map` and the setting up of subscriptions (the
//! streams `keys`, `values` and `items` have no span of their own). Its
//! fields follow OpenTelemetry's semantic conventions for database client
//! spans:
//!
//! | field | value |
//! |---|---|
//! | `otel.name` | `"{operation} {namespace}"`, e.g. `"get prod"` (the span name an OpenTelemetry bridge shows) |
//! | `otel.kind` | `"client"` |
//! | `db.system.name` | `"redis"` |
//! | `db.operation.name` | the operation: `get`, `get_many`, `set`, `set_many`, `update_with`, `delete`, ... |
//! | `db.collection.name` | the namespace, e.g. `"prod"` |
//! | `db.operation.batch.size` | entries of a batch operation (only when two or more) |
//! | `redis_pydict.attempt` | attempts an optimistic update took (`update`, `update_with`) |
//! | `error.type` | how the operation failed (see [`error_kind`]), only when it did |
//!
//! Events, all at `DEBUG`, in the span of the operation or subscription they
//! concern: `compare-and-set conflict` (`update_with` retries), `operation
//! failed` (with the error), `subscription reconnecting` and `subscription
//! reconnected`, `durable log read failed, retrying`, `gap` (with a `reason`:
//! `reconnect`, `overflow` or `log lost or trimmed`). Nothing else is
//! logged at `INFO` or above: a failed operation returns its [`Error`] to the
//! caller and a gap reaches the subscriber as
//! [`Change::Gap`](crate::Change::Gap), so the program decides what deserves
//! a log line; the counters below are the operator's signal. The one
//! exception, at `WARN`, is what nothing else could report: expiry events
//! were asked for ([`crate::StoreBuilder::enable_expiry_events`]) but the
//! server refused `CONFIG GET`, so whether expiries will arrive cannot be
//! verified.
//!
//! # Metrics (feature `metrics`)
//!
//! Names follow Prometheus conventions (unit suffix, `_total` for counters);
//! the duration histogram is OpenTelemetry's `db.client.operation.duration`
//! (seconds, one measurement per operation, batches counted once) under this
//! crate's prefix. Labels stay low-cardinality: the namespace is a label only
//! of the durable reader lag (one series per namespace with a durable
//! subscriber). `describe()` (feature `metrics`) registers their
//! descriptions and units.
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | [`OPERATION_DURATION`] | histogram (seconds) | `operation`, `outcome` (`ok`/`error`) |
//! | [`ERRORS`] | counter | `operation`, `kind` ([`error_kind`]) |
//! | [`CAS_RETRIES`] | counter | `operation` |
//! | [`GAPS`] | counter | `subscription` (`live`/`durable`), `reason` |
//! | [`RECONNECTS`] | counter | `subscription` |
//! | [`SUBSCRIPTION_BUFFER_DEPTH`] | gauge | none: items waiting in all subscriptions' buffers (live and durable) |
//! | [`DURABLE_READER_LAG`] | gauge (seconds) | `namespace` |
//!
//! # Wiring them up
//!
//! Enable the features (`redis-pydict = { version = "0.1", features =
//! ["tracing", "metrics"] }`), install a `tracing` subscriber and a `metrics`
//! recorder as for any other library; `examples/observability.rs` in the
//! repository is this, runnable. With `tracing-subscriber`'s fmt layer and
//! the Prometheus exporter (`metrics-exporter-prometheus`, default features
//! off when the application serves `/metrics` itself):
//!
//! ```
//! use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
//! use tracing_subscriber::{filter::Targets, fmt::format::FmtSpan, prelude::*};
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let server = redis_pydict_test::RedisServer::start();
//! # let url = server.url();
//! tracing_subscriber::registry()
//!     // Each operation span printed when it ends, with its duration.
//!     .with(tracing_subscriber::fmt::layer().with_span_events(FmtSpan::CLOSE))
//!     // redis-pydict logs only at DEBUG and below.
//!     .with(Targets::new().with_target("redis_pydict", tracing::Level::DEBUG))
//!     .init();
//! let prometheus = PrometheusBuilder::new()
//!     .set_buckets_for_metric(
//!         Matcher::Full("redis_pydict_operation_duration_seconds".into()),
//!         &[0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0],
//!     )?
//!     .install_recorder()?;
//!
//! let store = redis_pydict::Store::connect(&url).await?;
//! let hits = store.dict::<String, u64>("hits")?;
//! hits.update_with("home", |n| n.unwrap_or(0) + 1).await?;
//!
//! let exposition = prometheus.render(); // serve this at /metrics
//! # if cfg!(feature = "metrics") {
//! assert!(exposition.contains(r#"redis_pydict_operation_duration_seconds_count{operation="update_with",outcome="ok"} 1"#));
//! # }
//! # Ok(()) }
//! ```

use std::future::Future;

use crate::error::{Error, Result};
use crate::namespace::Namespace;

/// Histogram of operation latency, in seconds.
pub const OPERATION_DURATION: &str = "redis_pydict_operation_duration_seconds";
/// Counter of failed operations, by operation and [`error_kind`].
pub const ERRORS: &str = "redis_pydict_errors_total";
/// Counter of optimistic updates retried after a compare-and-set conflict.
pub const CAS_RETRIES: &str = "redis_pydict_cas_retries_total";
/// Counter of `Change::Gap`s handed to subscribers.
pub const GAPS: &str = "redis_pydict_gaps_total";
/// Counter of subscription reconnections (live pub/sub and durable readers).
pub const RECONNECTS: &str = "redis_pydict_reconnects_total";
/// Gauge of the items waiting in subscriptions' buffers (live and durable),
/// all together.
pub const SUBSCRIPTION_BUFFER_DEPTH: &str = "redis_pydict_subscription_buffer_depth";
/// Gauge, per namespace, of how old (seconds) the last log entry a durable
/// reader handed on was when it handed it on; 0 once the reader is caught up.
pub const DURABLE_READER_LAG: &str = "redis_pydict_durable_reader_lag_seconds";

/// The `kind` label / `error.type` field of an [`Error`]: its variant in
/// snake case (`redis`, `wrong_type`, `decode`, `contention`, ...).
pub fn error_kind(error: &Error) -> &'static str {
    #[allow(unreachable_patterns)] // Error is non_exhaustive for other crates only
    match error {
        Error::InvalidNamespace { .. } => "invalid_namespace",
        Error::InvalidKey { .. } => "invalid_key",
        Error::Decode { .. } => "decode",
        Error::MissingField { .. } => "missing_field",
        Error::Encode { .. } => "encode",
        Error::ValueTooLarge { .. } => "value_too_large",
        Error::InvalidTtl { .. } => "invalid_ttl",
        Error::WrongType { .. } => "wrong_type",
        Error::PartlyApplied { .. } => "partly_applied",
        Error::Removed { .. } => "removed",
        Error::ExpiryEventsOff { .. } => "expiry_events_off",
        Error::Contention { .. } => "contention",
        Error::Config(_) => "config",
        Error::Redis { .. } => "redis",
        Error::Connect { .. } => "connect",
        Error::InvalidLogId(_) => "invalid_log_id",
        Error::BlockingInAsync { .. } => "blocking_in_async",
        Error::Runtime(_) => "runtime",
        _ => "other",
    }
}

/// Registers the descriptions and units of this crate's metrics with the
/// installed recorder (exporters show them, e.g. as Prometheus `# HELP`).
/// Optional: the metrics work without it.
///
/// ```
/// redis_pydict::observe::describe();
/// ```
#[cfg(feature = "metrics")]
pub fn describe() {
    use metrics::Unit;
    metrics::describe_histogram!(
        OPERATION_DURATION,
        Unit::Seconds,
        "Latency of redis-pydict operations"
    );
    metrics::describe_counter!(ERRORS, "redis-pydict operations that failed, by error kind");
    metrics::describe_counter!(
        CAS_RETRIES,
        "Optimistic updates retried after a compare-and-set conflict"
    );
    metrics::describe_counter!(GAPS, "Gaps (possibly missed changes) handed to subscribers");
    metrics::describe_counter!(RECONNECTS, "Subscription reconnections");
    metrics::describe_gauge!(
        SUBSCRIPTION_BUFFER_DEPTH,
        "Items waiting in subscriptions' buffers"
    );
    metrics::describe_gauge!(
        DURABLE_READER_LAG,
        Unit::Seconds,
        "Age of the last log entry a durable reader handed on (0 when caught up)"
    );
}

/// Runs `operation` (a public operation named `name` on namespace `ns`
/// over `entries` entries) in its span, timing it and counting its error.
#[inline]
pub(crate) async fn op<T>(
    name: &'static str,
    ns: &Namespace,
    entries: usize,
    operation: impl Future<Output = Result<T>>,
) -> Result<T> {
    #[cfg(feature = "metrics")]
    let started = std::time::Instant::now();
    #[cfg(feature = "tracing")]
    let span = {
        let span = tracing::debug_span!(
            "redis_pydict.operation",
            "otel.name" = format!("{name} {}", ns.name()),
            "otel.kind" = "client",
            "db.system.name" = "redis",
            "db.operation.name" = name,
            "db.collection.name" = ns.name(),
            "db.operation.batch.size" = tracing::field::Empty,
            "redis_pydict.attempt" = tracing::field::Empty,
            "error.type" = tracing::field::Empty,
        );
        if entries > 1 {
            span.record("db.operation.batch.size", entries);
        }
        span
    };
    #[cfg(feature = "tracing")]
    let operation = tracing::Instrument::instrument(operation, span.clone());
    let _ = (ns, entries);
    let result = operation.await;
    #[cfg(any(feature = "tracing", feature = "metrics"))]
    if let Err(error) = &result {
        let kind = error_kind(error);
        #[cfg(feature = "tracing")]
        {
            span.record("error.type", kind);
            tracing::debug!(parent: &span, error = %error, "operation failed");
        }
        #[cfg(feature = "metrics")]
        metrics::counter!(ERRORS, "operation" => name, "kind" => kind).increment(1);
    }
    #[cfg(feature = "metrics")]
    {
        let outcome = if result.is_ok() { "ok" } else { "error" };
        metrics::histogram!(OPERATION_DURATION, "operation" => name, "outcome" => outcome)
            .record(started.elapsed());
    }
    let _ = name;
    result
}

/// Records the entry count of a batch operation whose size is known only
/// at its end (`set_many` takes an iterator).
#[inline]
pub(crate) fn batch_size(entries: u64) {
    #[cfg(feature = "tracing")]
    if entries > 1 {
        tracing::Span::current().record("db.operation.batch.size", entries);
    }
    let _ = entries;
}

/// Attempt `attempt` (0-based) of an optimistic update begins.
#[inline]
pub(crate) fn attempt(attempt: u32) {
    #[cfg(feature = "tracing")]
    tracing::Span::current().record("redis_pydict.attempt", attempt + 1);
    let _ = attempt;
}

/// Attempt `attempt` (0-based) of an optimistic update lost a
/// compare-and-set race on `keys` and will be retried (if attempts remain).
#[inline]
pub(crate) fn cas_conflict(operation: &'static str, attempt: u32, keys: &[&str]) {
    #[cfg(feature = "tracing")]
    tracing::debug!(
        attempt = attempt + 1,
        keys = ?keys,
        "compare-and-set conflict: another writer changed the keys, retrying"
    );
    #[cfg(feature = "metrics")]
    metrics::counter!(CAS_RETRIES, "operation" => operation).increment(1);
    let _ = (operation, attempt, keys);
}

/// What kind of subscription a hook concerns (the `subscription` label).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Source {
    /// Pub/sub events (`subscribe`, `subscribe_key`).
    Live,
    /// The durable log (`subscribe_durable`).
    Durable,
}

impl Source {
    #[cfg(any(feature = "tracing", feature = "metrics"))]
    fn label(self) -> &'static str {
        match self {
            Source::Live => "live",
            Source::Durable => "durable",
        }
    }
}

/// Expiry events were asked for but the server refused `CONFIG GET
/// notify-keyspace-events` (`error`): whether it reports expired keys cannot
/// be verified. The one event logged at `WARN`: nothing else says that
/// expiries may silently not arrive.
#[inline]
pub(crate) fn expiry_events_unverified(error: &redis::RedisError) {
    #[cfg(feature = "tracing")]
    tracing::warn!(
        error = %error,
        "expiry events were asked for, but CONFIG GET notify-keyspace-events was refused: \
         expiries arrive only if the server reports them (notify-keyspace-events with K and x, \
         set by an operator); allow +config|get to have this verified"
    );
    let _ = error;
}

/// A subscription hands its consumer a `Change::Gap` (`ns` when known).
#[inline]
pub(crate) fn gap(feed: Source, ns: Option<&Namespace>, reason: &'static str) {
    #[cfg(feature = "tracing")]
    tracing::debug!(
        subscription = feed.label(),
        "db.collection.name" = ns.map(Namespace::name),
        reason,
        gap = true,
        "gap: changes may have been missed"
    );
    #[cfg(feature = "metrics")]
    metrics::counter!(GAPS, "subscription" => feed.label(), "reason" => reason).increment(1);
    let _ = (feed, ns, reason);
}

/// A subscription's connection was lost (with `error`, when there is one)
/// and is being re-established.
#[inline]
pub(crate) fn reconnecting(feed: Source, ns: &Namespace, error: Option<&redis::RedisError>) {
    #[cfg(feature = "tracing")]
    tracing::debug!(
        subscription = feed.label(),
        "db.collection.name" = ns.name(),
        error = error.map(tracing::field::display),
        "subscription connection lost, reconnecting"
    );
    #[cfg(feature = "metrics")]
    metrics::counter!(RECONNECTS, "subscription" => feed.label()).increment(1);
    let _ = (feed, ns, error);
}

/// A durable reader handed on the log entry `id_ms` (its id's millisecond
/// part), or found nothing more to read (`None`).
#[inline]
pub(crate) fn durable_lag(ns: &Namespace, id_ms: Option<u64>) {
    #[cfg(feature = "metrics")]
    {
        let lag = id_ms.map_or(0.0, |ms| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            now.saturating_sub(ms) as f64 / 1000.0
        });
        metrics::gauge!(DURABLE_READER_LAG, "namespace" => ns.name().to_owned()).set(lag);
    }
    let _ = (ns, id_ms);
}

/// A subscription buffer's share of [`SUBSCRIPTION_BUFFER_DEPTH`]:
/// [`Depth::set`] after each change of the queue; dropping it withdraws
/// the share. Without the `metrics` feature, an empty type.
#[derive(Debug, Default)]
pub(crate) struct Depth {
    #[cfg(feature = "metrics")]
    counted: usize,
}

impl Depth {
    /// The buffer now holds `items`.
    #[inline]
    pub(crate) fn set(&mut self, items: usize) {
        #[cfg(feature = "metrics")]
        {
            let gauge = metrics::gauge!(SUBSCRIPTION_BUFFER_DEPTH);
            if items >= self.counted {
                gauge.increment((items - self.counted) as f64);
            } else {
                gauge.decrement((self.counted - items) as f64);
            }
            self.counted = items;
        }
        let _ = items;
    }
}

#[cfg(feature = "metrics")]
impl Drop for Depth {
    #[inline]
    fn drop(&mut self) {
        self.set(0);
    }
}
