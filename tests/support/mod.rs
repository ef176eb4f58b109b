//! Shared helpers of the end-to-end tests.
#![allow(dead_code)]

use std::sync::OnceLock;
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
    connect_raw(&server.url()).await
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
    /// The case's own server, if it has one (dropped, so killed, last).
    _server: Option<RedisServer>,
}

enum Backend {
    Server(String),
    Cluster(Vec<String>),
}

/// Cases sharing a cluster hold this lock: for reading, most of them; for
/// writing, the few that look at or act on whole nodes (command statistics,
/// FLUSHDB, killing every pub/sub client, counting patterns).
pub static CLUSTER_LOCK: RwLock<()> = RwLock::const_new(());

/// How a shared case uses the shared cluster (single-server runs give every
/// case a server of its own and ignore it).
#[derive(Clone, Copy, Debug)]
pub enum Access {
    /// Alongside other cases, in namespaces of its own.
    Shared,
    /// With the cluster to itself: the case looks at or acts on whole nodes.
    Exclusive,
}

/// The cluster the shared cases of a test binary run on, started by the first
/// case that needs it. Being a `static`, it is never dropped: its nodes die
/// with the test process (see `RedisCluster`).
static SHARED_CLUSTER: OnceLock<RedisCluster> = OnceLock::new();

/// The cluster shared by this test binary's cases (see [`SHARED_CLUSTER`]).
pub fn shared_cluster() -> &'static RedisCluster {
    // Nothing fails over on purpose here: a long node timeout keeps a busy
    // machine (other clusters of this binary starting, compiling) from
    // failing nodes over by accident.
    SHARED_CLUSTER.get_or_init(|| RedisCluster::start_with(Duration::from_secs(10), &[]))
}

/// A blocking store on the shared cluster, and the shared hold on it to keep
/// while the store is used.
pub fn blocking_on_shared_cluster() -> (RwLockReadGuard<'static, ()>, redis_pydict::blocking::Store)
{
    let guard = CLUSTER_LOCK.blocking_read();
    let urls = shared_cluster().urls();
    let seeds: Vec<&str> = urls.iter().map(String::as_str).collect();
    let store = redis_pydict::blocking::Store::connect_cluster(&seeds)
        .expect("connect to the test cluster");
    (guard, store)
}

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
            _server: None,
        }
    }

    /// A context on a private server of its own, with no namespace prefix.
    pub async fn own_server() -> Ctx {
        let server = RedisServer::start();
        let mut ctx = Ctx::on_server(&server).await;
        ctx._server = Some(server);
        ctx
    }

    /// A context on the cluster shared by the test binary (see
    /// [`shared_cluster`]), its namespaces prefixed with `case/`, alongside
    /// other cases or with the cluster to itself.
    pub async fn on_shared_cluster(case: &str, access: Access) -> Ctx {
        let guard = match access {
            Access::Shared => Guard::Shared(CLUSTER_LOCK.read().await),
            Access::Exclusive => Guard::Exclusive(CLUSTER_LOCK.write().await),
        };
        Ctx::on_cluster(shared_cluster(), &format!("{case}/"), Some(guard)).await
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
            _server: None,
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
                let master = redis_pydict_test::master_for_key(&urls[0], &format!("{{{ns}}}"))
                    .unwrap_or_else(|e| panic!("{e}"));
                redis_pydict_test::node_url(master.port)
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

/// Kills the pub/sub client connections of every node (as a network fault
/// or the output-buffer limit of a slow subscriber would); returns how many.
pub async fn kill_pubsub(ctx: &Ctx) -> u64 {
    let mut killed = 0u64;
    for mut raw in ctx.raw_all().await {
        let n: u64 = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("TYPE")
            .arg("pubsub")
            .query_async(&mut raw)
            .await
            .unwrap();
        killed += n;
    }
    killed
}

/// A plain connection to one node. Its response timeout is generous, not
/// redis-rs's default 500 ms: on a busy test machine, set-up commands such as
/// `DEBUG POPULATE` or `FLUSHDB` may take longer.
pub async fn connect_raw(url: &str) -> MultiplexedConnection {
    let config = redis::AsyncConnectionConfig::new()
        .set_response_timeout(Some(Duration::from_secs(30)))
        .set_connection_timeout(Some(Duration::from_secs(10)));
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .unwrap()
}

/// A private server and a context on it.
pub async fn single() -> (RedisServer, Ctx) {
    let server = RedisServer::start();
    let ctx = Ctx::on_server(&server).await;
    (server, ctx)
}

// ----- the runners of the shared cases ---------------------------------------
//
// Each file of `tests/cases/` lists its cases once, in a macro `cases!` that
// takes a runner, one entry per case:
//
//     #[tokio::test] shared name;      // a `&Ctx` case, alongside others on a cluster
//     #[tokio::test] exclusive name;   // a `&Ctx` case, with the cluster to itself
//     #[tokio::test] server_only name; // no context: starts the server it needs;
//                                      // cannot run on a cluster
//     #[test] blocking name;           // a `(&blocking::Store, prefix)` case
//
// (any test attribute, e.g. `#[tokio::test(flavor = "multi_thread")]`). A
// runner turns each entry into a test in a module named after the case file:
// `on_a_server` gives every case a redis-server of its own, `on_the_cluster`
// runs them on the cluster shared by the test binary. A case left out of the
// list is dead code in both test binaries, which `cargo clippy -D warnings`
// (CI) rejects.

/// Runs each listed case on a redis-server of its own (see above).
#[allow(unused_macros)] // each test binary uses one of the two
macro_rules! on_a_server {
    ($module:ident: $($entries:tt)*) => {
        mod $module {
            $crate::support::on_a_server!(@each $module $($entries)*);
        }
    };
    (@each $module:ident) => {};
    (@each $module:ident $(#[$attr:meta])* blocking $case:ident; $($rest:tt)*) => {
        $(#[$attr])*
        fn $case() {
            let server = redis_pydict_test::RedisServer::start();
            let store = redis_pydict::blocking::Store::connect(&server.url())
                .expect("connect to the test server");
            $crate::cases::$module::$case(&store, "");
        }
        $crate::support::on_a_server!(@each $module $($rest)*);
    };
    (@each $module:ident $(#[$attr:meta])* server_only $case:ident; $($rest:tt)*) => {
        $(#[$attr])*
        async fn $case() {
            $crate::cases::$module::$case().await;
        }
        $crate::support::on_a_server!(@each $module $($rest)*);
    };
    (@each $module:ident $(#[$attr:meta])* shared $case:ident; $($rest:tt)*) => {
        $crate::support::on_a_server!(@ctx $module $(#[$attr])* $case);
        $crate::support::on_a_server!(@each $module $($rest)*);
    };
    (@each $module:ident $(#[$attr:meta])* exclusive $case:ident; $($rest:tt)*) => {
        $crate::support::on_a_server!(@ctx $module $(#[$attr])* $case);
        $crate::support::on_a_server!(@each $module $($rest)*);
    };
    (@ctx $module:ident $(#[$attr:meta])* $case:ident) => {
        $(#[$attr])*
        async fn $case() {
            let ctx = $crate::support::Ctx::own_server().await;
            $crate::cases::$module::$case(&ctx).await;
        }
    };
}
#[allow(unused_imports)]
pub(crate) use on_a_server;

/// Runs each listed case on the cluster shared by the test binary, in
/// namespaces prefixed with the case's name (see above); `server_only` cases
/// are not run.
#[allow(unused_macros)] // each test binary uses one of the two
macro_rules! on_the_cluster {
    ($module:ident: $($entries:tt)*) => {
        mod $module {
            $crate::support::on_the_cluster!(@each $module $($entries)*);
        }
    };
    (@each $module:ident) => {};
    (@each $module:ident $(#[$attr:meta])* blocking $case:ident; $($rest:tt)*) => {
        $(#[$attr])*
        fn $case() {
            let (_hold, store) = $crate::support::blocking_on_shared_cluster();
            $crate::cases::$module::$case(&store, concat!(stringify!($case), "/"));
        }
        $crate::support::on_the_cluster!(@each $module $($rest)*);
    };
    (@each $module:ident $(#[$attr:meta])* server_only $case:ident; $($rest:tt)*) => {
        // Listed, but it cannot run on a cluster.
        const _: () = {
            let _ = $crate::cases::$module::$case;
        };
        $crate::support::on_the_cluster!(@each $module $($rest)*);
    };
    (@each $module:ident $(#[$attr:meta])* shared $case:ident; $($rest:tt)*) => {
        $crate::support::on_the_cluster!(@ctx Shared $module $(#[$attr])* $case);
        $crate::support::on_the_cluster!(@each $module $($rest)*);
    };
    (@each $module:ident $(#[$attr:meta])* exclusive $case:ident; $($rest:tt)*) => {
        $crate::support::on_the_cluster!(@ctx Exclusive $module $(#[$attr])* $case);
        $crate::support::on_the_cluster!(@each $module $($rest)*);
    };
    (@ctx $access:ident $module:ident $(#[$attr:meta])* $case:ident) => {
        $(#[$attr])*
        async fn $case() {
            let ctx = $crate::support::Ctx::on_shared_cluster(
                stringify!($case),
                $crate::support::Access::$access,
            )
            .await;
            $crate::cases::$module::$case(&ctx).await;
        }
    };
}
#[allow(unused_imports)]
pub(crate) use on_the_cluster;
