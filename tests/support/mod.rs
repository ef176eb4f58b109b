//! Shared helpers of the end-to-end tests.
#![allow(dead_code)]

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis_pydict::Store;
use redis_pydict_suite::RedisServer;

/// A private server and a store connected to it.
pub async fn start() -> (RedisServer, Store) {
    let server = RedisServer::start();
    let store = Store::connect(&server.url())
        .await
        .expect("connect to the test server");
    (server, store)
}

/// A plain redis-rs connection, to look behind the library's back.
pub async fn raw(server: &RedisServer) -> MultiplexedConnection {
    redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// `cmdstat_<name>` call counts from INFO commandstats.
pub async fn command_calls(conn: &mut MultiplexedConnection, name: &str) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .unwrap();
    let needle = format!("cmdstat_{name}:calls=");
    info.lines()
        .find_map(|line| line.strip_prefix(&needle))
        .map(|rest| rest.split(',').next().unwrap().parse().unwrap())
        .unwrap_or(0)
}

/// Members of a namespace index, sorted.
pub async fn index_members(conn: &mut MultiplexedConnection, ns: &str) -> Vec<String> {
    let mut members: Vec<String> = redis::cmd("ZRANGE")
        .arg(format!("{{{ns}}}#keys"))
        .arg(0)
        .arg(-1)
        .query_async(conn)
        .await
        .unwrap();
    members.sort();
    members
}

/// Keys of a namespace in the keyspace (by SCAN), without the `{ns}:` prefix, sorted.
pub async fn keyspace_members(conn: &mut MultiplexedConnection, ns: &str) -> Vec<String> {
    let prefix = format!("{{{ns}}}:");
    let pattern = format!("{{{}}}:*", redis_pydict::escape_glob(ns));
    let mut keys: Vec<String> = Vec::new();
    let mut cursor = 0u64;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await
            .unwrap();
        keys.extend(batch.into_iter().map(|k| k[prefix.len()..].to_owned()));
        if next == 0 {
            break;
        }
        cursor = next;
    }
    keys.sort();
    keys
}

/// Retries `f` until it succeeds or `limit` passes.
pub async fn eventually<T, E: std::fmt::Debug, F, Fut>(limit: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match f().await {
            Ok(v) => return v,
            Err(e) if tokio::time::Instant::now() > deadline => {
                panic!("still failing after {limit:?}: {e:?}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}
