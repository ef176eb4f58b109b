//! The blocking mirror of derived views: [`View<T, Blocking>`] and
//! [`Field<T, Blocking>`], from [`RedisDict::blocking_view`]. Each method is
//! the async one run to completion on the blocking store's runtime, so the
//! behaviour is identical; do not call them from inside an async runtime.
//!
//! ```no_run
//! use redis_pydict::{blocking, RedisDict};
//!
//! #[derive(RedisDict, Debug)]
//! struct Counter {
//!     hits: u64,
//!     #[redis_dict(default)]
//!     misses: u64,
//! }
//!
//! # fn demo() -> redis_pydict::Result<()> {
//! let store = blocking::Store::connect("redis://127.0.0.1/")?;
//! let counter = Counter::blocking_view(&store, "home")?;
//! counter.hits.set(&1)?;
//! counter.misses.update(|m| *m += 1)?;
//! let snapshot: Counter = counter.load()?;
//! counter.update(|c: &mut Counter| c.hits += 1)?;
//! # Ok(()) }
//! ```

use std::time::Duration;

use serde::{de::DeserializeOwned, Serialize};

use crate::blocking::Subscription;
use crate::durable::{LogId, StartFrom};
use crate::error::Result;
use crate::space::Ttl;
use crate::view::{Blocking, Field, RedisDict, View, ViewEvent};

impl<T: RedisDict> View<T, Blocking> {
    /// See [`View::load`].
    pub fn load(&self) -> Result<T> {
        self.handle().block_on(self.load_impl())
    }

    /// See [`View::try_load`].
    pub fn try_load(&self) -> Result<Option<T>> {
        self.handle().block_on(self.try_load_impl())
    }

    /// See [`View::save`].
    pub fn save(&self, value: &T) -> Result<()> {
        self.handle().block_on(self.save_impl(value))
    }

    /// See [`View::update`].
    pub fn update<R>(&self, f: impl FnMut(&mut T) -> R) -> Result<R> {
        self.handle().block_on(self.update_impl(f))
    }

    /// See [`View::clear`].
    pub fn clear(&self) -> Result<u64> {
        self.handle().block_on(self.clear_impl())
    }

    /// See [`View::dict`].
    pub fn dict<V>(&self) -> Result<crate::blocking::Dict<String, V>> {
        self.handle().dict(self.namespace().name())
    }

    /// See [`View::subscribe`]: the same typed changes, received with
    /// `recv`, `recv_timeout`, `try_recv` or as an iterator.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use redis_pydict::{blocking, Change, RedisDict};
    ///
    /// #[derive(RedisDict)]
    /// struct Counter {
    ///     hits: u64,
    /// }
    ///
    /// # fn demo() -> redis_pydict::Result<()> {
    /// let store = blocking::Store::connect("redis://127.0.0.1/")?;
    /// let counter = Counter::blocking_view(&store, "home")?;
    /// let mut changes = counter.subscribe()?;
    /// counter.hits.set(&1)?;
    /// if let Some(item) = changes.recv_timeout(Duration::from_secs(1)) {
    ///     if let CounterEvent::Hits(Change::Set(hits)) = item?.event {
    ///         println!("hits = {hits}");
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn subscribe(&self) -> Result<Subscription<ViewEvent<T::Event>>>
    where
        T: 'static,
        T::Event: Send + 'static,
    {
        let inner = self.handle().block_on(self.subscribe_impl())?;
        Ok(self.handle().subscription(inner))
    }

    /// See [`View::subscribe_durable`].
    pub fn subscribe_durable(
        &self,
        from: StartFrom,
    ) -> Result<Subscription<(LogId, ViewEvent<T::Event>)>>
    where
        T: 'static,
        T::Event: Send + 'static,
    {
        let inner = self.handle().block_on(self.subscribe_durable_impl(from))?;
        Ok(self.handle().subscription(inner))
    }
}

impl<T: Serialize + DeserializeOwned> Field<T, Blocking> {
    /// See [`Field::get`].
    pub fn get(&self) -> Result<Option<T>> {
        self.handle().block_on(self.get_impl())
    }

    /// See [`Field::set`].
    pub fn set(&self, value: &T) -> Result<()> {
        self.handle()
            .block_on(self.set_impl(value, self.spec().ttl()))
    }

    /// See [`Field::set_with_ttl`].
    pub fn set_with_ttl(&self, value: &T, ttl: Duration) -> Result<()> {
        self.handle().block_on(self.set_impl(value, Some(ttl)))
    }

    /// See [`Field::set_if_absent`].
    pub fn set_if_absent(&self, value: &T) -> Result<bool> {
        self.handle().block_on(self.set_if_absent_impl(value))
    }

    /// See [`Field::delete`].
    pub fn delete(&self) -> Result<bool> {
        self.handle().block_on(self.delete_impl())
    }

    /// See [`Field::take`].
    pub fn take(&self) -> Result<Option<T>> {
        self.handle().block_on(self.take_impl())
    }

    /// See [`Field::exists`].
    pub fn exists(&self) -> Result<bool> {
        self.handle().block_on(self.exists_impl())
    }

    /// See [`Field::ttl`].
    pub fn ttl(&self) -> Result<Ttl> {
        self.handle().block_on(self.ttl_impl())
    }

    /// See [`Field::expire`].
    pub fn expire(&self, ttl: Duration) -> Result<bool> {
        self.handle().block_on(self.expire_impl(Some(ttl)))
    }

    /// See [`Field::persist`].
    pub fn persist(&self) -> Result<bool> {
        self.handle().block_on(self.expire_impl(None))
    }

    /// See [`Field::update`].
    pub fn update<R>(&self, f: impl FnMut(&mut T) -> R) -> Result<R> {
        self.handle().block_on(self.update_impl(f))
    }

    /// See [`Field::update_with`].
    pub fn update_with(&self, f: impl FnMut(Option<T>) -> T) -> Result<T> {
        self.handle().block_on(self.update_with_impl(f))
    }

    /// See [`Field::subscribe`].
    pub fn subscribe(&self) -> Result<crate::blocking::Subscription<crate::Event<String, T>>>
    where
        T: Send + 'static,
    {
        self.handle()
            .dict::<String, T>(self.namespace().name())?
            .subscribe_key(self.key())
    }
}
