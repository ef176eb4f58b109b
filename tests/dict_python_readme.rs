//! The Python redis-pydict README's examples, ported, each on a server of its
//! own. The bodies are in `cases/python_readme.rs` (shared with `cluster.rs`).

mod support;
mod cases {
    pub mod python_readme;
}

use cases::python_readme as case;

#[tokio::test]
async fn basic_get_set_of_mixed_values() {
    let (_server, ctx) = support::single().await;
    case::basic_get_set_of_mixed_values(&ctx).await;
}

#[tokio::test]
async fn user_struct_as_value() {
    let (_server, ctx) = support::single().await;
    case::user_struct_as_value(&ctx).await;
}

#[tokio::test]
async fn iterations_and_prefix_matching() {
    let (_server, ctx) = support::single().await;
    case::iterations_and_prefix_matching(&ctx).await;
}

#[tokio::test]
async fn deletion_and_contains() {
    let (_server, ctx) = support::single().await;
    case::deletion_and_contains(&ctx).await;
}

#[tokio::test]
async fn conversions_to_map_and_update() {
    let (_server, ctx) = support::single().await;
    case::conversions_to_map_and_update(&ctx).await;
}
