//! End-to-end tests of `#[derive(RedisDict)]` views, each on a redis-server of
//! its own. The bodies are in `cases/derive.rs` (shared with `cluster.rs`).

mod support;
mod cases {
    pub mod derive;
}

use cases::derive as case;

#[tokio::test]
async fn field_round_trips_for_every_kind_of_value() {
    let (_server, ctx) = support::single().await;
    case::field_round_trips_for_every_kind_of_value(&ctx).await;
}

#[tokio::test]
async fn load_rules_for_missing_fields() {
    let (_server, ctx) = support::single().await;
    case::load_rules_for_missing_fields(&ctx).await;
}

#[tokio::test]
async fn declared_ttls_apply_to_set_and_save() {
    let (_server, ctx) = support::single().await;
    case::declared_ttls_apply_to_set_and_save(&ctx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_never_sees_a_mix_of_two_saves() {
    let (_server, ctx) = support::single().await;
    case::load_never_sees_a_mix_of_two_saves(&ctx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_whole_struct_updates_lose_nothing() {
    let (_server, ctx) = support::single().await;
    case::concurrent_whole_struct_updates_lose_nothing(&ctx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_field_updates_lose_nothing() {
    let (_server, ctx) = support::single().await;
    case::concurrent_field_updates_lose_nothing(&ctx).await;
}

#[tokio::test]
async fn schema_evolution_adds_and_drops_fields() {
    let (_server, ctx) = support::single().await;
    case::schema_evolution_adds_and_drops_fields(&ctx).await;
}

#[tokio::test]
async fn views_on_different_instances_are_isolated() {
    let (_server, ctx) = support::single().await;
    case::views_on_different_instances_are_isolated(&ctx).await;
}

#[tokio::test]
async fn fields_are_entries_of_a_generic_dict() {
    let (_server, ctx) = support::single().await;
    case::fields_are_entries_of_a_generic_dict(&ctx).await;
}

#[tokio::test]
async fn writes_publish_the_same_events_as_a_dict() {
    let (_server, ctx) = support::single().await;
    case::writes_publish_the_same_events_as_a_dict(&ctx).await;
}

#[tokio::test]
async fn generic_structs() {
    let (_server, ctx) = support::single().await;
    case::generic_structs(&ctx).await;
}

#[tokio::test]
async fn crate_attribute_and_view_handles() {
    let (_server, ctx) = support::single().await;
    case::crate_attribute_and_view_handles(&ctx).await;
}

#[tokio::test]
async fn field_subscriptions_are_typed() {
    let (_server, ctx) = support::single().await;
    case::field_subscriptions_are_typed(&ctx).await;
}

#[tokio::test]
async fn update_writes_only_what_changed() {
    let (_server, ctx) = support::single().await;
    case::update_writes_only_what_changed(&ctx).await;
}
