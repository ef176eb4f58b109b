//! Durable-log discoverability (WIRE.md, "Namespace metadata"): a dict with a
//! durable log declares it in `{ns}#meta` (field `log_maxlen`) with its
//! first logged write, and every other writer of the namespace, configured
//! with a log or not, with notifications or not, then appends to the log.
//! Foreign data in `{ns}#meta` fails writes and changes nothing.

mod support;

use std::time::Duration;

use futures::StreamExt;
use redis_pydict::{Change, Error, StartFrom, LOG_MAXLEN_FIELD};

/// The `e` payloads of `{ns}#log`, decoded as (op, key).
async fn logged(
    raw: &mut redis::aio::MultiplexedConnection,
    ns: &str,
) -> Vec<(String, Option<String>)> {
    let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(format!("{{{ns}}}#log"))
        .arg("-")
        .arg("+")
        .query_async(raw)
        .await
        .unwrap();
    reply
        .ids
        .iter()
        .map(|entry| {
            let bytes: Vec<u8> = entry.get("e").expect("field e");
            let value: ciborium::Value = ciborium::from_reader(bytes.as_slice()).unwrap();
            let map = value.into_map().unwrap();
            let field = |name: &str| {
                map.iter()
                    .find(|(k, _)| k.as_text() == Some(name))
                    .map(|(_, v)| v.clone())
            };
            let op = field("op").unwrap().into_text().unwrap();
            let key = field("key").and_then(|k| k.into_text().ok());
            (op, key)
        })
        .collect()
}

async fn hget(raw: &mut redis::aio::MultiplexedConnection, key: &str) -> Option<String> {
    redis::cmd("HGET")
        .arg(key)
        .arg(LOG_MAXLEN_FIELD)
        .query_async(raw)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_logged_dict_declares_its_log_and_every_other_writer_appends_to_it(
) -> Result<(), Box<dyn std::error::Error>> {
    let (server, store) = support::start().await;
    let mut raw = support::raw(&server).await;
    let logged_dict = store.dict::<String, u32>("orders")?.with_durable_log(5_000);
    // Notifications off and no log of its own: it would log nothing by itself.
    let plain = store
        .dict::<String, u32>("orders")?
        .with_notifications(false);

    // Before any logged write: nothing declared, a plain write is not logged.
    plain.set("before", &0).await?;
    assert_eq!(plain.durable_log_declared().await?, None);
    assert_eq!(hget(&mut raw, "{orders}#meta").await, None);
    // A logged write that appends nothing (deleting a missing key) declares nothing.
    assert!(!logged_dict.delete("missing").await?);
    assert_eq!(hget(&mut raw, "{orders}#meta").await, None);

    logged_dict.set("a", &1).await?;
    assert_eq!(
        hget(&mut raw, "{orders}#meta").await.as_deref(),
        Some("5000")
    );
    assert_eq!(plain.durable_log_declared().await?, Some(5_000));

    // Every write operation of the plain dict now appends.
    plain.set("b", &2).await?;
    plain
        .set_many(vec![("c".to_string(), 3), ("d".to_string(), 4)])
        .await?;
    plain.set_with_ttl("e", &5, Duration::from_secs(60)).await?;
    assert!(plain.set_if_absent("f", &6).await?);
    plain.expire("b", Duration::from_secs(60)).await?;
    plain.persist("b").await?;
    plain.update_with("a", |v| v.unwrap_or(0) + 10).await?;
    assert!(plain.delete("c").await?);
    assert_eq!(plain.remove("d").await?, Some(4));
    plain.clear().await?;
    let ops: Vec<(String, Option<String>)> = logged(&mut raw, "orders").await;
    let expect = |op: &str, key: Option<&str>| (op.to_string(), key.map(str::to_string));
    assert_eq!(
        ops,
        vec![
            expect("set", Some("a")),
            expect("set", Some("b")),
            expect("set", Some("c")),
            expect("set", Some("d")),
            expect("set", Some("e")),
            expect("set", Some("f")),
            expect("expire", Some("b")),
            expect("expire", Some("b")),
            expect("set", Some("a")),
            expect("del", Some("c")),
            expect("del", Some("d")),
            expect("clear", None),
        ]
    );
    // The durable subscriber sees the plain dict's writes.
    let mut log = plain.subscribe_durable(StartFrom::Beginning).await?;
    let (_, first) = log.next().await.unwrap()?;
    assert_eq!(
        (first.key.as_deref(), first.change),
        (Some("a"), Change::Set(1))
    );
    let (_, second) = log.next().await.unwrap()?;
    assert_eq!(
        (second.key.as_deref(), second.change),
        (Some("b"), Change::Set(2))
    );
    // `clear` leaves the metadata, like the log.
    assert_eq!(plain.durable_log_declared().await?, Some(5_000));
    Ok(())
}

#[tokio::test]
async fn the_declaration_is_written_once_not_per_write() -> Result<(), Box<dyn std::error::Error>> {
    let (server, store) = support::start().await;
    let mut raw = support::raw(&server).await;
    let d = store.dict::<String, u32>("once")?.with_durable_log(100);
    let before = support::command_calls(&mut raw, "hset").await;
    for i in 0..20 {
        d.set(&format!("k{i}"), &i).await?;
    }
    assert_eq!(support::command_calls(&mut raw, "hset").await, before + 1);
    // Another cap: the last configured writer's cap is declared (and used).
    let bigger = store.dict::<String, u32>("once")?.with_durable_log(700);
    bigger.set("x", &1).await?;
    assert_eq!(d.durable_log_declared().await?, Some(700));
    assert_eq!(support::command_calls(&mut raw, "hset").await, before + 2);
    Ok(())
}

#[tokio::test]
async fn an_honouring_writer_uses_the_declared_cap() -> Result<(), Box<dyn std::error::Error>> {
    let (server, store) = support::start().await;
    let mut raw = support::raw(&server).await;
    let () = redis::cmd("HSET")
        .arg("{capped}#meta")
        .arg(LOG_MAXLEN_FIELD)
        .arg("10")
        .query_async(&mut raw)
        .await
        .unwrap();
    let plain = store.dict::<u32, u32>("capped")?;
    for i in 0..2_000u32 {
        plain.set(&i, &i).await?;
    }
    let len: u64 = redis::cmd("XLEN")
        .arg("{capped}#log")
        .query_async(&mut raw)
        .await
        .unwrap();
    // MAXLEN ~ 10 trims whole nodes (100 entries by default): far below 2,000.
    assert!((10..=200).contains(&len), "{len}");
    Ok(())
}

#[tokio::test]
async fn foreign_metadata_fails_writes_and_changes_nothing(
) -> Result<(), Box<dyn std::error::Error>> {
    let (server, store) = support::start().await;
    let mut raw = support::raw(&server).await;
    let plain = store.dict::<String, u32>("meta")?;
    let logged_dict = store.dict::<String, u32>("meta")?.with_durable_log(10);

    // A string where the hash belongs.
    let () = redis::cmd("SET")
        .arg("{meta}#meta")
        .arg("foreign")
        .query_async(&mut raw)
        .await
        .unwrap();
    for d in [&plain, &logged_dict] {
        let err = d.set("a", &1).await.unwrap_err();
        match &err {
            Error::WrongType {
                role,
                key,
                found,
                expected,
                ..
            } => assert_eq!(
                (*role, key.as_str(), found.as_str(), *expected),
                ("namespace metadata", "{meta}#meta", "string", "hash")
            ),
            other => panic!("{other}"),
        }
        assert!(err.to_string().contains("nothing was changed"), "{err}");
        let err = d.durable_log_declared().await.unwrap_err();
        assert!(
            matches!(
                err,
                Error::WrongType {
                    role: "namespace metadata",
                    ..
                }
            ),
            "{err}"
        );
    }
    assert!(support::keyspace_members(&mut raw, "meta").await.is_empty());
    assert!(support::index_members(&mut raw, "meta").await.is_empty());

    // A hash whose cap is not a positive integer.
    let () = redis::cmd("DEL")
        .arg("{meta}#meta")
        .query_async(&mut raw)
        .await
        .unwrap();
    for bad in ["abc", "0", "-5", "1.5"] {
        let () = redis::cmd("HSET")
            .arg("{meta}#meta")
            .arg(LOG_MAXLEN_FIELD)
            .arg(bad)
            .query_async(&mut raw)
            .await
            .unwrap();
        let err = plain.set("a", &1).await.unwrap_err();
        match &err {
            Error::InvalidMetadata {
                key, field, value, ..
            } => {
                assert_eq!(
                    (key.as_str(), *field, value.as_str()),
                    ("{meta}#meta", "log_maxlen", bad)
                )
            }
            other => panic!("{bad}: {other}"),
        }
        assert!(matches!(
            plain.durable_log_declared().await.unwrap_err(),
            Error::InvalidMetadata { .. }
        ));
        // A dict with its own log does not need the declared cap: it writes its own.
        logged_dict.set("own", &1).await?;
        assert_eq!(hget(&mut raw, "{meta}#meta").await.as_deref(), Some("10"));
        logged_dict.delete("own").await?;
    }
    assert_eq!(plain.get("a").await?, None);
    Ok(())
}

/// On a cluster the metadata and the log share the namespace's slot: the same
/// scripts declare and honour the log there.
#[tokio::test]
async fn a_cluster_namespace_declares_and_honours_its_log() -> Result<(), Box<dyn std::error::Error>>
{
    let cluster = redis_pydict_test::RedisCluster::start();
    let urls = cluster.urls();
    let seeds: Vec<&str> = urls.iter().map(String::as_str).collect();
    let store = redis_pydict::Store::connect_cluster(&seeds).await?;
    let logged_dict = store.dict::<String, u32>("c-orders")?.with_durable_log(100);
    let plain = store.dict::<String, u32>("c-orders")?;
    logged_dict.set("a", &1).await?;
    assert_eq!(plain.durable_log_declared().await?, Some(100));
    plain.set("b", &2).await?;
    plain.update_with("b", |v| v.unwrap_or(0) + 1).await?;
    plain.delete("a").await?;
    let mut log = plain.subscribe_durable(StartFrom::Beginning).await?;
    let mut seen = Vec::new();
    for _ in 0..4 {
        let (_, event) = tokio::time::timeout(Duration::from_secs(10), log.next())
            .await
            .expect("the log holds every write")
            .unwrap()?;
        seen.push((event.key, event.change));
    }
    assert_eq!(
        seen,
        vec![
            (Some("a".to_string()), Change::Set(1)),
            (Some("b".to_string()), Change::Set(2)),
            (Some("b".to_string()), Change::Set(3)),
            (Some("a".to_string()), Change::Deleted),
        ]
    );
    Ok(())
}
