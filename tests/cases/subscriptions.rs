//! Change subscriptions: per key, per pattern, typed, durable, and surviving
//! killed connections, slow readers and server restarts: run on one server by
//! `tests/subscriptions.rs` and, but for the `server_only` ones, on a cluster
//! by `tests/cluster.rs`.

use std::time::Duration;

use futures::StreamExt;
use redis_pydict::{Change, Dict, Event, LogId, Previous, StartFrom, Store, Subscription};
use redis_pydict_test::RedisServer;

use crate::support::{self, Ctx};

/// Every case of this file, listed once (see the runners in
/// `tests/support/mod.rs`): expanded on a server per case by the
/// single-server test file and on the shared cluster by `tests/cluster.rs`.
macro_rules! cases {
    ($runner:ident) => {
        $runner! { subscriptions:
            #[tokio::test] shared python_readme_scenario_key_and_pattern;
            #[tokio::test] shared every_operation_produces_its_typed_event;
            #[tokio::test] shared undecodable_event_is_an_error_item_and_the_stream_goes_on;
            #[tokio::test] shared own_events_can_be_skipped;
            #[tokio::test] shared a_batch_message_delivers_each_subscription_its_keys;
            #[tokio::test] shared expirations_arrive_when_the_store_may_enable_them;
            #[tokio::test] exclusive killed_connection_yields_a_gap_and_delivery_goes_on;
            #[tokio::test] server_only slow_subscriber_disconnected_by_the_server_gets_a_gap;
            #[tokio::test] server_only server_restart_yields_a_gap_and_delivery_goes_on;
            #[tokio::test] exclusive dropping_a_subscription_unsubscribes;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            server_only durable_subscriber_gets_every_change_once_across_faults;
            #[tokio::test] shared durable_subscriber_reports_changes_trimmed_while_away;
            #[tokio::test] shared previous_values_ride_every_operation;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            shared previous_values_chain_under_concurrent_writers;
            #[test] blocking blocking_subscription_recv_timeout_and_try_recv;
            #[test] blocking blocking_dict_carries_previous_values;
        }
    };
}
pub(crate) use cases;

pub const WAIT: Duration = Duration::from_secs(10);

pub async fn next<T: std::fmt::Debug>(sub: &mut Subscription<T>) -> T {
    match tokio::time::timeout(WAIT, sub.next()).await {
        Ok(Some(Ok(item))) => item,
        other => panic!("expected an item, got {other:?}"),
    }
}

pub async fn nothing_more<T: std::fmt::Debug>(sub: &mut Subscription<T>) {
    let extra = tokio::time::timeout(Duration::from_millis(300), sub.next()).await;
    assert!(extra.is_err(), "unexpected item: {extra:?}");
}

pub fn set<V>(key: &str, origin: Option<&str>, value: V) -> Event<String, V> {
    Event::new(
        Some(key.to_owned()),
        origin.map(str::to_owned),
        Change::Set(value),
    )
}

pub fn change<V>(key: Option<&str>, origin: Option<&str>, change: Change<V>) -> Event<String, V> {
    Event::new(key.map(str::to_owned), origin.map(str::to_owned), change)
}

/// The Python README's scenario: notifications with an origin id, one
/// subscriber on `key` and one on `key*`.
pub async fn python_readme_scenario_key_and_pattern(ctx: &Ctx) {
    let store = ctx.builder().origin("myprocess1").connect().await.unwrap();
    let d = store.dict::<String, String>(&ctx.ns("ns")).unwrap();
    let mut exact = d.subscribe_key("key").await.unwrap();
    let mut pattern = d.subscribe("key*").await.unwrap();

    d.set("key", &"Hello".into()).await.unwrap();
    d.set("other", &"not matched".into()).await.unwrap();
    d.set("key2", &"World".into()).await.unwrap();
    // A set immediately followed by a delete: both events, in order, nothing dies.
    d.set("key", &"short-lived".into()).await.unwrap();
    d.delete("key").await.unwrap();

    let me = Some("myprocess1");
    assert_eq!(next(&mut exact).await, set("key", me, "Hello".to_owned()));
    assert_eq!(
        next(&mut exact).await,
        set("key", me, "short-lived".to_owned())
    );
    assert_eq!(
        next(&mut exact).await,
        change(Some("key"), me, Change::Deleted)
    );
    nothing_more(&mut exact).await;

    assert_eq!(next(&mut pattern).await, set("key", me, "Hello".to_owned()));
    assert_eq!(
        next(&mut pattern).await,
        set("key2", me, "World".to_owned())
    );
    assert_eq!(
        next(&mut pattern).await,
        set("key", me, "short-lived".to_owned())
    );
    assert_eq!(
        next(&mut pattern).await,
        change(Some("key"), me, Change::Deleted)
    );
    nothing_more(&mut pattern).await;
}

pub async fn every_operation_produces_its_typed_event(ctx: &Ctx) {
    let d = ctx.store.dict::<u32, Vec<u8>>(&ctx.ns("ops")).unwrap();
    let mut all = d.subscribe("*").await.unwrap();
    d.set(&1, &vec![1]).await.unwrap();
    d.set_many([(2, vec![2]), (3, vec![3])]).await.unwrap();
    d.update_with(&1, |v| [v.unwrap_or_default(), vec![9]].concat())
        .await
        .unwrap();
    d.set_with_ttl(&4, &vec![4], Duration::from_secs(60))
        .await
        .unwrap();
    d.expire(&2, Duration::from_millis(1500)).await.unwrap();
    d.persist(&2).await.unwrap();
    d.remove(&3).await.unwrap();
    d.delete(&4).await.unwrap();
    d.clear().await.unwrap();

    let ev = |key: u32, change: Change<Vec<u8>>| Event::new(Some(key), None, change);
    assert_eq!(next(&mut all).await, ev(1, Change::Set(vec![1])));
    assert_eq!(next(&mut all).await, ev(2, Change::Set(vec![2])));
    assert_eq!(next(&mut all).await, ev(3, Change::Set(vec![3])));
    assert_eq!(next(&mut all).await, ev(1, Change::Set(vec![1, 9])));
    assert_eq!(next(&mut all).await, ev(4, Change::Set(vec![4])));
    assert_eq!(
        next(&mut all).await,
        ev(2, Change::TtlChanged(Some(Duration::from_millis(1500))))
    );
    assert_eq!(next(&mut all).await, ev(2, Change::TtlChanged(None)));
    assert_eq!(next(&mut all).await, ev(3, Change::Deleted));
    assert_eq!(next(&mut all).await, ev(4, Change::Deleted));
    let cleared = next(&mut all).await;
    assert_eq!((cleared.key, cleared.change), (None, Change::Cleared));
    nothing_more(&mut all).await;
}

pub async fn undecodable_event_is_an_error_item_and_the_stream_goes_on(ctx: &Ctx) {
    let numbers = ctx.store.dict::<String, u32>(&ctx.ns("mixed")).unwrap();
    let text = ctx.store.dict::<String, String>(&ctx.ns("mixed")).unwrap();
    let mut sub = numbers.subscribe("*").await.unwrap();
    text.set("name", &"not a number".into()).await.unwrap();
    numbers.set("n", &5).await.unwrap();
    let err = tokio::time::timeout(WAIT, sub.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert!(
        err.to_string().contains("\"name\"") && err.to_string().contains("u32"),
        "{err}"
    );
    assert_eq!(next(&mut sub).await, set("n", None, 5));
}

/// A batch message (WIRE.md §6.2) that another writer PUBLISHes on the
/// namespace channel, which every subscription of the namespace listens to
/// (on one server and, classic, on a cluster): each subscription gets the
/// events of its keys, in order, and no others.
pub async fn a_batch_message_delivers_each_subscription_its_keys(ctx: &Ctx) {
    use ciborium::Value;
    let ns = ctx.ns("batched");
    let d = ctx.store.dict::<String, u32>(&ns).unwrap();
    let mut all = d.subscribe("*").await.unwrap();
    let mut glob = d.subscribe("b*").await.unwrap();
    let mut one = d.subscribe_key("a").await.unwrap();
    let event = |key: &str, value: u32, seq: u32| {
        let text = |t: &str| Value::Text(t.to_owned());
        Value::Map(vec![
            (text("v"), Value::Integer(1.into())),
            (text("op"), text("set")),
            (text("key"), text(key)),
            (text("value"), Value::Integer(value.into())),
            (text("seq"), Value::Integer(seq.into())),
        ])
    };
    let batch = Value::Map(vec![
        (Value::Text("v".into()), Value::Integer(1.into())),
        (Value::Text("op".into()), Value::Text("batch".into())),
        (Value::Text("key".into()), Value::Null),
        (
            Value::Text("events".into()),
            Value::Array(vec![event("a", 1, 1), event("b1", 2, 2), event("c", 3, 3)]),
        ),
    ]);
    let mut payload = Vec::new();
    ciborium::into_writer(&batch, &mut payload).unwrap();
    let mut raw = ctx.raw(&ns).await;
    let _: u64 = redis::cmd("PUBLISH")
        .arg(format!("{{{ns}}}#ev"))
        .arg(payload)
        .query_async(&mut raw)
        .await
        .unwrap();
    for (key, value) in [("a", 1), ("b1", 2), ("c", 3)] {
        assert_eq!(next(&mut all).await, set(key, None, value));
    }
    assert_eq!(next(&mut glob).await, set("b1", None, 2));
    assert_eq!(next(&mut one).await, set("a", None, 1));
    for sub in [&mut all, &mut glob, &mut one] {
        nothing_more(sub).await;
    }
}

pub async fn own_events_can_be_skipped(ctx: &Ctx) {
    let mine = ctx.builder().origin("me").connect().await.unwrap();
    let theirs = ctx.builder().origin("them").connect().await.unwrap();
    let d_mine = mine
        .dict::<String, u8>(&ctx.ns("shared"))
        .unwrap()
        .with_skip_own_events(true);
    let d_theirs = theirs.dict::<String, u8>(&ctx.ns("shared")).unwrap();
    let mut sub = d_mine.subscribe("*").await.unwrap();
    d_mine.set("a", &1).await.unwrap();
    d_theirs.set("b", &2).await.unwrap();
    d_mine.set("c", &3).await.unwrap();
    assert_eq!(next(&mut sub).await, set("b", Some("them"), 2));
    nothing_more(&mut sub).await;
}

pub async fn expirations_arrive_when_the_store_may_enable_them(ctx: &Ctx) {
    let store = ctx
        .builder()
        .enable_expiry_events(true)
        .connect()
        .await
        .unwrap();
    let d = store.dict::<String, u8>(&ctx.ns("ttl")).unwrap();
    let mut sub = d.subscribe("*").await.unwrap();
    d.set_with_ttl("brief", &1, Duration::from_millis(100))
        .await
        .unwrap();
    assert_eq!(next(&mut sub).await, set("brief", None, 1));
    // Redis reports expiry when it notices it (active expiry runs 10 times a second).
    assert_eq!(
        next(&mut sub).await,
        change(Some("brief"), None, Change::Expired)
    );
}

/// Kills the pub/sub client connections of every node, as a network fault or
/// the output-buffer limit of a slow subscriber would.
pub async fn kill_pubsub_clients(ctx: &Ctx) {
    let killed = support::kill_pubsub(ctx).await;
    assert!(killed >= 1, "a pub/sub client was connected");
}

/// After a fault, writes until the subscriber sees one (events written before
/// it resubscribed are lost, by design of pub/sub), checking the gap marker.
pub async fn assert_gap_then_delivery(
    d: &Dict<String, u32>,
    sub: &mut Subscription<Event<String, u32>>,
) {
    let gap = next(sub).await;
    assert_eq!(gap.change, Change::Gap, "{gap:?}");
    support::eventually(WAIT, || d.set("after", &7)).await;
    assert_eq!(next(sub).await, set("after", None, 7));
}

/// Kills every pub/sub connection: on a shared cluster, run it with the
/// cluster to itself.
pub async fn killed_connection_yields_a_gap_and_delivery_goes_on(ctx: &Ctx) {
    let d = ctx.store.dict::<String, u32>(&ctx.ns("faults")).unwrap();
    let mut sub = d.subscribe("*").await.unwrap();
    d.set("before", &1).await.unwrap();
    assert_eq!(next(&mut sub).await, set("before", None, 1));
    kill_pubsub_clients(ctx).await;
    assert_gap_then_delivery(&d, &mut sub).await;
    // And again: it keeps recovering.
    kill_pubsub_clients(ctx).await;
    let gap = next(&mut sub).await;
    assert_eq!(gap.change, Change::Gap);
}

/// Counts the patterns subscribed on every node: on a shared cluster, run it
/// with the cluster to itself.
pub async fn dropping_a_subscription_unsubscribes(ctx: &Ctx) {
    let d = ctx.store.dict::<String, u32>(&ctx.ns("drop")).unwrap();
    let sub = d.subscribe("*").await.unwrap();
    let mut raw = ctx.raw_all().await;
    // Patterns subscribed, summed over the nodes.
    let count = |raw: &mut Vec<redis::aio::MultiplexedConnection>| {
        let mut raw = raw.clone();
        async move {
            let mut total = 0u64;
            for conn in &mut raw {
                let n: u64 = redis::cmd("PUBSUB")
                    .arg("NUMPAT")
                    .query_async(conn)
                    .await
                    .unwrap();
                total += n;
            }
            total
        }
    };
    assert_eq!(count(&mut raw).await, 1);
    drop(sub);
    // Unsubscribed: the pattern is gone from every node (or the test fails).
    support::eventually(WAIT, || {
        let fut = count(&mut raw);
        async move {
            match fut.await {
                0 => Ok(()),
                n => Err(n),
            }
        }
    })
    .await;
}

pub async fn durable_subscriber_reports_changes_trimmed_while_away(ctx: &Ctx) {
    let d = ctx
        .store
        .dict::<String, u32>(&ctx.ns("capped"))
        .unwrap()
        .with_durable_log(100);
    d.set("k0", &0).await.unwrap();
    let mut first = d.subscribe_durable(StartFrom::Beginning).await.unwrap();
    let (seen, _) = next(&mut first).await;
    drop(first);
    for i in 1..2000u32 {
        d.set(&format!("k{}", i % 50), &i).await.unwrap();
    }
    let mut back = d.subscribe_durable(StartFrom::After(seen)).await.unwrap();
    let (_, gap) = next(&mut back).await;
    assert_eq!(gap.change, Change::Gap, "trimmed changes are reported");
    let (_, event) = next(&mut back).await;
    assert!(
        matches!(event.change, Change::Set(i) if i > 1000),
        "then the oldest kept change: {event:?}"
    );

    // Starting from now skips history entirely and sees new changes only.
    let mut now = d.subscribe_durable(StartFrom::Now).await.unwrap();
    d.set("fresh", &1).await.unwrap();
    assert_eq!(next(&mut now).await.1, set("fresh", None, 1));
}

/// The blocking mirror, on a blocking store (namespaces prefixed with `prefix`).
pub fn blocking_subscription_recv_timeout_and_try_recv(
    store: &redis_pydict::blocking::Store,
    prefix: &str,
) {
    let d = store
        .dict::<String, u32>(&format!("{prefix}blocking-sub"))
        .unwrap();
    let mut sub = d.subscribe("*").unwrap();
    assert!(sub.try_recv().is_none());
    assert!(sub.recv_timeout(Duration::from_millis(100)).is_none());
    d.set("a", &1).unwrap();
    let event = sub.recv_timeout(WAIT).unwrap().unwrap();
    assert_eq!(event, set("a", None, 1));
    d.set("b", &2).unwrap();
    assert_eq!(sub.next().unwrap().unwrap(), set("b", None, 2));
}

/// A subscriber too slow for the server's pub/sub output buffer is cut off:
/// a gap, then delivery again. Server only: the server's buffer limit is
/// configured for it.
pub async fn slow_subscriber_disconnected_by_the_server_gets_a_gap() {
    let server = RedisServer::start_with(&[
        "--client-output-buffer-limit",
        "pubsub",
        "256kb",
        "128kb",
        "1",
    ]);
    let store = Store::connect(&server.url()).await.unwrap();
    let d = store.dict::<String, String>("slow").unwrap();
    let mut sub = d.subscribe("*").await.unwrap();
    // Far more than the subscription buffers, while nobody reads it.
    let big = "x".repeat(1000);
    for round in 0..10 {
        let pairs: Vec<(String, String)> = (0..1000)
            .map(|i| (format!("k{round}-{i}"), big.clone()))
            .collect();
        d.set_many(pairs).await.unwrap();
    }
    let mut seen = 0;
    loop {
        let event = tokio::time::timeout(WAIT, sub.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if event.change == Change::Gap {
            break;
        }
        seen += 1;
        assert!(
            seen < 10_000,
            "the server cut the slow subscriber off, reported as a gap"
        );
    }
    // The subscriber may still be catching up with the cuts (each burst above
    // the limit cut it off again): write until a change gets through.
    let deadline = tokio::time::Instant::now() + WAIT;
    for attempt in 0u32.. {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no delivery after the gap"
        );
        d.set("after", &attempt.to_string()).await.unwrap();
        let got = tokio::time::timeout(std::time::Duration::from_millis(200), sub.next()).await;
        if let Ok(Some(Ok(event))) = got {
            if event.key.as_deref() == Some("after") {
                assert!(matches!(event.change, Change::Set(_)), "{event:?}");
                break;
            }
        }
    }
}

/// Server only: it restarts the server.
pub async fn server_restart_yields_a_gap_and_delivery_goes_on() {
    let mut server = RedisServer::start();
    let store = Store::connect(&server.url()).await.unwrap();
    let d = store.dict::<String, u32>("restart").unwrap();
    let mut sub = d.subscribe_key("after").await.unwrap();
    server.restart();
    assert_gap_then_delivery(&d, &mut sub).await;
}

/// The ids of the clients blocked reading the durable log.
async fn log_reader_ids(raw: &mut redis::aio::MultiplexedConnection) -> Vec<String> {
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(raw)
        .await
        .unwrap();
    list.lines()
        .filter(|line| line.contains("name=redis-pydict:log-reader "))
        .filter_map(|line| {
            line.split(' ')
                .find_map(|f| f.strip_prefix("id="))
                .map(str::to_owned)
        })
        .collect()
}

/// Reads `count` durable events, checking each is the next write in order.
async fn expect_sequence(
    sub: &mut Subscription<(LogId, Event<String, u32>)>,
    range: std::ops::Range<u32>,
    last: &mut LogId,
) {
    for i in range {
        let (id, event) = next(sub).await;
        assert!(id > *last, "ids increase: {id} after {last}");
        *last = id;
        assert_eq!(event, set(&format!("k{}", i % 50), None, i), "change {i}");
    }
}

/// Server only: it kills the log readers' connections and restarts the
/// server (with persistence).
pub async fn durable_subscriber_gets_every_change_once_across_faults() {
    let mut server = RedisServer::start_with(&["--appendonly", "yes", "--appendfsync", "always"]);
    let store = Store::connect(&server.url()).await.unwrap();
    let d = store
        .dict::<String, u32>("durable")
        .unwrap()
        .with_durable_log(100_000);
    let mut live = d.subscribe_durable(StartFrom::Beginning).await.unwrap();
    let mut resumer = d.subscribe_durable(StartFrom::Beginning).await.unwrap();
    // Both read while the writes go on. The resumer handles 2500 changes and
    // stops; it resumes later from its last id.
    let live_reader = tokio::spawn(async move {
        let mut last = LogId::ZERO;
        expect_sequence(&mut live, 0..4000, &mut last).await;
        (live, last)
    });
    let resumer_reader = tokio::spawn(async move {
        let mut last = LogId::ZERO;
        expect_sequence(&mut resumer, 0..2500, &mut last).await;
        last
    });

    // 0..4000 with the readers' connections killed twice on the way.
    let mut raw = support::raw(&server).await;
    for i in 0..4000u32 {
        d.set(&format!("k{}", i % 50), &i).await.unwrap();
        if i == 1000 || i == 3000 {
            let readers = log_reader_ids(&mut raw).await;
            assert!(
                !readers.is_empty(),
                "a log reader is connected at change {i}"
            );
            for id in readers {
                let _: redis::RedisResult<()> = redis::cmd("CLIENT")
                    .arg("KILL")
                    .arg("ID")
                    .arg(id)
                    .query_async(&mut raw)
                    .await;
            }
        }
    }
    let (mut live, mut live_last) = live_reader.await.unwrap();
    let mut resumer_last = resumer_reader.await.unwrap();

    // 4000..7000 in bulk updates, then a server restart (persistence on), then the rest.
    for chunk in (4000..7000u32).collect::<Vec<_>>().chunks(500) {
        let pairs: Vec<(String, u32)> =
            chunk.iter().map(|&i| (format!("k{}", i % 50), i)).collect();
        d.set_many(pairs).await.unwrap();
    }
    server.restart();
    for i in 7000..10_000u32 {
        let key = format!("k{}", i % 50);
        support::eventually(WAIT, || d.set(&key, &i)).await;
    }
    expect_sequence(&mut live, 4000..10_000, &mut live_last).await;
    nothing_more(&mut live).await;

    let mut resumed = d
        .subscribe_durable(StartFrom::After(resumer_last))
        .await
        .unwrap();
    expect_sequence(&mut resumed, 2500..10_000, &mut resumer_last).await;
    nothing_more(&mut resumed).await;
}

/// With `with_previous_values(true)`, every kind of write carries the value
/// the entry had before it (`Absent` when there was none), on the channels
/// and in the durable log alike; `clear` sends a `Deleted` event with the
/// value of each entry it removes before its `Cleared` event. A writer
/// without the option sends events without it, which still decode
/// (`Previous::Unknown`), and the option changes nothing stored.
pub async fn previous_values_ride_every_operation(ctx: &Ctx) {
    let ns = ctx.ns("prev");
    let plain = ctx
        .store
        .dict::<u32, Vec<u8>>(&ns)
        .unwrap()
        .with_durable_log(10_000);
    let d = plain.clone().with_previous_values(true);
    assert!(d.previous_values() && !plain.previous_values());
    let mut all = d.subscribe("*").await.unwrap();
    d.set(&1, &vec![1]).await.unwrap();
    d.set(&1, &vec![1, 1]).await.unwrap();
    d.set_many([(2, vec![2]), (1, vec![1, 2])]).await.unwrap();
    d.update_with(&1, |v| [v.unwrap_or_default(), vec![9]].concat())
        .await
        .unwrap();
    d.set_with_ttl(&4, &vec![4], Duration::from_secs(60))
        .await
        .unwrap();
    assert!(d.set_if_absent(&5, &vec![5]).await.unwrap());
    d.expire(&2, Duration::from_millis(1500)).await.unwrap();
    d.persist(&2).await.unwrap();
    assert_eq!(d.remove(&5).await.unwrap(), Some(vec![5]));
    assert!(d.delete(&4).await.unwrap());
    plain.set(&2, &vec![2, 2]).await.unwrap();
    d.clear().await.unwrap();

    use Previous::{Absent, Unknown, Value};
    type Seen = (Option<u32>, Change<Vec<u8>>, Previous<Vec<u8>>);
    let ev = |key: Option<u32>, change: Change<Vec<u8>>, previous: Previous<Vec<u8>>| -> Seen {
        (key, change, previous)
    };
    // What is compared: key, change, previous value (not `seq`).
    let seen = |e: Event<u32, Vec<u8>>| -> Seen { (e.key, e.change, e.previous) };
    let expected = vec![
        ev(Some(1), Change::Set(vec![1]), Absent),
        ev(Some(1), Change::Set(vec![1, 1]), Value(vec![1])),
        ev(Some(2), Change::Set(vec![2]), Absent),
        ev(Some(1), Change::Set(vec![1, 2]), Value(vec![1, 1])),
        ev(Some(1), Change::Set(vec![1, 2, 9]), Value(vec![1, 2])),
        ev(Some(4), Change::Set(vec![4]), Absent),
        ev(Some(5), Change::Set(vec![5]), Absent),
        ev(
            Some(2),
            Change::TtlChanged(Some(Duration::from_millis(1500))),
            Value(vec![2]),
        ),
        ev(Some(2), Change::TtlChanged(None), Value(vec![2])),
        ev(Some(5), Change::Deleted, Value(vec![5])),
        ev(Some(4), Change::Deleted, Value(vec![4])),
        // From the writer without the option: no previous value.
        ev(Some(2), Change::Set(vec![2, 2]), Unknown),
    ];
    for want in &expected {
        assert_eq!(&seen(next(&mut all).await), want);
    }
    // clear: one Deleted event per entry, with its value, then Cleared.
    let mut deleted = Vec::new();
    for _ in 0..2 {
        let e = next(&mut all).await;
        assert_eq!(e.change, Change::Deleted);
        deleted.push((e.key.unwrap(), e.previous));
    }
    deleted.sort_by_key(|(k, _)| *k);
    assert_eq!(deleted, [(1, Value(vec![1, 2, 9])), (2, Value(vec![2, 2]))]);
    let cleared = next(&mut all).await;
    assert_eq!((cleared.key, cleared.change), (None, Change::Cleared));
    assert_eq!(cleared.previous, Unknown);
    nothing_more(&mut all).await;

    // The durable log carries the same previous values.
    let mut log = d.subscribe_durable(StartFrom::Beginning).await.unwrap();
    for want in &expected {
        let (_, got) = next(&mut log).await;
        assert_eq!(&seen(got), want);
    }
    for _ in 0..2 {
        let (_, e) = next(&mut log).await;
        assert!(matches!(e.previous, Value(_)), "{e:?}");
    }
    let (_, cleared) = next(&mut log).await;
    assert_eq!(cleared.change, Change::Cleared);
}

/// Under concurrent writers, each event's previous value is the value of
/// the event before it for that key, in the durable log's order (the
/// order the atomic units ran in); the first event of a key has `Absent`.
pub async fn previous_values_chain_under_concurrent_writers(ctx: &Ctx) {
    const WRITERS: u32 = 4;
    const WRITES: u32 = 150;
    const KEYS: u32 = 3;
    let ns = ctx.ns("prev-chain");
    let d = ctx
        .store
        .dict::<u32, (u32, u32)>(&ns)
        .unwrap()
        .with_notifications(false)
        .with_durable_log(100_000)
        .with_previous_values(true);
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let d = d.clone();
            tokio::spawn(async move {
                for i in 0..WRITES {
                    let key = (w + i) % KEYS;
                    match i % 4 {
                        0 => d.set(&key, &(w, i)).await.map(drop),
                        1 => d.set_many([(key, (w, i))]).await,
                        2 => d.update_with(&key, |_| (w, i)).await.map(drop),
                        _ => d.delete(&key).await.map(drop),
                    }
                    .unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let mut log = d.subscribe_durable(StartFrom::Beginning).await.unwrap();
    let mut current: std::collections::HashMap<u32, Option<(u32, u32)>> = Default::default();
    let mut events = 0;
    while let Ok(Some(item)) = tokio::time::timeout(Duration::from_millis(500), log.next()).await {
        let (_, e) = item.unwrap();
        let key = e.key.unwrap();
        let before = current.get(&key).copied().flatten();
        let want = before.map_or(Previous::Absent, Previous::Value);
        assert_eq!(e.previous, want, "event {events} of key {key}");
        let after = match e.change {
            Change::Set(v) => Some(v),
            Change::Deleted => None,
            other => panic!("unexpected change {other:?}"),
        };
        current.insert(key, after);
        events += 1;
    }
    assert!(
        events >= (WRITERS * WRITES * 3 / 4) as usize,
        "{events} events"
    );
    for key in 0..KEYS {
        let stored = d.get(&key).await.unwrap();
        assert_eq!(stored, current.get(&key).copied().flatten(), "key {key}");
    }
}

/// The blocking mirror carries previous values when asked, and not otherwise.
pub fn blocking_dict_carries_previous_values(store: &redis_pydict::blocking::Store, prefix: &str) {
    let d = store
        .dict::<String, u32>(&format!("{prefix}blocking-prev"))
        .unwrap();
    let with_prev = d.clone().with_previous_values(true);
    assert!(with_prev.previous_values() && !d.previous_values());
    let mut sub = d.subscribe("*").unwrap();
    d.set("b", &2).unwrap();
    with_prev.set("b", &3).unwrap();
    with_prev.delete("b").unwrap();
    let mut got = Vec::new();
    for _ in 0..3 {
        let e = sub.recv_timeout(WAIT).unwrap().unwrap();
        got.push((e.change, e.previous));
    }
    assert_eq!(
        got,
        [
            (Change::Set(2), Previous::Unknown),
            (Change::Set(3), Previous::Value(2)),
            (Change::Deleted, Previous::Value(3)),
        ]
    );
}
