//! Change subscriptions: per key, per pattern, typed, durable, and surviving
//! killed connections and server restarts, each on a server of its own. The
//! shared bodies are in `cases/subscriptions.rs` (also run on a cluster by
//! `cluster.rs`); the cases that restart the server or configure it stay here.

mod support;
mod cases {
    pub mod subscriptions;
}

use cases::subscriptions::{self as case, next, nothing_more, set, WAIT};
use futures::StreamExt;
use redis_pydict::{Change, Event, LogId, StartFrom, Store, Subscription};
use redis_pydict_test::RedisServer;

#[tokio::test]
async fn python_readme_scenario_key_and_pattern() {
    let (_server, ctx) = support::single().await;
    case::python_readme_scenario_key_and_pattern(&ctx).await;
}

#[tokio::test]
async fn every_operation_produces_its_typed_event() {
    let (_server, ctx) = support::single().await;
    case::every_operation_produces_its_typed_event(&ctx).await;
}

#[tokio::test]
async fn undecodable_event_is_an_error_item_and_the_stream_goes_on() {
    let (_server, ctx) = support::single().await;
    case::undecodable_event_is_an_error_item_and_the_stream_goes_on(&ctx).await;
}

#[tokio::test]
async fn own_events_can_be_skipped() {
    let (_server, ctx) = support::single().await;
    case::own_events_can_be_skipped(&ctx).await;
}

#[tokio::test]
async fn expirations_arrive_when_the_store_may_enable_them() {
    let (_server, ctx) = support::single().await;
    case::expirations_arrive_when_the_store_may_enable_them(&ctx).await;
}

#[tokio::test]
async fn killed_connection_yields_a_gap_and_delivery_goes_on() {
    let (_server, ctx) = support::single().await;
    case::killed_connection_yields_a_gap_and_delivery_goes_on(&ctx).await;
}

#[tokio::test]
async fn slow_subscriber_disconnected_by_the_server_gets_a_gap() {
    let server = RedisServer::start_with(&["--client-output-buffer-limit", "pubsub 256kb 128kb 1"]);
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

#[tokio::test]
async fn server_restart_yields_a_gap_and_delivery_goes_on() {
    let mut server = RedisServer::start();
    let store = Store::connect(&server.url()).await.unwrap();
    let d = store.dict::<String, u32>("restart").unwrap();
    let mut sub = d.subscribe_key("after").await.unwrap();
    server.restart();
    case::assert_gap_then_delivery(&d, &mut sub).await;
}

#[tokio::test]
async fn dropping_a_subscription_unsubscribes() {
    let (_server, ctx) = support::single().await;
    case::dropping_a_subscription_unsubscribes(&ctx).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_subscriber_gets_every_change_once_across_faults() {
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

#[tokio::test]
async fn durable_subscriber_reports_changes_trimmed_while_away() {
    let (_server, ctx) = support::single().await;
    case::durable_subscriber_reports_changes_trimmed_while_away(&ctx).await;
}

#[test]
fn blocking_subscription_recv_timeout_and_try_recv() {
    let server = RedisServer::start();
    let store = redis_pydict::blocking::Store::connect(&server.url()).unwrap();
    case::blocking_subscription_recv_timeout_and_try_recv(&store, "");
}
