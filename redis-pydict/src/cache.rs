//! [`CachedDict`]: a near cache in front of a [`Dict`], kept correct by the
//! server's own invalidation messages (RESP3 `CLIENT TRACKING`, broadcast
//! mode), whoever writes: this library, another process, `redis-cli`.
//!
//! How it stays correct (the races, and how each is closed):
//!
//! * **Every writer is seen.** A connection of the cache's own asks the
//!   server for `CLIENT TRACKING ON BCAST PREFIX {ns}:`: the server then
//!   sends an invalidation for every key of the namespace that changes, by
//!   any client, with or without change events, and for keys it expires or
//!   evicts. Change events are not used: they come on another connection, in
//!   no defined order with the invalidations, and a writer may publish none.
//! * **A read overtaken by a write.** Before a missed read is sent, the key
//!   gets a ticket; an invalidation of the key (or a flush) cancels it; the
//!   reply is cached only if its ticket is still valid. Reads are sent on the
//!   tracking connection itself and redis-rs hands over pushes in wire order,
//!   before the replies behind them, so a write the server applied after the
//!   read always cancels the ticket or evicts the entry.
//! * **The tracking connection lost** (killed, server restart, network):
//!   every entry is dropped at once (a flush, reported in
//!   [`CachedDict::status`]), reads go to the server uncached, and a
//!   background task reconnects and re-enables tracking; the cache is
//!   trusted again from then on. A read on a cluster answered with a
//!   redirection (failover, resharding) counts as a loss too.
//! * **`FLUSHDB`/`FLUSHALL`**: the server sends a null invalidation; the
//!   cache flushes.
//! * **TTLs**: a missed read also reads the key's time to live, and the entry
//!   is cached with its deadline (measured from before the read was sent):
//!   an entry never outlives its TTL, even before the server notices.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use lru::LruCache;
use redis::aio::MultiplexedConnection;
use redis::{PushInfo, PushKind, RedisError, Value};
use serde::{de::DeserializeOwned, Serialize};
use tokio::sync::{watch, Notify};
use tokio::task::AbortHandle;

use crate::codec;
use crate::dict::Dict;
use crate::error::{Error, Result};
use crate::key::{DictKey, KeyText};
use crate::namespace::Namespace;
use crate::store::Store;

/// The client name of near-cache tracking connections (`CLIENT LIST`).
pub const CACHE_CLIENT_NAME: &str = "redis-pydict:near-cache";

/// Why the cache dropped every entry (see [`CacheStatus::last_flush`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FlushCause {
    /// The tracking connection was lost: invalidations may have been missed.
    ConnectionLost,
    /// The tracking connection stopped answering (a heartbeat took longer
    /// than 3 s: a network partition, a paused or overloaded server), so
    /// invalidations may be held up: it is dropped and opened anew.
    Unresponsive,
    /// A read on a cluster was redirected (failover, resharding): the
    /// tracking connection is on a node that no longer serves the namespace.
    Redirected,
    /// The server flushed the database (`FLUSHDB`, `FLUSHALL`).
    ServerFlushed,
    /// [`CachedDict::flush`] was called.
    Requested,
}

/// What a [`CachedDict`] has done so far, and whether it is trusted now.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStatus {
    /// True while the server's invalidations are known to arrive: hits are
    /// served locally. False from a loss until tracking is re-enabled; reads
    /// then go to the server and nothing is cached.
    pub trusted: bool,
    /// Entries held locally (a cached absence counts as one).
    pub entries: usize,
    /// The most entries held.
    pub capacity: usize,
    /// Reads served locally.
    pub hits: u64,
    /// Reads that went to the server.
    pub misses: u64,
    /// Entries dropped to make room (least recently used first).
    pub evictions: u64,
    /// Keys invalidated by the server (a write by anyone, an expiry).
    pub invalidations: u64,
    /// Entries dropped locally because their TTL had passed.
    pub expirations: u64,
    /// Times every entry was dropped at once.
    pub flushes: u64,
    /// Why the last flush happened.
    pub last_flush: Option<FlushCause>,
    /// The last error met re-enabling tracking, while it is not re-enabled.
    pub last_error: Option<String>,
}

/// A near-cached [`Dict`]: up to `capacity` entries kept in this process,
/// filled on read, dropped when anyone changes them on the server. Obtain
/// one from [`Dict::cached`]; clones share the same cache.
///
/// * [`get`](CachedDict::get) serves a hit from memory, without I/O; a miss
///   reads the server and caches the value (or its absence) with its TTL.
/// * Writes ([`set`](CachedDict::set), [`delete`](CachedDict::delete), ...)
///   go to Redis through the dict (index, events, durable log as usual);
///   once they return, reads through this handle see the written value or a
///   newer one (read-your-writes). The written value is cached only if no
///   invalidation of the key arrives meanwhile (the server's own message
///   about this write usually does, so the next read refills it).
/// * Everything else ([`len`](CachedDict::len), iteration through
///   [`as_dict`](CachedDict::as_dict)) goes to the server: the cache holds a
///   subset of the namespace and cannot answer for the rest.
///
/// Invalidation is the server's (`CLIENT TRACKING ... BCAST`), so writes by
/// any client are seen, events or not. A lost tracking connection flushes the
/// cache and is reported ([`CacheStatus::flushes`], [`CachedDict::wait_for_flush`]);
/// reads are uncached until tracking is back ([`CachedDict::wait_trusted`]).
///
/// ```
/// # #[tokio::main]
/// # async fn main() -> redis_pydict::Result<()> {
/// # let server = redis_pydict_test::RedisServer::start();
/// # let url = server.url();
/// let store = redis_pydict::Store::connect(&url).await?;
/// let flags = store.dict::<String, bool>("flags")?;
/// flags.set("dark-mode", &true).await?;
///
/// let cached = flags.cached(10_000).await?;
/// assert_eq!(cached.get("dark-mode").await?, Some(true)); // a miss: read from Redis
/// assert_eq!(cached.get("dark-mode").await?, Some(true)); // a hit: no I/O
/// let status = cached.status();
/// assert_eq!((status.hits, status.misses), (1, 1));
/// # Ok(()) }
/// ```
pub struct CachedDict<K, V> {
    dict: Dict<K, V>,
    shared: Arc<Shared<V>>,
    _keeper: Arc<Keeper>,
}

impl<K, V> Clone for CachedDict<K, V> {
    fn clone(&self) -> Self {
        CachedDict {
            dict: self.dict.clone(),
            shared: self.shared.clone(),
            _keeper: self._keeper.clone(),
        }
    }
}

impl<K, V> std::fmt::Debug for CachedDict<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedDict")
            .field("dict", &self.dict)
            .field("status", &self.status())
            .finish()
    }
}

/// Stops the background task that re-enables tracking when the last handle goes.
struct Keeper(AbortHandle);

impl Drop for Keeper {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What the cache's handles and its background task share.
struct Shared<V> {
    ns: Namespace,
    state: Mutex<State<V>>,
    /// Wakes the background task after a loss.
    wake: Notify,
    /// Trusted or not, and the flush count, for those who wait on them.
    health: watch::Sender<Health>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Health {
    trusted: bool,
    flushes: u64,
}

struct State<V> {
    entries: LruCache<String, Entry<V>>,
    /// Keys with a read (or write) in flight whose result may be cached,
    /// with the ticket it holds. An invalidation or a flush removes it.
    pending: HashMap<String, u64>,
    next_ticket: u64,
    /// Which tracking connection the cache listens to; a loss reported by an
    /// older one is ignored.
    generation: u64,
    /// The tracking connection, while it is trusted.
    conn: Option<MultiplexedConnection>,
    /// The current generation was lost; the background task reconnects.
    lost: bool,
    hits: u64,
    misses: u64,
    evictions: u64,
    invalidations: u64,
    expirations: u64,
    flushes: u64,
    last_flush: Option<FlushCause>,
    last_error: Option<String>,
}

struct Entry<V> {
    /// `None`: the key is known to hold nothing.
    value: Option<V>,
    deadline: Option<Instant>,
}

/// A cacheable read or write in flight.
struct Ticket {
    conn: MultiplexedConnection,
    generation: u64,
    number: u64,
}

impl<V> State<V> {
    /// The cached value of `key`, if there is a live one (counted as a hit).
    fn lookup(&mut self, key: &str) -> Option<Option<V>>
    where
        V: Clone,
    {
        let entry = self.entries.get(key)?;
        if entry.deadline.is_some_and(|d| d <= Instant::now()) {
            self.entries.pop(key);
            self.expirations += 1;
            return None;
        }
        let value = entry.value.clone();
        self.hits += 1;
        Some(value)
    }

    /// A ticket for `key`, when the cache is trusted.
    fn ticket(&mut self, key: &str) -> Option<Ticket> {
        let conn = self.conn.clone()?;
        self.next_ticket += 1;
        self.pending.insert(key.to_owned(), self.next_ticket);
        Some(Ticket {
            conn,
            generation: self.generation,
            number: self.next_ticket,
        })
    }

    /// Caches `entry` if `ticket` still holds for `key`.
    fn fill(&mut self, key: &str, ticket: u64, entry: Entry<V>) {
        if self.pending.get(key) != Some(&ticket) {
            return;
        }
        self.pending.remove(key);
        if self.conn.is_none() {
            return;
        }
        if self.entries.len() == self.entries.cap().get() && !self.entries.contains(key) {
            self.evictions += 1;
        }
        self.entries.put(key.to_owned(), entry);
    }

    /// Drops what is known of `key` (an invalidation, a write).
    fn forget(&mut self, key: &str) {
        self.entries.pop(key);
        self.pending.remove(key);
    }
}

impl<V> Shared<V> {
    /// No live tracking connection is trusted now.
    fn untrusted(&self) -> bool {
        let state = self.state();
        state.lost || state.conn.is_none()
    }

    fn state(&self) -> MutexGuard<'_, State<V>> {
        // No code path panics while holding the lock but a user's `Clone`;
        // the state is consistent between statements either way.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Drops every entry and cancels every ticket.
    fn flush(&self, state: &mut State<V>, cause: FlushCause) {
        state.entries.clear();
        state.pending.clear();
        state.flushes += 1;
        state.last_flush = Some(cause);
        let trusted = state.conn.is_some();
        let flushes = state.flushes;
        self.health.send_replace(Health { trusted, flushes });
    }

    /// A push from the tracking connection of `generation`.
    fn on_push(&self, generation: u64, info: PushInfo) {
        match info.kind {
            PushKind::Invalidate => match info.data.first() {
                Some(Value::Array(keys)) => {
                    let mut state = self.state();
                    let prefix = self.ns.entry_prefix().as_bytes();
                    for key in keys {
                        let Value::BulkString(bytes) = key else {
                            continue;
                        };
                        let Some(Ok(key)) =
                            bytes.strip_prefix(prefix).map(|k| std::str::from_utf8(k))
                        else {
                            continue;
                        };
                        state.invalidations += 1;
                        state.forget(key);
                    }
                }
                // FLUSHDB / FLUSHALL: the server invalidates everything at once.
                Some(Value::Nil) => {
                    let mut state = self.state();
                    self.flush(&mut state, FlushCause::ServerFlushed);
                }
                _ => {}
            },
            PushKind::Disconnection => self.lose(generation, FlushCause::ConnectionLost),
            _ => {}
        }
    }

    /// The tracking connection of `generation` is lost or useless: flush,
    /// stop trusting, and have the background task reconnect.
    fn lose(&self, generation: u64, cause: FlushCause) {
        let mut state = self.state();
        if state.generation != generation || state.lost {
            return;
        }
        state.lost = true;
        state.conn = None;
        self.flush(&mut state, cause);
        drop(state);
        self.wake.notify_one();
    }

    /// Opens a tracking connection and, unless it was lost meanwhile,
    /// trusts it.
    async fn connect(self: &Arc<Self>, store: &Store) -> std::result::Result<(), RedisError>
    where
        V: Send + 'static,
    {
        let generation = {
            let mut state = self.state();
            state.generation += 1;
            state.lost = false;
            state.generation
        };
        let weak: Weak<Self> = Arc::downgrade(self);
        let opened = store
            .tracking_connection(&self.ns, move |info| {
                if let Some(shared) = weak.upgrade() {
                    shared.on_push(generation, info);
                }
            })
            .await;
        let mut state = self.state();
        match opened {
            Ok(conn) if state.generation == generation && !state.lost => {
                // Nothing read before now was tracked.
                state.entries.clear();
                state.pending.clear();
                state.conn = Some(conn);
                state.last_error = None;
                let flushes = state.flushes;
                self.health.send_replace(Health {
                    trusted: true,
                    flushes,
                });
                Ok(())
            }
            Ok(_) => Err(std::io::Error::other("the tracking connection was lost at once").into()),
            Err(e) => {
                state.last_error = Some(e.to_string());
                Err(e)
            }
        }
    }
}

/// How often the background task checks the tracking connection.
pub(crate) const HEARTBEAT: Duration = Duration::from_secs(1);
/// How long a heartbeat may take before the connection counts as lost.
pub(crate) const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(3);

/// Re-enables tracking after every loss, with backoff while it fails, and
/// checks the tracking connection every [`HEARTBEAT`] while it is trusted.
async fn keep<V: Send + 'static>(shared: Arc<Shared<V>>, store: Store) {
    let (min, max) = {
        let settings = store.settings();
        (settings.min_retry_delay, settings.max_retry_delay)
    };
    loop {
        // Woken by every loss (a stale wake-up finds nothing lost), or at
        // the next heartbeat.
        if tokio::time::timeout(HEARTBEAT, shared.wake.notified())
            .await
            .is_err()
        {
            shared.heartbeat().await;
        }
        let mut delay = min;
        while shared.untrusted() {
            if shared.connect(&store).await.is_ok() {
                break;
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(max);
        }
    }
}

impl<V> Shared<V> {
    /// Reads a key of the namespace's slot on the tracking connection: a
    /// connection dead without a word (no reset: a network partition, a
    /// paused server) fails within [`HEARTBEAT_TIMEOUT`], and on a cluster a
    /// slot that moved away (resharding, a failover that left the old
    /// master up as a replica) answers with a redirection. Either is a loss.
    async fn heartbeat(&self) {
        let (conn, generation) = {
            let state = self.state();
            (state.conn.clone(), state.generation)
        };
        let Some(mut conn) = conn else { return };
        let mut exists = redis::cmd("EXISTS");
        exists.arg(self.ns.entry_prefix());
        let probe = exists.query_async::<i64>(&mut conn);
        match tokio::time::timeout(HEARTBEAT_TIMEOUT, probe).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                if let Some(cause) = loss_of(&e) {
                    self.lose(generation, cause);
                }
            }
            Err(_) => self.lose(generation, FlushCause::Unresponsive),
        }
    }
}

/// Whether a failed command on the tracking connection means the cache can
/// no longer trust it, and why. A server's answer is no loss (WRONGTYPE,
/// NOPERM, OOM: the connection works) unless it says this node does not serve
/// the namespace's slot (MOVED, ASK, TRYAGAIN, CLUSTERDOWN, READONLY); any
/// other failure (I/O, timeout, an unreadable reply) is a lost connection.
fn loss_of(e: &RedisError) -> Option<FlushCause> {
    match e.clone().into_server_errors() {
        Some(failures) => failures
            .iter()
            .any(|(_, f)| {
                matches!(
                    f.code(),
                    "MOVED" | "ASK" | "TRYAGAIN" | "CLUSTERDOWN" | "READONLY"
                )
            })
            .then_some(FlushCause::Redirected),
        None => Some(FlushCause::ConnectionLost),
    }
}

impl<K, V> CachedDict<K, V>
where
    K: DictKey,
    V: Serialize + DeserializeOwned + Clone + Send + 'static,
{
    /// Opens the tracking connection and starts the task that keeps it.
    pub(crate) async fn start(dict: Dict<K, V>, store: Store, capacity: usize) -> Result<Self> {
        let namespace = dict.namespace().clone();
        let Some(capacity) = NonZeroUsize::new(capacity) else {
            return Err(Error::Config(format!(
                "the near cache of namespace {:?} needs a capacity of at least 1 entry",
                namespace.name()
            )));
        };
        let shared = Arc::new(Shared {
            ns: namespace.clone(),
            state: Mutex::new(State {
                entries: LruCache::new(capacity),
                pending: HashMap::new(),
                next_ticket: 0,
                generation: 0,
                conn: None,
                lost: false,
                hits: 0,
                misses: 0,
                evictions: 0,
                invalidations: 0,
                expirations: 0,
                flushes: 0,
                last_flush: None,
                last_error: None,
            }),
            wake: Notify::new(),
            health: watch::Sender::new(Health::default()),
        });
        shared
            .connect(&store)
            .await
            .map_err(|source| Error::Redis {
                operation: "cached (CLIENT TRACKING, ACL +client|tracking)",
                namespace: namespace.name().to_owned(),
                source,
            })?;
        let task = tokio::spawn(keep(shared.clone(), store));
        Ok(CachedDict {
            dict,
            shared,
            _keeper: Arc::new(Keeper(task.abort_handle())),
        })
    }

    /// The cached value of `key` on a hit (no I/O), `None` on a miss.
    pub(crate) fn hit(&self, key: &str) -> Option<Option<V>> {
        self.shared.state().lookup(key)
    }

    /// The value at `key`, or `None`: from memory on a hit (no I/O), else
    /// read from the server (with its TTL) and cached unless an invalidation
    /// of the key arrived meanwhile.
    pub async fn get<Q>(&self, key: &Q) -> Result<Option<V>>
    where
        K: Borrow<Q>,
        Q: KeyText + ?Sized,
    {
        let text = key.key_text();
        let ticket = {
            let mut state = self.shared.state();
            if let Some(hit) = state.lookup(&text) {
                return Ok(hit);
            }
            state.misses += 1;
            state.ticket(&text)
        };
        let Some(mut ticket) = ticket else {
            // Not trusted now: read through, cache nothing.
            return self.dict.get(key).await;
        };
        let redis_key = self.shared.ns.entry_key(&text);
        let sent = Instant::now();
        let reply: redis::RedisResult<(Option<Vec<u8>>, i64)> = redis::pipe()
            .cmd("GET")
            .arg(&redis_key)
            .cmd("PTTL")
            .arg(&redis_key)
            .query_async(&mut ticket.conn)
            .await;
        let (bytes, pttl) = match reply {
            Ok(reply) => reply,
            Err(e) => {
                self.shared.state().forget_ticket(&text, ticket.number);
                if let Some(cause) = loss_of(&e) {
                    self.shared.lose(ticket.generation, cause);
                }
                // The dict's own path: its reconnection, its error messages.
                return self.dict.get(key).await;
            }
        };
        let value = match bytes {
            Some(bytes) => match codec::decode(&bytes, self.shared.ns.name(), &text) {
                Ok(value) => Some(value),
                Err(e) => {
                    self.shared.state().forget_ticket(&text, ticket.number);
                    return Err(e);
                }
            },
            None => None,
        };
        let deadline = u64::try_from(pttl)
            .ok()
            .map(|ms| sent + Duration::from_millis(ms));
        let entry = Entry {
            value: value.clone(),
            deadline,
        };
        self.shared.state().fill(&text, ticket.number, entry);
        Ok(value)
    }

    /// Writes `value` at `key` (removing any TTL) through the dict; reads
    /// through this handle then see it or a newer value.
    pub async fn set<Q>(&self, key: &Q, value: &V) -> Result<()>
    where
        K: Borrow<Q>,
        Q: KeyText + ?Sized,
    {
        let text = key.key_text();
        let ticket = self.begin_write(&text);
        let result = self.dict.set(key, value).await;
        self.end_write(&text, ticket, result.is_ok(), || Entry {
            value: Some(value.clone()),
            deadline: None,
        });
        result
    }

    /// Writes `value` at `key`, expiring after `ttl`; the cached copy expires
    /// with it.
    pub async fn set_with_ttl<Q>(&self, key: &Q, value: &V, ttl: Duration) -> Result<()>
    where
        K: Borrow<Q>,
        Q: KeyText + ?Sized,
    {
        let text = key.key_text();
        let ticket = self.begin_write(&text);
        let sent = Instant::now();
        let result = self.dict.set_with_ttl(key, value, ttl).await;
        self.end_write(&text, ticket, result.is_ok(), || Entry {
            value: Some(value.clone()),
            deadline: Some(sent + ttl),
        });
        result
    }

    /// Deletes `key`; true if it existed.
    pub async fn delete<Q>(&self, key: &Q) -> Result<bool>
    where
        K: Borrow<Q>,
        Q: KeyText + ?Sized,
    {
        let text = key.key_text();
        let ticket = self.begin_write(&text);
        let result = self.dict.delete(key).await;
        self.end_write(&text, ticket, result.is_ok(), || Entry {
            value: None,
            deadline: None,
        });
        result
    }

    /// Removes `key` and returns its value, atomically (see [`Dict::remove`]).
    pub async fn remove<Q>(&self, key: &Q) -> Result<Option<V>>
    where
        K: Borrow<Q>,
        Q: KeyText + ?Sized,
    {
        let text = key.key_text();
        let ticket = self.begin_write(&text);
        let result = self.dict.remove(key).await;
        self.end_write(&text, ticket, result.is_ok(), || Entry {
            value: None,
            deadline: None,
        });
        result
    }

    /// Whether `key` holds an entry: from memory on a hit, else asked of the
    /// server (without caching).
    pub async fn contains<Q>(&self, key: &Q) -> Result<bool>
    where
        K: Borrow<Q>,
        Q: KeyText + ?Sized,
    {
        if let Some(hit) = self.shared.state().lookup(&key.key_text()) {
            return Ok(hit.is_some());
        }
        self.dict.contains(key).await
    }

    /// Drops what is cached of `key` and takes a ticket for the write's result.
    fn begin_write(&self, key: &str) -> Option<u64> {
        let mut state = self.shared.state();
        state.entries.pop(key);
        state.ticket(key).map(|t| t.number)
    }

    /// Caches what a successful write left, if nothing invalidated it meanwhile.
    fn end_write(
        &self,
        key: &str,
        ticket: Option<u64>,
        ok: bool,
        entry: impl FnOnce() -> Entry<V>,
    ) {
        let Some(ticket) = ticket else { return };
        let mut state = self.shared.state();
        if ok {
            state.fill(key, ticket, entry());
        } else {
            state.forget_ticket(key, ticket);
            // A failed write may still have been applied.
            state.entries.pop(key);
        }
    }
}

impl<V> State<V> {
    /// Cancels `ticket` for `key` if it is still the key's.
    fn forget_ticket(&mut self, key: &str, ticket: u64) {
        if self.pending.get(key) == Some(&ticket) {
            self.pending.remove(key);
        }
    }
}

impl<K, V> CachedDict<K, V> {
    /// The dict underneath, for everything the cache does not serve
    /// (iteration, bulk writes, subscriptions): those go to the server.
    pub fn as_dict(&self) -> &Dict<K, V> {
        &self.dict
    }

    /// Number of live entries of the namespace: asked of the server (see [`Dict::len`]).
    pub async fn len(&self) -> Result<u64> {
        self.dict.len().await
    }

    /// True when the namespace holds no live entry (asked of the server).
    pub async fn is_empty(&self) -> Result<bool> {
        self.dict.is_empty().await
    }

    /// Counters and health, read from memory.
    pub fn status(&self) -> CacheStatus {
        let state = self.shared.state();
        CacheStatus {
            trusted: state.conn.is_some(),
            entries: state.entries.len(),
            capacity: state.entries.cap().get(),
            hits: state.hits,
            misses: state.misses,
            evictions: state.evictions,
            invalidations: state.invalidations,
            expirations: state.expirations,
            flushes: state.flushes,
            last_flush: state.last_flush,
            last_error: state.last_error.clone(),
        }
    }

    /// Drops every cached entry (counted as a flush, [`FlushCause::Requested`]).
    pub fn flush(&self) {
        let mut state = self.shared.state();
        self.shared.flush(&mut state, FlushCause::Requested);
    }

    /// Waits until the cache is trusted (tracking enabled on a live
    /// connection); at once if it is.
    pub async fn wait_trusted(&self) {
        let mut health = self.shared.health.subscribe();
        // Err only if the sender is gone, which `self` prevents.
        let _ = health.wait_for(|h| h.trusted).await;
    }

    /// Waits until the cache has flushed more than `seen` times in all (see
    /// [`CacheStatus::flushes`]) and returns the new count: a way to learn of
    /// a flush without polling.
    pub async fn wait_for_flush(&self, seen: u64) -> u64 {
        let mut health = self.shared.health.subscribe();
        let flushes = match health.wait_for(|h| h.flushes > seen).await {
            Ok(health) => health.flushes,
            Err(_) => seen,
        };
        flushes
    }
}
