//! Shared helpers of the end-to-end tests.
#![allow(dead_code)]

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis_pydict::{Store, StoreBuilder};
use redis_pydict_test::{RedisCluster, RedisServer};
use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

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

/// Where a shared test case runs: one private server, or a cluster shared by
/// several cases, each in namespaces of its own (`ctx.ns(..)`).
///
/// The cases in `tests/cases/` take a `&Ctx`; the single-server tests give
/// each case a server of its own and no prefix, `tests/cluster.rs` runs the
/// same cases on one cluster with a prefix per case.
pub struct Ctx {
    /// A store connected with default settings.
    pub store: Store,
    prefix: String,
    backend: Backend,
    _guard: Option<Guard>,
}

enum Backend {
    Server(String),
    Cluster(Vec<String>),
}

/// Cases sharing a cluster hold this lock: for reading, most of them; for
/// writing, the few that look at or act on whole nodes (command statistics,
/// FLUSHDB, killing every pub/sub client, counting patterns).
pub static CLUSTER_LOCK: RwLock<()> = RwLock::const_new(());

/// A hold on [`CLUSTER_LOCK`].
pub enum Guard {
    /// Shares the cluster with other cases.
    Shared(RwLockReadGuard<'static, ()>),
    /// Has the cluster to itself.
    Exclusive(RwLockWriteGuard<'static, ()>),
}

impl Ctx {
    /// A context on a private server, with no namespace prefix.
    pub async fn on_server(server: &RedisServer) -> Ctx {
        let store = Store::connect(&server.url())
            .await
            .expect("connect to the test server");
        Ctx {
            store,
            prefix: String::new(),
            backend: Backend::Server(server.url()),
            _guard: None,
        }
    }

    /// A context on a cluster, its namespaces prefixed with `prefix`.
    pub async fn on_cluster(cluster: &RedisCluster, prefix: &str, guard: Option<Guard>) -> Ctx {
        let urls = cluster.urls();
        let seeds: Vec<&str> = urls.iter().map(String::as_str).collect();
        let store = Store::connect_cluster(&seeds)
            .await
            .expect("connect to the test cluster");
        Ctx {
            store,
            prefix: prefix.to_owned(),
            backend: Backend::Cluster(urls),
            _guard: guard,
        }
    }

    /// The namespace `name` of this case.
    pub fn ns(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// True on a cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.backend, Backend::Cluster(_))
    }

    /// A builder for another store on the same server or cluster.
    pub fn builder(&self) -> StoreBuilder {
        match &self.backend {
            Backend::Server(url) => Store::builder(url),
            Backend::Cluster(urls) => {
                let seeds: Vec<&str> = urls.iter().map(String::as_str).collect();
                Store::cluster_builder(&seeds)
            }
        }
    }

    /// Another store with default settings.
    pub async fn connect(&self) -> Store {
        self.builder().connect().await.expect("connect")
    }

    /// The URLs of every node (the server alone, or every cluster node).
    pub fn node_urls(&self) -> Vec<String> {
        match &self.backend {
            Backend::Server(url) => vec![url.clone()],
            Backend::Cluster(urls) => urls.clone(),
        }
    }

    /// A plain redis-rs connection to the node holding namespace `ns` (the
    /// server, or the master of the namespace's slot), to look behind the
    /// library's back: keyed commands of the namespace, SCAN, INFO, FLUSHDB.
    pub async fn raw(&self, ns: &str) -> MultiplexedConnection {
        let url = match &self.backend {
            Backend::Server(url) => url.clone(),
            Backend::Cluster(urls) => {
                redis_pydict_test::node_url(master_for_key(&urls[0], &format!("{{{ns}}}")).await)
            }
        };
        connect_raw(&url).await
    }

    /// Plain connections to every node.
    pub async fn raw_all(&self) -> Vec<MultiplexedConnection> {
        let mut all = Vec::new();
        for url in self.node_urls() {
            all.push(connect_raw(&url).await);
        }
        all
    }

    /// A plain pub/sub connection to the first node: on a cluster, PUBLISH
    /// reaches every node, whichever master runs it.
    pub async fn pubsub(&self) -> redis::aio::PubSub {
        redis::Client::open(self.node_urls()[0].as_str())
            .unwrap()
            .get_async_pubsub()
            .await
            .unwrap()
    }
}

/// A plain connection to one node.
pub async fn connect_raw(url: &str) -> MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// The port of the cluster master serving `key`, as the node at `url` sees it.
pub async fn master_for_key(url: &str, key: &str) -> u16 {
    let mut conn = connect_raw(url).await;
    let slot: u16 = redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(key)
        .query_async(&mut conn)
        .await
        .unwrap();
    let nodes: String = redis::cmd("CLUSTER")
        .arg("NODES")
        .query_async(&mut conn)
        .await
        .unwrap();
    redis_pydict_test::parse_cluster_nodes(&nodes)
        .into_iter()
        .find(|n| {
            n.master && !n.failed && n.slots.iter().any(|&(lo, hi)| (lo..=hi).contains(&slot))
        })
        .map(|n| n.port)
        .unwrap_or_else(|| panic!("no master serves slot {slot} of {key:?}"))
}

/// A private server and a context on it.
pub async fn single() -> (RedisServer, Ctx) {
    let server = RedisServer::start();
    let ctx = Ctx::on_server(&server).await;
    (server, ctx)
}
