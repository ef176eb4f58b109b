//! [`CachedDict`]: the blocking twin of [`crate::CachedDict`], which it wraps.

use std::borrow::Borrow;
use std::time::Duration;

use serde::{de::DeserializeOwned, Serialize};

use super::runtime::Runtime;
use crate::cache::{CacheStatus, CachedDict as AsyncCachedDict};
use crate::error::Result;
use crate::key::{DictKey, KeyText};

/// A blocking [`crate::CachedDict`]: a hit is served from memory on the
/// calling thread, without the runtime; everything else is the async method,
/// awaited. Obtain one from [`super::Dict::cached`].
///
/// ```no_run
/// # fn demo(store: redis_pydict::blocking::Store) -> redis_pydict::Result<()> {
/// use std::time::Duration;
/// let flags = store.dict::<String, bool>("flags")?.cached(1000)?;
/// let on = flags.get("dark-mode")?.unwrap_or(false);
/// // After a reported loss, wait (at most a second) for the cache to be trusted again.
/// let trusted = flags.wait_trusted(Duration::from_secs(1))?;
/// # Ok(()) }
/// ```
pub struct CachedDict<K, V> {
    inner: AsyncCachedDict<K, V>,
    runtime: Runtime,
}

impl<K, V> Clone for CachedDict<K, V> {
    fn clone(&self) -> Self {
        CachedDict {
            inner: self.inner.clone(),
            runtime: self.runtime.clone(),
        }
    }
}

impl<K, V> std::fmt::Debug for CachedDict<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

impl<K, V> CachedDict<K, V> {
    pub(crate) fn new(inner: AsyncCachedDict<K, V>, runtime: Runtime) -> Self {
        CachedDict { inner, runtime }
    }

    /// The async cached dict underneath.
    pub fn as_async(&self) -> &AsyncCachedDict<K, V> {
        &self.inner
    }

    /// See [`crate::CachedDict::status`].
    pub fn status(&self) -> CacheStatus {
        self.inner.status()
    }

    /// See [`crate::CachedDict::flush`].
    pub fn flush(&self) {
        self.inner.flush()
    }

    /// See [`crate::CachedDict::len`].
    pub fn len(&self) -> Result<u64> {
        self.runtime.run("CachedDict::len", self.inner.len())
    }

    /// See [`crate::CachedDict::is_empty`].
    pub fn is_empty(&self) -> Result<bool> {
        self.runtime
            .run("CachedDict::is_empty", self.inner.is_empty())
    }

    /// Waits up to `timeout` for the cache to be trusted (see
    /// [`crate::CachedDict::wait_trusted`]); true if it is.
    pub fn wait_trusted(&self, timeout: Duration) -> Result<bool> {
        self.runtime.block_on("CachedDict::wait_trusted", async {
            tokio::time::timeout(timeout, self.inner.wait_trusted())
                .await
                .is_ok()
        })
    }

    /// Waits up to `timeout` for the cache to have flushed more than `seen`
    /// times in all (see [`crate::CachedDict::wait_for_flush`]): the new
    /// count, or `None` if no flush came in time.
    pub fn wait_for_flush(&self, seen: u64, timeout: Duration) -> Result<Option<u64>> {
        self.runtime.block_on("CachedDict::wait_for_flush", async {
            tokio::time::timeout(timeout, self.inner.wait_for_flush(seen))
                .await
                .ok()
        })
    }
}

impl<K, V> CachedDict<K, V>
where
    K: DictKey,
    V: Serialize + DeserializeOwned + Clone + Send + 'static,
{
    /// See [`crate::CachedDict::get`]; a hit does not touch the runtime.
    pub fn get<Q>(&self, key: &Q) -> Result<Option<V>>
    where
        K: Borrow<Q>,
        Q: KeyText + ?Sized,
    {
        if let Some(hit) = self.inner.hit(&key.key_text()) {
            return Ok(hit);
        }
        self.runtime.run("CachedDict::get", self.inner.get(key))
    }

    /// See [`crate::CachedDict::contains`].
    pub fn contains<Q>(&self, key: &Q) -> Result<bool>
    where
        K: Borrow<Q>,
        Q: KeyText + ?Sized,
    {
        self.runtime
            .run("CachedDict::contains", self.inner.contains(key))
    }

    /// See [`crate::CachedDict::set`].
    pub fn set<Q>(&self, key: &Q, value: &V) -> Result<()>
    where
        K: Borrow<Q>,
        Q: KeyText + ?Sized,
    {
        self.runtime
            .run("CachedDict::set", self.inner.set(key, value))
    }

    /// See [`crate::CachedDict::set_with_ttl`].
    pub fn set_with_ttl<Q>(&self, key: &Q, value: &V, ttl: Duration) -> Result<()>
    where
        K: Borrow<Q>,
        Q: KeyText + ?Sized,
    {
        self.runtime.run(
            "CachedDict::set_with_ttl",
            self.inner.set_with_ttl(key, value, ttl),
        )
    }

    /// See [`crate::CachedDict::delete`].
    pub fn delete<Q>(&self, key: &Q) -> Result<bool>
    where
        K: Borrow<Q>,
        Q: KeyText + ?Sized,
    {
        self.runtime
            .run("CachedDict::delete", self.inner.delete(key))
    }

    /// See [`crate::CachedDict::remove`].
    pub fn remove<Q>(&self, key: &Q) -> Result<Option<V>>
    where
        K: Borrow<Q>,
        Q: KeyText + ?Sized,
    {
        self.runtime
            .run("CachedDict::remove", self.inner.remove(key))
    }
}
