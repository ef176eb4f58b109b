//! The blocking mirror of derived views: the [`Blocking`] mode, [`View`] and
//! [`Field`], each wrapping its async twin and forwarding every call to it,
//! so that settings, write path and events are the async ones by construction.

use std::fmt;
use std::time::Duration;

use serde::{de::DeserializeOwned, Serialize};

use super::dict::Dict;
use super::group::GroupSubscription;
use super::runtime::Runtime;
use super::subscription::Subscription;
use crate::durable::{LogId, StartFrom};
use crate::error::Result;
use crate::group::GroupOptions;
use crate::namespace::Namespace;
use crate::space::Ttl;
use crate::subscription::Event;
use crate::view::mode::sealed::Sealed;
use crate::view::{FieldSpec, Mode, RedisDict, Schema, ViewEvent};

/// The blocking mode of a generated view (`ConfigView<Blocking>`), opened on
/// a [`super::Store`]: its handles are [`Field`]s and its whole-struct
/// operations a [`View`], whose methods block the calling thread.
#[derive(Debug, Clone, Copy)]
pub enum Blocking {}

impl Sealed for Blocking {}

impl Mode for Blocking {
    type Field<T> = Field<T>;
    type View<T> = View<T>;
    type Context = Runtime;

    fn __field<T>(inner: crate::Field<T>, runtime: &Runtime) -> Field<T> {
        Field {
            inner,
            runtime: runtime.clone(),
        }
    }

    fn __view<T>(inner: crate::View<T>, runtime: Runtime) -> View<T> {
        View { inner, runtime }
    }
}

/// The blocking whole-struct operations of a derived view (see
/// [`crate::View`], which it wraps): the generated `<Struct>View<Blocking>`
/// dereferences to it.
pub struct View<T> {
    inner: crate::View<T>,
    runtime: Runtime,
}

impl<T> Clone for View<T> {
    fn clone(&self) -> Self {
        View {
            inner: self.inner.clone(),
            runtime: self.runtime.clone(),
        }
    }
}

impl<T> fmt::Debug for View<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl<T> View<T> {
    pub(crate) fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// The async view underneath.
    pub fn as_async(&self) -> &crate::View<T> {
        &self.inner
    }

    /// See [`crate::View::namespace`].
    pub fn namespace(&self) -> &Namespace {
        self.inner.namespace()
    }

    /// See [`crate::View::notifications`].
    pub fn notifications(&self) -> bool {
        self.inner.notifications()
    }

    /// See [`crate::View::origin`].
    pub fn origin(&self) -> Option<&str> {
        self.inner.origin()
    }

    /// See [`crate::View::previous_values`].
    pub fn previous_values(&self) -> bool {
        self.inner.previous_values()
    }

    /// See [`crate::View::durable_log`].
    pub fn durable_log(&self) -> Option<u64> {
        self.inner.durable_log()
    }

    /// See [`crate::View::dict`]: the namespace as a blocking dict, with
    /// this view's settings (origin, notifications, durable log, skipping
    /// of its own events).
    pub fn dict<V>(&self) -> Dict<String, V> {
        Dict::new(self.inner.dict(), self.runtime.clone())
    }
}

impl<T: RedisDict> View<T> {
    fn reopen(&self, view: crate::View<T>) -> T::View<Blocking> {
        view.open::<Blocking>(self.runtime.clone())
    }

    /// See [`crate::View::schema`].
    pub fn schema(&self) -> &'static Schema {
        T::SCHEMA
    }

    /// See [`crate::View::with_notifications`].
    #[must_use = "the setting applies to the returned view only"]
    pub fn with_notifications(&self, on: bool) -> T::View<Blocking> {
        self.reopen(self.inner.reconfigured(|space| space.set_notifications(on)))
    }

    /// See [`crate::View::with_origin`].
    #[must_use = "the setting applies to the returned view only"]
    pub fn with_origin(&self, origin: impl Into<String>) -> T::View<Blocking> {
        let origin = origin.into();
        self.reopen(
            self.inner
                .reconfigured(|space| space.set_origin(Some(origin))),
        )
    }

    /// See [`crate::View::with_previous_values`].
    #[must_use = "the setting applies to the returned view only"]
    pub fn with_previous_values(&self, on: bool) -> T::View<Blocking> {
        self.reopen(
            self.inner
                .reconfigured(|space| space.set_previous_values(on)),
        )
    }

    /// See [`crate::View::with_skip_own_events`].
    #[must_use = "the setting applies to the returned view only"]
    pub fn with_skip_own_events(&self, skip: bool) -> T::View<Blocking> {
        self.reopen(
            self.inner
                .reconfigured(|space| space.set_skip_own_events(skip)),
        )
    }

    /// See [`crate::View::with_durable_log`].
    #[must_use = "the setting applies to the returned view only"]
    pub fn with_durable_log(&self, max_len: u64) -> T::View<Blocking> {
        self.reopen(
            self.inner
                .reconfigured(|space| space.set_log_maxlen(Some(max_len.max(1)))),
        )
    }

    /// See [`crate::View::load`].
    pub fn load(&self) -> Result<T> {
        self.runtime.run("View::load", self.inner.load())
    }

    /// See [`crate::View::try_load`].
    pub fn try_load(&self) -> Result<Option<T>> {
        self.runtime.run("View::try_load", self.inner.try_load())
    }

    /// See [`crate::View::save`].
    pub fn save(&self, value: &T) -> Result<()> {
        self.runtime.run("View::save", self.inner.save(value))
    }

    /// See [`crate::View::update`].
    pub fn update<R>(&self, f: impl FnMut(&mut T) -> R) -> Result<R> {
        self.runtime.run("View::update", self.inner.update(f))
    }

    /// See [`crate::View::clear`].
    pub fn clear(&self) -> Result<u64> {
        self.runtime.run("View::clear", self.inner.clear())
    }

    /// See [`crate::View::subscribe`]: the same typed changes, received with
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
    /// let counter = Counter::view(&store, "home")?;
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
        let inner = self
            .runtime
            .run("View::subscribe", self.inner.subscribe())?;
        Ok(Subscription::new(inner, self.runtime.clone()))
    }

    /// See [`crate::View::subscribe_durable`].
    pub fn subscribe_durable(
        &self,
        from: StartFrom,
    ) -> Result<Subscription<(LogId, ViewEvent<T::Event>)>>
    where
        T: 'static,
        T::Event: Send + 'static,
    {
        let inner = self.runtime.run(
            "View::subscribe_durable",
            self.inner.subscribe_durable(from),
        )?;
        Ok(Subscription::new(inner, self.runtime.clone()))
    }

    /// See [`crate::View::subscribe_group`].
    pub fn subscribe_group(
        &self,
        group: &str,
        consumer: &str,
    ) -> Result<GroupSubscription<ViewEvent<T::Event>>>
    where
        T: 'static,
        T::Event: Send + 'static,
    {
        self.subscribe_group_with(group, consumer, &GroupOptions::default())
    }

    /// See [`crate::View::subscribe_group_with`].
    pub fn subscribe_group_with(
        &self,
        group: &str,
        consumer: &str,
        options: &GroupOptions,
    ) -> Result<GroupSubscription<ViewEvent<T::Event>>>
    where
        T: 'static,
        T::Event: Send + 'static,
    {
        let inner = self.runtime.run(
            "View::subscribe_group",
            self.inner.subscribe_group_with(group, consumer, options),
        )?;
        Ok(GroupSubscription::new(inner, self.runtime.clone()))
    }

    /// See [`crate::View::remove_group_consumer`].
    pub fn remove_group_consumer(&self, group: &str, consumer: &str) -> Result<bool> {
        self.runtime.run(
            "View::remove_group_consumer",
            self.inner.remove_group_consumer(group, consumer),
        )
    }

    /// See [`crate::View::destroy_group`].
    pub fn destroy_group(&self, group: &str) -> Result<bool> {
        self.runtime
            .run("View::destroy_group", self.inner.destroy_group(group))
    }
}

/// A blocking handle on one field of a derived view (see [`crate::Field`],
/// which it wraps).
pub struct Field<T> {
    inner: crate::Field<T>,
    runtime: Runtime,
}

impl<T> Clone for Field<T> {
    fn clone(&self) -> Self {
        Field {
            inner: self.inner.clone(),
            runtime: self.runtime.clone(),
        }
    }
}

impl<T> fmt::Debug for Field<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl<T> Field<T> {
    /// The async field handle underneath.
    pub fn as_async(&self) -> &crate::Field<T> {
        &self.inner
    }

    /// See [`crate::Field::name`].
    pub fn name(&self) -> &'static str {
        self.inner.name()
    }

    /// See [`crate::Field::key`].
    pub fn key(&self) -> &'static str {
        self.inner.key()
    }

    /// See [`crate::Field::spec`].
    pub fn spec(&self) -> &'static FieldSpec {
        self.inner.spec()
    }

    /// See [`crate::Field::namespace`].
    pub fn namespace(&self) -> &Namespace {
        self.inner.namespace()
    }
}

impl<T: Serialize + DeserializeOwned> Field<T> {
    /// See [`crate::Field::get`].
    pub fn get(&self) -> Result<Option<T>> {
        self.runtime.run("Field::get", self.inner.get())
    }

    /// See [`crate::Field::set`].
    pub fn set(&self, value: &T) -> Result<()> {
        self.runtime.run("Field::set", self.inner.set(value))
    }

    /// See [`crate::Field::set_with_ttl`].
    pub fn set_with_ttl(&self, value: &T, ttl: Duration) -> Result<()> {
        self.runtime
            .run("Field::set_with_ttl", self.inner.set_with_ttl(value, ttl))
    }

    /// See [`crate::Field::set_if_absent`].
    pub fn set_if_absent(&self, value: &T) -> Result<bool> {
        self.runtime
            .run("Field::set_if_absent", self.inner.set_if_absent(value))
    }

    /// See [`crate::Field::delete`].
    pub fn delete(&self) -> Result<bool> {
        self.runtime.run("Field::delete", self.inner.delete())
    }

    /// See [`crate::Field::take`].
    pub fn take(&self) -> Result<Option<T>> {
        self.runtime.run("Field::take", self.inner.take())
    }

    /// See [`crate::Field::exists`].
    pub fn exists(&self) -> Result<bool> {
        self.runtime.run("Field::exists", self.inner.exists())
    }

    /// See [`crate::Field::ttl`].
    pub fn ttl(&self) -> Result<Ttl> {
        self.runtime.run("Field::ttl", self.inner.ttl())
    }

    /// See [`crate::Field::expire`].
    pub fn expire(&self, ttl: Duration) -> Result<bool> {
        self.runtime.run("Field::expire", self.inner.expire(ttl))
    }

    /// See [`crate::Field::persist`].
    pub fn persist(&self) -> Result<bool> {
        self.runtime.run("Field::persist", self.inner.persist())
    }

    /// See [`crate::Field::update`].
    pub fn update<R>(&self, f: impl FnMut(&mut T) -> R) -> Result<R> {
        self.runtime.run("Field::update", self.inner.update(f))
    }

    /// See [`crate::Field::update_with`].
    pub fn update_with(&self, f: impl FnMut(Option<T>) -> T) -> Result<T> {
        self.runtime
            .run("Field::update_with", self.inner.update_with(f))
    }

    /// See [`crate::Field::subscribe`]: with the view's settings (a view made
    /// with `with_skip_own_events(true)` does not receive its own writes).
    pub fn subscribe(&self) -> Result<Subscription<Event<String, T>>>
    where
        T: Send + 'static,
    {
        let inner = self
            .runtime
            .run("Field::subscribe", self.inner.subscribe())?;
        Ok(Subscription::new(inner, self.runtime.clone()))
    }
}
