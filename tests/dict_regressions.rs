//! One regression test per mistake of the Python original (design.md, 1-5 and
//! 8), each on a server of its own. The shared bodies are in
//! `cases/regressions.rs` (also run on a cluster by `cluster.rs`).

mod support;
mod cases {
    pub mod regressions;
}

use cases::regressions as case;
use futures::TryStreamExt;
use redis_pydict::Store;

#[tokio::test]
async fn namespaces_are_isolated_for_len_iteration_and_clear() {
    let (_server, ctx) = support::single().await;
    case::namespaces_are_isolated_for_len_iteration_and_clear(&ctx).await;
}

#[tokio::test]
async fn keys_with_separators_and_specials_round_trip() {
    let (_server, ctx) = support::single().await;
    case::keys_with_separators_and_specials_round_trip(&ctx).await;
}

/// Mistake 4: len, iteration and clear touch the namespace index, never SCAN
/// the database (which here holds 200,000 other keys). Single server only:
/// it fills the whole database with DEBUG POPULATE.
#[tokio::test]
async fn len_iteration_and_clear_never_scan_the_database() {
    let server = redis_pydict_test::RedisServer::start_with(&["--enable-debug-command", "yes"]);
    let store = Store::connect(&server.url()).await.unwrap();
    let mut raw = support::raw(&server).await;
    let _: () = redis::cmd("DEBUG")
        .arg("POPULATE")
        .arg(200_000)
        .query_async(&mut raw)
        .await
        .unwrap();
    case::fill(&store, "small", 1000).await;
    let d = store.dict::<String, String>("small").unwrap();
    let scans_before = support::command_calls(&mut raw, "scan").await;
    let started = std::time::Instant::now();
    assert_eq!(d.len().await.unwrap(), 1000);
    let len_time = started.elapsed();
    assert_eq!(d.items().try_collect::<Vec<_>>().await.unwrap().len(), 1000);
    assert_eq!(d.keys().try_collect::<Vec<_>>().await.unwrap().len(), 1000);
    assert_eq!(
        d.keys_matching("k1*")
            .try_collect::<Vec<_>>()
            .await
            .unwrap()
            .len(),
        111
    );
    assert_eq!(d.clear().await.unwrap(), 1000);
    assert_eq!(
        support::command_calls(&mut raw, "scan").await,
        scans_before,
        "no SCAN of the keyspace"
    );
    let dbsize: u64 = redis::cmd("DBSIZE").query_async(&mut raw).await.unwrap();
    assert_eq!(dbsize, 200_000, "the other keys are untouched");
    // Generous bound (debug build, shared CI machine); the benchmark measures it properly.
    assert!(len_time.as_millis() < 500, "len took {len_time:?}");
}

#[tokio::test]
async fn items_batch_reads_and_skip_vanished_entries() {
    let (_server, ctx) = support::single().await;
    case::items_batch_reads_and_skip_vanished_entries(&ctx).await;
}

#[tokio::test]
async fn values_and_keys_round_trip_without_loss() {
    let (_server, ctx) = support::single().await;
    case::values_and_keys_round_trip_without_loss(&ctx).await;
}
