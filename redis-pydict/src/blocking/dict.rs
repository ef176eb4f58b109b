//! [`Dict`]: the blocking twin of [`crate::Dict`], which it wraps.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::time::Duration;

use futures::stream::StreamExt;
use serde::{de::DeserializeOwned, Serialize};

use super::cache::CachedDict;
use super::group::GroupSubscription;
use super::iter::Iter;
use super::runtime::Runtime;
use super::subscription::Subscription;
use crate::durable::{LogId, StartFrom};
use crate::error::Result;
use crate::group::GroupOptions;
use crate::key::{DictKey, KeyText};
use crate::namespace::Namespace;
use crate::space::{RepairReport, Ttl};
use crate::subscription::Event;

/// A blocking [`crate::Dict`]. Every method is the async one, awaited.
pub struct Dict<K, V> {
    inner: crate::Dict<K, V>,
    runtime: Runtime,
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

impl<K, V> Dict<K, V> {
    pub(crate) fn new(inner: crate::Dict<K, V>, runtime: Runtime) -> Self {
        Dict { inner, runtime }
    }

    /// The async dict underneath.
    pub fn as_async(&self) -> &crate::Dict<K, V> {
        &self.inner
    }

    /// The namespace, with the Redis names derived from it.
    pub fn namespace(&self) -> &Namespace {
        self.inner.namespace()
    }

    /// See [`crate::Dict::notifications`].
    pub fn notifications(&self) -> bool {
        self.inner.notifications()
    }

    /// See [`crate::Dict::origin`].
    pub fn origin(&self) -> Option<&str> {
        self.inner.origin()
    }

    /// See [`crate::Dict::durable_log`].
    pub fn durable_log(&self) -> Option<u64> {
        self.inner.durable_log()
    }

    /// See [`crate::Dict::with_notifications`].
    #[must_use = "the setting applies to the returned dict only"]
    pub fn with_notifications(self, on: bool) -> Self {
        Dict {
            inner: self.inner.with_notifications(on),
            runtime: self.runtime,
        }
    }

    /// See [`crate::Dict::with_origin`].
    #[must_use = "the setting applies to the returned dict only"]
    pub fn with_origin(self, origin: impl Into<String>) -> Self {
        Dict {
            inner: self.inner.with_origin(origin),
            runtime: self.runtime,
        }
    }

    /// See [`crate::Dict::with_skip_own_events`].
    #[must_use = "the setting applies to the returned dict only"]
    pub fn with_skip_own_events(self, skip: bool) -> Self {
        Dict {
            inner: self.inner.with_skip_own_events(skip),
            runtime: self.runtime,
        }
    }

    /// See [`crate::Dict::with_previous_values`].
    #[must_use = "the setting applies to the returned dict only"]
    pub fn with_previous_values(self, on: bool) -> Self {
        Dict {
            inner: self.inner.with_previous_values(on),
            runtime: self.runtime,
        }
    }

    /// See [`crate::Dict::previous_values`].
    pub fn previous_values(&self) -> bool {
        self.inner.previous_values()
    }

    /// See [`crate::Dict::with_durable_log`].
    #[must_use = "the setting applies to the returned dict only"]
    pub fn with_durable_log(self, max_len: u64) -> Self {
        Dict {
            inner: self.inner.with_durable_log(max_len),
            runtime: self.runtime,
        }
    }

    /// See [`crate::Dict::durable_log_declared`].
    pub fn durable_log_declared(&self) -> Result<Option<u64>> {
        self.runtime.run(
            "Dict::durable_log_declared",
            self.inner.durable_log_declared(),
        )
    }

    /// See [`crate::Dict::len`].
    pub fn len(&self) -> Result<u64> {
        self.runtime.run("Dict::len", self.inner.len())
    }

    /// See [`crate::Dict::is_empty`].
    pub fn is_empty(&self) -> Result<bool> {
        self.runtime.run("Dict::is_empty", self.inner.is_empty())
    }

    /// See [`crate::Dict::contains`].
    pub fn contains<Q>(&self, key: &Q) -> Result<bool>
    where
        K: Borrow<Q>,
        Q: KeyText + ?Sized,
    {
        self.runtime.run("Dict::contains", self.inner.contains(key))
    }

    /// See [`crate::Dict::delete`].
    pub fn delete<Q>(&self, key: &Q) -> Result<bool>
    where
        K: Borrow<Q>,
        Q: KeyText + ?Sized,
    {
        self.runtime.run("Dict::delete", self.inner.delete(key))
    }

    /// See [`crate::Dict::expire`].
    pub fn expire<Q>(&self, key: &Q, ttl: Duration) -> Result<bool>
    where
        K: Borrow<Q>,
        Q: KeyText + ?Sized,
    {
        self.runtime
            .run("Dict::expire", self.inner.expire(key, ttl))
    }

    /// See [`crate::Dict::persist`].
    pub fn persist<Q>(&self, key: &Q) -> Result<bool>
    where
        K: Borrow<Q>,
        Q: KeyText + ?Sized,
    {
        self.runtime.run("Dict::persist", self.inner.persist(key))
    }

    /// See [`crate::Dict::ttl`].
    pub fn ttl<Q>(&self, key: &Q) -> Result<Ttl>
    where
        K: Borrow<Q>,
        Q: KeyText + ?Sized,
    {
        self.runtime.run("Dict::ttl", self.inner.ttl(key))
    }

    /// See [`crate::Dict::clear`].
    pub fn clear(&self) -> Result<u64> {
        self.runtime.run("Dict::clear", self.inner.clear())
    }

    /// See [`crate::Dict::repair`].
    pub fn repair(&self) -> Result<RepairReport> {
        self.runtime.run("Dict::repair", self.inner.repair())
    }
}

impl<K, V> Dict<K, V>
where
    K: DictKey + Send + 'static,
    V: Serialize + DeserializeOwned + Send + 'static,
{
    fn iter<T>(&self, stream: impl futures::Stream<Item = Result<T>> + Send + 'static) -> Iter<T> {
        Iter::new(stream.boxed(), self.runtime.clone())
    }

    /// See [`crate::Dict::get`].
    pub fn get<Q>(&self, key: &Q) -> Result<Option<V>>
    where
        K: Borrow<Q>,
        Q: KeyText + ?Sized,
    {
        self.runtime.run("Dict::get", self.inner.get(key))
    }

    /// See [`crate::Dict::cached`]: a blocking near-cached handle.
    pub fn cached(&self, capacity: usize) -> Result<CachedDict<K, V>>
    where
        V: Clone + Send + 'static,
    {
        let inner = self
            .runtime
            .run("Dict::cached", self.inner.cached(capacity))?;
        Ok(CachedDict::new(inner, self.runtime.clone()))
    }

    /// See [`crate::Dict::get_many`].
    pub fn get_many<'q, Q, I>(&self, keys: I) -> Result<Vec<Option<V>>>
    where
        I: IntoIterator<Item = &'q Q>,
        K: Borrow<Q>,
        Q: KeyText + ?Sized + 'q,
    {
        self.runtime
            .run("Dict::get_many", self.inner.get_many(keys))
    }

    /// See [`crate::Dict::set`].
    pub fn set<Q>(&self, key: &Q, value: &V) -> Result<()>
    where
        K: Borrow<Q>,
        Q: KeyText + ?Sized,
    {
        self.runtime.run("Dict::set", self.inner.set(key, value))
    }

    /// See [`crate::Dict::set_with_ttl`].
    pub fn set_with_ttl<Q>(&self, key: &Q, value: &V, ttl: Duration) -> Result<()>
    where
        K: Borrow<Q>,
        Q: KeyText + ?Sized,
    {
        self.runtime.run(
            "Dict::set_with_ttl",
            self.inner.set_with_ttl(key, value, ttl),
        )
    }

    /// See [`crate::Dict::set_if_absent`].
    pub fn set_if_absent<Q>(&self, key: &Q, value: &V) -> Result<bool>
    where
        K: Borrow<Q>,
        Q: KeyText + ?Sized,
    {
        self.runtime
            .run("Dict::set_if_absent", self.inner.set_if_absent(key, value))
    }

    /// See [`crate::Dict::remove`].
    pub fn remove<Q>(&self, key: &Q) -> Result<Option<V>>
    where
        K: Borrow<Q>,
        Q: KeyText + ?Sized,
    {
        self.runtime.run("Dict::remove", self.inner.remove(key))
    }

    /// See [`crate::Dict::set_many`].
    pub fn set_many<I, Q, B>(&self, pairs: I) -> Result<()>
    where
        I: IntoIterator<Item = (Q, B)>,
        Q: KeyText,
        B: Borrow<V>,
    {
        self.runtime
            .run("Dict::set_many", self.inner.set_many(pairs))
    }

    /// See [`crate::Dict::update_with`].
    pub fn update_with<Q, F>(&self, key: &Q, f: F) -> Result<V>
    where
        K: Borrow<Q>,
        Q: KeyText + ?Sized,
        F: FnMut(Option<V>) -> V,
    {
        self.runtime
            .run("Dict::update_with", self.inner.update_with(key, f))
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
        Subscription::new(inner, self.runtime.clone())
    }

    /// See [`crate::Dict::subscribe`].
    pub fn subscribe(&self, pattern: &str) -> Result<Subscription<Event<K, V>>> {
        let inner = self
            .runtime
            .run("Dict::subscribe", self.inner.subscribe(pattern))?;
        Ok(self.subscription(inner))
    }

    /// See [`crate::Dict::subscribe_key`].
    pub fn subscribe_key<Q>(&self, key: &Q) -> Result<Subscription<Event<K, V>>>
    where
        K: Borrow<Q>,
        Q: KeyText + ?Sized,
    {
        let inner = self
            .runtime
            .run("Dict::subscribe_key", self.inner.subscribe_key(key))?;
        Ok(self.subscription(inner))
    }

    /// See [`crate::Dict::subscribe_durable`].
    pub fn subscribe_durable(&self, from: StartFrom) -> Result<Subscription<(LogId, Event<K, V>)>> {
        let inner = self.runtime.run(
            "Dict::subscribe_durable",
            self.inner.subscribe_durable(from),
        )?;
        Ok(self.subscription(inner))
    }

    /// See [`crate::Dict::subscribe_group`].
    pub fn subscribe_group(
        &self,
        group: &str,
        consumer: &str,
    ) -> Result<GroupSubscription<Event<K, V>>> {
        self.subscribe_group_with(group, consumer, &GroupOptions::default())
    }

    /// See [`crate::Dict::subscribe_group_with`].
    pub fn subscribe_group_with(
        &self,
        group: &str,
        consumer: &str,
        options: &GroupOptions,
    ) -> Result<GroupSubscription<Event<K, V>>> {
        let inner = self.runtime.run(
            "Dict::subscribe_group",
            self.inner.subscribe_group_with(group, consumer, options),
        )?;
        Ok(GroupSubscription::new(inner, self.runtime.clone()))
    }

    /// See [`crate::Dict::remove_group_consumer`].
    pub fn remove_group_consumer(&self, group: &str, consumer: &str) -> Result<bool> {
        self.runtime.run(
            "Dict::remove_group_consumer",
            self.inner.remove_group_consumer(group, consumer),
        )
    }

    /// See [`crate::Dict::destroy_group`].
    pub fn destroy_group(&self, group: &str) -> Result<bool> {
        self.runtime
            .run("Dict::destroy_group", self.inner.destroy_group(group))
    }

    /// See [`crate::Dict::to_map`].
    pub fn to_map(&self) -> Result<HashMap<K, V>>
    where
        K: Hash + Eq,
    {
        self.runtime.run("Dict::to_map", self.inner.to_map())
    }

    /// See [`crate::Dict::to_btree_map`].
    pub fn to_btree_map(&self) -> Result<BTreeMap<K, V>>
    where
        K: Ord,
    {
        self.runtime
            .run("Dict::to_btree_map", self.inner.to_btree_map())
    }
}
