//! `Dict<K, V>`: a namespaced, typed dictionary over Redis.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::marker::PhantomData;
use std::time::Duration;

use futures::stream::{Stream, StreamExt, TryStreamExt};
use serde::{de::DeserializeOwned, Serialize};

use crate::cache::CachedDict;
use crate::canonical;
use crate::codec;
use crate::durable::{self, LogId, StartFrom};
use crate::error::Result;
use crate::event::RawEvent;
use crate::group::{self, GroupOptions, GroupSubscription};
use crate::key::{parse_key, DictKey, KeyText};
use crate::namespace::Namespace;
use crate::space::{SetMode, Space};
use crate::status::{RepairReport, Ttl};
use crate::subscription::{self, Event, Subscription, Target};

/// A typed dictionary stored in Redis under one namespace.
///
/// Entries live at `{namespace}:<key>` as CBOR values; a sorted-set index
/// keeps `len` O(log n) and lets iteration walk only this namespace. Every
/// write updates entry, index and change event in one atomic round trip.
///
/// `K` is `String` or an integer type; look-ups take anything the key type
/// borrows as (`&str` for `String` keys). `V` is any serde type.
///
/// ```no_run
/// # async fn demo(store: redis_pydict::Store) -> redis_pydict::Result<()> {
/// use futures::TryStreamExt;
/// let d = store.dict::<String, serde_json::Value>("mykeyspace")?;
/// d.set("int", &10.into()).await?;
/// assert_eq!(d.get("int").await?, Some(10.into()));
/// assert!(d.contains("int").await?);
/// let matching: Vec<_> = d.items_matching("in*").try_collect().await?;
/// assert_eq!(d.len().await?, 1);
/// d.clear().await?;
/// # Ok(()) }
/// ```
pub struct Dict<K, V> {
    space: Space,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K, V> Clone for Dict<K, V> {
    fn clone(&self) -> Self {
        Dict {
            space: self.space.clone(),
            _types: PhantomData,
        }
    }
}

impl<K, V> std::fmt::Debug for Dict<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dict")
            .field("namespace", &self.space.namespace().name())
            .field("key", &std::any::type_name::<K>())
            .field("value", &std::any::type_name::<V>())
            .finish()
    }
}

impl<K, V> Dict<K, V> {
    pub(crate) fn from_space(space: Space) -> Self {
        Dict {
            space,
            _types: PhantomData,
        }
    }

    /// The untyped core (for the raw forms in `raw.rs`).
    pub(crate) fn space(&self) -> &Space {
        &self.space
    }

    /// The namespace, with the Redis names derived from it.
    pub fn namespace(&self) -> &Namespace {
        self.space.namespace()
    }

    /// The same dict with change events switched on or off (default: the store's setting).
    #[must_use = "the setting applies to the returned dict only"]
    pub fn with_notifications(mut self, on: bool) -> Self {
        self.space.set_notifications(on);
        self
    }

    /// The same dict writing `origin` into its change events (default: the store's).
    #[must_use = "the setting applies to the returned dict only"]
    pub fn with_origin(mut self, origin: impl Into<String>) -> Self {
        self.space.set_origin(Some(origin.into()));
        self
    }

    /// The same dict, whose subscriptions skip the events written with its own
    /// origin id (set by [`Dict::with_origin`] or the store's `origin`): a
    /// process then sees only other processes' changes.
    #[must_use = "the setting applies to the returned dict only"]
    pub fn with_skip_own_events(mut self, skip: bool) -> Self {
        self.space.set_skip_own_events(skip);
        self
    }

    /// Makes this handle's writes carry, in each event, the value the entry
    /// had before the change ([`Event::previous`](crate::Event::previous)), for consumers that
    /// compute deltas. Off by default: it about doubles the size of events
    /// (on the channels and in the durable log). It costs no extra round
    /// trip: the write script reads the old value as it writes (`SET ...
    /// GET`, `GETDEL`, `MGET` before `MSET`). `set`, `set_many`,
    /// `update_with`, `delete`, `remove`, `expire`/`persist` carry it; a
    /// `clear` then also sends, before its `Cleared` event, a `Deleted`
    /// event carrying the value of each entry it removes. Events from
    /// writers without it have [`Previous::Unknown`](crate::Previous::Unknown).
    ///
    /// ```
    /// use redis_pydict::{Change, Previous, Store};
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = redis_pydict_test::RedisServer::start();
    /// # let url = server.url();
    /// let store = Store::connect(&url).await?;
    /// let prices = store.dict::<String, u32>("prices")?.with_previous_values(true);
    /// let mut changes = prices.subscribe("*").await?;
    /// prices.set("apple", &3).await?;
    /// prices.set("apple", &5).await?;
    /// let first = changes.recv().await.unwrap()?;
    /// assert_eq!((first.change, first.previous), (Change::Set(3), Previous::Absent));
    /// let second = changes.recv().await.unwrap()?;
    /// assert_eq!((second.change, second.previous), (Change::Set(5), Previous::Value(3)));
    /// # Ok(()) }
    /// ```
    #[must_use = "the setting applies to the returned dict only"]
    pub fn with_previous_values(mut self, on: bool) -> Self {
        self.space.set_previous_values(on);
        self
    }

    /// Whether this handle's events carry previous values (see
    /// [`Dict::with_previous_values`]).
    pub fn previous_values(&self) -> bool {
        self.space.previous_values()
    }

    /// The same dict with a durable change log: every write through it also
    /// appends its event to the Redis Stream `{ns}#log`, in the same atomic
    /// unit, capped at about `max_len` entries (`MAXLEN ~`). Subscribers use
    /// [`Dict::subscribe_durable`] to replay from where they stopped.
    /// The first write that appends declares the log in the namespace
    /// metadata `{ns}#meta` (`log_maxlen`), after which every writer of the
    /// namespace appends too (see [`Dict::durable_log_declared`]).
    #[must_use = "the setting applies to the returned dict only"]
    pub fn with_durable_log(mut self, max_len: u64) -> Self {
        self.space.set_log_maxlen(Some(max_len.max(1)));
        self
    }

    /// The durable log cap this dict was configured with
    /// ([`Dict::with_durable_log`]). Writes also append to the log when the
    /// namespace declares one (see [`Dict::durable_log_declared`]).
    pub fn durable_log(&self) -> Option<u64> {
        self.space.log_maxlen()
    }

    /// The durable log cap the namespace declares in its metadata
    /// (`{ns}#meta`, field `log_maxlen`), if any: one HGET. A dict or view
    /// with a durable log declares it with its first write that appends to
    /// the log, and from then on every write to the namespace appends to
    /// `{ns}#log` with that cap, through this library, with or without
    /// [`Dict::with_durable_log`], so the log misses no writer (other
    /// languages' writers read the same field, see WIRE.md).
    ///
    /// ```rust
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = redis_pydict_test::RedisServer::start();
    /// # let store = redis_pydict::Store::connect(&server.url()).await?;
    /// let logged = store.dict::<String, u32>("orders")?.with_durable_log(10_000);
    /// let plain = store.dict::<String, u32>("orders")?;
    /// assert_eq!(plain.durable_log_declared().await?, None);
    /// logged.set("a", &1).await?;
    /// assert_eq!(plain.durable_log_declared().await?, Some(10_000));
    /// plain.set("b", &2).await?;                    // appended to {orders}#log too
    /// # Ok(()) }
    /// ```
    pub async fn durable_log_declared(&self) -> Result<Option<u64>> {
        crate::meta::declared_log(&self.space).await
    }

    /// Whether writes through this dict publish change events.
    pub fn notifications(&self) -> bool {
        self.space.notifications()
    }

    /// The origin id written into change events, if any.
    pub fn origin(&self) -> Option<&str> {
        self.space.origin()
    }

    /// Number of live entries: O(log n) on the index, whatever else the database holds.
    ///
    /// It counts the index's members (those not expired), without looking at
    /// the entries themselves: an entry overwritten by other means with a
    /// hash, list... (foreign data), or deleted by other means, still counts
    /// until [`Dict::repair`] runs. [`Dict::keys`] lists the same members.
    pub async fn len(&self) -> Result<u64> {
        crate::observe::op("len", self.namespace(), 0, async { self.space.len().await }).await
    }

    /// True when the namespace holds no live entry.
    pub async fn is_empty(&self) -> Result<bool> {
        Ok(self.len().await? == 0)
    }

    /// Whether `key` holds an entry.
    pub async fn contains<Q>(&self, key: &Q) -> Result<bool>
    where
        K: Borrow<Q>,
        Q: KeyText + ?Sized,
    {
        crate::observe::op("contains", self.namespace(), 1, async {
            self.space.contains(&key.key_text()).await
        })
        .await
    }

    /// Deletes `key`; true if it existed.
    pub async fn delete<Q>(&self, key: &Q) -> Result<bool>
    where
        K: Borrow<Q>,
        Q: KeyText + ?Sized,
    {
        crate::observe::op("delete", self.namespace(), 1, async {
            let flags = self.space.delete(&[&key.key_text()]).await?;
            Ok(flags.first().copied().unwrap_or(false))
        })
        .await
    }

    /// Sets a time-to-live on `key`; false if there is no such entry.
    pub async fn expire<Q>(&self, key: &Q, ttl: Duration) -> Result<bool>
    where
        K: Borrow<Q>,
        Q: KeyText + ?Sized,
    {
        crate::observe::op("expire", self.namespace(), 1, async {
            self.space.expire(&key.key_text(), Some(ttl)).await
        })
        .await
    }

    /// Removes the time-to-live of `key`; false if there is no such entry.
    pub async fn persist<Q>(&self, key: &Q) -> Result<bool>
    where
        K: Borrow<Q>,
        Q: KeyText + ?Sized,
    {
        crate::observe::op("persist", self.namespace(), 1, async {
            self.space.expire(&key.key_text(), None).await
        })
        .await
    }

    /// The time-to-live state of `key`.
    pub async fn ttl<Q>(&self, key: &Q) -> Result<Ttl>
    where
        K: Borrow<Q>,
        Q: KeyText + ?Sized,
    {
        crate::observe::op("ttl", self.namespace(), 1, async {
            self.space.ttl(&key.key_text()).await
        })
        .await
    }

    /// Removes every entry of the namespace and returns how many there were.
    /// Up to `max_batch` entries (see [`crate::StoreBuilder::max_batch`]) this
    /// is one atomic script; a larger namespace is cleared in consecutive
    /// atomic batches, so the server is never held for long, a few of them in
    /// flight at once. Exactly one `clear` event on `{ns}#ev` goes out, by the
    /// batch that leaves the index empty: entries written while the clear
    /// runs are removed when they come before that event, and stay when they
    /// come after it. With [`Dict::with_previous_values`], each entry removed
    /// first gets its `Deleted` event carrying its value. A batch meeting an
    /// indexed key that holds another type fails whole, naming the key; when
    /// earlier batches were applied the error is
    /// [`crate::Error::PartlyApplied`], counting them. Touches only indexed
    /// entries: run [`Dict::repair`] first for entries written by other means.
    pub async fn clear(&self) -> Result<u64> {
        crate::observe::op("clear", self.namespace(), 0, async {
            self.space.clear().await
        })
        .await
    }

    /// Rebuilds the index from a SCAN of `{ns}:*`, for entries written or
    /// deleted by other means than this library. Costs a scan of the database.
    pub async fn repair(&self) -> Result<RepairReport> {
        crate::observe::op("repair", self.namespace(), 0, async {
            self.space.repair().await
        })
        .await
    }
}

impl<K, V> Dict<K, V>
where
    K: DictKey,
    V: Serialize + DeserializeOwned,
{
    fn encode(&self, key: &str, value: &V) -> Result<Vec<u8>> {
        codec::encode(value, self.space.namespace().name(), key)
    }

    fn decode(&self, key: &str, bytes: &[u8]) -> Result<V> {
        codec::decode(bytes, self.space.namespace().name(), key)
    }

    fn parse_key(&self, text: String) -> Result<K> {
        parse_key(self.space.namespace().name(), text)
    }

    /// The value at `key`, or `None`.
    pub async fn get<Q>(&self, key: &Q) -> Result<Option<V>>
    where
        K: Borrow<Q>,
        Q: KeyText + ?Sized,
    {
        crate::observe::op("get", self.namespace(), 1, async {
            let key = key.key_text();
            match self.space.get(&key).await? {
                Some(bytes) => self.decode(&key, &bytes).map(Some),
                None => Ok(None),
            }
        })
        .await
    }

    /// Values of several keys in one round trip (MGET), `None` where absent.
    ///
    /// A key holding foreign data (a hash, list... written by other means)
    /// is refused with [`Error::WrongType`](crate::Error::WrongType), as
    /// [`Dict::get`] refuses it: MGET reads such a key as absent, so when it
    /// answers nil for some keys, their types are checked in one more round
    /// trip (none when every key has a value).
    pub async fn get_many<'q, Q, I>(&self, keys: I) -> Result<Vec<Option<V>>>
    where
        I: IntoIterator<Item = &'q Q>,
        K: Borrow<Q>,
        Q: KeyText + ?Sized + 'q,
    {
        let texts: Vec<String> = keys
            .into_iter()
            .map(|k| k.key_text().into_owned())
            .collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let read = self.space.get_many(&refs);
        let values = crate::observe::op("get_many", self.namespace(), refs.len(), read).await?;
        texts
            .iter()
            .zip(values)
            .map(|(key, bytes)| bytes.map(|b| self.decode(key, &b)).transpose())
            .collect()
    }

    /// Writes `value` at `key` (removing any TTL it had).
    pub async fn set<Q>(&self, key: &Q, value: &V) -> Result<()>
    where
        K: Borrow<Q>,
        Q: KeyText + ?Sized,
    {
        crate::observe::op("set", self.namespace(), 1, async {
            let key = key.key_text();
            let bytes = self.encode(&key, value)?;
            self.space
                .set(SetMode::Set, None, &[(&key, &bytes)])
                .await
                .map(drop)
        })
        .await
    }

    /// Writes `value` at `key`, expiring after `ttl` (at least 1 ms).
    pub async fn set_with_ttl<Q>(&self, key: &Q, value: &V, ttl: Duration) -> Result<()>
    where
        K: Borrow<Q>,
        Q: KeyText + ?Sized,
    {
        crate::observe::op("set_with_ttl", self.namespace(), 1, async {
            let key = key.key_text();
            let bytes = self.encode(&key, value)?;
            self.space
                .set(SetMode::Set, Some(ttl), &[(&key, &bytes)])
                .await
                .map(drop)
        })
        .await
    }

    /// Writes `value` only if `key` holds nothing (Python's `setdefault`); true if written.
    pub async fn set_if_absent<Q>(&self, key: &Q, value: &V) -> Result<bool>
    where
        K: Borrow<Q>,
        Q: KeyText + ?Sized,
    {
        self.insert_if_absent(&key.key_text(), value, None).await
    }

    /// [`Dict::set_if_absent`] with a time-to-live (a view field's declared one).
    pub(crate) async fn insert_if_absent(
        &self,
        key: &str,
        value: &V,
        ttl: Option<Duration>,
    ) -> Result<bool> {
        crate::observe::op("set_if_absent", self.namespace(), 1, async {
            let bytes = self.encode(key, value)?;
            Ok(self
                .space
                .set(SetMode::IfAbsent, ttl, &[(key, &bytes)])
                .await?
                == 1)
        })
        .await
    }

    /// Removes `key` and returns its value, atomically (GETDEL): of two
    /// concurrent `remove`s, exactly one gets the value.
    ///
    /// The value is decoded after the removal: if it does not decode as `V`,
    /// the entry is gone all the same and the error is
    /// [`Error::Removed`](crate::Error::Removed), which carries the stored
    /// bytes ([`Error::was_applied`](crate::Error::was_applied) is true).
    pub async fn remove<Q>(&self, key: &Q) -> Result<Option<V>>
    where
        K: Borrow<Q>,
        Q: KeyText + ?Sized,
    {
        self.take("remove", &key.key_text()).await
    }

    /// [`Dict::remove`], reporting an undecodable old value as `operation`.
    pub(crate) async fn take(&self, operation: &'static str, key: &str) -> Result<Option<V>> {
        crate::observe::op(operation, self.namespace(), 1, async {
            let mut old = self.space.take(&[key]).await?;
            let Some(bytes) = old.pop().flatten() else {
                return Ok(None);
            };
            match self.decode(key, &bytes) {
                Ok(value) => Ok(Some(value)),
                Err(source) => Err(crate::Error::Removed {
                    operation,
                    namespace: self.namespace().name().to_owned(),
                    key: key.to_owned(),
                    value: bytes,
                    source: Box::new(source),
                }),
            }
        })
        .await
    }

    /// Writes many entries (Python's `dict.update`), clearing any TTL they
    /// had. Accepts any iterator of pairs: a `HashMap<String, V>`, a
    /// `Vec<(&str, V)>`, `[(1, &v)]`, a lazy generator, ...
    ///
    /// The pairs go out in batches of up to `max_batch` entries (default
    /// 5,000, see [`crate::StoreBuilder::max_batch`]); each batch is one
    /// atomic script call, so a call of up to `max_batch` entries is atomic
    /// (all or nothing) and no call holds the server for long. The input is
    /// consumed and encoded one batch at a time while a few batches are in
    /// flight, so memory stays bounded by a few batches whatever the input
    /// size (the returned future is `Send` when the iterator is).
    ///
    /// If a batch fails (a value too large or that does not encode, an
    /// entry key holding foreign data, the server out of memory, ...),
    /// nothing more is read from the input or sent; batches before it stay
    /// applied. When the failure is not in the first batch, or other batches
    /// were already in flight, the error is [`Error::PartlyApplied`](crate::Error::PartlyApplied), which
    /// says which batch failed and how many batches and entries were applied.
    pub async fn set_many<I, Q, B>(&self, pairs: I) -> Result<()>
    where
        I: IntoIterator<Item = (Q, B)>,
        Q: KeyText,
        B: Borrow<V>,
    {
        crate::observe::op("set_many", self.namespace(), 0, async {
            let max_batch = self.space.store().settings().max_batch.max(1);
            let mut pairs = pairs.into_iter();
            let batches = std::iter::from_fn(move || {
                let mut batch = Vec::with_capacity(pairs.size_hint().0.clamp(1, max_batch));
                for (key, value) in pairs.by_ref().take(max_batch) {
                    let key = key.key_text().into_owned();
                    match self.encode(&key, value.borrow()) {
                        Ok(bytes) => batch.push((key, bytes)),
                        Err(e) => return Some(Err(e)),
                    }
                }
                (!batch.is_empty()).then_some(Ok(batch))
            });
            self.space.set_many(batches).await
        })
        .await
    }

    /// Read-modify-write of one entry that never loses an update: `f` gets the
    /// current value (or `None`) and returns the new one, which is written only
    /// if nobody wrote the entry meanwhile; otherwise `f` runs again on the
    /// fresh value (optimistic WATCH/MULTI on a dedicated connection). The
    /// entry keeps its TTL. Returns the value written.
    ///
    /// If the key holds foreign data (a hash, list... written by other
    /// means), the call fails with [`Error::WrongType`](crate::Error::WrongType)
    /// before `f` is called: the read asks the key's type in the same round
    /// trip, so `f` never sees such a key as absent.
    ///
    /// ```no_run
    /// # async fn demo(counters: redis_pydict::Dict<String, u64>) -> redis_pydict::Result<()> {
    /// let hits = counters.update_with("hits", |n| n.unwrap_or(0) + 1).await?;
    /// # Ok(()) }
    /// ```
    pub async fn update_with<Q, F>(&self, key: &Q, mut f: F) -> Result<V>
    where
        K: Borrow<Q>,
        Q: KeyText + ?Sized,
        F: FnMut(Option<V>) -> V,
    {
        crate::observe::op("update_with", self.namespace(), 1, async {
            let key = key.key_text();
            self.space
                .update_with(&[&key], |mut current| {
                    let old = match current.pop().flatten() {
                        Some(bytes) => Some(self.decode(&key, &bytes)?),
                        None => None,
                    };
                    let new = f(old);
                    let bytes = self.encode(&key, &new)?;
                    Ok((vec![(key.to_string(), bytes)], new))
                })
                .await
        })
        .await
    }

    /// Read-modify-write of one entry in place, the path of a view field's
    /// `update`: `start` turns the stored value (`None` when missing) into
    /// the value `f` changes. Written (keeping the entry's TTL) only if nobody
    /// wrote the entry meanwhile (else retried from a fresh read), and only if
    /// something was stored or `f` changed the value: its encodings before
    /// and after `f` are compared in CBOR's deterministic form (see
    /// `canonical`), so an unchanged `HashMap` or `NaN` is no write.
    pub(crate) async fn modify<R>(
        &self,
        key: &str,
        mut start: impl FnMut(Option<V>) -> Result<V>,
        mut f: impl FnMut(&mut V) -> R,
    ) -> Result<R> {
        crate::observe::op("update", self.namespace(), 1, async {
            self.space
                .update_with(&[key], |mut current| {
                    let stored = current.pop().flatten();
                    let old = match &stored {
                        Some(bytes) => Some(self.decode(key, bytes)?),
                        None => None,
                    };
                    let mut value = start(old)?;
                    let before = match stored {
                        Some(_) => Some(self.encode(key, &value)?),
                        None => None,
                    };
                    let result = f(&mut value);
                    let after = self.encode(key, &value)?;
                    let changes = match before {
                        Some(before) if canonical::same_value(&before, &after) => Vec::new(),
                        _ => vec![(key.to_owned(), after)],
                    };
                    Ok((changes, result))
                })
                .await
        })
        .await
    }

    /// A near-cached handle on this dict keeping up to `capacity` entries in
    /// this process (least recently used dropped first): hits do no I/O, and
    /// the server invalidates entries whoever changes them (see
    /// [`CachedDict`]). Opens a connection of its own with `CLIENT TRACKING`
    /// on (RESP3; on a cluster, to the master of the namespace's slot).
    /// Fails if `capacity` is 0 or tracking cannot be enabled.
    ///
    /// ```
    /// use redis_pydict::Store;
    /// use std::time::Duration;
    ///
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = redis_pydict_test::RedisServer::start();
    /// # let url = server.url();
    /// let store = Store::connect(&url).await?;
    /// let flags = store.dict::<String, bool>("flags")?;
    /// flags.set("dark-mode", &false).await?;
    ///
    /// // Up to 10,000 entries kept in this process.
    /// let cached = flags.cached(10_000).await?;
    /// assert_eq!(cached.get("dark-mode").await?, Some(false)); // miss: one round trip
    /// assert_eq!(cached.get("dark-mode").await?, Some(false)); // hit: no I/O
    ///
    /// // Anyone changes it: here a raw SET, no index, no event, as redis-cli would.
    /// let mut raw = redis::Client::open(url.as_str())?.get_multiplexed_async_connection().await?;
    /// let mut cbor = Vec::new();
    /// ciborium::into_writer(&true, &mut cbor)?;
    /// redis::cmd("SET").arg("{flags}:dark-mode").arg(cbor).query_async::<()>(&mut raw).await?;
    ///
    /// // The server's invalidation drops the local copy; the next read refills it.
    /// let deadline = std::time::Instant::now() + Duration::from_secs(5);
    /// while cached.get("dark-mode").await? != Some(true) {
    ///     assert!(std::time::Instant::now() < deadline);
    ///     tokio::time::sleep(Duration::from_millis(5)).await;
    /// }
    /// let status = cached.status();
    /// assert!(status.trusted && status.invalidations >= 1);
    /// # Ok(()) }
    /// ```
    pub async fn cached(&self, capacity: usize) -> Result<CachedDict<K, V>>
    where
        V: Clone + Send + 'static,
    {
        CachedDict::start(self.clone(), self.space.store().clone(), capacity).await
    }

    /// All keys, as a stream that pages through the index.
    ///
    /// Like [`Dict::len`], it lists the index's members without reading the
    /// entries, so it agrees with `len`: a key whose entry was overwritten by
    /// other means with a non-string value (foreign data) is listed, whereas
    /// [`Dict::items`] and [`Dict::values`], which read the values, give an
    /// [`Error::WrongType`](crate::Error::WrongType) item for it (and `get`
    /// refuses it). [`Dict::repair`] drops such members from the index.
    pub fn keys(&self) -> impl Stream<Item = Result<K>> + Send + 'static
    where
        K: Send + 'static,
    {
        self.keys_matching_opt(None)
    }

    /// Keys matching a Redis glob `pattern` (`*`, `?`, `[a-z]`, `\` escapes),
    /// applied to the key inside this namespace only.
    pub fn keys_matching(&self, pattern: &str) -> impl Stream<Item = Result<K>> + Send + 'static
    where
        K: Send + 'static,
    {
        self.keys_matching_opt(Some(pattern))
    }

    fn keys_matching_opt(
        &self,
        pattern: Option<&str>,
    ) -> impl Stream<Item = Result<K>> + Send + 'static
    where
        K: Send + 'static,
    {
        let namespace = self.space.namespace().name().to_owned();
        self.space
            .entries(pattern, false)
            .map(move |entry| entry.and_then(|(key, _)| parse_key(&namespace, key)))
    }

    /// All values, read in MGET batches.
    pub fn values(&self) -> impl Stream<Item = Result<V>> + Send + 'static
    where
        K: Send + 'static,
        V: Send + 'static,
    {
        self.items().map_ok(|(_, v)| v)
    }

    /// Values of the keys matching `pattern` (see [`Dict::keys_matching`]).
    pub fn values_matching(&self, pattern: &str) -> impl Stream<Item = Result<V>> + Send + 'static
    where
        K: Send + 'static,
        V: Send + 'static,
    {
        self.items_matching(pattern).map_ok(|(_, v)| v)
    }

    /// All entries, paging through the index and reading values in MGET
    /// batches; entries deleted or expired between listing and reading are
    /// skipped. A value that does not decode is an `Err` item and the stream
    /// goes on; a Redis error ends it after the `Err` item.
    pub fn items(&self) -> impl Stream<Item = Result<(K, V)>> + Send + 'static
    where
        K: Send + 'static,
        V: Send + 'static,
    {
        self.items_matching_opt(None)
    }

    /// Entries whose key matches `pattern` (see [`Dict::keys_matching`]).
    pub fn items_matching(
        &self,
        pattern: &str,
    ) -> impl Stream<Item = Result<(K, V)>> + Send + 'static
    where
        K: Send + 'static,
        V: Send + 'static,
    {
        self.items_matching_opt(Some(pattern))
    }

    fn items_matching_opt(
        &self,
        pattern: Option<&str>,
    ) -> impl Stream<Item = Result<(K, V)>> + Send + 'static
    where
        K: Send + 'static,
        V: Send + 'static,
    {
        let this = self.clone();
        self.space.entries(pattern, true).map(move |entry| {
            let (key, bytes) = entry?;
            let value = this.decode(&key, bytes.as_deref().unwrap_or_default())?;
            Ok((this.parse_key(key)?, value))
        })
    }

    /// Subscribes to changes of the keys matching `pattern` (a Redis glob on
    /// the key, inside this namespace; `"*"` for all) and to namespace-wide
    /// events (`Cleared`). Events published after this returns are all seen,
    /// in order, until the connection drops; then the subscription reconnects,
    /// yields `Change::Gap` and goes on. Expiries arrive as `Change::Expired`
    /// only where the server reports expired keys (see
    /// [`crate::StoreBuilder::enable_expiry_events`]).
    ///
    /// On one server this is a PSUBSCRIBE. On a cluster of Redis 7.0 or
    /// later, writers publish every event of the namespace on its one
    /// sharded channel (see [`crate::StoreBuilder::sharded_events`]), which
    /// has no patterns: the subscription receives them all from the master of
    /// the namespace's slot and keeps the keys that `pattern` matches, by the
    /// server's own glob rules; a batch message (see
    /// [`crate::StoreBuilder::batched_events`]) yields its events one by
    /// one, each kept or not by its key. A slot migration or failover yields
    /// `Change::Gap`, and the subscription follows the slot to its new master.
    ///
    /// ```no_run
    /// # async fn demo(d: redis_pydict::Dict<String, u32>) -> redis_pydict::Result<()> {
    /// use futures::StreamExt;
    /// use redis_pydict::Change;
    /// let mut changes = d.subscribe("job:*").await?;
    /// while let Some(event) = changes.next().await {
    ///     let event = event?;
    ///     match event.change {
    ///         Change::Set(value) => println!("{:?} = {value} (by {:?})", event.key, event.origin),
    ///         Change::Gap => println!("reconnected: re-read what matters"),
    ///         other => println!("{:?}: {other:?}", event.key),
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn subscribe(&self, pattern: &str) -> Result<Subscription<Event<K, V>>>
    where
        K: Send + 'static,
        V: Send + 'static,
    {
        crate::observe::op("subscribe", self.namespace(), 0, async {
            let store = self.space.store();
            let expiry = subscription::expiry_db(store).await?;
            let target = Target::pattern(self.namespace(), pattern, expiry);
            subscription::start(store, self.namespace(), target, self.decoder()).await
        })
        .await
    }

    /// Subscribes to the changes of one key (and to namespace-wide events).
    pub async fn subscribe_key<Q>(&self, key: &Q) -> Result<Subscription<Event<K, V>>>
    where
        K: Borrow<Q> + Send + 'static,
        V: Send + 'static,
        Q: KeyText + ?Sized,
    {
        crate::observe::op("subscribe", self.namespace(), 1, async {
            let store = self.space.store();
            let expiry = subscription::expiry_db(store).await?;
            let target = Target::key(self.namespace(), &key.key_text(), expiry);
            subscription::start(store, self.namespace(), target, self.decoder()).await
        })
        .await
    }

    /// Replays the durable log (see [`Dict::with_durable_log`]) from `from`,
    /// then follows it live: every change exactly once, in order, with its log
    /// id, across disconnects and server restarts (with persistence). Store
    /// the id of the last change handled and resume with
    /// `StartFrom::After(id)`. If changes after the last one handled may be
    /// gone (trimmed past it, or the log deleted, flushed, or lost in a
    /// restart without persistence), the stream yields `Change::Gap` (with
    /// `LogId::ZERO`) and replays the log as it now is. An error that
    /// retrying cannot cure (WRONGTYPE, NOPERM) is an `Err` item naming the
    /// namespace, after which the stream ends.
    pub async fn subscribe_durable(
        &self,
        from: StartFrom,
    ) -> Result<Subscription<(LogId, Event<K, V>)>>
    where
        K: Send + 'static,
        V: Send + 'static,
    {
        crate::observe::op("subscribe_durable", self.namespace(), 0, async {
            durable::start(self.space.store(), self.namespace(), from, self.decoder()).await
        })
        .await
    }

    /// Joins consumer group `group` of the durable log (see
    /// [`Dict::with_durable_log`]) as `consumer`, with the default
    /// [`GroupOptions`]: each change is delivered to one consumer of the
    /// group, which acknowledges it once handled (`delivery.ack().await`, or
    /// dropping the [`Delivery`](crate::Delivery)); the changes of a consumer that died before
    /// acknowledging them are claimed by the others. See
    /// [`Dict::subscribe_group_with`].
    ///
    /// ```
    /// use futures::StreamExt;
    /// use redis_pydict::Change;
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = redis_pydict_test::RedisServer::start();
    /// let store = redis_pydict::Store::connect(&server.url()).await?;
    /// let orders = store.dict::<String, u32>("orders")?.with_durable_log(100_000);
    /// let mut work = orders.subscribe_group("billing", "worker-1").await?;
    /// orders.set("a", &1).await?;
    /// let delivery = work.next().await.expect("a subscription never ends")?;
    /// assert_eq!(delivery.change, Change::Set(1)); // the Event, through Deref
    /// assert_eq!(delivery.deliveries(), 1);
    /// delivery.ack().await?; // no consumer of "billing" gets it again
    /// # Ok(()) }
    /// ```
    pub async fn subscribe_group(
        &self,
        group: &str,
        consumer: &str,
    ) -> Result<GroupSubscription<Event<K, V>>>
    where
        K: Send + 'static,
        V: Send + 'static,
    {
        self.subscribe_group_with(group, consumer, &GroupOptions::default())
            .await
    }

    /// Joins consumer group `group` of the durable log as `consumer`. The
    /// group is created if it does not exist (`XGROUP CREATE ... MKSTREAM`,
    /// at [`GroupOptions::start`]); any number of consumers, in any number of
    /// processes, may join it, each under a name of its own. Items are
    /// [`Delivery`](crate::Delivery)s of typed events, as in [`Dict::subscribe_durable`];
    /// delivery is at least once (a change is handled again if its consumer
    /// dies, or takes longer than [`GroupOptions::claim_idle`], before
    /// acknowledging it). Changes that do not decode, or that were delivered
    /// [`GroupOptions::max_deliveries`] times, are parked in `{ns}#dead` and
    /// reported as [`crate::Error::Parked`] items. Errors as in
    /// [`GroupSubscription`]. Consumer names must be unique among the live
    /// consumers of a group.
    pub async fn subscribe_group_with(
        &self,
        group: &str,
        consumer: &str,
        options: &GroupOptions,
    ) -> Result<GroupSubscription<Event<K, V>>>
    where
        K: Send + 'static,
        V: Send + 'static,
    {
        let member = group::Member { group, consumer };
        group::start(
            self.space.store(),
            self.namespace(),
            member,
            options,
            self.decoder(),
        )
        .await
    }

    /// Removes consumer `consumer` from consumer group `group` of the
    /// durable log (`XGROUP DELCONSUMER`), for a worker retired for good
    /// (otherwise its name stays in `XINFO CONSUMERS`). Refuses, changing
    /// nothing, while it holds changes delivered and not acknowledged:
    /// [`crate::Error::ConsumerHasPending`] (removing it would lose them).
    /// Either let the group's other consumers claim them (after their
    /// [`GroupOptions::claim_idle`]) and call again, or hand them to a live
    /// consumer at once with
    /// [`GroupSubscription::retire_consumer`](crate::GroupSubscription::retire_consumer).
    /// Check and removal are one atomic script. `Ok(false)`: there was no
    /// such consumer. Needs `+xinfo|consumers +xgroup|delconsumer` (ACL).
    ///
    /// ```
    /// use futures::StreamExt;
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = redis_pydict_test::RedisServer::start();
    /// let store = redis_pydict::Store::connect(&server.url()).await?;
    /// let orders = store.dict::<String, u32>("orders")?.with_durable_log(100_000);
    /// let mut work = orders.subscribe_group("billing", "worker-1").await?;
    /// orders.set("a", &1).await?;
    /// work.next().await.expect("a subscription never ends")?.ack().await?;
    /// drop(work); // worker-1 is retired for good
    /// assert!(orders.remove_group_consumer("billing", "worker-1").await?);
    /// assert!(!orders.remove_group_consumer("billing", "worker-1").await?); // gone
    /// # Ok(()) }
    /// ```
    pub async fn remove_group_consumer(&self, group: &str, consumer: &str) -> Result<bool> {
        let member = group::Member { group, consumer };
        group::remove_idle_consumer(self.space.store(), self.namespace(), member).await
    }

    /// Deletes consumer group `group` of the durable log (`XGROUP
    /// DESTROY`): its position and its consumers, and with them every
    /// change delivered to them and not acknowledged (the changes stay in
    /// the log; changes it parked stay in `{ns}#dead`). For a group retired
    /// for good: stop its consumers first, since a running consumer finds
    /// its group gone, creates it again at the start of the log as it now
    /// is and reports a `Gap` (as after any loss of the group).
    /// `Ok(false)`: there was no such group. Needs `+xgroup|destroy` (ACL).
    ///
    /// ```
    /// use futures::StreamExt;
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = redis_pydict_test::RedisServer::start();
    /// let store = redis_pydict::Store::connect(&server.url()).await?;
    /// let orders = store.dict::<String, u32>("orders")?.with_durable_log(100_000);
    /// let mut work = orders.subscribe_group("billing", "worker-1").await?;
    /// orders.set("a", &1).await?;
    /// work.next().await.expect("a subscription never ends")?.ack().await?;
    /// drop(work);
    /// assert!(orders.destroy_group("billing").await?);
    /// assert!(!orders.destroy_group("billing").await?); // gone
    /// # Ok(()) }
    /// ```
    pub async fn destroy_group(&self, group: &str) -> Result<bool> {
        group::destroy(&self.space, group).await
    }

    /// Types raw events, dropping this dict's own when asked to.
    fn decoder(&self) -> impl FnMut(RawEvent) -> Option<Result<Event<K, V>>> + Send + 'static
    where
        K: Send + 'static,
        V: Send + 'static,
    {
        let namespace = self.namespace().name().to_owned();
        let skipped = self.space.skipped_origin();
        move |raw: RawEvent| {
            if skipped.is_some() && raw.origin == skipped {
                return None;
            }
            Some(subscription::typed(&namespace, raw))
        }
    }

    /// The whole namespace as a `HashMap` (Python's `to_dict`).
    pub async fn to_map(&self) -> Result<HashMap<K, V>>
    where
        K: Hash + Eq + Send + 'static,
        V: Send + 'static,
    {
        crate::observe::op("to_map", self.namespace(), 0, async {
            // Sized once (len is one O(log n) round trip): growing the map
            // would rehash every entry several times.
            let map = HashMap::with_capacity(self.len().await? as usize);
            self.items()
                .try_fold(map, |mut map, (k, v)| async move {
                    map.insert(k, v);
                    Ok(map)
                })
                .await
        })
        .await
    }

    /// The whole namespace as a `BTreeMap`, ordered by key.
    pub async fn to_btree_map(&self) -> Result<BTreeMap<K, V>>
    where
        K: Ord + Send + 'static,
        V: Send + 'static,
    {
        crate::observe::op("to_map", self.namespace(), 0, async {
            self.items().try_collect().await
        })
        .await
    }
}
