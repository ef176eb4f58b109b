//! The `tracing` and `metrics` features against a real server: the spans,
//! fields, events, counters, histograms and gauges of representative
//! operations, captured by a recording `tracing` layer and a recording
//! `metrics` recorder installed once for this binary.
//!
//! The suite's dev-dependency on `redis-pydict` turns both features on, so
//! `cargo test --workspace` (CI) runs these tests; the last one proves that
//! the library's own build, without the features, depends on neither crate.
//!
//! Metrics are process-wide, so the tests take turns (`SERIAL`) and compare
//! values before and after what they do. Spans and events are told apart by
//! namespace (each test has its own).

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures::StreamExt;
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use metrics_util::registry::{AtomicStorage, Registry};
use redis_pydict::observe;
use redis_pydict::{Change, Error, LogId, RedisDict, StartFrom, Store};
use redis_pydict_test::RedisServer;
use tracing::field::{Field, Visit};
use tracing::{Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// How long to wait for something asynchronous (a subscription's task).
const WAIT: Duration = Duration::from_secs(10);

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

// ----- the capturing tracing layer -------------------------------------------

type Fields = BTreeMap<String, String>;

struct SpanRecord {
    name: &'static str,
    level: Level,
    fields: Mutex<Fields>,
}

impl SpanRecord {
    fn fields(&self) -> Fields {
        self.fields.lock().unwrap().clone()
    }
}

struct EventRecord {
    level: Level,
    target: String,
    fields: Fields,
    span: Option<Arc<SpanRecord>>,
}

#[derive(Default)]
struct Captured {
    spans: Mutex<Vec<Arc<SpanRecord>>>,
    events: Mutex<Vec<EventRecord>>,
}

struct Collect<'a>(&'a mut Fields);

impl Visit for Collect<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

struct CaptureLayer(Arc<Captured>);

impl<S> Layer<S> for CaptureLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: Context<'_, S>,
    ) {
        let mut fields = Fields::new();
        attrs.record(&mut Collect(&mut fields));
        let record = Arc::new(SpanRecord {
            name: attrs.metadata().name(),
            level: *attrs.metadata().level(),
            fields: Mutex::new(fields),
        });
        self.0.spans.lock().unwrap().push(record.clone());
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(record);
        }
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        ctx: Context<'_, S>,
    ) {
        if let Some(span) = ctx.span(id) {
            if let Some(record) = span.extensions().get::<Arc<SpanRecord>>() {
                values.record(&mut Collect(&mut record.fields.lock().unwrap()));
            }
        }
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::new();
        event.record(&mut Collect(&mut fields));
        let span = ctx
            .event_span(event)
            .and_then(|span| span.extensions().get::<Arc<SpanRecord>>().cloned());
        self.0.events.lock().unwrap().push(EventRecord {
            level: *event.metadata().level(),
            target: event.metadata().target().to_owned(),
            fields,
            span,
        });
    }
}

// ----- the capturing metrics recorder ----------------------------------------

/// Keeps every metric as it is (metrics-util's `DebuggingRecorder` resets
/// counters and gauges at each snapshot, which a gauge moved by increments,
/// like the buffer depth, cannot survive).
struct CaptureRecorder(Arc<Registry<Key, AtomicStorage>>);

impl Recorder for CaptureRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        self.0
            .get_or_create_counter(key, |c| Counter::from_arc(c.clone()))
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        self.0
            .get_or_create_gauge(key, |g| Gauge::from_arc(g.clone()))
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        self.0
            .get_or_create_histogram(key, |h| Histogram::from_arc(h.clone()))
    }
}

struct Capture {
    traces: Arc<Captured>,
    metrics: Arc<Registry<Key, AtomicStorage>>,
}

fn capture() -> &'static Capture {
    static CAPTURE: OnceLock<Capture> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let traces = Arc::new(Captured::default());
        tracing::subscriber::set_global_default(
            tracing_subscriber::registry().with(CaptureLayer(traces.clone())),
        )
        .expect("no other tracing subscriber in this test binary");
        let metrics = Arc::new(Registry::atomic());
        metrics::set_global_recorder(CaptureRecorder(metrics.clone()))
            .expect("no other metrics recorder in this test binary");
        observe::describe();
        Capture { traces, metrics }
    })
}

fn key_matches(key: &Key, name: &str, labels: &[(&str, &str)]) -> bool {
    key.name() == name
        && labels
            .iter()
            .all(|(k, v)| key.labels().any(|l| l.key() == *k && l.value() == *v))
}

impl Capture {
    /// Sum of the counters `name` carrying `labels`.
    fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.metrics
            .get_counter_handles()
            .iter()
            .filter(|(key, _)| key_matches(key, name, labels))
            .map(|(_, c)| c.load(std::sync::atomic::Ordering::SeqCst))
            .sum()
    }

    /// The gauge `name` with exactly these labels (0 if never set).
    fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.metrics
            .get_gauge_handles()
            .iter()
            .find(|(key, _)| key_matches(key, name, labels))
            .map_or(0.0, |(_, g)| {
                f64::from_bits(g.load(std::sync::atomic::Ordering::SeqCst))
            })
    }

    /// Samples of the histograms `name` carrying `labels`.
    fn samples(&self, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
        self.metrics
            .get_histogram_handles()
            .iter()
            .filter(|(key, _)| key_matches(key, name, labels))
            .flat_map(|(_, h)| h.data())
            .collect()
    }

    /// Fields of the operation spans of namespace `ns`, in creation order.
    fn spans(&self, ns: &str) -> Vec<Fields> {
        self.traces
            .spans
            .lock()
            .unwrap()
            .iter()
            .filter(|s| {
                s.fields
                    .lock()
                    .unwrap()
                    .get("db.collection.name")
                    .map(String::as_str)
                    == Some(ns)
            })
            .map(|s| {
                assert_eq!(s.name, "redis_pydict.operation");
                assert_eq!(s.level, Level::DEBUG, "operation spans are DEBUG");
                s.fields()
            })
            .collect()
    }

    /// The operation span `op` of `ns`, the only one.
    fn span(&self, ns: &str, op: &str) -> Fields {
        let mut found: Vec<Fields> = self
            .spans(ns)
            .into_iter()
            .filter(|f| f.get("db.operation.name").map(String::as_str) == Some(op))
            .collect();
        assert_eq!(found.len(), 1, "one {op} span on {ns}: {found:?}");
        found.remove(0)
    }

    /// Events about `ns` (by their own field or their span's): level,
    /// fields and the operation of their span.
    fn events(&self, ns: &str) -> Vec<(Level, Fields, Option<String>)> {
        self.traces
            .events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| {
                let span = e.span.as_ref().map(|s| s.fields());
                let own = e.fields.get("db.collection.name");
                let of_span = span.as_ref().and_then(|s| s.get("db.collection.name"));
                (own.or(of_span).map(String::as_str) == Some(ns)).then(|| {
                    let op = span.and_then(|s| s.get("db.operation.name").cloned());
                    (e.level, e.fields.clone(), op)
                })
            })
            .collect()
    }

    /// Nothing this crate emitted, in any test so far, is at INFO or above.
    fn assert_quiet(&self) {
        for e in self.traces.events.lock().unwrap().iter() {
            if e.target.starts_with("redis_pydict") {
                assert!(
                    e.level == Level::DEBUG || e.level == Level::TRACE,
                    "event at {}: {:?}",
                    e.level,
                    e.fields
                );
            }
        }
    }
}

fn field<'f>(fields: &'f Fields, name: &str) -> Option<&'f str> {
    fields.get(name).map(String::as_str)
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The next item of `sub`, within `WAIT`.
async fn next<T>(sub: &mut redis_pydict::Subscription<T>) -> T {
    tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("an item within WAIT")
        .expect("the stream goes on")
        .expect("an item, not an error")
}

fn cbor<T: serde::Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(value, &mut out).unwrap();
    out
}

// ----- spans and latency of plain operations ---------------------------------

/// get, set, get_many and set_many run in one span each, attributed after
/// OpenTelemetry's database conventions; set_many's span carries its entry
/// count, and its latency is one measurement however many batches it took.
#[tokio::test]
async fn operations_have_otel_spans_and_one_latency_sample_each() {
    let capture = capture();
    let _turn = SERIAL.lock().await;
    let server = RedisServer::start();
    let store = Store::builder(&server.url())
        .max_batch(10)
        .connect()
        .await
        .unwrap();
    let ns = "obs_ops";
    let d = store.dict::<String, u32>(ns).unwrap();
    let op = |name| [("operation", name), ("outcome", "ok")];
    let gets = capture
        .samples(observe::OPERATION_DURATION, &op("get"))
        .len();
    let set_manys = capture
        .samples(observe::OPERATION_DURATION, &op("set_many"))
        .len();

    d.set("a", &1).await.unwrap();
    assert_eq!(d.get("a").await.unwrap(), Some(1));
    d.set_many((0..25u32).map(|i| (format!("k{i}"), i)))
        .await
        .unwrap();
    let many = d.get_many(["k1", "k2", "k3"]).await.unwrap();
    assert_eq!(many, [Some(1), Some(2), Some(3)]);

    let set = capture.span(ns, "set");
    assert_eq!(field(&set, "otel.name"), Some("set obs_ops"));
    assert_eq!(field(&set, "otel.kind"), Some("client"));
    assert_eq!(field(&set, "db.system.name"), Some("redis"));
    assert_eq!(field(&set, "db.collection.name"), Some(ns));
    assert_eq!(
        field(&set, "db.operation.batch.size"),
        None,
        "one entry is no batch"
    );
    assert_eq!(field(&set, "error.type"), None);
    let get = capture.span(ns, "get");
    assert_eq!(field(&get, "otel.name"), Some("get obs_ops"));
    assert_eq!(
        field(&capture.span(ns, "set_many"), "db.operation.batch.size"),
        Some("25")
    );
    assert_eq!(
        field(&capture.span(ns, "get_many"), "db.operation.batch.size"),
        Some("3")
    );
    assert_eq!(
        capture.spans(ns).len(),
        4,
        "one span per operation, no more"
    );

    let get_samples = capture.samples(observe::OPERATION_DURATION, &op("get"));
    assert_eq!(get_samples.len(), gets + 1);
    assert!(
        get_samples.iter().all(|s| *s >= 0.0 && *s < 10.0),
        "seconds: {get_samples:?}"
    );
    assert_eq!(
        capture
            .samples(observe::OPERATION_DURATION, &op("set_many"))
            .len(),
        set_manys + 1,
        "three batches, one operation"
    );
    assert!(
        capture.events(ns).is_empty(),
        "the happy path emits no event"
    );
    capture.assert_quiet();
}

/// A view's `load`, `save` and a field's `update` are operations too.
#[tokio::test]
async fn view_operations_have_spans() {
    #[derive(RedisDict, Debug)]
    struct Limits {
        rate: u32,
        burst: u32,
    }
    let capture = capture();
    let _turn = SERIAL.lock().await;
    let (_server, store) = support::start().await;
    let view = Limits::view(&store, "obs_view").unwrap();
    view.save(&Limits { rate: 1, burst: 2 }).await.unwrap();
    view.rate.update(|r| *r += 1).await.unwrap();
    assert_eq!(view.load().await.unwrap().rate, 2);
    let save = capture.span("obs_view", "save");
    assert_eq!(field(&save, "db.operation.batch.size"), Some("2"));
    assert_eq!(
        field(&capture.span("obs_view", "load"), "db.operation.batch.size"),
        Some("2")
    );
    assert_eq!(
        field(&capture.span("obs_view", "update"), "redis_pydict.attempt"),
        Some("1")
    );
    capture.assert_quiet();
}

/// The blocking mirror runs the same operations, so it has the same spans
/// and measurements.
#[test]
fn blocking_operations_have_spans_and_latency() {
    let capture = capture();
    let _turn = SERIAL.blocking_lock();
    let server = RedisServer::start();
    let store = redis_pydict::blocking::Store::connect(&server.url()).unwrap();
    let ns = "obs_blocking";
    let d = store.dict::<String, u32>(ns).unwrap();
    let labels = [("operation", "get"), ("outcome", "ok")];
    let gets = capture.samples(observe::OPERATION_DURATION, &labels).len();
    d.set("a", &1).unwrap();
    assert_eq!(d.get("a").unwrap(), Some(1));
    assert_eq!(
        field(&capture.span(ns, "get"), "otel.name"),
        Some("get obs_blocking")
    );
    assert_eq!(
        field(&capture.span(ns, "set"), "db.system.name"),
        Some("redis")
    );
    assert_eq!(
        capture.samples(observe::OPERATION_DURATION, &labels).len(),
        gets + 1
    );
    capture.assert_quiet();
}

// ----- errors ----------------------------------------------------------------

/// A failed operation marks its span with `error.type`, emits a DEBUG event
/// with the error, and counts under its kind: a wrong-typed entry key and an
/// undecodable value (the decoding happens after the read, inside the span).
#[tokio::test]
async fn errors_are_counted_by_kind_and_marked_on_the_span() {
    let capture = capture();
    let _turn = SERIAL.lock().await;
    let (server, store) = support::start().await;
    let ns = "obs_err";
    let d = store.dict::<String, u32>(ns).unwrap();
    let mut raw = support::raw(&server).await;
    redis::cmd("LPUSH")
        .arg("{obs_err}:list")
        .arg("x")
        .exec_async(&mut raw)
        .await
        .unwrap();
    redis::cmd("SET")
        .arg("{obs_err}:bad")
        .arg(b"\xff\xff".as_slice())
        .exec_async(&mut raw)
        .await
        .unwrap();
    let labels = |kind| [("operation", "get"), ("kind", kind)];
    let wrong_before = capture.counter(observe::ERRORS, &labels("wrong_type"));
    let decode_before = capture.counter(observe::ERRORS, &labels("decode"));
    let failed_before = capture
        .samples(
            observe::OPERATION_DURATION,
            &[("operation", "get"), ("outcome", "error")],
        )
        .len();

    assert!(matches!(d.get("list").await, Err(Error::WrongType { .. })));
    assert!(matches!(d.get("bad").await, Err(Error::Decode { .. })));

    assert_eq!(
        capture.counter(observe::ERRORS, &labels("wrong_type")),
        wrong_before + 1
    );
    assert_eq!(
        capture.counter(observe::ERRORS, &labels("decode")),
        decode_before + 1
    );
    assert_eq!(
        capture
            .samples(
                observe::OPERATION_DURATION,
                &[("operation", "get"), ("outcome", "error")]
            )
            .len(),
        failed_before + 2
    );
    let kinds: Vec<Option<String>> = capture
        .spans(ns)
        .iter()
        .map(|f| f.get("error.type").cloned())
        .collect();
    assert_eq!(kinds, [Some("wrong_type".into()), Some("decode".into())]);
    let events = capture.events(ns);
    assert_eq!(events.len(), 2, "{events:?}");
    for (level, fields, op) in &events {
        assert_eq!(
            *level,
            Level::DEBUG,
            "a failure the caller gets is not logged louder"
        );
        assert_eq!(field(fields, "message"), Some("operation failed"));
        assert!(
            fields.get("error").is_some_and(|e| e.contains("obs_err")),
            "{fields:?}"
        );
        assert_eq!(op.as_deref(), Some("get"));
    }
    capture.assert_quiet();
}

// ----- compare-and-set conflicts ---------------------------------------------

/// Another writer changes the key between update_with's read and its write:
/// the conflict is a DEBUG event in the update's span, counted as a retry,
/// and the span records the attempts it took.
#[tokio::test]
async fn update_with_conflict_is_an_event_a_retry_and_an_attempt() {
    let capture = capture();
    let _turn = SERIAL.lock().await;
    let (server, store) = support::start().await;
    let ns = "obs_cas";
    let d = store.dict::<String, u32>(ns).unwrap();
    d.set("n", &1).await.unwrap();
    let retries = capture.counter(observe::CAS_RETRIES, &[("operation", "update_with")]);
    let mut other = redis::Client::open(server.url())
        .unwrap()
        .get_connection()
        .unwrap();
    let mut calls = 0;
    let written = d
        .update_with("n", |n| {
            calls += 1;
            if calls == 1 {
                // The other writer, between our read and our write.
                redis::cmd("SET")
                    .arg("{obs_cas}:n")
                    .arg(cbor(&40u32))
                    .exec(&mut other)
                    .unwrap();
            }
            n.unwrap_or(0) + 1
        })
        .await
        .unwrap();
    assert_eq!((written, calls), (41, 2), "the retry saw the other write");

    let span = capture.span(ns, "update_with");
    assert_eq!(field(&span, "redis_pydict.attempt"), Some("2"));
    assert_eq!(field(&span, "error.type"), None);
    let events = capture.events(ns);
    assert_eq!(events.len(), 1, "{events:?}");
    let (level, fields, op) = &events[0];
    assert_eq!(*level, Level::DEBUG);
    assert!(field(fields, "message").is_some_and(|m| m.starts_with("compare-and-set conflict")));
    assert_eq!(field(fields, "attempt"), Some("1"));
    assert_eq!(op.as_deref(), Some("update_with"));
    assert_eq!(
        capture.counter(observe::CAS_RETRIES, &[("operation", "update_with")]),
        retries + 1
    );
    capture.assert_quiet();
}

/// On a cluster, update_with compares and sets in one script: a conflict
/// there is the same event, retry count and attempt field.
#[tokio::test]
async fn update_with_conflict_on_a_cluster() {
    let capture = capture();
    let _turn = SERIAL.lock().await;
    let cluster = redis_pydict_test::RedisCluster::start();
    let store = Store::connect_cluster(cluster.urls()).await.unwrap();
    let ns = "obs_cas_cluster";
    let d = store.dict::<String, u32>(ns).unwrap();
    d.set("n", &1).await.unwrap();
    let retries = capture.counter(observe::CAS_RETRIES, &[("operation", "update_with")]);
    let entry = "{obs_cas_cluster}:n";
    let master = cluster.master_for_key(entry);
    let mut other = redis::Client::open(format!("redis://127.0.0.1:{master}/"))
        .unwrap()
        .get_connection()
        .unwrap();
    let mut calls = 0;
    let written = d
        .update_with("n", |n| {
            calls += 1;
            if calls == 1 {
                redis::cmd("SET")
                    .arg(entry)
                    .arg(cbor(&40u32))
                    .exec(&mut other)
                    .unwrap();
            }
            n.unwrap_or(0) + 1
        })
        .await
        .unwrap();
    assert_eq!((written, calls), (41, 2));
    let span = capture.span(ns, "update_with");
    assert_eq!(field(&span, "redis_pydict.attempt"), Some("2"));
    let events = capture.events(ns);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].0, Level::DEBUG);
    assert_eq!(field(&events[0].1, "attempt"), Some("1"));
    assert_eq!(
        capture.counter(observe::CAS_RETRIES, &[("operation", "update_with")]),
        retries + 1
    );
    capture.assert_quiet();
}

// ----- subscriptions ---------------------------------------------------------

/// CLIENT KILL of the pub/sub connection: the subscription reconnects and
/// yields a Gap; both are DEBUG events naming the namespace and are counted.
/// Events waiting in the buffer show in the buffer depth gauge.
#[tokio::test]
async fn subscription_gap_and_buffer_depth() {
    let capture = capture();
    let _turn = SERIAL.lock().await;
    let (server, store) = support::start().await;
    let ns = "obs_sub";
    let d = store.dict::<String, u32>(ns).unwrap();
    let gap_labels = [("subscription", "live"), ("reason", "reconnect")];
    let gaps = capture.counter(observe::GAPS, &gap_labels);
    let reconnects = capture.counter(observe::RECONNECTS, &[("subscription", "live")]);
    let depth = || capture.gauge(observe::SUBSCRIPTION_BUFFER_DEPTH, &[]);
    let depth_before = depth();

    let mut sub = d.subscribe("*").await.unwrap();
    for i in 0..3 {
        d.set(&format!("k{i}"), &i).await.unwrap();
    }
    eventually("three events buffered", || depth() == depth_before + 3.0).await;
    for _ in 0..3 {
        let event = next(&mut sub).await;
        assert!(matches!(event.change, Change::Set(_)));
    }
    assert_eq!(depth(), depth_before, "taken items leave the gauge");

    let mut raw = support::raw(&server).await;
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(killed > 0);
    let gap = next(&mut sub).await;
    assert_eq!(gap.change, Change::Gap);

    assert_eq!(capture.counter(observe::GAPS, &gap_labels), gaps + 1);
    assert_eq!(
        capture.counter(observe::RECONNECTS, &[("subscription", "live")]),
        reconnects + 1
    );
    let events = capture.events(ns);
    let messages: Vec<(&str, Option<&str>)> = events
        .iter()
        .map(|(_, f, _)| (field(f, "message").unwrap_or(""), field(f, "reason")))
        .collect();
    assert_eq!(
        messages,
        [
            ("subscription connection lost, reconnecting", None),
            ("gap: changes may have been missed", Some("reconnect")),
        ]
    );
    assert!(events.iter().all(|(level, _, _)| *level == Level::DEBUG));
    drop(sub);
    capture.assert_quiet();
}

/// A consumer too far behind loses what its buffer held: that Gap is a
/// DEBUG event and counted under `reason="overflow"`.
#[tokio::test]
async fn buffer_overflow_gap_is_counted() {
    let capture = capture();
    let _turn = SERIAL.lock().await;
    let server = RedisServer::start();
    let store = Store::builder(&server.url())
        .subscription_buffer(2, 1 << 20)
        .connect()
        .await
        .unwrap();
    let d = store.dict::<String, u32>("obs_overflow").unwrap();
    let labels = [("subscription", "live"), ("reason", "overflow")];
    let gaps = capture.counter(observe::GAPS, &labels);
    let overflow_events = || {
        capture
            .traces
            .events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.fields.get("reason").map(String::as_str) == Some("overflow"))
            .count()
    };
    let events_before = overflow_events();
    let mut sub = d.subscribe("*").await.unwrap();
    for i in 0..5 {
        d.set(&format!("k{i}"), &i).await.unwrap();
    }
    d.set("last", &99).await.unwrap();
    let mut seen_gap = false;
    loop {
        let event = next(&mut sub).await;
        seen_gap |= event.change == Change::Gap;
        if event.key.as_deref() == Some("last") {
            break;
        }
    }
    assert!(seen_gap, "the overflow is reported");
    let counted = capture.counter(observe::GAPS, &labels) - gaps;
    assert!(counted >= 1, "counted: {counted}");
    assert_eq!(overflow_events() - events_before, counted as usize);
    drop(sub);
    capture.assert_quiet();
}

// ----- durable reader ------------------------------------------------------------

/// A durable reader behind the log shows a lag of at least how old the
/// entries it hands on are, 0 once caught up; a log deleted under it is a
/// Gap, as an event and in the counter.
#[tokio::test]
async fn durable_reader_lag_and_lost_log() {
    let capture = capture();
    let _turn = SERIAL.lock().await;
    let server = RedisServer::start();
    let store = Store::builder(&server.url())
        .subscription_buffer(2, 1 << 20)
        .connect()
        .await
        .unwrap();
    let ns = "obs_log";
    let d = store
        .dict::<String, u32>(ns)
        .unwrap()
        .with_durable_log(1000);
    let lag = || capture.gauge(observe::DURABLE_READER_LAG, &[("namespace", ns)]);
    for i in 0..6 {
        d.set(&format!("k{i}"), &i).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Batches of 2 (the buffer): the first full batch is 300 ms old.
    let mut sub = d.subscribe_durable(StartFrom::Beginning).await.unwrap();
    eventually("a lag of the entries' age", || lag() >= 0.3).await;
    let mut last = LogId::ZERO;
    for i in 0..6 {
        let (id, event) = next(&mut sub).await;
        assert_eq!(event.change, Change::Set(i));
        last = id;
    }
    eventually("no lag once caught up", || lag() == 0.0).await;
    drop(sub);

    let gap_labels = [
        ("subscription", "durable"),
        ("reason", "log lost or trimmed"),
    ];
    let gaps = capture.counter(observe::GAPS, &gap_labels);
    let mut raw = support::raw(&server).await;
    redis::cmd("DEL")
        .arg("{obs_log}#log")
        .exec_async(&mut raw)
        .await
        .unwrap();
    d.set("after", &7).await.unwrap();
    let mut sub = d.subscribe_durable(StartFrom::After(last)).await.unwrap();
    let (_, gap) = next(&mut sub).await;
    assert_eq!(gap.change, Change::Gap);
    assert_eq!(capture.counter(observe::GAPS, &gap_labels), gaps + 1);
    let gap_events: Vec<_> = capture
        .events(ns)
        .into_iter()
        .filter(|(_, f, _)| field(f, "reason") == Some("log lost or trimmed"))
        .collect();
    assert_eq!(gap_events.len(), 1);
    assert_eq!(gap_events[0].0, Level::DEBUG);
    assert_eq!(field(&gap_events[0].1, "subscription"), Some("durable"));
    drop(sub);
    capture.assert_quiet();
}

/// CLIENT KILL of a durable reader's connection: it reconnects (a DEBUG
/// event, counted) and goes on from where it was, without a gap.
#[tokio::test]
async fn durable_reader_reconnect_is_counted_without_gap() {
    let capture = capture();
    let _turn = SERIAL.lock().await;
    let (server, store) = support::start().await;
    let ns = "obs_log_kill";
    let d = store
        .dict::<String, u32>(ns)
        .unwrap()
        .with_durable_log(1000);
    let reconnects = capture.counter(observe::RECONNECTS, &[("subscription", "durable")]);
    let mut sub = d.subscribe_durable(StartFrom::Now).await.unwrap();
    d.set("before", &1).await.unwrap();
    let (_, first) = next(&mut sub).await;
    assert_eq!(first.key.as_deref(), Some("before"));

    let mut raw = support::raw(&server).await;
    let clients: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut raw)
        .await
        .unwrap();
    let reader = clients
        .lines()
        .find(|l| l.contains(&format!(" name={} ", redis_pydict::LOG_READER_NAME)))
        .and_then(|l| l.split_whitespace().find_map(|f| f.strip_prefix("id=")))
        .expect("the log reader is connected")
        .to_owned();
    redis::cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(&reader)
        .exec_async(&mut raw)
        .await
        .unwrap();
    d.set("after", &2).await.unwrap();
    let (_, next) = next(&mut sub).await;
    assert_eq!(
        (next.key.as_deref(), next.change),
        (Some("after"), Change::Set(2)),
        "no gap"
    );

    assert_eq!(
        capture.counter(observe::RECONNECTS, &[("subscription", "durable")]),
        reconnects + 1
    );
    let events = capture.events(ns);
    assert_eq!(events.len(), 1, "{events:?}");
    let (level, fields, _) = &events[0];
    assert_eq!(*level, Level::DEBUG);
    assert_eq!(field(fields, "subscription"), Some("durable"));
    assert!(
        fields.get("error").is_some(),
        "the error is named: {fields:?}"
    );
    drop(sub);
    capture.assert_quiet();
}

// ----- off is free -----------------------------------------------------------

fn normal_dependencies(features: &[&str]) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = std::process::Command::new(cargo);
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["tree", "--offline", "-p", "redis-pydict", "-e", "normal"])
        .args(["--prefix", "none", "--format", "{p}"]);
    if !features.is_empty() {
        command.arg("--features").arg(features.join(","));
    }
    let out = command.output().expect("cargo tree runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

/// Without the features (the default), neither `tracing` nor `metrics` is
/// in the library's dependency tree; with them, both are.
#[test]
fn without_the_features_neither_crate_is_a_dependency() {
    let observability = |deps: &[String]| -> Vec<String> {
        let mut found: Vec<String> = deps
            .iter()
            .filter(|d| d.starts_with("tracing") || d.starts_with("metrics"))
            .cloned()
            .collect();
        found.sort();
        found.dedup();
        found
    };
    let default = normal_dependencies(&[]);
    assert!(
        default.iter().any(|d| d == "redis"),
        "the tree is read: {default:?}"
    );
    assert_eq!(observability(&default), Vec::<String>::new());
    let on = observability(&normal_dependencies(&["tracing", "metrics"]));
    assert_eq!(on, ["metrics", "tracing", "tracing-core"]);
}
