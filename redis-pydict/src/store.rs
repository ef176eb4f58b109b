//! `Store`: the connection to Redis shared by every dict and view made from it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection,
};
use redis::cluster::ClusterClientBuilder;
use redis::{
    AsyncConnectionConfig, Client, ConnectionAddr, ConnectionInfo, IntoConnectionInfo,
    ProtocolVersion, PushInfo, PushKind,
};

use crate::dict::Dict;
use crate::error::{Error, Result};
use crate::key::DictKey;
use crate::namespace::Namespace;
use crate::space::Space;

pub use crate::connection::StoreConnection;

/// Default time to wait for one reply. Generous: one MGET page or one bulk
/// `update` of 100,000 entries must not time out on a busy server.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);
/// Default time to wait for a TCP (and TLS) connection to be made.
pub const DEFAULT_CONNECTION_TIMEOUT: Duration = Duration::from_secs(5);
/// Default number of reconnection attempts before an operation fails.
pub const DEFAULT_RECONNECT_RETRIES: usize = 5;
/// Default number of retries of a cluster request (redirections and
/// TRYAGAIN during slot migrations count), with backoff up to 2 s between tries.
pub const DEFAULT_CLUSTER_RETRIES: usize = 16;
/// Largest encoded value accepted by default: Redis's own bulk-string limit.
pub const DEFAULT_MAX_VALUE_SIZE: usize = 512 * 1024 * 1024;
/// Default number of entries read per round trip when iterating.
pub const DEFAULT_PAGE_SIZE: usize = 1000;
/// Default number of entries of one atomic `set_many`/`clear` script call
/// (5,000 keeps one call under about 100 ms of server time with events and
/// 100-byte values, measured on a 2-core VM with a million-entry index).
pub const DEFAULT_MAX_BATCH: usize = 5_000;
/// Default number of attempts of an optimistic update before it gives up.
pub const DEFAULT_MAX_UPDATE_ATTEMPTS: u32 = 10_000;
/// Default number of events a subscription holds for a consumer that has not
/// taken them yet (see [`StoreBuilder::subscription_buffer`]).
pub const DEFAULT_SUBSCRIPTION_BUFFER_EVENTS: usize = 10_000;
/// Default number of payload bytes a subscription holds for a consumer that
/// has not taken them yet (see [`StoreBuilder::subscription_buffer`]).
pub const DEFAULT_SUBSCRIPTION_BUFFER_BYTES: usize = 16 * 1024 * 1024;

/// A connection to one Redis server or to a Redis Cluster, cheap to clone and
/// share between tasks.
///
/// It reconnects by itself after a dropped connection or a server restart
/// (redis-rs `ConnectionManager`, RESP3; on a cluster, redis-rs's cluster
/// client, which follows MOVED/ASK redirections and failovers): an operation
/// in flight when the connection breaks fails with [`Error::Redis`] (see
/// [`Error::outcome_unknown`]), and the operations issued once the server is
/// back succeed, including the first one. Connections of its own (the pool
/// used by `update_with`) that died meanwhile are replaced before use.
///
/// ```no_run
/// # async fn demo() -> redis_pydict::Result<()> {
/// use redis_pydict::Store;
/// let store = Store::connect("redis://127.0.0.1:6379/0").await?;
/// let scores = store.dict::<String, u32>("scores")?;
/// scores.set("alice", &3).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Store {
    inner: Arc<StoreInner>,
}

struct StoreInner {
    conn: StoreConnection,
    topology: Topology,
    settings: Settings,
    url: String,
}

/// What the store is connected to, and how to open connections of its own.
enum Topology {
    Single {
        client: Client,
        dedicated_config: AsyncConnectionConfig,
        idle: Mutex<Vec<DedicatedConnection>>,
    },
    Cluster {
        /// The first seed node's settings (credentials, TLS), re-addressed
        /// to reach a given node; none for a caller's `ClusterClient`.
        seed: Option<ConnectionInfo>,
        #[cfg(feature = "tls")]
        tls: Option<redis::TlsCertificates>,
    },
}

/// A connection of one task's own (see [`Store::dedicated`]), with a flag
/// that redis-rs raises when the connection is lost (RESP3 only), so that a
/// dead one is never handed out of the pool.
pub(crate) struct DedicatedConnection {
    conn: MultiplexedConnection,
    lost: Arc<AtomicBool>,
}

impl DedicatedConnection {
    fn is_lost(&self) -> bool {
        self.lost.load(Ordering::Acquire)
    }
}

impl ConnectionLike for DedicatedConnection {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        self.conn.req_packed_command(cmd)
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        self.conn.req_packed_commands(pipeline, offset, count)
    }

    fn get_db(&self) -> i64 {
        self.conn.get_db()
    }
}

/// Per-store behaviour settings; dicts read them from their store (and may override the event ones).
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub notifications: bool,
    pub origin: Option<Arc<str>>,
    pub max_value_size: usize,
    pub page_size: usize,
    pub max_batch: usize,
    pub max_update_attempts: u32,
    pub enable_expiry_events: bool,
    pub connection_timeout: Option<Duration>,
    pub response_timeout: Option<Duration>,
    pub min_retry_delay: Duration,
    pub max_retry_delay: Duration,
    pub subscription_buffer_events: usize,
    pub subscription_buffer_bytes: usize,
    pub sharded_events: bool,
    pub batched_events: bool,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("url", &self.inner.url)
            .field("settings", &self.inner.settings)
            .finish()
    }
}

/// Configures and opens a [`Store`]. Obtain one from [`Store::builder`],
/// [`Store::cluster_builder`] or [`Store::client_builder`].
///
/// ```no_run
/// # async fn demo() -> redis_pydict::Result<()> {
/// use std::time::Duration;
/// let store = redis_pydict::Store::builder("redis://127.0.0.1/")
///     .response_timeout(Duration::from_secs(60))
///     .origin("worker-7")
///     .connect()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct StoreBuilder {
    target: Target,
    response_timeout: Option<Duration>,
    connection_timeout: Option<Duration>,
    retries: usize,
    min_retry_delay: Duration,
    max_retry_delay: Duration,
    #[cfg(feature = "tls")]
    tls: Option<redis::TlsCertificates>,
    settings: Settings,
}

/// What a builder connects to.
#[derive(Clone)]
enum Target {
    /// One server, by URL.
    Url(String),
    /// A cluster, by the URLs of some of its nodes.
    Nodes(Vec<String>),
    /// One server, through the caller's client.
    Client(Box<Client>),
    /// A cluster, through the caller's cluster client.
    ClusterClient(Box<redis::cluster::ClusterClient>),
}

impl Target {
    /// What the store is connected to, without credentials, for messages.
    fn shown(&self) -> String {
        match self {
            Target::Url(url) => redact(url),
            Target::Nodes(nodes) => nodes
                .iter()
                .map(|n| redact(n))
                .collect::<Vec<_>>()
                .join(","),
            Target::Client(client) => describe(client.get_connection_info()),
            Target::ClusterClient(_) => "a redis::cluster::ClusterClient".to_owned(),
        }
    }
}

impl std::fmt::Debug for StoreBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut debug = f.debug_struct("StoreBuilder");
        debug
            .field("url", &self.target.shown())
            .field("response_timeout", &self.response_timeout)
            .field("connection_timeout", &self.connection_timeout)
            .field("retries", &self.retries);
        #[cfg(feature = "tls")]
        debug.field("tls", &self.tls.is_some());
        debug.field("settings", &self.settings).finish()
    }
}

impl StoreBuilder {
    fn new(target: Target) -> StoreBuilder {
        StoreBuilder {
            target,
            response_timeout: Some(DEFAULT_RESPONSE_TIMEOUT),
            connection_timeout: Some(DEFAULT_CONNECTION_TIMEOUT),
            retries: DEFAULT_RECONNECT_RETRIES,
            min_retry_delay: Duration::from_millis(100),
            max_retry_delay: Duration::from_secs(2),
            #[cfg(feature = "tls")]
            tls: None,
            settings: Settings {
                notifications: true,
                origin: None,
                max_value_size: DEFAULT_MAX_VALUE_SIZE,
                page_size: DEFAULT_PAGE_SIZE,
                max_batch: DEFAULT_MAX_BATCH,
                max_update_attempts: DEFAULT_MAX_UPDATE_ATTEMPTS,
                enable_expiry_events: false,
                connection_timeout: Some(DEFAULT_CONNECTION_TIMEOUT),
                response_timeout: Some(DEFAULT_RESPONSE_TIMEOUT),
                min_retry_delay: Duration::from_millis(100),
                max_retry_delay: Duration::from_secs(2),
                subscription_buffer_events: DEFAULT_SUBSCRIPTION_BUFFER_EVENTS,
                subscription_buffer_bytes: DEFAULT_SUBSCRIPTION_BUFFER_BYTES,
                sharded_events: true,
                batched_events: true,
            },
        }
    }

    /// Time to wait for one reply (default 30 s; `None` waits forever).
    /// A request that times out fails with an error whose
    /// [`Error::outcome_unknown`] is true: it may still be applied.
    pub fn response_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.response_timeout = timeout.into();
        self
    }

    /// Time to wait for a connection to be made (default 5 s).
    pub fn connection_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.connection_timeout = timeout.into();
        self
    }

    /// How many times to retry connecting before an operation fails (default 5),
    /// with exponential backoff from `min` doubling up to `max` (default 100 ms to 2 s).
    pub fn reconnect(mut self, retries: usize, min: Duration, max: Duration) -> Self {
        self.retries = retries;
        self.min_retry_delay = min;
        self.max_retry_delay = max;
        self
    }

    /// For `rediss://` URLs: trust this root certificate (PEM) instead of the
    /// system's trust store, e.g. a private CA or a self-signed server certificate.
    #[cfg(feature = "tls")]
    pub fn tls_root_certificate(mut self, pem: impl Into<Vec<u8>>) -> Self {
        let mut certs = self.tls.take().unwrap_or(redis::TlsCertificates {
            client_tls: None,
            root_cert: None,
        });
        certs.root_cert = Some(pem.into());
        self.tls = Some(certs);
        self
    }

    /// For `rediss://` URLs with mutual TLS: present this client certificate
    /// and private key (both PEM).
    #[cfg(feature = "tls")]
    pub fn tls_client_certificate(
        mut self,
        cert_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
    ) -> Self {
        let mut certs = self.tls.take().unwrap_or(redis::TlsCertificates {
            client_tls: None,
            root_cert: None,
        });
        certs.client_tls = Some(redis::ClientTlsConfig {
            client_cert: cert_pem.into(),
            client_key: key_pem.into(),
        });
        self.tls = Some(certs);
        self
    }

    /// Whether writes publish change events (default on). Dicts may override it.
    /// This is the Python original's `set_notification_mode`.
    pub fn notifications(mut self, on: bool) -> Self {
        self.settings.notifications = on;
        self
    }

    /// The origin id written into change events (the original's
    /// `notification_id`); default none (`null` on the wire).
    pub fn origin(mut self, origin: impl Into<String>) -> Self {
        self.settings.origin = Some(origin.into().into());
        self
    }

    /// The largest encoded value accepted (default 512 MiB, Redis's own limit).
    /// Larger values are refused with [`Error::ValueTooLarge`] before any I/O.
    pub fn max_value_size(mut self, bytes: usize) -> Self {
        self.settings.max_value_size = bytes;
        self
    }

    /// Entries read per round trip when iterating (default 1000).
    pub fn page_size(mut self, entries: usize) -> Self {
        self.settings.page_size = entries.max(1);
        self
    }

    /// Entries per atomic script call of `set_many` and `clear` (default
    /// [`DEFAULT_MAX_BATCH`], 5,000): a call with at most this many entries
    /// is applied atomically; a larger one as consecutive atomic batches, so
    /// that no call blocks the server for long (5,000 entries of 100 bytes
    /// with events: about 10 ms into an empty namespace, up to about 70 ms
    /// into one of a million entries, on a 2-core VM).
    pub fn max_batch(mut self, entries: usize) -> Self {
        self.settings.max_batch = entries.max(1);
        self
    }

    /// Attempts of an optimistic update before it fails with
    /// [`Error::Contention`] (default 10,000).
    pub fn max_update_attempts(mut self, attempts: u32) -> Self {
        self.settings.max_update_attempts = attempts.max(1);
        self
    }

    /// Makes subscriptions report TTL expiries as `Change::Expired`, from the
    /// server's keyspace notifications of expired keys. Default off: then no
    /// subscription listens for expiries and no `CONFIG` command is sent.
    ///
    /// On, each subscription first checks the server's setting (`CONFIG GET
    /// notify-keyspace-events`) and, where it lacks `K` (keyspace channels)
    /// or `x` (expired events; `A` includes it), switches them on (`CONFIG
    /// SET`, adding `Kx` to what is set). Expiries never go missing silently:
    ///
    /// * the server has them on (set by an operator), or `CONFIG SET` is
    ///   allowed: expiries arrive;
    /// * they are off and `CONFIG SET` is refused (a user without
    ///   `+config|set`): subscribing fails with
    ///   [`Error::ExpiryEventsOff`](crate::Error::ExpiryEventsOff), naming the
    ///   flags missing and the setting to make;
    /// * even `CONFIG GET` is refused (a user without `+config|get`, a
    ///   managed server hiding `CONFIG`): nothing can be verified, so the
    ///   subscription listens for expiries anyway (they arrive if the server
    ///   reports them) and, with the `tracing` feature, a `WARN` event says so.
    ///
    /// A restricted user also needs the keyspace channels it listens on
    /// (`&__keyspace@<db>__:{ns}:*`).
    pub fn enable_expiry_events(mut self, on: bool) -> Self {
        self.settings.enable_expiry_events = on;
        self
    }

    /// How much each subscription holds for a consumer that has not taken it
    /// yet: at most `events` items and `bytes` bytes of event payload
    /// (default 10,000 events, 16 MiB; at least one event always fits). A
    /// plain subscription whose consumer falls further behind drops what it
    /// holds and yields `Change::Gap` in its place, so client memory stays
    /// bounded whatever the consumer's speed; a durable subscription stops
    /// reading the log until the consumer catches up. On a cluster, the
    /// events of a batch message (see [`Self::batched_events`], up to 1,000)
    /// arrive at once: a buffer of fewer events than a batch can overflow on
    /// one message (and yield a `Gap`) when the consumer is not taking them
    /// as they come.
    pub fn subscription_buffer(mut self, events: usize, bytes: usize) -> Self {
        self.settings.subscription_buffer_events = events.max(1);
        self.settings.subscription_buffer_bytes = bytes.max(1);
        self
    }

    /// On a cluster, whether writes publish their events with sharded
    /// pub/sub (default on): `SPUBLISH` to the namespace channel `{ns}#ev`,
    /// which reaches only the nodes of the namespace's shard, instead of
    /// `PUBLISH` to per-key channels, which Redis Cluster broadcasts to every
    /// node. It applies where the master executing a write runs Redis 7.0 or
    /// later; older masters get `PUBLISH` whatever this says. No effect on a
    /// single server, which always uses `PUBLISH`.
    ///
    /// Subscriptions of this crate on a cluster listen both ways, so they
    /// meet every writer whatever its setting. Turn it off only while
    /// subscribers built with an older version of this crate (which listen to
    /// `PUBLISH` only) still run against the cluster.
    pub fn sharded_events(mut self, on: bool) -> Self {
        self.settings.sharded_events = on;
        self
    }

    /// On a cluster with sharded events (see [`Self::sharded_events`]),
    /// whether a write of several changes (`set_many`, a view's `save` or
    /// `update` of several fields, a `clear` with previous values) publishes its
    /// events in batches (default on): one message carries up to a thousand events
    /// (at most 1 MiB of them, unless one is larger) instead of one message
    /// per event. Each event keeps its own payload and sequence number, and
    /// subscribers of this crate deliver them one by one, as before; the
    /// cluster does a fraction of the pub/sub work, so bulk writes with
    /// events are 1.6 to 2 times as fast (see BENCHMARKS.md). No effect
    /// elsewhere.
    ///
    /// Subscribers built with an older version of this crate do not know
    /// batches: they yield an error item for each one instead of its
    /// events (see WIRE.md §6.2). Turn it off while such subscribers run.
    pub fn batched_events(mut self, on: bool) -> Self {
        self.settings.batched_events = on;
        self
    }

    /// Connects. Fails if the server cannot be reached after the configured
    /// retries; the error names the URL without its password.
    pub async fn connect(mut self) -> Result<Store> {
        self.settings.connection_timeout = self.connection_timeout;
        self.settings.response_timeout = self.response_timeout;
        self.settings.min_retry_delay = self.min_retry_delay;
        self.settings.max_retry_delay = self.max_retry_delay;
        #[cfg(feature = "tls")]
        install_crypto_provider();
        let shown = self.target.shown();
        let connect_err = |source| Error::Connect {
            url: shown.clone(),
            source,
        };
        match self.target.clone() {
            Target::Url(url) => {
                let info = url.as_str().into_connection_info().map_err(connect_err)?;
                // RESP3 unless the URL asks otherwise: it lets redis-rs notice
                // a lost connection at once and reconnect before the next request.
                let info = if url.contains("protocol=") {
                    info
                } else {
                    resp3(info)
                };
                self.connect_single(info, shown).await
            }
            Target::Client(client) => {
                let info = resp3(client.get_connection_info().clone());
                self.connect_single(info, shown).await
            }
            Target::Nodes(nodes) => {
                let infos = nodes
                    .iter()
                    .map(|n| n.as_str().into_connection_info())
                    .collect::<redis::RedisResult<Vec<_>>>()
                    .map_err(connect_err)?;
                self.connect_cluster(infos, shown).await
            }
            Target::ClusterClient(client) => self.open_cluster(*client, None, shown).await,
        }
    }

    async fn connect_cluster(self, infos: Vec<ConnectionInfo>, shown: String) -> Result<Store> {
        let Some(seed) = infos.first().cloned() else {
            return Err(Error::Config(
                "connect_cluster needs at least one node URL".into(),
            ));
        };
        let millis = |d: Duration| d.as_millis().min(u64::MAX as u128) as u64;
        let mut builder = ClusterClientBuilder::new(infos)
            .use_protocol(ProtocolVersion::RESP3)
            .retries(self.retries.min(u32::MAX as usize) as u32)
            .min_retry_wait(millis(self.min_retry_delay))
            .max_retry_wait(millis(self.max_retry_delay));
        if let Some(timeout) = self.connection_timeout {
            builder = builder.connection_timeout(timeout);
        }
        if let Some(timeout) = self.response_timeout {
            builder = builder.response_timeout(timeout);
        }
        #[cfg(feature = "tls")]
        if let Some(certs) = self.tls.clone() {
            builder = builder.certs(certs);
        }
        let client = builder.build().map_err(|source| Error::Connect {
            url: shown.clone(),
            source,
        })?;
        self.open_cluster(client, Some(seed), shown).await
    }

    /// Opens the shared cluster connection. `seed` (a node's settings:
    /// credentials, TLS) is how connections of the store's own (pub/sub, log
    /// readers) reach a node; without one they go through `client`.
    async fn open_cluster(
        self,
        client: redis::cluster::ClusterClient,
        seed: Option<ConnectionInfo>,
        shown: String,
    ) -> Result<Store> {
        let conn = client
            .get_async_connection()
            .await
            .map_err(|source| Error::Connect {
                url: shown.clone(),
                source,
            })?;
        let seed = seed.map(resp3);
        Ok(Store {
            inner: Arc::new(StoreInner {
                conn: StoreConnection::cluster(conn),
                topology: Topology::Cluster {
                    seed,
                    #[cfg(feature = "tls")]
                    tls: self.tls,
                },
                settings: self.settings,
                url: shown,
            }),
        })
    }

    async fn connect_single(self, info: ConnectionInfo, shown: String) -> Result<Store> {
        let connect_err = |source| Error::Connect {
            url: shown.clone(),
            source,
        };
        #[cfg(feature = "tls")]
        let client = match self.tls {
            Some(certs) => Client::build_with_tls(info, certs),
            None => Client::open(info),
        };
        #[cfg(not(feature = "tls"))]
        let client = Client::open(info);
        let client = client.map_err(connect_err)?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(self.response_timeout)
            .set_connection_timeout(self.connection_timeout)
            .set_number_of_retries(self.retries)
            .set_min_delay(self.min_retry_delay)
            .set_max_delay(self.max_retry_delay);
        let conn = ConnectionManager::new_with_config(client.clone(), config)
            .await
            .map_err(connect_err)?;
        let dedicated_config = AsyncConnectionConfig::new()
            .set_response_timeout(self.response_timeout)
            .set_connection_timeout(self.connection_timeout);
        Ok(Store {
            inner: Arc::new(StoreInner {
                conn: StoreConnection::single(conn),
                topology: Topology::Single {
                    client,
                    dedicated_config,
                    idle: Mutex::new(Vec::new()),
                },
                settings: self.settings,
                url: shown,
            }),
        })
    }
}

/// `info`, speaking RESP3.
fn resp3(info: ConnectionInfo) -> ConnectionInfo {
    let redis = info
        .redis_settings()
        .clone()
        .set_protocol(ProtocolVersion::RESP3);
    info.set_redis_settings(redis)
}

/// Makes redis-rs's TLS work whatever rustls crypto providers the final
/// program enables: redis-rs builds its TLS settings with
/// `rustls::ClientConfig::builder()`, which panics when the dependency graph
/// enables more than one provider (e.g. ring here and aws-lc-rs through
/// another crate) and none is installed. Installs ours (ring) as the process
/// default unless one is installed already, which is then used as it is.
#[cfg(feature = "tls")]
fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Err only when another thread installed one meanwhile: that one serves.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

impl Store {
    /// Connects to `url` with default settings. `redis://[user:password@]host[:port][/db]`,
    /// `rediss://` for TLS (feature `tls`), `redis+unix:///path?db=N&user=U&pass=P`
    /// for a Unix socket.
    pub async fn connect(url: &str) -> Result<Store> {
        Store::builder(url).connect().await
    }

    /// Connects to a Redis Cluster through any of its nodes (URLs as for
    /// [`Store::connect`]), with default settings. Dicts, views and
    /// subscriptions work exactly as on one server: each namespace lives in
    /// one hash slot (`{ns}`), so its atomic units stay legal.
    ///
    /// ```no_run
    /// # async fn demo(ports: Vec<u16>) -> redis_pydict::Result<()> {
    /// let urls: Vec<String> = ports.iter().map(|p| format!("redis://127.0.0.1:{p}")).collect();
    /// let store = redis_pydict::Store::connect_cluster(&urls).await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect_cluster<I>(nodes: I) -> Result<Store>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        Store::cluster_builder(nodes).connect().await
    }

    /// A builder for a cluster store (see [`Store::connect_cluster`]).
    pub fn cluster_builder<I>(nodes: I) -> StoreBuilder
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let nodes = nodes.into_iter().map(|n| n.as_ref().to_owned()).collect();
        let mut builder = StoreBuilder::new(Target::Nodes(nodes));
        // A redirection (MOVED/ASK) or a TRYAGAIN while a slot migrates costs
        // a retry each: allow enough to ride out a failover or a migration.
        builder.retries = DEFAULT_CLUSTER_RETRIES;
        builder
    }

    /// A builder for a store with non-default timeouts, retries or event settings.
    pub fn builder(url: &str) -> StoreBuilder {
        StoreBuilder::new(Target::Url(url.to_owned()))
    }

    /// A store over a `redis::Client` you configured yourself (the Python
    /// original's `custom=`): its address, credentials, database and TLS
    /// settings are used as they are, with the same guarantees as
    /// [`Store::connect`] (self-reconnecting shared connection, dedicated
    /// connections for `update_with`, subscriptions). The store speaks RESP3
    /// to the server (Redis 6 or later) whatever the client's protocol setting.
    ///
    /// ```no_run
    /// # async fn demo() -> redis_pydict::Result<()> {
    /// let client = redis::Client::open("redis://127.0.0.1/2").expect("valid URL");
    /// let store = redis_pydict::Store::from_client(client).await?;
    /// # Ok(()) }
    /// ```
    pub async fn from_client(client: Client) -> Result<Store> {
        Store::client_builder(client).connect().await
    }

    /// A builder for a store over your own `redis::Client` (see
    /// [`Store::from_client`]), for non-default timeouts, retries or event settings.
    pub fn client_builder(client: Client) -> StoreBuilder {
        StoreBuilder::new(Target::Client(Box::new(client)))
    }

    /// A store over a `redis::cluster::ClusterClient` you configured
    /// yourself: its nodes, credentials, TLS, retries and timeouts are used
    /// as they are. The builder's timeout and retry settings do not apply
    /// (the client has its own); the event and size settings do.
    pub async fn from_cluster_client(client: redis::cluster::ClusterClient) -> Result<Store> {
        Store::cluster_client_builder(client).connect().await
    }

    /// A builder for a store over your own cluster client (see
    /// [`Store::from_cluster_client`]).
    pub fn cluster_client_builder(client: redis::cluster::ClusterClient) -> StoreBuilder {
        StoreBuilder::new(Target::ClusterClient(Box::new(client)))
    }

    /// A typed dict over namespace `namespace`. The namespace is validated
    /// here, before any I/O.
    pub fn dict<K: DictKey, V>(&self, namespace: &str) -> Result<Dict<K, V>> {
        Ok(Dict::from_space(self.space(namespace)?))
    }

    /// The untyped namespace handle behind dicts and views.
    pub(crate) fn space(&self, namespace: &str) -> Result<Space> {
        let ns = Namespace::new(namespace)?;
        Ok(Space::new(self.clone(), ns))
    }

    /// The URL connected to, with any password replaced by `***`.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// The origin id this store writes into change events, if any.
    pub fn origin(&self) -> Option<&str> {
        self.inner.settings.origin.as_deref()
    }

    /// A handle on the shared, self-reconnecting connection (to one server or
    /// the cluster), for commands this crate does not offer. Cheap to clone.
    pub fn connection(&self) -> StoreConnection {
        self.inner.conn.clone()
    }

    /// True when connected to a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.inner.topology, Topology::Cluster { .. })
    }

    /// Round-trips a PING: a quick health check.
    pub async fn ping(&self) -> Result<()> {
        let mut conn = self.connection();
        redis::cmd("PING")
            .query_async::<()>(&mut conn)
            .await
            .map_err(|source| Error::Redis {
                operation: "ping",
                namespace: String::new(),
                source,
            })
    }

    /// A client for connections of their own (pub/sub, blocking reads) to the
    /// server holding `key`: the server itself, or on a cluster the master of
    /// the key's slot (asked anew each time, so it follows failovers).
    pub(crate) async fn node_client(&self, key: &str) -> redis::RedisResult<Client> {
        match &self.inner.topology {
            Topology::Single { client, .. } => Ok(client.clone()),
            Topology::Cluster { seed: None, .. } => Err(redis::RedisError::from((
                redis::ErrorKind::InvalidClientConfig,
                "a store made with Store::from_cluster_client cannot open connections of its own \
                 (subscriptions, durable log readers): redis-rs does not tell a ClusterClient's \
                 credentials and TLS settings; use Store::cluster_builder for these",
            ))),
            Topology::Cluster {
                seed: Some(seed),
                #[cfg(feature = "tls")]
                tls,
                ..
            } => {
                let (host, port) = self.connection().master_of(key).await?;
                let addr = match seed.addr() {
                    ConnectionAddr::TcpTls {
                        insecure,
                        tls_params,
                        ..
                    } => ConnectionAddr::TcpTls {
                        host,
                        port,
                        insecure: *insecure,
                        tls_params: tls_params.clone(),
                    },
                    _ => ConnectionAddr::Tcp(host, port),
                };
                let info = seed.clone().set_addr(addr);
                #[cfg(feature = "tls")]
                if let Some(certs) = tls {
                    return Client::build_with_tls(info, certs.clone());
                }
                Client::open(info)
            }
        }
    }

    /// A connection of the near cache's own to the server holding namespace
    /// `ns` (on a cluster, the master of its slot), with server-assisted
    /// invalidation on: `CLIENT TRACKING ON BCAST PREFIX {ns}:`. Every
    /// push it receives (invalidations, and the `Disconnection` redis-rs
    /// reports when it is lost) goes to `on_push`, called in order with the
    /// replies, before any reply that follows it on the wire is handed out.
    /// Needs RESP3 (pushes and replies on one connection).
    pub(crate) async fn tracking_connection(
        &self,
        ns: &Namespace,
        on_push: impl Fn(PushInfo) + Send + Sync + 'static,
    ) -> redis::RedisResult<MultiplexedConnection> {
        let client = self.node_client(ns.entry_prefix()).await?;
        if !client
            .get_connection_info()
            .redis_settings()
            .protocol()
            .supports_resp3()
        {
            return Err(redis::RedisError::from((
                redis::ErrorKind::InvalidClientConfig,
                "a near cache needs RESP3 (server-assisted invalidation arrives as pushes); \
                 remove `protocol=resp2` from the URL",
            )));
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(self.inner.settings.connection_timeout)
            .set_response_timeout(self.inner.settings.response_timeout)
            .set_push_sender(move |info: PushInfo| {
                on_push(info);
                Ok::<(), std::convert::Infallible>(())
            });
        let mut conn = client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        // Named, so that operators (and tests) can tell it apart.
        redis::cmd("CLIENT")
            .arg("SETNAME")
            .arg(crate::cache::CACHE_CLIENT_NAME)
            .query_async::<()>(&mut conn)
            .await?;
        redis::cmd("CLIENT")
            .arg("TRACKING")
            .arg("ON")
            .arg("BCAST")
            .arg("PREFIX")
            .arg(ns.entry_prefix())
            .query_async::<()>(&mut conn)
            .await?;
        Ok(conn)
    }

    /// The store's settings.
    pub(crate) fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// The database number selected by the URL.
    pub(crate) fn db(&self) -> i64 {
        match &self.inner.topology {
            Topology::Single { client, .. } => client.get_connection_info().redis_settings().db(),
            Topology::Cluster { .. } => 0,
        }
    }

    /// A connection used by one task at a time, for WATCH/MULTI transactions,
    /// whose WATCH state must not be shared. Return it with [`Store::give_back`].
    /// Single server only (cluster updates compare values in a script instead).
    ///
    /// Pooled connections whose connection redis-rs reported lost (a server
    /// restart, `CLIENT KILL`) are dropped here instead of being handed out.
    pub(crate) async fn dedicated(&self) -> redis::RedisResult<DedicatedConnection> {
        let Topology::Single { idle, .. } = &self.inner.topology else {
            return Err(std::io::Error::other("no dedicated connections on a cluster").into());
        };
        loop {
            let pooled = idle.lock().ok().and_then(|mut idle| idle.pop());
            match pooled {
                Some(conn) if conn.is_lost() => continue,
                Some(conn) => return Ok(conn),
                None => return self.new_dedicated().await,
            }
        }
    }

    /// A new dedicated connection, which raises its flag when it is lost.
    async fn new_dedicated(&self) -> redis::RedisResult<DedicatedConnection> {
        let Topology::Single {
            client,
            dedicated_config,
            ..
        } = &self.inner.topology
        else {
            return Err(std::io::Error::other("no dedicated connections on a cluster").into());
        };
        let lost = Arc::new(AtomicBool::new(false));
        let mut config = dedicated_config.clone();
        // redis-rs reports a lost connection through the push channel, which
        // only RESP3 connections have.
        if client
            .get_connection_info()
            .redis_settings()
            .protocol()
            .supports_resp3()
        {
            let flag = lost.clone();
            config = config.set_push_sender(move |info: PushInfo| {
                if info.kind == PushKind::Disconnection {
                    flag.store(true, Ordering::Release);
                }
                Ok::<(), std::convert::Infallible>(())
            });
        }
        let conn = client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        Ok(DedicatedConnection { conn, lost })
    }

    /// The read phase of an optimistic update: WATCH `keys`, MGET them and
    /// ask each one's TYPE (see [`read_with_types`]) on `conn`. If the connection turns out to be dead (it died after it was
    /// checked, or redis-rs could not tell: RESP2), the read is repeated once
    /// on a new connection, which then replaces `conn`: a read changes
    /// nothing, so this is always safe.
    pub(crate) async fn watch_and_read(
        &self,
        conn: &mut DedicatedConnection,
        keys: &[String],
    ) -> redis::RedisResult<ValuesAndTypes> {
        let mut read = redis::pipe();
        read.cmd("WATCH").arg(keys).ignore();
        read_with_types(&mut read, keys);
        match read.query_async::<Vec<redis::Value>>(conn).await {
            Ok(replies) => read_with_types_reply(replies),
            Err(e) if e.is_connection_dropped() => {
                // What killed this connection (a restart, CLIENT KILL of every
                // normal client) most likely killed the idle ones too, before
                // redis-rs noticed: start afresh rather than try them in turn.
                self.forget_idle();
                *conn = self.new_dedicated().await?;
                read_with_types_reply(read.query_async(conn).await?)
            }
            Err(e) => Err(e),
        }
    }

    /// Drops every idle pooled connection (after one was found dead).
    pub(crate) fn forget_idle(&self) {
        if let Topology::Single { idle, .. } = &self.inner.topology {
            if let Ok(mut idle) = idle.lock() {
                idle.clear();
            }
        }
    }

    /// Returns a dedicated connection in a clean state (no WATCH pending) to the pool.
    pub(crate) fn give_back(&self, conn: DedicatedConnection) {
        if conn.is_lost() {
            return;
        }
        if let Topology::Single { idle, .. } = &self.inner.topology {
            if let Ok(mut idle) = idle.lock() {
                if idle.len() < 16 {
                    idle.push(conn);
                }
            }
        }
    }
}

/// A URL for messages, with every credential hidden: the password of the
/// user-info part (a user-info part without a colon is hidden whole: it may
/// be a password written without its colon), and the value of any query
/// parameter whose name contains `pass` (redis-rs reads `pass=` for Unix
/// sockets). A URL that does not parse, or where an `@` comes after the
/// host (a password holding an unescaped `/`, `?` or `#` ends the host early),
/// is shown by its scheme alone: where a password begins and ends in it is
/// anyone's guess.
pub(crate) fn redact(raw: &str) -> String {
    let hidden = || {
        let scheme = raw
            .split_once("://")
            .map(|(scheme, _)| scheme)
            .filter(|s| {
                s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
            })
            .unwrap_or("?");
        format!("{scheme}://(URL not shown: it does not parse as host, port and database, and may hold a password)")
    };
    let Ok(mut url) = url::Url::parse(raw) else {
        return hidden();
    };
    let after_host = [
        url.path(),
        url.query().unwrap_or(""),
        url.fragment().unwrap_or(""),
    ];
    if after_host.iter().any(|part| part.contains('@')) {
        return hidden();
    }
    if url.password().is_some() {
        let _ = url.set_password(Some("***"));
    } else if !url.username().is_empty() {
        let _ = url.set_username("***");
    }
    if url.query().is_some() {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(name, value)| {
                let secret = name.to_ascii_lowercase().contains("pass");
                let value = if secret {
                    "***".into()
                } else {
                    value.into_owned()
                };
                (name.into_owned(), value)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    if url.fragment().is_some_and(|f| f != "insecure") {
        url.set_fragment(Some("***"));
    }
    url.to_string()
}

/// What a client connects to, for messages: its address and database,
/// never its credentials.
fn describe(info: &ConnectionInfo) -> String {
    let db = info.redis_settings().db();
    match info.addr() {
        ConnectionAddr::Tcp(host, port) => format!("redis://{host}:{port}/{db}"),
        ConnectionAddr::TcpTls { host, port, .. } => format!("rediss://{host}:{port}/{db}"),
        addr => format!("redis+unix://{addr}?db={db}"),
    }
}

/// Adds to `pipe` the reads of an optimistic update: MGET `keys`, then each
/// key's TYPE (MGET reads a key holding a non-string value as nil, which the
/// TYPE tells apart from an absent one). [`read_with_types_reply`] splits
/// the replies.
pub(crate) fn read_with_types(pipe: &mut redis::Pipeline, keys: &[String]) {
    pipe.cmd("MGET").arg(keys);
    for key in keys {
        pipe.cmd("TYPE").arg(key);
    }
}

/// What [`read_with_types`] read: each key's value (`None` where MGET read
/// nil) and its TYPE.
pub(crate) type ValuesAndTypes = (Vec<Option<Vec<u8>>>, Vec<String>);

/// The values and types read by [`read_with_types`].
pub(crate) fn read_with_types_reply(
    replies: Vec<redis::Value>,
) -> redis::RedisResult<ValuesAndTypes> {
    let mut replies = replies.into_iter();
    let values = redis::from_redis_value(replies.next().unwrap_or(redis::Value::Nil))?;
    let types = replies
        .map(redis::from_redis_value)
        .collect::<Result<_, _>>()?;
    Ok((values, types))
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_never_reach_messages() {
        // (URL, what is shown); the password is always "S3cret".
        let cases = [
            ("redis://u:S3cret@h:1/2", "redis://u:***@h:1/2"),
            ("redis://:S3cret@h", "redis://:***@h"),
            ("redis://S3cret@h", "redis://***@h"),
            (
                "rediss://u:S3cret@h:6380/0#insecure",
                "rediss://u:***@h:6380/0#insecure",
            ),
            ("redis://u:S3cr%2Fet@h/0", "redis://u:***@h/0"),
            ("redis://u:S3c@ret@h/0", "redis://u:***@h/0"),
            (
                "redis+unix:///tmp/s.sock?user=app&pass=S3cret",
                "redis+unix:///tmp/s.sock?user=app&pass=***",
            ),
            (
                "unix:///tmp/s.sock?db=2&password=S3cret&pass=S3cret",
                "unix:///tmp/s.sock?db=2&password=***&pass=***",
            ),
            (
                "redis+unix:///tmp/s.sock?p%61ss=S3cret",
                "redis+unix:///tmp/s.sock?pass=***",
            ),
            ("redis://h:6379/0", "redis://h:6379/0"),
            ("redis://h/0?protocol=resp3", "redis://h/0?protocol=resp3"),
        ];
        for (url, shown) in cases {
            assert_eq!(redact(url), shown, "{url}");
        }
        // Passwords that break the URL: nothing after the scheme is shown.
        for url in [
            "redis://u:S3/cret@h:6379/0",
            "redis://:12/S3cret@h",
            "redis://:12?S3cret@h",
            "redis://:12#S3cret@h",
            "redis://u:S3 cret@h[",
            "S3cret",
        ] {
            let shown = redact(url);
            assert!(
                !shown.contains("S3") && !shown.contains("cret"),
                "{url} -> {shown}"
            );
        }
    }
}
