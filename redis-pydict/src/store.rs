//! `Store`: the connection to Redis shared by every dict and view made from it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::cluster::ClusterClientBuilder;
use redis::{AsyncConnectionConfig, Client, ConnectionInfo, IntoConnectionInfo, ProtocolVersion};

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
/// Default number of entries of one atomic bulk-`update` transaction.
pub const DEFAULT_MAX_BATCH: usize = 10_000;
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
/// client, which follows MOVED/ASK redirections and failovers): the operation
/// that meets the broken connection fails with [`Error::Redis`], the ones
/// after it succeed once the server is back.
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
        idle: Mutex<Vec<MultiplexedConnection>>,
    },
    Cluster {
        /// The first seed node's settings (credentials, TLS), re-addressed
        /// to reach a given node.
        seed: ConnectionInfo,
        tls: Option<redis::TlsCertificates>,
    },
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
    pub min_retry_delay: Duration,
    pub max_retry_delay: Duration,
    pub subscription_buffer_events: usize,
    pub subscription_buffer_bytes: usize,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("url", &self.inner.url)
            .field("settings", &self.inner.settings)
            .finish()
    }
}

/// Configures and opens a [`Store`]. Obtain one from [`Store::builder`].
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
    url: String,
    /// Seed node URLs when connecting to a cluster.
    cluster_nodes: Option<Vec<String>>,
    response_timeout: Option<Duration>,
    connection_timeout: Option<Duration>,
    retries: usize,
    min_retry_delay: Duration,
    max_retry_delay: Duration,
    tls: Option<redis::TlsCertificates>,
    settings: Settings,
}

impl std::fmt::Debug for StoreBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreBuilder")
            .field("url", &redact(&self.url))
            .field("response_timeout", &self.response_timeout)
            .field("connection_timeout", &self.connection_timeout)
            .field("retries", &self.retries)
            .field("tls", &self.tls.is_some())
            .field("settings", &self.settings)
            .finish()
    }
}

impl StoreBuilder {
    /// Time to wait for one reply (default 30 s; `None` waits forever).
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

    /// Entries per atomic transaction of a bulk `update` (default 10,000): a
    /// call with at most this many entries is applied atomically; a larger one
    /// as consecutive atomic batches, so that no transaction blocks the server
    /// for long (10,000 entries of 100 bytes: about 20 ms).
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

    /// Allows subscriptions to switch on the server's keyspace notifications
    /// for expired keys (`CONFIG SET notify-keyspace-events`, adding `Kx` to
    /// what is set) so that TTL expiries arrive as `Change::Expired`. Default
    /// off: expiries are then reported only where the server already has them on.
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
    /// reading the log until the consumer catches up.
    pub fn subscription_buffer(mut self, events: usize, bytes: usize) -> Self {
        self.settings.subscription_buffer_events = events.max(1);
        self.settings.subscription_buffer_bytes = bytes.max(1);
        self
    }

    /// Connects. Fails if the server cannot be reached after the configured retries.
    pub async fn connect(mut self) -> Result<Store> {
        self.settings.connection_timeout = self.connection_timeout;
        self.settings.min_retry_delay = self.min_retry_delay;
        self.settings.max_retry_delay = self.max_retry_delay;
        match self.cluster_nodes.take() {
            Some(nodes) => self.connect_cluster(nodes).await,
            None => self.connect_single().await,
        }
    }

    async fn connect_cluster(self, nodes: Vec<String>) -> Result<Store> {
        let url = nodes
            .iter()
            .map(|n| redact(n))
            .collect::<Vec<_>>()
            .join(",");
        let connect_err = |source| Error::Connect {
            url: url.clone(),
            source,
        };
        let infos = nodes
            .iter()
            .map(|n| n.as_str().into_connection_info())
            .collect::<redis::RedisResult<Vec<_>>>()
            .map_err(connect_err)?;
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
        if let Some(certs) = self.tls.clone() {
            builder = builder.certs(certs);
        }
        let client = builder.build().map_err(connect_err)?;
        let conn = client.get_async_connection().await.map_err(connect_err)?;
        let settings = seed
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let seed = seed.set_redis_settings(settings);
        Ok(Store {
            inner: Arc::new(StoreInner {
                conn: StoreConnection::cluster(conn),
                topology: Topology::Cluster {
                    seed,
                    tls: self.tls,
                },
                settings: self.settings,
                url,
            }),
        })
    }

    async fn connect_single(self) -> Result<Store> {
        let url = redact(&self.url);
        let connect_err = |source| Error::Connect {
            url: url.clone(),
            source,
        };
        let mut info = self
            .url
            .as_str()
            .into_connection_info()
            .map_err(connect_err)?;
        if !self.url.contains("protocol=") {
            let redis = info
                .redis_settings()
                .clone()
                .set_protocol(ProtocolVersion::RESP3);
            info = info.set_redis_settings(redis);
        }
        let client = match self.tls {
            Some(certs) => Client::build_with_tls(info, certs),
            None => Client::open(info),
        }
        .map_err(connect_err)?;
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
                url,
            }),
        })
    }
}

impl Store {
    /// Connects to `url` with default settings. `redis://[user:password@]host[:port][/db]`,
    /// or `rediss://` for TLS.
    pub async fn connect(url: &str) -> Result<Store> {
        Store::builder(url).connect().await
    }

    /// Connects to a Redis Cluster through any of its nodes (URLs as for
    /// [`Store::connect`]), with default settings. Dicts, views and
    /// subscriptions work exactly as on one server: each namespace lives in
    /// one hash slot (`{ns}`), so its atomic units stay legal.
    pub async fn connect_cluster(nodes: &[&str]) -> Result<Store> {
        Store::cluster_builder(nodes).connect().await
    }

    /// A builder for a cluster store (see [`Store::connect_cluster`]).
    pub fn cluster_builder(nodes: &[&str]) -> StoreBuilder {
        let mut builder = Store::builder(nodes.first().copied().unwrap_or_default());
        builder.cluster_nodes = Some(nodes.iter().map(|n| (*n).to_owned()).collect());
        // A redirection (MOVED/ASK) or a TRYAGAIN while a slot migrates costs
        // a retry each: allow enough to ride out a failover or a migration.
        builder.retries = DEFAULT_CLUSTER_RETRIES;
        builder
    }

    /// A builder for a store with non-default timeouts, retries or event settings.
    pub fn builder(url: &str) -> StoreBuilder {
        StoreBuilder {
            url: url.to_owned(),
            cluster_nodes: None,
            response_timeout: Some(DEFAULT_RESPONSE_TIMEOUT),
            connection_timeout: Some(DEFAULT_CONNECTION_TIMEOUT),
            retries: DEFAULT_RECONNECT_RETRIES,
            min_retry_delay: Duration::from_millis(100),
            max_retry_delay: Duration::from_secs(2),
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
                min_retry_delay: Duration::from_millis(100),
                max_retry_delay: Duration::from_secs(2),
                subscription_buffer_events: DEFAULT_SUBSCRIPTION_BUFFER_EVENTS,
                subscription_buffer_bytes: DEFAULT_SUBSCRIPTION_BUFFER_BYTES,
            },
        }
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
            Topology::Cluster { seed, tls } => {
                let (host, port) = self.connection().master_of(key).await?;
                let addr = match seed.addr() {
                    redis::ConnectionAddr::TcpTls {
                        insecure,
                        tls_params,
                        ..
                    } => redis::ConnectionAddr::TcpTls {
                        host,
                        port,
                        insecure: *insecure,
                        tls_params: tls_params.clone(),
                    },
                    _ => redis::ConnectionAddr::Tcp(host, port),
                };
                let info = seed.clone().set_addr(addr);
                match tls {
                    Some(certs) => Client::build_with_tls(info, certs.clone()),
                    None => Client::open(info),
                }
            }
        }
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
    pub(crate) async fn dedicated(&self) -> redis::RedisResult<MultiplexedConnection> {
        let Topology::Single {
            client,
            dedicated_config,
            idle,
        } = &self.inner.topology
        else {
            return Err(std::io::Error::other("no dedicated connections on a cluster").into());
        };
        let pooled = idle.lock().ok().and_then(|mut idle| idle.pop());
        match pooled {
            Some(conn) => Ok(conn),
            None => {
                client
                    .get_multiplexed_async_connection_with_config(dedicated_config)
                    .await
            }
        }
    }

    /// Returns a dedicated connection in a clean state (no WATCH pending) to the pool.
    pub(crate) fn give_back(&self, conn: MultiplexedConnection) {
        if let Topology::Single { idle, .. } = &self.inner.topology {
            if let Ok(mut idle) = idle.lock() {
                if idle.len() < 16 {
                    idle.push(conn);
                }
            }
        }
    }
}

/// Hides the password of a URL for messages.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => {
            let userinfo = &rest[..at];
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            let hidden = if userinfo.contains(':') {
                format!("{user}:***")
            } else {
                "***".to_owned()
            };
            format!("{scheme}://{hidden}{}", &rest[at..])
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(redact("redis://u:secret@h:1/2"), "redis://u:***@h:1/2");
        assert_eq!(redact("redis://:secret@h"), "redis://:***@h");
        assert_eq!(redact("redis://secret@h"), "redis://***@h");
        assert_eq!(redact("redis://h:6379/0"), "redis://h:6379/0");
    }
}
