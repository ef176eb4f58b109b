//! Fault injection: each test breaks something on purpose (kills or pauses
//! the server, kills a connection, fills the server's memory, hands the
//! library foreign or wrong-typed data, restricts its ACL user) and asserts
//! the documented outcome: the error, nothing written or nothing lost, the
//! `Gap`, and recovery afterwards.

mod connection;
mod subscription;
mod write;

use std::time::Duration;

use redis::aio::MultiplexedConnection;

/// A plain redis-rs connection to `url`, to look behind the library's back.
/// Its response timeout is long, so that a busy machine cannot fail a test's
/// own checks.
pub(crate) async fn raw(url: &str) -> MultiplexedConnection {
    let config = redis::AsyncConnectionConfig::new()
        .set_response_timeout(Some(Duration::from_secs(30)))
        .set_connection_timeout(Some(Duration::from_secs(10)));
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .unwrap()
}
