//! [`View`]: the whole-struct operations of a derived view (load, save,
//! update, clear, subscribe) and its settings.

use std::fmt;
use std::marker::PhantomData;

use crate::canonical;
use crate::dict::Dict;
use crate::durable::{self, LogId, StartFrom};
use crate::error::Result;
use crate::event::RawEvent;
use crate::group::{self, GroupOptions, GroupSubscription};
use crate::live::Live;
use crate::namespace::Namespace;
use crate::space::{Space, TtlGroup, Write};
use crate::subscription::{self, Subscription, Target};

use super::events::{view_event, ViewEvent};
use super::field::Field;
use super::internals::{Core, FieldReader, FieldWriter};
use super::mode::{Async, Mode};
use super::schema::{FieldSpec, Schema};
use super::RedisDict;

/// The whole-struct operations of a derived view: `load`, `try_load`, `save`,
/// `update`, `clear`, `subscribe`. The generated `<Struct>View` dereferences
/// to it.
pub struct View<T> {
    space: Space,
    _struct: PhantomData<fn() -> T>,
}

impl<T> Clone for View<T> {
    fn clone(&self) -> Self {
        View {
            space: self.space.clone(),
            _struct: PhantomData,
        }
    }
}

impl<T> fmt::Debug for View<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("View")
            .field("struct", &std::any::type_name::<T>())
            .field("namespace", &self.space.namespace().name())
            .finish()
    }
}

impl<T> View<T> {
    pub(crate) fn from_space(space: Space) -> Self {
        View {
            space,
            _struct: PhantomData,
        }
    }

    /// A copy of this view with changed settings.
    pub(crate) fn reconfigured(&self, change: impl FnOnce(&mut Space)) -> Self {
        let mut space = self.space.clone();
        change(&mut space);
        View::from_space(space)
    }

    pub(crate) fn space(&self) -> &Space {
        &self.space
    }

    /// The namespace of this instance, with the Redis names derived from it.
    pub fn namespace(&self) -> &Namespace {
        self.space.namespace()
    }

    /// Whether writes through this view publish change events (default: the store's).
    pub fn notifications(&self) -> bool {
        self.space.notifications()
    }

    /// The origin id written into change events, if any (see [`View::with_origin`]).
    pub fn origin(&self) -> Option<&str> {
        self.space.origin()
    }

    /// Whether this view's events carry previous values (see
    /// [`View::with_previous_values`]).
    pub fn previous_values(&self) -> bool {
        self.space.previous_values()
    }

    /// The durable log cap, when writes append to the log (see [`View::with_durable_log`]).
    pub fn durable_log(&self) -> Option<u64> {
        self.space.log_maxlen()
    }

    /// The namespace as a generic dict with this view's settings: the fields
    /// are its entries, keyed by their stored names.
    pub fn dict<V>(&self) -> Dict<String, V> {
        Dict::from_space(self.space.clone())
    }
}

impl<T: RedisDict> View<T> {
    /// The generated view (fields included) around this one, in mode `M`.
    pub(crate) fn open<M: Mode>(self, cx: M::Context) -> T::View<M> {
        T::__make_view(Core::new(self, cx))
    }

    /// The handle of one stored field, over this view's dict.
    pub(crate) fn field<F>(
        &self,
        spec: &'static FieldSpec,
        default: Option<fn() -> F>,
    ) -> Field<F> {
        Field::new(self.dict(), T::SCHEMA, spec, default)
    }

    /// The stored layout of `T`.
    pub fn schema(&self) -> &'static Schema {
        T::SCHEMA
    }

    /// The same view (a new `<Struct>View`, field handles included) with
    /// change events switched on or off (default: the store's setting), like
    /// [`Dict::with_notifications`].
    #[must_use = "the setting applies to the returned view only"]
    pub fn with_notifications(&self, on: bool) -> T::View<Async> {
        self.reconfigured(|space| space.set_notifications(on))
            .open(())
    }

    /// The same view writing `origin` into its change events (default: the
    /// store's), like [`Dict::with_origin`].
    #[must_use = "the setting applies to the returned view only"]
    pub fn with_origin(&self, origin: impl Into<String>) -> T::View<Async> {
        let origin = origin.into();
        self.reconfigured(|space| space.set_origin(Some(origin)))
            .open(())
    }

    /// The same view whose writes (of the view and of its fields) put each
    /// field's value before the change into their change events (default:
    /// off), like [`Dict::with_previous_values`]: a subscriber then sees it as
    /// [`ViewEvent::previous`], the field's variant holding
    /// `Change::Set(previous value)`, or [`Previous::Absent`](crate::Previous::Absent) when the field
    /// was not stored. `save`, `update` and `clear` carry it per field. Events
    /// of writers without it have [`Previous::Unknown`](crate::Previous::Unknown).
    ///
    /// ```
    /// use redis_pydict::{Change, Previous, RedisDict, Store};
    ///
    /// #[derive(RedisDict)]
    /// struct Limits {
    ///     max_conn: u32,
    /// }
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = redis_pydict_test::RedisServer::start();
    /// # let url = server.url();
    /// let store = Store::connect(&url).await?;
    /// let limits = Limits::view(&store, "prod")?.with_previous_values(true);
    /// let mut changes = limits.subscribe().await?;
    /// limits.max_conn.set(&16).await?;
    /// limits.save(&Limits { max_conn: 32 }).await?;
    /// let first = changes.recv().await.unwrap()?;
    /// assert_eq!(first.previous, Previous::Absent);
    /// let second = changes.recv().await.unwrap()?;
    /// assert_eq!(second.event, LimitsEvent::MaxConn(Change::Set(32)));
    /// assert_eq!(second.previous, Previous::Value(LimitsEvent::MaxConn(Change::Set(16))));
    /// # Ok(()) }
    /// ```
    #[must_use = "the setting applies to the returned view only"]
    pub fn with_previous_values(&self, on: bool) -> T::View<Async> {
        self.reconfigured(|space| space.set_previous_values(on))
            .open(())
    }

    /// The same view, whose subscriptions (of the view and of its fields) skip
    /// the events written with its own origin id ([`View::with_origin`] or
    /// the store's): a process then sees only the other processes' changes.
    /// Like [`Dict::with_skip_own_events`].
    #[must_use = "the setting applies to the returned view only"]
    pub fn with_skip_own_events(&self, skip: bool) -> T::View<Async> {
        self.reconfigured(|space| space.set_skip_own_events(skip))
            .open(())
    }

    /// The same view with a durable change log: every write through it (and
    /// its fields) also appends its events to the Redis Stream `{ns}#log`, in
    /// the same atomic unit, capped at about `max_len` entries (`MAXLEN ~`),
    /// for [`View::subscribe_durable`]. All writers of the instance should
    /// agree on this setting (see [`Dict::with_durable_log`]).
    #[must_use = "the setting applies to the returned view only"]
    pub fn with_durable_log(&self, max_len: u64) -> T::View<Async> {
        self.reconfigured(|space| space.set_log_maxlen(Some(max_len.max(1))))
            .open(())
    }

    /// Types the raw events of this view's namespace (see [`view_event`]).
    fn decoder(
        &self,
    ) -> impl FnMut(RawEvent) -> Option<Result<ViewEvent<T::Event>>> + Send + 'static
    where
        T: 'static,
        T::Event: Send + 'static,
    {
        let namespace = self.name().to_owned();
        let skipped = self.space.skipped_origin();
        move |raw| view_event::<T>(&namespace, skipped.as_deref(), raw)
    }

    fn name(&self) -> &str {
        self.space.namespace().name()
    }

    fn keys(&self) -> Vec<&'static str> {
        T::SCHEMA.keys().collect()
    }

    fn read(&self, values: Vec<Option<Vec<u8>>>) -> Result<T> {
        T::__read(&mut FieldReader {
            schema: T::SCHEMA,
            namespace: self.name(),
            values: &values,
        })
    }

    /// The stored form of each field of `value`: (field index, spec, bytes).
    pub(crate) fn write(&self, value: &T) -> Result<Vec<(usize, &'static FieldSpec, Vec<u8>)>> {
        let mut out = FieldWriter {
            schema: T::SCHEMA,
            namespace: self.name(),
            entries: Vec::with_capacity(T::SCHEMA.fields.len()),
        };
        value.__write(&mut out)?;
        Ok(out.entries)
    }
}

impl<T: RedisDict> View<T> {
    /// Reads the whole struct in one MGET round trip, so it is one consistent
    /// snapshot. A field with nothing stored becomes `None` if it is an
    /// `Option`, its default if it has `#[redis_dict(default)]`, and is
    /// otherwise [`Error::MissingField`](crate::Error::MissingField) naming it. `skip` fields take their default.
    pub async fn load(&self) -> Result<T> {
        crate::observe::op("load", self.namespace(), T::SCHEMA.keys().len(), async {
            let values = self.space.get_many(&self.keys()).await?;
            self.read(values)
        })
        .await
    }

    /// Like [`View::load`], but `None` when no field at all is stored.
    pub async fn try_load(&self) -> Result<Option<T>> {
        crate::observe::op("load", self.namespace(), T::SCHEMA.keys().len(), async {
            let values = self.space.get_many(&self.keys()).await?;
            if values.iter().all(Option::is_none) {
                return Ok(None);
            }
            self.read(values).map(Some)
        })
        .await
    }

    /// Writes every stored field in one atomic unit (entries, namespace index
    /// and change events), so no reader ever sees half of it. `None` fields
    /// are stored as CBOR `null`; fields with a declared TTL get it afresh;
    /// the others end without a TTL.
    pub async fn save(&self, value: &T) -> Result<()> {
        crate::observe::op("save", self.namespace(), T::SCHEMA.keys().len(), async {
            let entries = self.write(value)?;
            // One SET script per distinct TTL, all in one atomic unit.
            let mut groups: Vec<TtlGroup<'_>> = Vec::new();
            for (_, spec, bytes) in &entries {
                let ttl = spec.ttl();
                let entry = (spec.key, bytes.as_slice());
                match groups.iter_mut().find(|(t, _)| *t == ttl) {
                    Some((_, group)) => group.push(entry),
                    None => groups.push((ttl, vec![entry])),
                }
            }
            self.space.set_groups(&groups).await
        })
        .await
    }

    /// Read-modify-write of the whole struct that never loses an update: loads
    /// it (with the rules of [`View::load`]) under WATCH of every field key,
    /// lets `f` change it, and writes the fields that changed in MULTI/EXEC,
    /// keeping their TTLs; retried from a fresh read while other writers
    /// interfere. A field counts as changed when its encoding after `f`
    /// differs from the one before in CBOR's deterministic form (RFC 8949
    /// §4.2: map entries sorted, floats bit for bit), so a `HashMap` field
    /// that `f` did not touch is not rewritten, whatever its iteration order;
    /// a field that was missing (and loaded as `None` or its default) is
    /// written. Returns what `f` returned on the attempt that won.
    pub async fn update<R>(&self, mut f: impl FnMut(&mut T) -> R) -> Result<R> {
        crate::observe::op("update", self.namespace(), T::SCHEMA.keys().len(), async {
            let keys = self.keys();
            self.space
                .update_with(&keys, |current| {
                    let stored: Vec<bool> = current.iter().map(Option::is_some).collect();
                    let mut value = self.read(current)?;
                    let before = self.write(&value)?;
                    let result = f(&mut value);
                    let changes: Vec<Write> = self
                        .write(&value)?
                        .into_iter()
                        .zip(before)
                        .filter(|((i, _, after), (_, _, before))| {
                            !stored.get(*i).copied().unwrap_or(false)
                                || !canonical::same_value(before, after)
                        })
                        .map(|((_, spec, after), _)| (spec.key.to_owned(), after))
                        .collect();
                    Ok((changes, result))
                })
                .await
        })
        .await
    }

    /// Deletes every stored field (one atomic unit with index and events);
    /// returns how many were stored. Other entries of the namespace are untouched.
    pub async fn clear(&self) -> Result<u64> {
        crate::observe::op("clear", self.namespace(), T::SCHEMA.keys().len(), async {
            let flags = self.space.delete(&self.keys()).await?;
            Ok(flags.into_iter().filter(|existed| *existed).count() as u64)
        })
        .await
    }

    /// Subscribes to the changes of every stored field, made by any process:
    /// a stream of [`ViewEvent`]s, each carrying a variant of the generated
    /// `<Struct>Event` enum (one per field, with the field's typed
    /// [`Change`](crate::Change): `Set(value)`, `Deleted`, `Expired`, `TtlChanged`) and the
    /// writer's origin id.
    ///
    /// * `save` gives one event per field, `update` one per changed field,
    ///   [`View::clear`] a `Deleted` per field that was stored; clearing the
    ///   whole namespace ([`Dict::clear`]) gives one `Cleared`.
    /// * Events of keys of the namespace that are not stored fields of the
    ///   struct are not even received (one channel per field).
    /// * A value that does not decode as its field's type is an `Err` item
    ///   ([`Error::Decode`](crate::Error::Decode) naming the key and the field); the stream goes on.
    /// * After a dropped connection or a server restart the subscription
    ///   reconnects by itself and yields `Gap`: re-read what you depend on.
    /// * `Expired` arrives only where the server reports expired keys (see
    ///   [`crate::StoreBuilder::enable_expiry_events`]).
    ///
    /// Every event published after this returns is seen, in order. Dropping
    /// the stream unsubscribes. For replay across disconnects, see
    /// [`View::subscribe_durable`].
    ///
    /// ```no_run
    /// use futures::StreamExt;
    /// use redis_pydict::{Change, RedisDict, Store, ViewEvent};
    ///
    /// #[derive(RedisDict)]
    /// struct Config {
    ///     threshold: f64,
    ///     workers: Vec<String>,
    /// }
    ///
    /// # async fn demo() -> redis_pydict::Result<()> {
    /// let store = Store::connect("redis://127.0.0.1:6379").await?;
    /// let cfg = Config::view(&store, "prod")?;
    /// let mut changes = cfg.subscribe().await?; // a Stream of ViewEvent<ConfigEvent>
    /// cfg.threshold.set(&0.5).await?;
    /// while let Some(item) = changes.next().await {
    ///     let ViewEvent { origin, event, .. } = item?;
    ///     match event {
    ///         ConfigEvent::Threshold(Change::Set(t)) => println!("threshold = {t} (by {origin:?})"),
    ///         ConfigEvent::Workers(change) => println!("workers: {change:?}"),
    ///         ConfigEvent::Gap => println!("reconnected: reload what matters"),
    ///         other => println!("{other:?}"),
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn subscribe(&self) -> Result<Subscription<ViewEvent<T::Event>>>
    where
        T: 'static,
        T::Event: Send + 'static,
    {
        crate::observe::op("subscribe", self.namespace(), 0, async {
            let store = self.space.store();
            let expiry = subscription::expiry_db(store).await?;
            let target = Target::keys(self.namespace(), T::SCHEMA.keys(), expiry);
            subscription::start(store, self.namespace(), target, self.decoder()).await
        })
        .await
    }

    /// A live view of this instance: loads the struct once, then keeps a
    /// local snapshot current from the change events, so that reading it
    /// does no I/O. It never goes backwards, reloads (and says so) after
    /// any possible loss of events, and reflects writes made through it when
    /// they return: see [`Live`].
    ///
    /// Fails as [`View::load`] does (a required field is missing, a value
    /// does not decode), or with [`Error::WrongType`](crate::Error::WrongType)
    /// when `{ns}#seq` holds something other than the library's counter.
    pub async fn live(&self) -> Result<Live<T>>
    where
        T: Send + Sync + 'static,
    {
        Live::start(self.clone()).await
    }

    /// Replays the durable log of this instance (written by views made with
    /// [`View::with_durable_log`]) from `from`, then follows it live: every
    /// change exactly once, in order, with its [`LogId`], across disconnects
    /// and server restarts (with persistence). Store the id of the last change
    /// handled and resume with `StartFrom::After(id)`. Items are typed and
    /// filtered as in [`View::subscribe`]; changes trimmed from the log before
    /// they were read (more than its cap) are reported as a `Gap`.
    ///
    /// ```no_run
    /// use futures::StreamExt;
    /// use redis_pydict::{RedisDict, StartFrom, Store};
    ///
    /// #[derive(RedisDict)]
    /// struct Job {
    ///     state: String,
    /// }
    ///
    /// # async fn demo(last_seen: redis_pydict::LogId) -> redis_pydict::Result<()> {
    /// let store = Store::connect("redis://127.0.0.1:6379").await?;
    /// let job = Job::view(&store, "nightly")?.with_durable_log(10_000);
    /// job.state.set(&"running".to_owned()).await?; // also appended to the log
    /// let mut changes = job.subscribe_durable(StartFrom::After(last_seen)).await?;
    /// while let Some(item) = changes.next().await {
    ///     let (id, change) = item?;
    ///     println!("{id}: {:?}", change.event); // persist `id` once handled
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn subscribe_durable(
        &self,
        from: StartFrom,
    ) -> Result<Subscription<(LogId, ViewEvent<T::Event>)>>
    where
        T: 'static,
        T::Event: Send + 'static,
    {
        crate::observe::op("subscribe_durable", self.namespace(), 0, async {
            durable::start(self.space.store(), self.namespace(), from, self.decoder()).await
        })
        .await
    }

    /// Joins consumer group `group` of this instance's durable log as
    /// `consumer`, with the default [`GroupOptions`]: each change is
    /// delivered to one consumer of the group (see
    /// [`crate::Dict::subscribe_group`]). Items are typed and filtered as in
    /// [`View::subscribe`].
    pub async fn subscribe_group(
        &self,
        group: &str,
        consumer: &str,
    ) -> Result<GroupSubscription<ViewEvent<T::Event>>>
    where
        T: 'static,
        T::Event: Send + 'static,
    {
        self.subscribe_group_with(group, consumer, &GroupOptions::default())
            .await
    }

    /// Joins consumer group `group` of this instance's durable log as
    /// `consumer`, with `options` (see [`crate::Dict::subscribe_group_with`]).
    pub async fn subscribe_group_with(
        &self,
        group: &str,
        consumer: &str,
        options: &GroupOptions,
    ) -> Result<GroupSubscription<ViewEvent<T::Event>>>
    where
        T: 'static,
        T::Event: Send + 'static,
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

    /// Removes consumer `consumer` from consumer group `group` of this
    /// instance's durable log, refusing while it holds unacknowledged
    /// changes (see [`crate::Dict::remove_group_consumer`]).
    pub async fn remove_group_consumer(&self, group: &str, consumer: &str) -> Result<bool> {
        let member = group::Member { group, consumer };
        group::remove_idle_consumer(self.space.store(), self.namespace(), member).await
    }

    /// Deletes consumer group `group` of this instance's durable log, with
    /// the changes delivered to it and not acknowledged (see
    /// [`crate::Dict::destroy_group`]). `Ok(false)`: there was no such group.
    pub async fn destroy_group(&self, group: &str) -> Result<bool> {
        group::destroy(&self.space, group).await
    }
}
