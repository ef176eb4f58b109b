//! TTLs, atomic operations, concurrency, repair, events and the blocking API:
//! run on one server by `tests/dict_behaviour.rs` and on a cluster by
//! `tests/cluster.rs`.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use redis_pydict::Ttl;

use crate::support::{self, Ctx};

/// Every case of this file, listed once (see the runners in
/// `tests/support/mod.rs`): expanded on a server per case by the
/// single-server test file and on the shared cluster by `tests/cluster.rs`.
macro_rules! cases {
    ($runner:ident) => {
        $runner! { behaviour:
            #[tokio::test] shared expired_entries_vanish_from_get_len_and_iteration;
            #[tokio::test] shared update_with_keeps_ttl_and_set_clears_it;
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            shared concurrent_update_with_never_loses_an_increment;
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            shared index_matches_live_keys_after_concurrent_writes;
            #[tokio::test] shared iteration_reads_ahead_across_pages;
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            shared remove_is_an_atomic_take;
            #[tokio::test] exclusive bulk_update_larger_than_a_batch_is_applied_in_order;
            #[tokio::test] shared set_if_absent_and_get_many;
            #[tokio::test] shared repair_rebuilds_the_index_from_the_keyspace;
            #[tokio::test] shared every_write_publishes_its_event_atomically;
            #[test] blocking blocking_api_mirrors_the_async_one;
            #[tokio::test] shared clear_larger_than_a_batch_empties_the_namespace;
            #[tokio::test] shared remove_of_an_undecodable_value_says_it_was_removed;
            #[tokio::test] shared foreign_data_is_refused_by_get_many_and_before_update_with_runs;
            #[test] blocking blocking_remove_of_an_undecodable_value_says_it_was_removed;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            shared pipelined_clear_sends_one_clear_event_and_every_previous_value;
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            shared clear_during_writes_removes_what_precedes_its_event;
            #[tokio::test] shared clear_failing_mid_way_counts_what_it_removed;
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            shared concurrent_clears_send_one_clear_event_each;
        }
    };
}
pub(crate) use cases;

pub async fn expired_entries_vanish_from_get_len_and_iteration(ctx: &Ctx) {
    let store = &ctx.store;
    let d = store.dict::<String, String>(&ctx.ns("ttl")).unwrap();
    d.set("stays", &"s".into()).await.unwrap();
    d.set_with_ttl("goes", &"g".into(), Duration::from_millis(200))
        .await
        .unwrap();
    d.set("expire-later", &"e".into()).await.unwrap();
    assert!(d
        .expire("expire-later", Duration::from_millis(200))
        .await
        .unwrap());
    d.set_with_ttl("persisted", &"p".into(), Duration::from_millis(200))
        .await
        .unwrap();
    assert!(d.persist("persisted").await.unwrap());
    assert!(!d.expire("missing", Duration::from_secs(1)).await.unwrap());

    assert_eq!(d.len().await.unwrap(), 4);
    assert!(
        matches!(d.ttl("goes").await.unwrap(), Ttl::Expires(t) if t <= Duration::from_millis(200))
    );
    assert_eq!(d.ttl("stays").await.unwrap(), Ttl::Persistent);
    assert_eq!(d.ttl("missing").await.unwrap(), Ttl::Missing);

    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(d.get("goes").await.unwrap(), None);
    assert!(!d.contains("expire-later").await.unwrap());
    assert_eq!(d.len().await.unwrap(), 2);
    let keys: BTreeSet<String> = d.keys().try_collect().await.unwrap();
    assert_eq!(
        keys,
        BTreeSet::from(["persisted".to_owned(), "stays".to_owned()])
    );
    let items: Vec<(String, String)> = d.items().try_collect().await.unwrap();
    assert_eq!(items.len(), 2);

    // A zero TTL is refused before any I/O, naming the key.
    let err = d
        .set_with_ttl("zero", &"z".into(), Duration::ZERO)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("\"zero\""), "{err}");
    assert!(!d.contains("zero").await.unwrap());
}

pub async fn update_with_keeps_ttl_and_set_clears_it(ctx: &Ctx) {
    let store = &ctx.store;
    let d = store.dict::<String, u32>(&ctx.ns("ttl-keep")).unwrap();
    d.set_with_ttl("n", &1, Duration::from_secs(100))
        .await
        .unwrap();
    assert_eq!(d.update_with("n", |v| v.unwrap_or(0) + 1).await.unwrap(), 2);
    assert!(matches!(d.ttl("n").await.unwrap(), Ttl::Expires(t) if t > Duration::from_secs(90)));
    d.set("n", &5).await.unwrap();
    assert_eq!(d.ttl("n").await.unwrap(), Ttl::Persistent);
}

pub async fn concurrent_update_with_never_loses_an_increment(ctx: &Ctx) {
    let store = &ctx.store;
    let d = store.dict::<String, u64>(&ctx.ns("counters")).unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let d = d.clone();
            tokio::spawn(async move {
                for _ in 0..500 {
                    d.update_with("hits", |n| n.unwrap_or(0) + 1).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(d.get("hits").await.unwrap(), Some(4000));
}

pub async fn index_matches_live_keys_after_concurrent_writes(ctx: &Ctx) {
    let store = &ctx.store;
    let ns = ctx.ns("churn");
    let tasks: Vec<_> = (0..6u64)
        .map(|t| {
            let d = store.dict::<u32, u64>(&ns).unwrap();
            tokio::spawn(async move {
                let mut x = t * 7919 + 1;
                for i in 0..400u64 {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let key = ((x >> 33) % 40) as u32;
                    match (x >> 20) % 10 {
                        0..=3 => d.set(&key, &i).await.map(drop).unwrap(),
                        4 => d.delete(&key).await.map(drop).unwrap(),
                        5 => d.remove(&key).await.map(drop).unwrap(),
                        6 => d.set_many([(key, i), (key + 40, i)]).await.unwrap(),
                        7 => d
                            .update_with(&key, |v| v.unwrap_or(0) + 1)
                            .await
                            .map(drop)
                            .unwrap(),
                        8 => d.set_if_absent(&key, &i).await.map(drop).unwrap(),
                        _ if i % 50 == 0 => d.clear().await.map(drop).unwrap(),
                        _ => d
                            .set_with_ttl(&key, &i, Duration::from_secs(60))
                            .await
                            .unwrap(),
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let mut raw = ctx.raw(&ns).await;
    let index = support::index_members(&mut raw, &ns).await;
    let live = support::keyspace_members(&mut raw, &ns).await;
    assert_eq!(index, live, "index and keyspace agree");
    let d = store.dict::<u32, u64>(&ns).unwrap();
    assert_eq!(d.len().await.unwrap(), live.len() as u64);
}

pub async fn remove_is_an_atomic_take(ctx: &Ctx) {
    let store = &ctx.store;
    let d = store.dict::<String, u32>(&ctx.ns("take")).unwrap();
    for round in 0..50 {
        d.set("prize", &round).await.unwrap();
        let (a, b) = tokio::join!(d.remove("prize"), d.remove("prize"));
        let winners = [a.unwrap(), b.unwrap()].into_iter().flatten().count();
        assert_eq!(
            winners, 1,
            "round {round}: exactly one remover gets the value"
        );
    }
    assert_eq!(d.remove("prize").await.unwrap(), None);
}

/// Counts the atomic units (script calls) run by the namespace's server: on
/// a shared cluster, run it with the cluster to itself.
pub async fn bulk_update_larger_than_a_batch_is_applied_in_order(ctx: &Ctx) {
    let store = ctx.builder().max_batch(1000).connect().await.unwrap();
    let ns = ctx.ns("batches");
    let d = store.dict::<u32, u32>(&ns).unwrap();
    let mut raw = ctx.raw(&ns).await;
    let unit = "evalsha";
    // Loads the script, so no batch below meets NOSCRIPT (a call more).
    d.set(&0, &0).await.unwrap();
    let units_before = support::command_calls(&mut raw, unit).await;
    let mut pairs: Vec<(u32, u32)> = (0..5500).map(|i| (i, i)).collect();
    pairs.push((7, 700_000)); // a later batch overwrites an earlier one
    d.set_many(pairs).await.unwrap();
    let units = support::command_calls(&mut raw, unit).await - units_before;
    assert_eq!(d.len().await.unwrap(), 5500);
    assert_eq!(d.get(&7).await.unwrap(), Some(700_000));
    assert_eq!(d.get(&5499).await.unwrap(), Some(5499));
    assert_eq!(units, 6, "one atomic unit per batch");
}

pub async fn set_if_absent_and_get_many(ctx: &Ctx) {
    let store = &ctx.store;
    let d = store.dict::<String, String>(&ctx.ns("nx")).unwrap();
    assert!(d.set_if_absent("k", &"first".into()).await.unwrap());
    assert!(!d.set_if_absent("k", &"second".into()).await.unwrap());
    assert_eq!(d.get("k").await.unwrap().as_deref(), Some("first"));
    d.set("j", &"jay".into()).await.unwrap();
    let got = d.get_many(["k", "missing", "j"]).await.unwrap();
    assert_eq!(
        got,
        [Some("first".to_owned()), None, Some("jay".to_owned())]
    );
    assert_eq!(d.len().await.unwrap(), 2);
}

pub async fn repair_rebuilds_the_index_from_the_keyspace(ctx: &Ctx) {
    let store = &ctx.store;
    let ns = ctx.ns("repair");
    let mut raw = ctx.raw(&ns).await;
    let d = store.dict::<String, u32>(&ns).unwrap();
    d.set("indexed", &1).await.unwrap();
    // Written by another program: entries without index, one with a TTL.
    let mut cbor = Vec::new();
    ciborium::into_writer(&7u32, &mut cbor).unwrap();
    let _: () = redis::cmd("SET")
        .arg(format!("{{{ns}}}:outside"))
        .arg(&cbor)
        .query_async(&mut raw)
        .await
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg(format!("{{{ns}}}:short"))
        .arg(&cbor)
        .arg("PX")
        .arg(60_000)
        .query_async(&mut raw)
        .await
        .unwrap();
    let _: () = redis::cmd("HSET")
        .arg(format!("{{{ns}}}:a-hash"))
        .arg("f")
        .arg("v")
        .query_async(&mut raw)
        .await
        .unwrap();
    // And an entry deleted behind the library's back.
    d.set("deleted-outside", &2).await.unwrap();
    let _: () = redis::cmd("DEL")
        .arg(format!("{{{ns}}}:deleted-outside"))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(
        d.len().await.unwrap(),
        2,
        "the stale index counts the deleted entry"
    );

    let report = d.repair().await.unwrap();
    assert_eq!(
        (report.added, report.removed, report.live),
        (2, 1, 3),
        "{report:?}"
    );
    assert_eq!(d.len().await.unwrap(), 3);
    assert_eq!(d.get("outside").await.unwrap(), Some(7));
    let score: f64 = redis::cmd("ZSCORE")
        .arg(format!("{{{ns}}}#keys"))
        .arg("short")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(
        score.is_finite(),
        "an entry with a TTL is indexed with its expiry"
    );
    let report = d.repair().await.unwrap();
    assert_eq!((report.added, report.removed, report.live), (0, 0, 3));
}

/// Decodes an event payload into (op, key, origin, value, ttl).
fn decode_event(
    payload: &[u8],
) -> (
    String,
    Option<String>,
    Option<String>,
    Option<ciborium::Value>,
) {
    let value: ciborium::Value = ciborium::from_reader(payload).unwrap();
    let map = value.into_map().unwrap();
    let field = |name: &str| {
        map.iter()
            .find(|(k, _)| k.as_text() == Some(name))
            .map(|(_, v)| v.clone())
    };
    assert_eq!(field("v"), Some(ciborium::Value::Integer(1.into())));
    let text = |v: Option<ciborium::Value>| v.and_then(|v| v.into_text().ok());
    (
        text(field("op")).unwrap(),
        text(field("key")),
        text(field("origin")),
        field("value").or_else(|| field("ttl_ms")),
    )
}

pub async fn every_write_publishes_its_event_atomically(ctx: &Ctx) {
    // Classic PUBLISH to per-key channels (on a cluster the default is
    // sharded: `cluster::sharded_events_carry_the_same_payloads_on_the_namespace_channel`).
    let store = ctx
        .builder()
        .origin("proc-1")
        .sharded_events(false)
        .connect()
        .await
        .unwrap();
    let ns = ctx.ns("ev");
    let mut pubsub = ctx.pubsub().await;
    pubsub
        .psubscribe(format!("{{{}}}#ev*", redis_pydict::escape_glob(&ns)))
        .await
        .unwrap();
    let mut messages = pubsub.into_on_message();

    let d = store.dict::<String, u32>(&ns).unwrap();
    d.set("a", &1).await.unwrap();
    d.set_many([("b", 2), ("c", 3)]).await.unwrap();
    d.update_with("a", |v| v.unwrap_or(0) + 10).await.unwrap();
    d.expire("a", Duration::from_secs(30)).await.unwrap();
    d.persist("a").await.unwrap();
    d.delete("b").await.unwrap();
    d.delete("b").await.unwrap(); // nothing deleted: no event
    d.remove("c").await.unwrap();
    d.set_if_absent("a", &99).await.unwrap(); // not written: no event
    d.clear().await.unwrap();
    d.clone()
        .with_notifications(false)
        .set("silent", &0)
        .await
        .unwrap();
    d.clone().with_origin("other").set("z", &26).await.unwrap();

    let int = |n: u32| Some(ciborium::Value::Integer(n.into()));
    let expected = [
        (format!("{{{ns}}}#ev:a"), "set", Some("a"), "proc-1", int(1)),
        (format!("{{{ns}}}#ev:b"), "set", Some("b"), "proc-1", int(2)),
        (format!("{{{ns}}}#ev:c"), "set", Some("c"), "proc-1", int(3)),
        (
            format!("{{{ns}}}#ev:a"),
            "set",
            Some("a"),
            "proc-1",
            int(11),
        ),
        (
            format!("{{{ns}}}#ev:a"),
            "expire",
            Some("a"),
            "proc-1",
            int(30_000),
        ),
        (
            format!("{{{ns}}}#ev:a"),
            "expire",
            Some("a"),
            "proc-1",
            Some(ciborium::Value::Null),
        ),
        (format!("{{{ns}}}#ev:b"), "del", Some("b"), "proc-1", None),
        (format!("{{{ns}}}#ev:c"), "del", Some("c"), "proc-1", None),
        (format!("{{{ns}}}#ev"), "clear", None, "proc-1", None),
        (format!("{{{ns}}}#ev:z"), "set", Some("z"), "other", int(26)),
    ];
    for (channel, op, key, origin, value) in expected {
        let msg = tokio::time::timeout(Duration::from_secs(5), messages.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(msg.get_channel_name(), channel);
        let got = decode_event(msg.get_payload_bytes());
        assert_eq!(
            got,
            (
                op.to_owned(),
                key.map(str::to_owned),
                Some(origin.to_owned()),
                value
            )
        );
    }
    let extra = tokio::time::timeout(Duration::from_millis(200), messages.next()).await;
    assert!(extra.is_err(), "no further events: {extra:?}");
}

/// The blocking mirror, on a blocking store (namespaces prefixed with `prefix`).
pub fn blocking_api_mirrors_the_async_one(store: &redis_pydict::blocking::Store, prefix: &str) {
    store.ping().unwrap();
    let d = store
        .dict::<String, i64>(&format!("{prefix}blocking"))
        .unwrap();
    d.set_many([("a", 1), ("b", 2), ("c", 3)]).unwrap();
    d.set("mykey", &4).unwrap();
    assert_eq!(d.get("a").unwrap(), Some(1));
    assert_eq!(d.len().unwrap(), 4);
    let mut items: Vec<(String, i64)> = d.items().collect::<Result<_, _>>().unwrap();
    items.sort();
    assert_eq!(items[0], ("a".to_owned(), 1));
    assert_eq!(
        d.keys_matching("my*")
            .collect::<Result<Vec<_>, _>>()
            .unwrap(),
        ["mykey"]
    );
    assert_eq!(d.update_with("a", |v| v.unwrap_or(0) * 10).unwrap(), 10);
    assert_eq!(d.remove("b").unwrap(), Some(2));
    assert!(d.set_if_absent("b", &20).unwrap());
    assert_eq!(d.to_map().unwrap().len(), 4);
    assert_eq!(d.clear().unwrap(), 4);
    assert!(d.is_empty().unwrap());
}

/// A clear larger than one batch runs as several atomic script calls and
/// still empties the namespace, with one `Cleared` event at the end.
pub async fn clear_larger_than_a_batch_empties_the_namespace(ctx: &Ctx) {
    use futures::StreamExt;
    let store = ctx.builder().max_batch(1000).connect().await.unwrap();
    let ns = ctx.ns("big-clear");
    let d = store.dict::<u32, u32>(&ns).unwrap();
    d.set_many((0..3500).map(|i| (i, i))).await.unwrap();
    let other = store.dict::<u32, u32>(&ctx.ns("big-clear-other")).unwrap();
    other.set(&1, &1).await.unwrap();
    let mut events = d.subscribe("*").await.unwrap();
    assert_eq!(d.clear().await.unwrap(), 3500);
    assert_eq!(d.len().await.unwrap(), 0);
    assert!(d.keys().collect::<Vec<_>>().await.is_empty());
    assert_eq!(other.len().await.unwrap(), 1, "other namespaces untouched");
    let event = tokio::time::timeout(std::time::Duration::from_secs(5), events.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(event.change, redis_pydict::Change::Cleared);
    let extra = tokio::time::timeout(std::time::Duration::from_millis(300), events.next()).await;
    assert!(extra.is_err(), "one clear event: {extra:?}");
}

/// Iteration reads ahead in tasks of its own: across many pages it yields
/// every entry once, with its value; entries present from start to end are
/// all seen while other entries come and go (by snapshot and by ZSCAN walk);
/// and a stream dropped half-way leaves the store working.
pub async fn iteration_reads_ahead_across_pages(ctx: &Ctx) {
    let store = ctx.builder().page_size(50).connect().await.unwrap();
    let ns = ctx.ns("pages");
    let d = store.dict::<u32, String>(&ns).unwrap();
    d.set_many((0..2000u32).map(|i| (i, format!("v{i}"))))
        .await
        .unwrap();

    let mut got: Vec<(u32, String)> = d.items().try_collect().await.unwrap();
    got.sort();
    let want: Vec<(u32, String)> = (0..2000).map(|i| (i, format!("v{i}"))).collect();
    assert_eq!(got, want);

    // Churn on keys 1000.. while iterating: 0..1000 stay throughout.
    let churn = {
        let d = d.clone();
        tokio::spawn(async move {
            for round in 0..20u32 {
                d.set_many((1000..1100u32).map(|i| (i + round * 100, "new".to_string())))
                    .await
                    .unwrap();
                let gone: Vec<u32> = (1000..1050u32).map(|i| i + round * 50).collect();
                for key in gone {
                    d.delete(&key).await.unwrap();
                }
            }
        })
    };
    // items() of a namespace this size reads a snapshot of the index;
    // items_matching walks it with ZSCAN. Both run during the churn.
    let (snapshot, walk) = tokio::join!(
        d.items().try_collect::<Vec<_>>(),
        d.items_matching("*").try_collect::<Vec<_>>()
    );
    churn.await.unwrap();
    for items in [snapshot.unwrap(), walk.unwrap()] {
        let mut seen = BTreeSet::new();
        for (key, value) in items {
            assert!(seen.insert(key), "{key} yielded twice");
            if key < 1000 {
                assert_eq!(value, format!("v{key}"));
            }
        }
        assert!(
            (0..1000).all(|k| seen.contains(&k)),
            "a stable entry was missed"
        );
    }

    // Dropped after a few entries: the read-ahead stops, the store goes on.
    let first: Vec<_> = d.keys().take(3).try_collect().await.unwrap();
    assert_eq!(first.len(), 3);
    d.set(&5, &"after".to_string()).await.unwrap();
    assert_eq!(d.get(&5).await.unwrap().as_deref(), Some("after"));
}

/// `remove` decodes the old value after removing it: when it does not decode,
/// the entry is gone all the same, and the error says so (`Error::Removed`,
/// `was_applied`, not `outcome_unknown`) and hands back the stored bytes.
pub async fn remove_of_an_undecodable_value_says_it_was_removed(ctx: &Ctx) {
    let ns = ctx.ns("removed");
    let numbers = ctx.store.dict::<String, u32>(&ns).unwrap();
    let words = ctx.store.dict::<String, String>(&ns).unwrap();
    numbers.set("n", &7).await.unwrap();
    let mut events = words.subscribe_key("n").await.unwrap();
    let err = words.remove("n").await.unwrap_err();
    assert!(err.was_applied(), "{err}");
    assert!(!err.outcome_unknown(), "{err}");
    assert!(!err.is_connection_error(), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("removed key \"n\"") && message.contains("applied"),
        "{message}"
    );
    let redis_pydict::Error::Removed {
        operation,
        key,
        value,
        source,
        ..
    } = err
    else {
        panic!("expected Error::Removed, got {err:?}");
    };
    assert_eq!((operation, key.as_str()), ("remove", "n"));
    assert_eq!(value, [0x07], "the stored CBOR of 7");
    assert!(
        matches!(*source, redis_pydict::Error::Decode { .. }),
        "{source}"
    );
    // Applied: gone from the keyspace and the index, and announced.
    assert!(!numbers.contains("n").await.unwrap());
    assert_eq!(numbers.len().await.unwrap(), 0);
    let event = tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .expect("a Deleted event")
        .expect("a subscription never ends")
        .unwrap();
    assert_eq!(event.change, redis_pydict::Change::Deleted);
    // A decodable or missing value is unchanged: Ok.
    words.set("w", &"x".into()).await.unwrap();
    assert_eq!(words.remove("w").await.unwrap(), Some("x".into()));
    assert_eq!(words.remove("w").await.unwrap(), None);
}

/// A key holding foreign data (a hash written by another program) is
/// refused by `get_many` as `get` refuses it (MGET alone reads it as
/// absent), by `to_map`/`items`, and by `update_with` before its closure
/// ever runs (the read sees it as nil). `keys` and `len` list it, as
/// documented: they read the index only.
pub async fn foreign_data_is_refused_by_get_many_and_before_update_with_runs(ctx: &Ctx) {
    let ns = ctx.ns("foreign-reads");
    let mut raw = ctx.raw(&ns).await;
    let d = ctx.store.dict::<String, u32>(&ns).unwrap();
    d.set("good", &1).await.unwrap();
    d.set("hashed", &2).await.unwrap();
    let hashed = format!("{{{ns}}}:hashed");
    let _: () = redis::cmd("DEL")
        .arg(&hashed)
        .query_async(&mut raw)
        .await
        .unwrap();
    let _: () = redis::cmd("HSET")
        .arg(&hashed)
        .arg("f")
        .arg("v")
        .query_async(&mut raw)
        .await
        .unwrap();
    let wrong_type = |err: redis_pydict::Error, operation: &str| match err {
        redis_pydict::Error::WrongType {
            operation: op,
            role,
            key,
            found,
            ..
        } => {
            assert_eq!(
                (op, role, key.as_str()),
                (operation, "entry", hashed.as_str())
            );
            assert_eq!(found, "hash");
        }
        other => panic!("expected WrongType from {operation}, got {other:?}"),
    };

    assert!(matches!(
        d.get("hashed").await.unwrap_err(),
        redis_pydict::Error::WrongType { .. }
    ));
    wrong_type(
        d.get_many(["good", "missing", "hashed"]).await.unwrap_err(),
        "get_many",
    );
    // Without foreign data: values and None, as before.
    assert_eq!(
        d.get_many(["good", "missing"]).await.unwrap(),
        [Some(1), None]
    );
    assert_eq!(d.get_many(["good"]).await.unwrap(), [Some(1)]);
    wrong_type(d.to_map().await.unwrap_err(), "iterate");

    let mut calls = 0;
    let err = d
        .update_with("hashed", |v| {
            calls += 1;
            v.unwrap_or(0) + 1
        })
        .await
        .unwrap_err();
    wrong_type(err, "update_with");
    assert_eq!(calls, 0, "the closure never saw the hash as absent");
    let kept: std::collections::HashMap<String, String> = redis::cmd("HGETALL")
        .arg(&hashed)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(
        kept.get("f").map(String::as_str),
        Some("v"),
        "left as it was"
    );
    // A missing key and a string one still work.
    assert_eq!(
        d.update_with("new", |v| v.unwrap_or(40) + 2).await.unwrap(),
        42
    );
    assert_eq!(
        d.update_with("good", |v| v.unwrap_or(0) + 1).await.unwrap(),
        2
    );

    // keys() and len() read the index only (documented): the member is listed.
    let mut keys: Vec<String> = d.keys().try_collect().await.unwrap();
    keys.sort();
    assert_eq!(keys, ["good", "hashed", "new"]);
    assert_eq!(d.len().await.unwrap(), 3);
}

/// The blocking mirror goes through the same path: `remove` of an
/// undecodable value is `Error::Removed`, and the entry is gone.
pub fn blocking_remove_of_an_undecodable_value_says_it_was_removed(
    store: &redis_pydict::blocking::Store,
    prefix: &str,
) {
    let ns = format!("{prefix}blocking-removed");
    let numbers = store.dict::<String, u32>(&ns).unwrap();
    let words = store.dict::<String, String>(&ns).unwrap();
    numbers.set("n", &7).unwrap();
    let err = words.remove("n").unwrap_err();
    assert!(
        matches!(&err, redis_pydict::Error::Removed { value, .. } if value == &[0x07]),
        "{err}"
    );
    assert!(err.was_applied() && !err.outcome_unknown(), "{err}");
    assert!(!numbers.contains("n").unwrap());
}

/// Collects `events` in a task of its own (so that none is dropped for a
/// slow consumer) until one `Cleared` has come and then nothing for 500 ms.
fn collect_through_clear<K, V>(
    mut events: redis_pydict::Subscription<redis_pydict::Event<K, V>>,
) -> tokio::task::JoinHandle<Vec<redis_pydict::Event<K, V>>>
where
    K: std::fmt::Debug + Send + 'static,
    V: std::fmt::Debug + Send + 'static,
{
    tokio::spawn(async move {
        let mut seen = Vec::new();
        let mut cleared = false;
        loop {
            let wait = Duration::from_millis(if cleared { 500 } else { 30_000 });
            match tokio::time::timeout(wait, events.next()).await {
                Ok(Some(Ok(event))) => {
                    cleared |= matches!(event.change, redis_pydict::Change::Cleared);
                    seen.push(event);
                }
                Err(_) if cleared => return seen,
                other => panic!(
                    "expected an event, got {other:?} after {} events",
                    seen.len()
                ),
            }
        }
    })
}

/// The namespace's sequence number, read behind the library's back.
async fn seq_of(ctx: &Ctx, ns: &str) -> u64 {
    let mut raw = ctx.raw(ns).await;
    let seq: Option<u64> = redis::cmd("GET")
        .arg(format!("{{{ns}}}#seq"))
        .query_async(&mut raw)
        .await
        .unwrap();
    seq.unwrap_or(0)
}

/// A clear of 20,000 entries in calls of 1,000 keeps several calls in
/// flight, and still: exactly one `Cleared` event, last; with previous
/// values one `Deleted` event per entry carrying its value; every event
/// numbered, the numbers strictly increasing, the last one the namespace's
/// counter after the clear.
pub async fn pipelined_clear_sends_one_clear_event_and_every_previous_value(ctx: &Ctx) {
    use redis_pydict::{Change, Previous};
    const N: u32 = 20_000;
    let store = ctx
        .builder()
        .max_batch(1000)
        .subscription_buffer(50_000, 64 * 1024 * 1024)
        .connect()
        .await
        .unwrap();
    let ns = ctx.ns("pipelined-clear");
    let d = store
        .dict::<u32, u32>(&ns)
        .unwrap()
        .with_previous_values(true);
    d.set_many((0..N).map(|i| (i, i * 3))).await.unwrap();
    let before = seq_of(ctx, &ns).await;
    let collector = collect_through_clear(d.subscribe("*").await.unwrap());
    assert_eq!(d.clear().await.unwrap(), u64::from(N));
    let events = collector.await.unwrap();
    assert_eq!(d.len().await.unwrap(), 0);

    let (last, deleted) = events.split_last().unwrap();
    assert_eq!((&last.key, &last.change), (&None, &Change::Cleared));
    let mut seen = BTreeSet::new();
    for e in deleted {
        assert_eq!(e.change, Change::Deleted, "{e:?}");
        let key = e.key.unwrap();
        assert_eq!(e.previous, Previous::Value(key * 3), "{e:?}");
        assert!(seen.insert(key), "two events for {key}");
    }
    assert_eq!(seen.len(), N as usize, "one Deleted event per entry");
    let numbers: Vec<u64> = events.iter().map(|e| e.seq.unwrap()).collect();
    assert!(numbers[0] > before, "{} after {before}", numbers[0]);
    assert!(
        numbers.windows(2).all(|w| w[0] < w[1]),
        "sequence numbers strictly increasing"
    );
    assert_eq!(*numbers.last().unwrap(), seq_of(ctx, &ns).await);
}

/// Entries written while a clear runs: every one written before its
/// `Cleared` event is removed (the clear ends only when a call leaves the
/// index empty, and that call sends the event), every one written after it
/// stays; one `Cleared` event; the count returned includes the entries it
/// removed of the writer's.
pub async fn clear_during_writes_removes_what_precedes_its_event(ctx: &Ctx) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let store = ctx.builder().max_batch(500).connect().await.unwrap();
    let ns = ctx.ns("clear-while-writing");
    let d = store.dict::<String, u32>(&ns).unwrap();
    d.set_many((0..10_000u32).map(|i| (format!("old{i}"), i)))
        .await
        .unwrap();
    let collector = collect_through_clear(d.subscribe("*").await.unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn({
        let (d, stop) = (d.clone(), stop.clone());
        async move {
            let mut written = 0u32;
            while !stop.load(Ordering::Relaxed) {
                d.set(&format!("new{written}"), &written).await.unwrap();
                written += 1;
            }
            written
        }
    });
    // Let the writer get going, then clear under it.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let removed = d.clear().await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    stop.store(true, Ordering::Relaxed);
    let written = writer.await.unwrap();
    let events = collector.await.unwrap();

    let clears: Vec<usize> = (0..events.len())
        .filter(|&i| events[i].change == redis_pydict::Change::Cleared)
        .collect();
    assert_eq!(clears.len(), 1, "one Cleared event");
    let (before, after) = events.split_at(clears[0]);
    let keys = |events: &[redis_pydict::Event<String, u32>]| -> BTreeSet<String> {
        events
            .iter()
            .filter(|e| matches!(e.change, redis_pydict::Change::Set(_)))
            .map(|e| e.key.clone().unwrap())
            .collect()
    };
    let (before, after) = (keys(before), keys(&after[1..]));
    assert_eq!(
        before.len() + after.len(),
        written as usize,
        "every write seen"
    );
    assert!(!before.is_empty(), "the writer wrote during the clear");
    let held: BTreeSet<String> = d.keys().try_collect().await.unwrap();
    assert_eq!(
        held, after,
        "exactly the writes after the Cleared event stay"
    );
    assert_eq!(removed, 10_000 + before.len() as u64);
    let mut raw = ctx.raw(&ns).await;
    let index = support::index_members(&mut raw, &ns).await;
    let live = support::keyspace_members(&mut raw, &ns).await;
    assert_eq!(index, live, "index and keyspace agree");
}

/// A clear whose sixth call meets foreign data (a hash at an indexed entry)
/// while later calls are in flight: that call and the ones behind it
/// remove nothing, the five before it are applied, the error counts exactly
/// them, the hash is intact and no `Cleared` event goes out.
pub async fn clear_failing_mid_way_counts_what_it_removed(ctx: &Ctx) {
    let store = ctx.builder().max_batch(10).connect().await.unwrap();
    let ns = ctx.ns("clear-partly");
    let d = store.dict::<String, u32>(&ns).unwrap();
    d.set_many((0..100u32).map(|i| (format!("e{i:02}"), i)))
        .await
        .unwrap();
    let hash = format!("{{{ns}}}:e55");
    let mut raw = ctx.raw(&ns).await;
    redis::pipe()
        .del(&hash)
        .hset(&hash, "f", "precious")
        .query_async::<()>(&mut raw)
        .await
        .unwrap();
    let mut events = d.subscribe("*").await.unwrap();
    let err = d.clear().await.unwrap_err();
    let redis_pydict::Error::PartlyApplied {
        failed_batch,
        applied_batches,
        applied_entries,
        ref source,
        ..
    } = err
    else {
        panic!("expected PartlyApplied, got {err}");
    };
    assert!(
        matches!(**source, redis_pydict::Error::WrongType { .. }),
        "{source}"
    );
    assert_eq!((failed_batch, applied_batches, applied_entries), (6, 5, 50));
    let precious: Option<String> = redis::cmd("HGET")
        .arg(&hash)
        .arg("f")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(precious.as_deref(), Some("precious"));
    let index = support::index_members(&mut raw, &ns).await;
    let want: Vec<String> = (50..100).map(|i| format!("e{i}")).collect();
    assert_eq!(index, want, "the first 50 removed, nothing else");
    for i in (50..100).filter(|&i| i != 55) {
        assert_eq!(d.get(&format!("e{i}")).await.unwrap(), Some(i));
    }
    let extra = tokio::time::timeout(Duration::from_millis(300), events.next()).await;
    assert!(extra.is_err(), "no event: {extra:?}");
}

/// Two clears of one namespace at once, from two stores: each sends calls
/// ahead from its own estimate, so many find the index already emptied by
/// the other; still each sends exactly one `Cleared` event (two in all),
/// and each entry is counted by exactly one of them.
pub async fn concurrent_clears_send_one_clear_event_each(ctx: &Ctx) {
    const N: u64 = 20_000;
    let ns = ctx.ns("concurrent-clears");
    let stores = [
        ctx.builder().max_batch(500).connect().await.unwrap(),
        ctx.builder().max_batch(700).connect().await.unwrap(),
    ];
    let [a, b] = stores.map(|store| store.dict::<u64, u64>(&ns).unwrap());
    for round in 0..3 {
        a.set_many((0..N).map(|i| (i, i))).await.unwrap();
        let collector = collect_through_clear(a.subscribe("*").await.unwrap());
        let (x, y) = tokio::join!(
            tokio::spawn({
                let a = a.clone();
                async move { a.clear().await }
            }),
            tokio::spawn({
                let b = b.clone();
                async move { b.clear().await }
            }),
        );
        let (x, y) = (x.unwrap().unwrap(), y.unwrap().unwrap());
        assert_eq!(x + y, N, "round {round}: each entry counted once");
        // The collector stops 500 ms after the first Cleared: both have
        // been sent by then (both clears returned).
        let events = collector.await.unwrap();
        let clears = events
            .iter()
            .filter(|e| matches!(e.change, redis_pydict::Change::Cleared))
            .count();
        assert_eq!(clears, 2, "round {round}: one Cleared event per clear");
        assert_eq!(a.len().await.unwrap(), 0);
    }
}
