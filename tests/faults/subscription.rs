//! Faults on the subscription path (see main.rs): slow consumers, killed
//! pub/sub and log-reader connections, servers killed and restarted with and
//! without persistence, a durable log deleted, flushed, trimmed or holding
//! foreign data. Each test asserts the documented outcome: the `Gap` where
//! changes may be lost (and only there), the `Err` item for what retrying
//! cannot cure, bounded client memory, and delivery afterwards.

use std::time::Duration;

use futures::StreamExt;
use redis::aio::MultiplexedConnection;

use crate::raw;
use redis_pydict::{
    Change, Dict, Event, LogId, RedisDict, StartFrom, Store, Subscription, LOG_READER_NAME,
};
use redis_pydict_test::RedisServer;
use serde::{Deserialize, Serialize};

/// How long to wait for an item that must come.
const WAIT: Duration = Duration::from_secs(10);
/// How long to wait for an item that must not come.
const QUIET: Duration = Duration::from_millis(300);

type Durable<V> = Subscription<(LogId, Event<String, V>)>;

async fn next<T: std::fmt::Debug>(sub: &mut Subscription<T>) -> T {
    match tokio::time::timeout(WAIT, sub.next()).await {
        Ok(Some(Ok(item))) => item,
        other => panic!("expected an item, got {other:?}"),
    }
}

async fn next_err<T: std::fmt::Debug>(sub: &mut Subscription<T>) -> redis_pydict::Error {
    match tokio::time::timeout(WAIT, sub.next()).await {
        Ok(Some(Err(e))) => e,
        other => panic!("expected an error item, got {other:?}"),
    }
}

async fn nothing_more<T: std::fmt::Debug>(sub: &mut Subscription<T>) {
    let extra = tokio::time::timeout(QUIET, sub.next()).await;
    assert!(extra.is_err(), "unexpected item: {extra:?}");
}

/// Ends (yields `None`) within `WAIT`.
async fn ends<T: std::fmt::Debug>(sub: &mut Subscription<T>) {
    match tokio::time::timeout(WAIT, sub.next()).await {
        Ok(None) => {}
        other => panic!("expected the end of the stream, got {other:?}"),
    }
}

async fn kill_clients(conn: &mut MultiplexedConnection, filter: &[&str]) {
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg(filter)
        .query_async(conn)
        .await
        .unwrap();
    assert!(killed > 0, "CLIENT KILL {filter:?} found a client");
}

/// Durable dict `ns` with a log capped at `cap`.
fn logged(store: &Store, ns: &str, cap: u64) -> Dict<String, u32> {
    store.dict::<String, u32>(ns).unwrap().with_durable_log(cap)
}

/// Writes `k<i>` = i for each i, one `set` each.
async fn write(d: &Dict<String, u32>, range: std::ops::Range<u32>) {
    for i in range {
        d.set(&format!("k{i}"), &i).await.unwrap();
    }
}

/// Reads the changes `range` in order, each `k<i>` = i, returning the last id.
async fn expect_changes(sub: &mut Durable<u32>, range: std::ops::Range<u32>) -> LogId {
    let mut last = LogId::ZERO;
    for i in range {
        let (id, event) = next(sub).await;
        assert_eq!(
            (event.key.as_deref(), &event.change),
            (Some(format!("k{i}").as_str()), &Change::Set(i)),
            "change {i}"
        );
        assert!(id > last, "ids increase: {id} after {last}");
        last = id;
    }
    last
}

/// Writes 100 changes through a durable dict and returns the log id of the
/// 50th (`k49`), as a caller would have persisted it.
async fn hundred_changes_and_the_50th_id(d: &Dict<String, u32>) -> LogId {
    write(d, 0..100).await;
    let mut sub = d.subscribe_durable(StartFrom::Beginning).await.unwrap();
    let mut saved = LogId::ZERO;
    for i in 0..100u32 {
        let (id, event) = next(&mut sub).await;
        assert_eq!(event.change, Change::Set(i));
        if i == 49 {
            saved = id;
        }
    }
    saved
}

/// After the log the caller read from is gone: resuming yields `Gap` first,
/// then the log as it now is (`k1000..k1010`), nothing else.
async fn resume_sees_gap_then_new_log(d: &Dict<String, u32>, saved: LogId) {
    write(d, 1000..1010).await;
    let mut sub = d.subscribe_durable(StartFrom::After(saved)).await.unwrap();
    let (id, gap) = next(&mut sub).await;
    assert_eq!(gap.change, Change::Gap, "the lost log is reported first");
    assert_eq!(
        id,
        LogId::ZERO,
        "a gap resets the position to the log's start"
    );
    expect_changes(&mut sub, 1000..1010).await;
    nothing_more(&mut sub).await;
}

// ----- plain subscriptions ---------------------------------------------------

/// Child-process half of the memory test: set by the parent.
const MEMORY_CHILD: &str = "REDIS_PYDICT_MEMORY_CHILD_URL";

fn status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .map(|n| n.trim().parse().unwrap())
        .unwrap_or_else(|| panic!("{field} in /proc/self/status"))
}

/// A subscription nobody polls while 100,000 events of 1 KB are published
/// (2,000 `set_many`s of 50): client memory stays bounded (measured in a
/// child process of its own, so that no other test's allocations count),
/// and the subscriber, polled afterwards, sees a `Gap` and then later events.
/// The server never cuts the subscriber off here (no pub/sub output limit):
/// the bound is the client's.
#[test]
fn unpolled_subscription_keeps_client_memory_bounded() {
    if let Ok(url) = std::env::var(MEMORY_CHILD) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(memory_child(&url));
        return;
    }
    let server =
        RedisServer::start_with(&["--client-output-buffer-limit", "pubsub", "0", "0", "0"]);
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "subscription::unpolled_subscription_keeps_client_memory_bounded",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(MEMORY_CHILD, server.url())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("memory:").map(|(_, rest)| rest))
        .unwrap_or_else(|| panic!("no memory line in {stdout}"));
    let field = |name: &str| -> u64 {
        line.split_whitespace()
            .find_map(|f| f.strip_prefix(name))
            .unwrap()
            .parse()
            .unwrap()
    };
    let growth_mb = (field("peak_kb=") - field("before_kb=")) / 1024;
    println!("memory:{line} growth_mb={growth_mb}");
    // 100 MB went through; the default buffer holds 10,000 events (~10 MB here).
    assert!(
        growth_mb < 48,
        "client memory grew by {growth_mb} MB while 100 MB of events went unread"
    );
}

async fn memory_child(url: &str) {
    let store = Store::connect(url).await.unwrap();
    let d = store.dict::<String, String>("mem").unwrap();
    let sub = d.subscribe("*").await.unwrap();
    let value = "x".repeat(1000);
    // Warm up the write path so that the baseline includes its buffers.
    d.set_many((0..50).map(|i| (format!("warm{i}"), value.clone())))
        .await
        .unwrap();
    let mut sub = sub;
    let before = status_kb("VmRSS:");
    for batch in 0..2000 {
        d.set_many((0..50).map(|i| (format!("b{batch}-{i}"), value.clone())))
            .await
            .unwrap();
    }
    // Let the subscription take what is still in flight.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let peak = status_kb("VmHWM:");
    let after = status_kb("VmRSS:");
    println!("memory: before_kb={before} peak_kb={peak} after_kb={after}");
    // Polled now: a gap (the buffer overflowed), then events of later batches.
    let mut seen_gap = false;
    let mut later = 0;
    while later < 10 {
        let event = next(&mut sub).await;
        match event.change {
            Change::Gap => seen_gap = true,
            Change::Set(_) if seen_gap => later += 1,
            Change::Set(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(seen_gap, "a gap where events were dropped");
    d.set("after", &"a".to_owned()).await.unwrap();
    loop {
        let event = next(&mut sub).await;
        if event.key.as_deref() == Some("after") {
            break;
        }
    }
}

/// The buffer bound applies to every kind of subscription: a dict's, a
/// view's, and the blocking mirror's, each yielding a `Gap` once its
/// consumer falls more than the bound behind, and the events after it.
#[derive(RedisDict, Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Counter {
    hits: u32,
    #[redis_dict(default)]
    label: String,
}

/// Items received until one satisfies `last`: (gaps seen, items in all).
async fn drain_until<T: std::fmt::Debug>(
    sub: &mut Subscription<T>,
    is_gap: impl Fn(&T) -> bool,
    last: impl Fn(&T) -> bool,
) -> (usize, usize) {
    let (mut gaps, mut items) = (0, 0);
    loop {
        let item = next(sub).await;
        items += 1;
        if is_gap(&item) {
            gaps += 1;
        }
        if last(&item) {
            return (gaps, items);
        }
    }
}

#[tokio::test]
async fn every_subscription_kind_is_bounded_and_reports_the_overflow_as_a_gap() {
    let server = RedisServer::start();
    let store = Store::builder(&server.url())
        .subscription_buffer(100, 1 << 20)
        .connect()
        .await
        .unwrap();
    let d = store.dict::<String, u32>("bounded").unwrap();
    let mut dict_sub = d.subscribe("*").await.unwrap();
    let mut key_sub = d.subscribe_key("hits").await.unwrap();
    let view = Counter::view(&store, "bounded").unwrap();
    let mut view_sub = view.subscribe().await.unwrap();
    let mut field_sub = view.hits.subscribe().await.unwrap();
    for batch in 0..20u32 {
        let pairs: Vec<(String, u32)> = (0..50)
            .map(|i| {
                let n = batch * 50 + i;
                (
                    if i == 49 {
                        "hits".into()
                    } else {
                        format!("k{n}")
                    },
                    n,
                )
            })
            .collect();
        d.set_many(pairs).await.unwrap();
    }
    // Let the subscriptions take everything (they read while nobody polls).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let last = 19 * 50 + 49;
    let (gaps, items) = drain_until(
        &mut dict_sub,
        |e| e.change == Change::Gap,
        |e| e.change == Change::Set(last),
    )
    .await;
    assert!(
        gaps >= 1 && items <= 101,
        "dict: {gaps} gaps in {items} items"
    );
    // 20 events for "hits": within the bound, nothing dropped.
    let (gaps, items) = drain_until(
        &mut key_sub,
        |e| e.change == Change::Gap,
        |e| e.change == Change::Set(last),
    )
    .await;
    assert_eq!((gaps, items), (0, 20), "one key's events fit");
    let (gaps, items) = drain_until(
        &mut view_sub,
        |e| matches!(e.event, CounterEvent::Gap),
        |e| matches!(e.event, CounterEvent::Hits(Change::Set(n)) if n == last),
    )
    .await;
    assert!(
        gaps == 0 && items == 20,
        "view: only its fields' events: {gaps} gaps in {items}"
    );
    let (gaps, items) = drain_until(
        &mut field_sub,
        |e| e.change == Change::Gap,
        |e| e.change == Change::Set(last),
    )
    .await;
    assert_eq!((gaps, items), (0, 20), "field");

    // A view of a namespace busier than the bound.
    for batch in 0..20u32 {
        let pairs: Vec<(String, u32)> = (0..50).map(|i| ("hits".into(), batch * 50 + i)).collect();
        d.set_many(pairs).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (gaps, items) = drain_until(
        &mut view_sub,
        |e| matches!(e.event, CounterEvent::Gap),
        |e| matches!(e.event, CounterEvent::Hits(Change::Set(n)) if n == last),
    )
    .await;
    assert!(
        gaps >= 1 && items <= 101,
        "view: {gaps} gaps in {items} items"
    );
    let (gaps, items) = drain_until(
        &mut field_sub,
        |e| e.change == Change::Gap,
        |e| e.change == Change::Set(last),
    )
    .await;
    assert!(
        gaps >= 1 && items <= 101,
        "field: {gaps} gaps in {items} items"
    );
}

#[test]
fn the_blocking_mirror_inherits_the_bound() {
    let server = RedisServer::start();
    let store = redis_pydict::blocking::Store::connect_with(
        Store::builder(&server.url()).subscription_buffer(100, 1 << 20),
    )
    .unwrap();
    let d = store.dict::<String, u32>("blocking-bounded").unwrap();
    let mut sub = d.subscribe("*").unwrap();
    for batch in 0..20u32 {
        let pairs: Vec<(String, u32)> = (0..50)
            .map(|i| (format!("k{}", batch * 50 + i), batch * 50 + i))
            .collect();
        d.set_many(pairs).unwrap();
    }
    std::thread::sleep(Duration::from_millis(500));
    let (mut gaps, mut items) = (0, 0);
    loop {
        let event = sub.recv_timeout(WAIT).expect("an item").unwrap();
        items += 1;
        if event.change == Change::Gap {
            gaps += 1;
        }
        if event.change == Change::Set(999) {
            break;
        }
    }
    assert!(gaps >= 1 && items <= 101, "{gaps} gaps in {items} items");
}

/// The server cuts off a subscriber over its pub/sub output-buffer limit (a
/// 50-event transaction of 1 KB values is over 16 KB at once): the
/// subscription reconnects, yields a `Gap`, and delivery goes on.
#[tokio::test]
async fn server_output_buffer_limit_yields_gap_then_recovery() {
    let server =
        RedisServer::start_with(&["--client-output-buffer-limit", "pubsub", "16kb", "8kb", "1"]);
    let store = Store::connect(&server.url()).await.unwrap();
    let d = store.dict::<String, String>("obl").unwrap();
    let mut sub = d.subscribe("*").await.unwrap();
    let big = "x".repeat(1000);
    d.set_many((0..50).map(|i| (format!("k{i}"), big.clone())))
        .await
        .unwrap();
    let mut before_gap = 0;
    loop {
        let event = next(&mut sub).await;
        if event.change == Change::Gap {
            break;
        }
        before_gap += 1;
        assert!(before_gap < 50, "the cut is reported as a gap");
    }
    assert_recovers(&d, &mut sub).await;
}

/// Writes `after` until the subscription delivers it (it may still be
/// resubscribing when the first writes happen: those are covered by the gap).
async fn assert_recovers(d: &Dict<String, String>, sub: &mut Subscription<Event<String, String>>) {
    let deadline = tokio::time::Instant::now() + WAIT;
    for attempt in 0u32.. {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no delivery after the gap"
        );
        d.set("after", &attempt.to_string()).await.unwrap();
        if let Ok(Some(Ok(event))) = tokio::time::timeout(QUIET, sub.next()).await {
            if event.key.as_deref() == Some("after") {
                assert!(matches!(event.change, Change::Set(_)), "{event:?}");
                return;
            }
        }
    }
}

#[tokio::test]
async fn client_kill_of_the_pubsub_connection_yields_gap_then_delivery() {
    let server = RedisServer::start();
    let store = Store::connect(&server.url()).await.unwrap();
    let d = store.dict::<String, String>("killed").unwrap();
    let mut sub = d.subscribe("*").await.unwrap();
    d.set("before", &"b".into()).await.unwrap();
    assert_eq!(next(&mut sub).await.key.as_deref(), Some("before"));
    kill_clients(&mut raw(&server.url()).await, &["TYPE", "pubsub"]).await;
    assert_eq!(next(&mut sub).await.change, Change::Gap);
    assert_recovers(&d, &mut sub).await;
}

// ----- durable subscriptions --------------------------------------------------

#[tokio::test]
async fn client_kill_of_the_log_reader_loses_nothing() {
    let server = RedisServer::start();
    let store = Store::connect(&server.url()).await.unwrap();
    let d = logged(&store, "reader-kill", 10_000);
    let mut sub = d.subscribe_durable(StartFrom::Beginning).await.unwrap();
    write(&d, 0..100).await;
    expect_changes(&mut sub, 0..100).await;
    // Caught up: the reader now waits in XREAD BLOCK; kill it there.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut conn = raw(&server.url()).await;
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut conn)
        .await
        .unwrap();
    let readers: Vec<&str> = list
        .lines()
        .filter(|line| line.contains(&format!(" name={LOG_READER_NAME} ")))
        .filter_map(|line| line.split(' ').find_map(|f| f.strip_prefix("id=")))
        .collect();
    assert_eq!(readers.len(), 1, "one log reader: {list}");
    kill_clients(&mut conn, &["ID", readers[0]]).await;
    write(&d, 100..200).await;
    let mut last = LogId::ZERO;
    for i in 100..200u32 {
        let (id, event) = next(&mut sub).await;
        assert_eq!(event.change, Change::Set(i), "no gap, nothing lost");
        assert!(id > last);
        last = id;
    }
    nothing_more(&mut sub).await;
}

#[tokio::test]
async fn kill_9_and_restart_with_persistence_resumes_with_nothing_lost() {
    let mut server = RedisServer::start_with(&["--appendonly", "yes", "--appendfsync", "always"]);
    let store = Store::connect(&server.url()).await.unwrap();
    let d = logged(&store, "persisted", 10_000);
    let saved = hundred_changes_and_the_50th_id(&d).await;
    server.kill();
    server.restart();
    let mut sub = d.subscribe_durable(StartFrom::After(saved)).await.unwrap();
    expect_changes(&mut sub, 50..100).await;
    let store = Store::connect(&server.url()).await.unwrap();
    let d = logged(&store, "persisted", 10_000);
    write(&d, 100..110).await;
    expect_changes(&mut sub, 100..110).await;
    nothing_more(&mut sub).await;
}

#[tokio::test]
async fn kill_9_and_restart_without_persistence_resumes_with_a_gap() {
    let mut server = RedisServer::start();
    let store = Store::connect(&server.url()).await.unwrap();
    let d = logged(&store, "volatile", 10_000);
    let saved = hundred_changes_and_the_50th_id(&d).await;
    server.kill();
    server.restart();
    let store = Store::connect(&server.url()).await.unwrap();
    resume_sees_gap_then_new_log(&logged(&store, "volatile", 10_000), saved).await;
}

#[tokio::test]
async fn deleted_log_resumes_with_a_gap() {
    let server = RedisServer::start();
    let store = Store::connect(&server.url()).await.unwrap();
    let d = logged(&store, "deleted", 10_000);
    let saved = hundred_changes_and_the_50th_id(&d).await;
    let _: () = redis::cmd("DEL")
        .arg(d.namespace().log_key())
        .query_async(&mut raw(&server.url()).await)
        .await
        .unwrap();
    resume_sees_gap_then_new_log(&d, saved).await;
}

#[tokio::test]
async fn flushall_resumes_with_a_gap() {
    let server = RedisServer::start();
    let store = Store::connect(&server.url()).await.unwrap();
    let d = logged(&store, "flushed", 10_000);
    let saved = hundred_changes_and_the_50th_id(&d).await;
    let _: () = redis::cmd("FLUSHALL")
        .query_async(&mut raw(&server.url()).await)
        .await
        .unwrap();
    resume_sees_gap_then_new_log(&d, saved).await;
}

#[tokio::test]
async fn trimmed_id_resumes_with_a_gap() {
    let server = RedisServer::start();
    let store = Store::connect(&server.url()).await.unwrap();
    let d = logged(&store, "trimmed", 100);
    let saved = hundred_changes_and_the_50th_id(&d).await;
    // Far more than the cap: the saved entry is trimmed away.
    write(&d, 100..1000).await;
    let mut sub = d.subscribe_durable(StartFrom::After(saved)).await.unwrap();
    let (_, gap) = next(&mut sub).await;
    assert_eq!(gap.change, Change::Gap);
    let (_, event) = next(&mut sub).await;
    assert!(
        matches!(event.change, Change::Set(i) if i > 800),
        "then the oldest kept change: {event:?}"
    );
}

/// A live durable subscriber, caught up, whose log is lost under it
/// (restart without persistence): `Gap`, then the new log from its start.
#[tokio::test]
async fn live_durable_subscriber_sees_a_gap_when_its_log_is_lost() {
    let mut server = RedisServer::start();
    let store = Store::connect(&server.url()).await.unwrap();
    let d = logged(&store, "live", 10_000);
    let mut sub = d.subscribe_durable(StartFrom::Beginning).await.unwrap();
    write(&d, 0..20).await;
    expect_changes(&mut sub, 0..20).await;
    server.restart();
    let store = Store::connect(&server.url()).await.unwrap();
    let d = logged(&store, "live", 10_000);
    write(&d, 1000..1010).await;
    let (_, gap) = next(&mut sub).await;
    assert_eq!(gap.change, Change::Gap);
    expect_changes(&mut sub, 1000..1010).await;
    nothing_more(&mut sub).await;
    // And once more with DEL of the log under it.
    let _: () = redis::cmd("DEL")
        .arg(d.namespace().log_key())
        .query_async(&mut raw(&server.url()).await)
        .await
        .unwrap();
    write(&d, 2000..2005).await;
    let (_, gap) = next(&mut sub).await;
    assert_eq!(gap.change, Change::Gap);
    expect_changes(&mut sub, 2000..2005).await;
}

#[tokio::test]
async fn wrong_typed_log_is_an_error_item_naming_namespace_and_cause() {
    let server = RedisServer::start();
    let store = Store::connect(&server.url()).await.unwrap();
    let d = logged(&store, "wrongtype", 100);
    let _: () = redis::cmd("SET")
        .arg(d.namespace().log_key())
        .arg("not a stream")
        .query_async(&mut raw(&server.url()).await)
        .await
        .unwrap();
    for from in [
        StartFrom::Beginning,
        StartFrom::After("1-0".parse().unwrap()),
    ] {
        let mut sub = d.subscribe_durable(from).await.unwrap();
        let e = next_err(&mut sub).await;
        let text = e.to_string();
        assert!(
            text.contains("\"wrongtype\"") && text.contains("WRONGTYPE"),
            "{text}"
        );
        assert!(!e.is_connection_error(), "{e}");
        ends(&mut sub).await;
    }
    // `Now` reads the log while subscribing: the error comes from the call.
    let e = d.subscribe_durable(StartFrom::Now).await.unwrap_err();
    assert!(e.to_string().contains("WRONGTYPE"), "{e}");
}

/// Entries another program appended: one without the payload field, one
/// whose payload is not an event. Each is an `Err` item naming the entry;
/// the stream goes on.
#[tokio::test]
async fn foreign_log_entries_are_error_items_and_the_stream_goes_on() {
    let server = RedisServer::start();
    let store = Store::connect(&server.url()).await.unwrap();
    let d = logged(&store, "foreign", 100);
    let mut conn = raw(&server.url()).await;
    let log = d.namespace().log_key().to_owned();
    let id: String = redis::cmd("XADD")
        .arg(&log)
        .arg("*")
        .arg("other")
        .arg("x")
        .query_async(&mut conn)
        .await
        .unwrap();
    let _: String = redis::cmd("XADD")
        .arg(&log)
        .arg("*")
        .arg("e")
        .arg(b"\xff\x00".as_slice())
        .query_async(&mut conn)
        .await
        .unwrap();
    d.set("k0", &0).await.unwrap();
    let mut sub = d.subscribe_durable(StartFrom::Beginning).await.unwrap();
    let e = next_err(&mut sub).await.to_string();
    assert!(
        e.contains(&format!("log entry {id}"))
            && e.contains("no \"e\" field")
            && e.contains("\"foreign\""),
        "{e}"
    );
    let e = next_err(&mut sub).await.to_string();
    assert!(e.contains("not an event payload"), "{e}");
    let (_, event) = next(&mut sub).await;
    assert_eq!(event.change, Change::Set(0));
}

/// The log format is the contract other writers implement (README, "Durable
/// log"): entries appended by hand with `XADD {ns}#log * e <payload>`, as a
/// program in another language or an earlier version writes them, are read
/// and resumed from like the library's own.
#[tokio::test]
async fn log_written_by_another_v1_writer_is_read_and_resumed() {
    let server = RedisServer::start();
    let store = Store::connect(&server.url()).await.unwrap();
    let d = logged(&store, "other-writer", 100);
    let mut conn = raw(&server.url()).await;
    let mut ids = Vec::new();
    for i in 0..3u32 {
        // {"v": 1, "op": "set", "key": "k<i>", "origin": null, "value": i}
        let mut payload = vec![
            0xa5, 0x61, b'v', 0x01, 0x62, b'o', b'p', 0x63, b's', b'e', b't',
        ];
        payload.extend_from_slice(&[0x63, b'k', b'e', b'y', 0x62, b'k', b'0' + i as u8]);
        payload.extend_from_slice(&[0x66, b'o', b'r', b'i', b'g', b'i', b'n', 0xf6]);
        payload.extend_from_slice(&[0x65, b'v', b'a', b'l', b'u', b'e', i as u8]);
        let id: String = redis::cmd("XADD")
            .arg(d.namespace().log_key())
            .arg("*")
            .arg("e")
            .arg(payload)
            .query_async(&mut conn)
            .await
            .unwrap();
        ids.push(id.parse::<LogId>().unwrap());
    }
    let mut sub = d.subscribe_durable(StartFrom::After(ids[0])).await.unwrap();
    let (id, event) = next(&mut sub).await;
    assert_eq!(
        (id, event.key.as_deref(), event.change),
        (ids[1], Some("k1"), Change::Set(1))
    );
    let (id, _) = next(&mut sub).await;
    assert_eq!(id, ids[2]);
    d.set("k3", &3).await.unwrap();
    let (_, event) = next(&mut sub).await;
    assert_eq!(event.change, Change::Set(3));
    nothing_more(&mut sub).await;
}

/// A durable subscriber that does not keep up loses nothing: past its
/// buffer the reader stops reading the log (backpressure) instead of
/// dropping, and goes on when the consumer catches up.
#[tokio::test]
async fn durable_subscriber_over_its_buffer_waits_and_loses_nothing() {
    let server = RedisServer::start();
    let store = Store::builder(&server.url())
        .subscription_buffer(100, 1 << 20)
        .connect()
        .await
        .unwrap();
    let d = logged(&store, "backpressure", 10_000);
    let mut sub = d.subscribe_durable(StartFrom::Beginning).await.unwrap();
    d.set_many((0..1000u32).map(|i| (format!("k{i}"), i)))
        .await
        .unwrap();
    // The reader fills the buffer to its bound...
    let deadline = tokio::time::Instant::now() + WAIT;
    while !format!("{sub:?}").contains("pending: 100,") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "buffer never filled: {sub:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // ...and no further, however long the consumer waits.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        format!("{sub:?}").contains("pending: 100,"),
        "the reader stopped at the buffer's bound: {sub:?}"
    );
    expect_changes(&mut sub, 0..1000).await;
    nothing_more(&mut sub).await;
}

/// The durable reader's batches grow while it is behind, but the buffer's
/// byte bound holds: with a 64 KB bound and 4 KB values, the consumer never
/// has more than the bound waiting (or one entry), and nothing is lost.
#[tokio::test]
async fn durable_subscriber_keeps_to_its_byte_bound_with_large_entries() {
    let server = RedisServer::start();
    let store = Store::builder(&server.url())
        .subscription_buffer(10_000, 64 * 1024)
        .connect()
        .await
        .unwrap();
    let d = store
        .dict::<String, String>("bytes-bound")
        .unwrap()
        .with_durable_log(10_000);
    let big = "x".repeat(4096);
    d.set_many((0..2000u32).map(|i| (format!("k{i}"), big.clone())))
        .await
        .unwrap();
    let mut sub = d.subscribe_durable(StartFrom::Beginning).await.unwrap();
    let pending_bytes = |sub: &Subscription<_>| -> usize {
        let debug = format!("{sub:?}");
        let rest = debug.split("pending_bytes: ").nth(1).unwrap();
        rest.trim_end_matches(" }").parse().unwrap()
    };
    let mut seen = 0;
    while seen < 2000 {
        tokio::time::sleep(Duration::from_millis(if seen % 500 == 0 { 100 } else { 0 })).await;
        let bytes = pending_bytes(&sub);
        assert!(bytes <= 64 * 1024 + 8192, "{bytes} bytes pending at {seen}");
        let (_, event) = next(&mut sub).await;
        assert_eq!(event.key, Some(format!("k{seen}")));
        seen += 1;
    }
    nothing_more(&mut sub).await;
}

/// The COUNTs of the `XRANGE ... COUNT n` reads of `log_key` the server ran
/// (from its SLOWLOG, which logs every command once
/// `slowlog-log-slower-than` is 0).
async fn xrange_counts(conn: &mut MultiplexedConnection, log_key: &str) -> Vec<usize> {
    let entries: Vec<redis::Value> = redis::cmd("SLOWLOG")
        .arg("GET")
        .arg(-1)
        .query_async(conn)
        .await
        .unwrap();
    let mut counts = Vec::new();
    for entry in entries {
        let redis::Value::Array(fields) = entry else {
            continue;
        };
        let Some(redis::Value::Array(args)) = fields.get(3) else {
            continue;
        };
        let args: Vec<String> = args
            .iter()
            .map(|a| match a {
                redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
                other => format!("{other:?}"),
            })
            .collect();
        if args.first().map(String::as_str) == Some("XRANGE")
            && args.get(1).map(String::as_str) == Some(log_key)
            && args.get(4).map(String::as_str) == Some("COUNT")
        {
            counts.push(args[5].parse().unwrap());
        }
    }
    counts
}

/// Each durable read asks for at most what fits the subscription's byte
/// bound at the size of the entries last read, and the first read (sizes
/// unknown) for one entry: with a 1 MiB bound and 256 KiB entries no read
/// brings more than about 1 MiB into the client, from the very first.
#[tokio::test]
async fn durable_reads_are_bounded_in_bytes_from_the_first_read() {
    let server = RedisServer::start();
    let store = Store::builder(&server.url())
        .subscription_buffer(10_000, 1 << 20)
        .connect()
        .await
        .unwrap();
    let d = store
        .dict::<String, String>("read-bytes")
        .unwrap()
        .with_durable_log(10_000);
    let big = "y".repeat(256 << 10);
    d.set_many((0..40u32).map(|i| (format!("k{i}"), big.clone())))
        .await
        .unwrap();
    let mut admin = raw(&server.url()).await;
    for (name, value) in [
        ("slowlog-max-len", "100000"),
        ("slowlog-log-slower-than", "0"),
    ] {
        let _: () = redis::cmd("CONFIG")
            .arg("SET")
            .arg(name)
            .arg(value)
            .query_async(&mut admin)
            .await
            .unwrap();
    }
    let mut sub = d.subscribe_durable(StartFrom::Beginning).await.unwrap();
    for i in 0..40 {
        let (_, event) = next(&mut sub).await;
        assert_eq!(event.key, Some(format!("k{i}")));
    }
    // More of them after catching up: the batch size goes back down to
    // what fits, not to a fixed count.
    d.set_many((40..80u32).map(|i| (format!("k{i}"), big.clone())))
        .await
        .unwrap();
    for i in 40..80 {
        let (_, event) = next(&mut sub).await;
        assert_eq!(event.key, Some(format!("k{i}")));
    }
    let mut counts = xrange_counts(&mut admin, "{read-bytes}#log").await;
    counts.reverse(); // SLOWLOG lists the newest first
    println!("XRANGE COUNTs: {counts:?}");
    assert!(counts.len() >= 20, "reads seen: {counts:?}");
    assert_eq!(
        counts.first().copied(),
        Some(1),
        "the first read: {counts:?}"
    );
    assert!(counts.contains(&3), "batches grow to what fits: {counts:?}");
    assert!(
        counts.iter().all(|&n| n * (256 << 10) <= 1 << 20),
        "every read fits the byte bound: {counts:?}"
    );
}
