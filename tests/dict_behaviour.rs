//! TTLs, atomic operations, concurrency, repair, events and the blocking API,
//! each on a server of its own. The bodies are in `cases/behaviour.rs`
//! (shared with `cluster.rs`).

mod support;
mod cases {
    pub mod behaviour;
}

use cases::behaviour as case;

#[tokio::test]
async fn expired_entries_vanish_from_get_len_and_iteration() {
    let (_server, ctx) = support::single().await;
    case::expired_entries_vanish_from_get_len_and_iteration(&ctx).await;
}

#[tokio::test]
async fn update_with_keeps_ttl_and_set_clears_it() {
    let (_server, ctx) = support::single().await;
    case::update_with_keeps_ttl_and_set_clears_it(&ctx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_update_with_never_loses_an_increment() {
    let (_server, ctx) = support::single().await;
    case::concurrent_update_with_never_loses_an_increment(&ctx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn index_matches_live_keys_after_concurrent_writes() {
    let (_server, ctx) = support::single().await;
    case::index_matches_live_keys_after_concurrent_writes(&ctx).await;
}

#[tokio::test]
async fn iteration_reads_ahead_across_pages() {
    let (_server, ctx) = support::single().await;
    case::iteration_reads_ahead_across_pages(&ctx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn remove_is_an_atomic_take() {
    let (_server, ctx) = support::single().await;
    case::remove_is_an_atomic_take(&ctx).await;
}

#[tokio::test]
async fn bulk_update_larger_than_a_batch_is_applied_in_order() {
    let (_server, ctx) = support::single().await;
    case::bulk_update_larger_than_a_batch_is_applied_in_order(&ctx).await;
}

#[tokio::test]
async fn set_if_absent_and_get_many() {
    let (_server, ctx) = support::single().await;
    case::set_if_absent_and_get_many(&ctx).await;
}

#[tokio::test]
async fn repair_rebuilds_the_index_from_the_keyspace() {
    let (_server, ctx) = support::single().await;
    case::repair_rebuilds_the_index_from_the_keyspace(&ctx).await;
}

#[tokio::test]
async fn every_write_publishes_its_event_atomically() {
    let (_server, ctx) = support::single().await;
    case::every_write_publishes_its_event_atomically(&ctx).await;
}

#[test]
fn blocking_api_mirrors_the_async_one() {
    let server = redis_pydict_test::RedisServer::start();
    let store = redis_pydict::blocking::Store::connect(&server.url()).unwrap();
    case::blocking_api_mirrors_the_async_one(&store, "");
}

#[tokio::test]
async fn clear_larger_than_a_batch_empties_the_namespace() {
    let (_server, ctx) = support::single().await;
    case::clear_larger_than_a_batch_empties_the_namespace(&ctx).await;
}
