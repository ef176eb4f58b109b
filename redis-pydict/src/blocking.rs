//! The blocking API: [`Store`] and [`Dict`] with plain methods and iterators,
//! mirroring the async ones. Each call runs the async core on a private tokio
//! runtime, so behaviour is identical; do not call it from inside an async
//! runtime (use the async API there).
//!
//! ```no_run
//! # fn demo() -> redis_pydict::Result<()> {
//! use redis_pydict::blocking::Store;
//! let store = Store::connect("redis://127.0.0.1/")?;
//! let d = store.dict::<String, i64>("counters")?;
//! d.set("a", &1)?;
//! for item in d.items() {
//!     let (key, value) = item?;
//!     println!("{key} = {value}");
//! }
//! # Ok(()) }
//! ```

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{BoxStream, StreamExt};
use serde::{de::DeserializeOwned, Serialize};
use tokio::runtime::Runtime;

use crate::durable::{LogId, StartFrom};
use crate::error::{Error, Result};
use crate::key::{DictKey, KeyText};
use crate::namespace::Namespace;
use crate::space::{RepairReport, Ttl};
use crate::store::StoreBuilder;
use crate::subscription::Event;

/// A blocking view of a `#[derive(RedisDict)]` struct (see [`crate::View`]),
/// made by `T::blocking_view(&store, instance)`.
pub type View<T> = crate::View<T, crate::Blocking>;

/// A blocking handle on one field of a derived struct (see [`crate::Field`]).
pub type Field<T> = crate::Field<T, crate::Blocking>;

/// A blocking [`crate::Store`]: the same connection, reconnecting by itself.
#[derive(Clone, Debug)]
pub struct Store {
    inner: crate::Store,
    runtime: Arc<Runtime>,
}

fn new_runtime() -> Result<Arc<Runtime>> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("redis-pydict")
        .enable_all()
        .build()
        .map(Arc::new)
        .map_err(Error::Runtime)
}

impl Store {
    /// Connects to `url` with default settings (see [`crate::Store::connect`]).
    pub fn connect(url: &str) -> Result<Store> {
        Store::connect_with(crate::Store::builder(url))
    }

    /// Connects to a Redis Cluster (see [`crate::Store::connect_cluster`]).
    pub fn connect_cluster(nodes: &[&str]) -> Result<Store> {
        Store::connect_with(crate::Store::cluster_builder(nodes))
    }

    /// Connects with a configured [`StoreBuilder`] (single server or cluster).
    pub fn connect_with(builder: StoreBuilder) -> Result<Store> {
        let runtime = new_runtime()?;
        let inner = runtime.block_on(builder.connect())?;
        Ok(Store { inner, runtime })
    }

    /// A typed dict over `namespace` (validated here, before any I/O).
    pub fn dict<K: DictKey, V>(&self, namespace: &str) -> Result<Dict<K, V>> {
        Ok(Dict {
            inner: self.inner.dict(namespace)?,
            runtime: self.runtime.clone(),
        })
    }

    /// The async store underneath.
    pub fn as_async(&self) -> &crate::Store {
        &self.inner
    }

    /// Runs a future of the async API to completion on this store's runtime.
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// Round-trips a PING.
    pub fn ping(&self) -> Result<()> {
        self.runtime.block_on(self.inner.ping())
    }

    /// Wraps an async subscription started on this store's runtime.
    pub(crate) fn subscription<T>(&self, inner: crate::Subscription<T>) -> Subscription<T> {
        Subscription {
            inner,
            runtime: self.runtime.clone(),
        }
    }
}

/// A blocking [`crate::Dict`]. Every method is the async one, awaited.
pub struct Dict<K, V> {
    inner: crate::Dict<K, V>,
    runtime: Arc<Runtime>,
}

impl<K, V> Clone for Dict<K, V> {
    fn clone(&self) -> Self {
        Dict {
            inner: self.inner.clone(),
            runtime: self.runtime.clone(),
        }
    }
}

impl<K, V> std::fmt::Debug for Dict<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

/// A blocking iterator over a stream of the async API.
pub struct Iter<T> {
    stream: BoxStream<'static, Result<T>>,
    runtime: Arc<Runtime>,
}

impl<T> Iterator for Iter<T> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Self::Item> {
        self.runtime.block_on(self.stream.next())
    }
}

/// A blocking [`crate::Subscription`]: receive with a deadline, poll, or iterate.
/// Dropping it unsubscribes.
pub struct Subscription<T> {
    inner: crate::Subscription<T>,
    runtime: Arc<Runtime>,
}

impl<T> std::fmt::Debug for Subscription<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

impl<T> Subscription<T> {
    /// The next item, waiting as long as it takes.
    pub fn recv(&mut self) -> Option<Result<T>> {
        self.inner.blocking_recv()
    }

    /// The next item, or `None` if none arrives within `timeout`.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Option<Result<T>> {
        let inner = &mut self.inner;
        self.runtime.block_on(async {
            tokio::time::timeout(timeout, inner.recv())
                .await
                .ok()
                .flatten()
        })
    }

    /// The next item if one is already waiting.
    pub fn try_recv(&mut self) -> Option<Result<T>> {
        self.inner.try_recv()
    }
}

impl<T> Iterator for Subscription<T> {
    type Item = Result<T>;

    /// Waits for the next item; never `None` while the subscription lives.
    fn next(&mut self) -> Option<Self::Item> {
        self.recv()
    }
}

impl<K, V> Dict<K, V> {
    /// The async dict underneath.
    pub fn as_async(&self) -> &crate::Dict<K, V> {
        &self.inner
    }

    /// The namespace, with the Redis names derived from it.
    pub fn namespace(&self) -> &Namespace {
        self.inner.namespace()
    }

    /// See [`crate::Dict::with_notifications`].
    pub fn with_notifications(self, on: bool) -> Self {
        Dict {
            inner: self.inner.with_notifications(on),
            runtime: self.runtime,
        }
    }

    /// See [`crate::Dict::with_origin`].
    pub fn with_origin(self, origin: impl Into<String>) -> Self {
        Dict {
            inner: self.inner.with_origin(origin),
            runtime: self.runtime,
        }
    }

    /// See [`crate::Dict::with_skip_own_events`].
    pub fn with_skip_own_events(self, skip: bool) -> Self {
        Dict {
            inner: self.inner.with_skip_own_events(skip),
            runtime: self.runtime,
        }
    }

    /// See [`crate::Dict::with_durable_log`].
    pub fn with_durable_log(self, max_len: u64) -> Self {
        Dict {
            inner: self.inner.with_durable_log(max_len),
            runtime: self.runtime,
        }
    }

    /// See [`crate::Dict::len`].
    pub fn len(&self) -> Result<u64> {
        self.runtime.block_on(self.inner.len())
    }

    /// See [`crate::Dict::is_empty`].
    pub fn is_empty(&self) -> Result<bool> {
        self.runtime.block_on(self.inner.is_empty())
    }

    /// See [`crate::Dict::contains`].
    pub fn contains<Q>(&self, key: &Q) -> Result<bool>
    where
        K: Borrow<Q>,
        Q: KeyText + ?Sized,
    {
        self.runtime.block_on(self.inner.contains(key))
    }

    /// See [`crate::Dict::delete`].
    pub fn delete<Q>(&self, key: &Q) -> Result<bool>
    where
        K: Borrow<Q>,
        Q: KeyText + ?Sized,
    {
        self.runtime.block_on(self.inner.delete(key))
    }

    /// See [`crate::Dict::expire`].
    pub fn expire<Q>(&self, key: &Q, ttl: Duration) -> Result<bool>
    where
        K: Borrow<Q>,
        Q: KeyText + ?Sized,
    {
        self.runtime.block_on(self.inner.expire(key, ttl))
    }

    /// See [`crate::Dict::persist`].
    pub fn persist<Q>(&self, key: &Q) -> Result<bool>
    where
        K: Borrow<Q>,
        Q: KeyText + ?Sized,
    {
        self.runtime.block_on(self.inner.persist(key))
    }

    /// See [`crate::Dict::ttl`].
    pub fn ttl<Q>(&self, key: &Q) -> Result<Ttl>
    where
        K: Borrow<Q>,
        Q: KeyText + ?Sized,
    {
        self.runtime.block_on(self.inner.ttl(key))
    }

    /// See [`crate::Dict::clear`].
    pub fn clear(&self) -> Result<u64> {
        self.runtime.block_on(self.inner.clear())
    }

    /// See [`crate::Dict::repair`].
    pub fn repair(&self) -> Result<RepairReport> {
        self.runtime.block_on(self.inner.repair())
    }
}

impl<K, V> Dict<K, V>
where
    K: DictKey + Send + 'static,
    V: Serialize + DeserializeOwned + Send + 'static,
{
    fn iter<T>(&self, stream: impl futures::Stream<Item = Result<T>> + Send + 'static) -> Iter<T> {
        Iter {
            stream: stream.boxed(),
            runtime: self.runtime.clone(),
        }
    }

    /// See [`crate::Dict::get`].
    pub fn get<Q>(&self, key: &Q) -> Result<Option<V>>
    where
        K: Borrow<Q>,
        Q: KeyText + ?Sized,
    {
        self.runtime.block_on(self.inner.get(key))
    }

    /// See [`crate::Dict::get_many`].
    pub fn get_many<'q, Q, I>(&self, keys: I) -> Result<Vec<Option<V>>>
    where
        I: IntoIterator<Item = &'q Q>,
        K: Borrow<Q>,
        Q: KeyText + ?Sized + 'q,
    {
        self.runtime.block_on(self.inner.get_many(keys))
    }

    /// See [`crate::Dict::set`].
    pub fn set<Q>(&self, key: &Q, value: &V) -> Result<()>
    where
        K: Borrow<Q>,
        Q: KeyText + ?Sized,
    {
        self.runtime.block_on(self.inner.set(key, value))
    }

    /// See [`crate::Dict::set_with_ttl`].
    pub fn set_with_ttl<Q>(&self, key: &Q, value: &V, ttl: Duration) -> Result<()>
    where
        K: Borrow<Q>,
        Q: KeyText + ?Sized,
    {
        self.runtime
            .block_on(self.inner.set_with_ttl(key, value, ttl))
    }

    /// See [`crate::Dict::set_if_absent`].
    pub fn set_if_absent<Q>(&self, key: &Q, value: &V) -> Result<bool>
    where
        K: Borrow<Q>,
        Q: KeyText + ?Sized,
    {
        self.runtime.block_on(self.inner.set_if_absent(key, value))
    }

    /// See [`crate::Dict::remove`].
    pub fn remove<Q>(&self, key: &Q) -> Result<Option<V>>
    where
        K: Borrow<Q>,
        Q: KeyText + ?Sized,
    {
        self.runtime.block_on(self.inner.remove(key))
    }

    /// See [`crate::Dict::set_many`].
    pub fn set_many<I, Q, B>(&self, pairs: I) -> Result<()>
    where
        I: IntoIterator<Item = (Q, B)>,
        Q: KeyText,
        B: Borrow<V>,
    {
        self.runtime.block_on(self.inner.set_many(pairs))
    }

    /// See [`crate::Dict::update_with`].
    pub fn update_with<Q, F>(&self, key: &Q, f: F) -> Result<V>
    where
        K: Borrow<Q>,
        Q: KeyText + ?Sized,
        F: FnMut(Option<V>) -> V,
    {
        self.runtime.block_on(self.inner.update_with(key, f))
    }

    /// See [`crate::Dict::keys`].
    pub fn keys(&self) -> Iter<K> {
        self.iter(self.inner.keys())
    }

    /// See [`crate::Dict::keys_matching`].
    pub fn keys_matching(&self, pattern: &str) -> Iter<K> {
        self.iter(self.inner.keys_matching(pattern))
    }

    /// See [`crate::Dict::values`].
    pub fn values(&self) -> Iter<V> {
        self.iter(self.inner.values())
    }

    /// See [`crate::Dict::values_matching`].
    pub fn values_matching(&self, pattern: &str) -> Iter<V> {
        self.iter(self.inner.values_matching(pattern))
    }

    /// See [`crate::Dict::items`].
    pub fn items(&self) -> Iter<(K, V)> {
        self.iter(self.inner.items())
    }

    /// See [`crate::Dict::items_matching`].
    pub fn items_matching(&self, pattern: &str) -> Iter<(K, V)> {
        self.iter(self.inner.items_matching(pattern))
    }

    fn subscription<T>(&self, inner: crate::Subscription<T>) -> Subscription<T> {
        Subscription {
            inner,
            runtime: self.runtime.clone(),
        }
    }

    /// See [`crate::Dict::subscribe`].
    pub fn subscribe(&self, pattern: &str) -> Result<Subscription<Event<K, V>>> {
        let inner = self.runtime.block_on(self.inner.subscribe(pattern))?;
        Ok(self.subscription(inner))
    }

    /// See [`crate::Dict::subscribe_key`].
    pub fn subscribe_key<Q>(&self, key: &Q) -> Result<Subscription<Event<K, V>>>
    where
        K: Borrow<Q>,
        Q: KeyText + ?Sized,
    {
        let inner = self.runtime.block_on(self.inner.subscribe_key(key))?;
        Ok(self.subscription(inner))
    }

    /// See [`crate::Dict::subscribe_durable`].
    pub fn subscribe_durable(&self, from: StartFrom) -> Result<Subscription<(LogId, Event<K, V>)>> {
        let inner = self.runtime.block_on(self.inner.subscribe_durable(from))?;
        Ok(self.subscription(inner))
    }

    /// See [`crate::Dict::to_map`].
    pub fn to_map(&self) -> Result<HashMap<K, V>>
    where
        K: Hash + Eq,
    {
        self.runtime.block_on(self.inner.to_map())
    }

    /// See [`crate::Dict::to_btree_map`].
    pub fn to_btree_map(&self) -> Result<BTreeMap<K, V>>
    where
        K: Ord,
    {
        self.runtime.block_on(self.inner.to_btree_map())
    }
}
