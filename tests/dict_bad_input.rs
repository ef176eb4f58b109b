//! Bad input gets a clear error naming what was wrong: never a panic, never
//! lost or corrupted data.

mod support;

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use redis_pydict::{Error, Store};
use redis_pydict_test::RedisServer;

#[tokio::test]
async fn invalid_namespaces_are_refused_before_any_io() {
    let (server, store) = support::start().await;
    let mut raw = support::raw(&server).await;
    let calls_before = support::command_calls(&mut raw, "exists").await;
    for bad in ["", "a{b", "b}", &"n".repeat(257)] {
        let err = store.dict::<String, u32>(bad).unwrap_err();
        assert!(
            matches!(err, Error::InvalidNamespace { .. }),
            "{bad:?}: {err}"
        );
        assert!(err.to_string().starts_with("invalid namespace"), "{err}");
    }
    assert!(store.dict::<String, u32>(&"n".repeat(256)).is_ok());
    assert!(store.dict::<String, u32>("ünï code & spaces:ok").is_ok());
    assert_eq!(
        support::command_calls(&mut raw, "exists").await,
        calls_before
    );
}

#[tokio::test]
async fn wrong_type_error_names_key_and_type_and_keeps_data() {
    let (_server, store) = support::start().await;
    let text = store.dict::<String, String>("typed").unwrap();
    text.set("name", &"ada".into()).await.unwrap();
    let numbers = store.dict::<String, u32>("typed").unwrap();
    let err = numbers.get("name").await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Decode { .. }));
    assert!(
        msg.contains("\"name\"") && msg.contains("u32") && msg.contains("typed"),
        "{msg}"
    );
    // The failed read changed nothing; an optimistic update that cannot decode writes nothing.
    assert!(numbers
        .update_with("name", |n| n.unwrap_or(0) + 1)
        .await
        .is_err());
    assert_eq!(text.get("name").await.unwrap().as_deref(), Some("ada"));
}

#[tokio::test]
async fn garbage_written_by_another_client_is_an_error_item_not_a_panic() {
    let (server, store) = support::start().await;
    let mut raw = support::raw(&server).await;
    let d = store.dict::<String, Vec<u32>>("shared").unwrap();
    d.set("good", &vec![1, 2]).await.unwrap();
    let _: () = redis::cmd("SET")
        .arg("{shared}:garbage")
        .arg(&b"\xff\x00not cbor"[..])
        .query_async(&mut raw)
        .await
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg("{shared}:trailing")
        .arg(&b"\x01\x02"[..])
        .query_async(&mut raw)
        .await
        .unwrap();
    let report = d.repair().await.unwrap();
    assert_eq!(report.live, 3);

    let err = d.get("garbage").await.unwrap_err().to_string();
    assert!(err.contains("\"garbage\""), "{err}");
    let err = d.get("trailing").await.unwrap_err().to_string();
    assert!(err.contains("\"trailing\""), "{err}");

    let results: Vec<_> = d.items().collect().await;
    assert_eq!(results.len(), 3, "the stream goes on after a bad value");
    let good: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(good, [&("good".to_owned(), vec![1, 2])]);
    assert!(
        d.to_map().await.is_err(),
        "collecting stops at the first bad value"
    );
}

#[tokio::test]
async fn non_canonical_integer_keys_are_reported() {
    let (server, store) = support::start().await;
    let mut raw = support::raw(&server).await;
    let d = store.dict::<u32, String>("ints").unwrap();
    d.set(&7, &"seven".into()).await.unwrap();
    let mut cbor = Vec::new();
    ciborium::into_writer("odd", &mut cbor).unwrap();
    let _: () = redis::cmd("SET")
        .arg("{ints}:007")
        .arg(&cbor)
        .query_async(&mut raw)
        .await
        .unwrap();
    d.repair().await.unwrap();
    let results: Vec<_> = d.keys().collect().await;
    assert_eq!(results.len(), 2);
    let err = results
        .into_iter()
        .find_map(Result::err)
        .unwrap()
        .to_string();
    assert!(err.contains("\"007\"") && err.contains("u32"), "{err}");
}

#[tokio::test]
async fn oversized_values_are_refused_and_nothing_is_written() {
    let (_server, _) = support::start().await;
    let store = Store::builder(&_server.url())
        .max_value_size(1024)
        .connect()
        .await
        .unwrap();
    let d = store.dict::<String, String>("big").unwrap();
    d.set("k", &"small".into()).await.unwrap();
    let huge = "x".repeat(2000);
    let err = d.set("k", &huge).await.unwrap_err();
    assert!(
        matches!(err, Error::ValueTooLarge { size, limit: 1024, .. } if size > 2000),
        "{err}"
    );
    assert!(err.to_string().contains("\"k\""));
    let err = d
        .set_many([("a", "ok".to_owned()), ("b", huge.clone())])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("\"b\""), "{err}");
    assert_eq!(d.get("k").await.unwrap().as_deref(), Some("small"));
    assert!(
        !d.contains("a").await.unwrap(),
        "a refused bulk update writes nothing"
    );
}

#[tokio::test]
async fn dead_server_gives_a_clear_error_then_recovers() {
    let mut server = RedisServer::start();
    let store = Store::builder(&server.url())
        .reconnect(2, Duration::from_millis(50), Duration::from_millis(200))
        .connect()
        .await
        .unwrap();
    let d = store.dict::<String, u32>("life").unwrap();
    d.set("before", &1).await.unwrap();

    server.kill();
    // An error, not a wait for the server (the store gives up after its 2
    // reconnection attempts, well within the limit here).
    let err = tokio::time::timeout(Duration::from_secs(10), d.get("before"))
        .await
        .expect("a read from a dead server returns instead of hanging")
        .unwrap_err();
    assert!(err.is_connection_error(), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("get") && msg.contains("life"), "{msg}");
    assert!(d.set("during", &2).await.is_err());

    server.restart(); // same port, empty database
    support::eventually(Duration::from_secs(10), || d.set("after", &3)).await;
    assert_eq!(d.get("after").await.unwrap(), Some(3));
    assert_eq!(d.len().await.unwrap(), 1);
    // Optimistic updates recover too (they use their own connections).
    assert_eq!(
        d.update_with("after", |v| v.unwrap_or(0) + 1)
            .await
            .unwrap(),
        4
    );
}

#[tokio::test]
async fn connecting_to_nothing_fails_with_the_url() {
    let port = redis_pydict_test::free_port().unwrap();
    let url = format!("redis://user:hunter2@127.0.0.1:{port}/");
    let err = Store::builder(&url)
        .reconnect(1, Duration::from_millis(10), Duration::from_millis(10))
        .connect()
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(&format!("127.0.0.1:{port}")), "{msg}");
    assert!(
        !msg.contains("hunter2"),
        "the password never reaches messages: {msg}"
    );
    assert!(err.is_connection_error());
    assert!(matches!(
        Store::connect("http://nope").await,
        Err(Error::Connect { .. })
    ));
}

#[tokio::test]
async fn url_with_password_and_database() {
    let server = RedisServer::start_with(&["--requirepass", "s3cret"]);
    let url = format!("redis://default:s3cret@127.0.0.1:{}/3", server.port());
    let store = Store::connect(&url).await.unwrap();
    assert_eq!(
        store.url(),
        format!("redis://default:***@127.0.0.1:{}/3", server.port())
    );
    store
        .dict::<String, u32>("db3")
        .unwrap()
        .set("k", &1)
        .await
        .unwrap();
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let exists: bool = redis::cmd("EXISTS")
        .arg("{db3}:k")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(exists, "written to database 3");
    let wrong = format!("redis://default:wrong@127.0.0.1:{}/", server.port());
    let err = Store::builder(&wrong)
        .reconnect(0, Duration::from_millis(10), Duration::from_millis(10))
        .connect()
        .await
        .unwrap_err();
    assert!(!err.to_string().contains("wrong@"), "{err}");
}

#[tokio::test]
async fn server_dying_mid_iteration_ends_the_stream_with_an_error() {
    let mut server = RedisServer::start();
    let store = Store::builder(&server.url())
        .page_size(100)
        .reconnect(2, Duration::from_millis(50), Duration::from_millis(200))
        .connect()
        .await
        .unwrap();
    let d = store.dict::<u32, String>("midway").unwrap();
    d.set_many((0..5000u32).map(|i| (i, format!("value {i}"))))
        .await
        .unwrap();

    let mut items = std::pin::pin!(d.items());
    for _ in 0..10 {
        items.next().await.unwrap().unwrap();
    }
    server.kill();
    // The entries read ahead may still come; then one error, then the end
    // (each within 20 s: a hang fails the test).
    let mut received = 10;
    let err = loop {
        match tokio::time::timeout(Duration::from_secs(20), items.next()).await {
            Ok(Some(Ok(_))) => received += 1,
            Ok(Some(Err(e))) => break e,
            Ok(None) => panic!("the stream ended without an error after {received} entries"),
            Err(_) => panic!("the stream hung after {received} entries"),
        }
    };
    assert!(received < 5000, "{received}");
    assert!(err.is_connection_error(), "{err:?}");
    assert!(err.to_string().contains("iterate"), "{err}");
    assert!(items.next().await.is_none(), "nothing after the error");

    // The store recovers for the next iteration.
    server.restart();
    let back = "back".to_string();
    support::eventually(Duration::from_secs(10), || d.set(&1, &back)).await;
    let all: Vec<(u32, String)> = d.items().try_collect().await.unwrap();
    assert_eq!(all, vec![(1, "back".to_string())]);
}
