//! Typed struct views: the runtime half of `#[derive(RedisDict)]`.
//!
//! The derive emits only what needs the struct's names and types: a
//! [`Schema`] constant, a view struct with one [`Field`] handle per stored
//! field, two small functions that write and read the fields in schema
//! order, and the change enum `<Struct>Event` with a per-field dispatch.
//! Everything else (namespaces, missing-field rules, the atomic save, the
//! optimistic whole-struct update, subscriptions, the blocking mirror) lives
//! here.

use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;
use std::time::Duration;

use serde::de::{self, DeserializeOwned, Visitor};
use serde::Serialize;

use crate::codec;
use crate::dict::Dict;
use crate::durable::{self, LogId, StartFrom};
use crate::error::{Error, Result};
use crate::event::{RawEvent, RawKind};
use crate::namespace::Namespace;
use crate::space::{SetMode, Space, Ttl, TtlGroup, Write};
use crate::store::Store;
use crate::subscription::{self, Change, Subscription, Target};

// ----- modes -------------------------------------------------------------------

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Async {}
    impl Sealed for super::Blocking {}
}

/// Whether a view is used from async code ([`Async`], the default) or from
/// plain threads ([`Blocking`]). The generated view and its [`Field`] handles
/// are generic over it, so one generated struct serves both APIs.
pub trait Mode: sealed::Sealed + Sized + 'static {
    /// What the mode needs at run time: nothing for async, the blocking store
    /// (and so its runtime) for blocking.
    #[doc(hidden)]
    type Handle: Clone + Send + Sync + fmt::Debug + 'static;
}

/// The async mode: methods are `async fn`s to await on a tokio runtime.
#[derive(Debug, Clone, Copy)]
pub enum Async {}

/// The blocking mode: methods block the calling thread (see [`crate::blocking`]).
#[derive(Debug, Clone, Copy)]
pub enum Blocking {}

impl Mode for Async {
    type Handle = ();
}

impl Mode for Blocking {
    type Handle = crate::blocking::Store;
}

// ----- the trait ----------------------------------------------------------------

/// A struct stored in Redis one field per key: implemented by
/// `#[derive(RedisDict)]`, never by hand.
///
/// [`RedisDict::view`] opens the typed view of one instance (the derive's
/// generated `<Struct>View`): a namespace whose entries are the struct's
/// fields, each a CBOR value at `{namespace}:<field>`, written through the
/// same atomic write path as [`Dict`] (entry, index and change event in one
/// round trip). A `Dict<String, ciborium::Value>` on the same namespace sees
/// the fields as entries.
///
/// ```no_run
/// use redis_pydict::{RedisDict, Store};
///
/// #[derive(RedisDict, Debug, Clone, PartialEq)]
/// #[redis_dict(prefix = "config")]
/// struct Config {
///     threshold: f64,
///     workers: Vec<String>,
///     #[redis_dict(rename = "max-conn")]
///     max_conn: u32,
///     #[redis_dict(default)]
///     verbose: bool,
///     label: Option<String>,
///     #[redis_dict(ttl = "30s")]
///     heartbeat: u64,
/// }
///
/// # async fn demo() -> redis_pydict::Result<()> {
/// let store = Store::connect("redis://127.0.0.1:6379").await?;
/// let cfg = Config::view(&store, "prod")?; // namespace "config:prod"
///
/// // One field at a time: each is one Redis key.
/// cfg.threshold.set(&0.75).await?;
/// let t: Option<f64> = cfg.threshold.get().await?;
/// cfg.workers.update(|w| w.push("w3".into())).await?; // optimistic, retried
/// cfg.heartbeat.set(&1).await?; // expires after 30 s
///
/// // The whole struct: one MGET to load, one atomic script to save.
/// let mut snapshot: Config = cfg.load().await?;
/// snapshot.max_conn = 64;
/// cfg.save(&snapshot).await?;
/// cfg.update(|c: &mut Config| c.max_conn += 1).await?; // WATCH on every field
/// # Ok(()) }
/// ```
///
/// Loading follows three rules for a field with nothing stored: an `Option`
/// field becomes `None`, a `#[redis_dict(default)]` field takes its default,
/// any other is [`Error::MissingField`] naming it.
pub trait RedisDict: Sized {
    /// The generated view type (`<Struct>View<M>`): one public [`Field`] per
    /// stored field, and the whole-struct operations of [`View`] through `Deref`.
    type View<M: Mode>: Deref<Target = View<Self, M>>;

    /// The generated change enum (`<Struct>Event`): one variant per stored
    /// field carrying its [`Change`], plus `Cleared` and `Gap`. The items of
    /// [`View::subscribe`] (see there).
    type Event;

    /// The stored layout: field names, keys, TTLs and missing-field rules.
    const SCHEMA: &'static Schema;

    /// The async view of instance `instance`: namespace `instance`, or
    /// `<prefix>:<instance>` when the struct has `#[redis_dict(prefix = "...")]`.
    /// The namespace is validated here, before any I/O.
    fn view(store: &Store, instance: &str) -> Result<Self::View<Async>> {
        let space = store.space(&Self::SCHEMA.namespace_name(instance)?)?;
        Self::__make_view(View::from_parts(space, ()))
    }

    /// The blocking view of instance `instance` (see [`RedisDict::view`]).
    fn blocking_view(
        store: &crate::blocking::Store,
        instance: &str,
    ) -> Result<Self::View<Blocking>> {
        let space = store
            .as_async()
            .space(&Self::SCHEMA.namespace_name(instance)?)?;
        Self::__make_view(View::from_parts(space, store.clone()))
    }

    /// Builds the generated view around its core. Generated.
    #[doc(hidden)]
    fn __make_view<M: Mode>(core: View<Self, M>) -> Result<Self::View<M>>;

    /// Encodes every stored field, in schema order. Generated.
    #[doc(hidden)]
    fn __write(&self, out: &mut FieldWriter<'_>) -> Result<()>;

    /// Decodes the struct from the stored values, in schema order. Generated.
    #[doc(hidden)]
    fn __read(input: &mut FieldReader<'_>) -> Result<Self>;

    /// Types one change event as a variant of [`RedisDict::Event`]. Generated.
    #[doc(hidden)]
    fn __event(input: EventInput<'_>) -> Result<Self::Event>;
}

// ----- schema -------------------------------------------------------------------

/// The stored layout of a derived struct, as a constant: [`RedisDict::SCHEMA`].
///
/// ```
/// use redis_pydict::RedisDict;
///
/// #[derive(RedisDict)]
/// #[redis_dict(prefix = "jobs", rename_all = "camelCase")]
/// struct Job {
///     retry_count: u32,
///     #[redis_dict(ttl = "5m", default)]
///     lease: Option<String>,
///     #[redis_dict(skip)]
///     scratch: Vec<u8>,
/// }
///
/// let schema = Job::SCHEMA;
/// assert_eq!(schema.namespace_name("nightly").unwrap(), "jobs:nightly");
/// assert_eq!(schema.keys().collect::<Vec<_>>(), ["retryCount", "lease"]);
/// let lease = schema.field("lease").unwrap();
/// assert_eq!(lease.ttl(), Some(std::time::Duration::from_secs(300)));
/// assert!(lease.has_default());
/// assert_eq!(schema.skipped(), ["scratch"]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schema {
    type_name: &'static str,
    prefix: Option<&'static str>,
    fields: &'static [FieldSpec],
    skipped: &'static [&'static str],
}

impl Schema {
    #[doc(hidden)]
    pub const fn __new(
        type_name: &'static str,
        prefix: Option<&'static str>,
        fields: &'static [FieldSpec],
        skipped: &'static [&'static str],
    ) -> Schema {
        Schema {
            type_name,
            prefix,
            fields,
            skipped,
        }
    }

    /// The struct's name.
    pub const fn type_name(&self) -> &'static str {
        self.type_name
    }

    /// The namespace prefix (`#[redis_dict(prefix = "...")]`), if any.
    pub const fn prefix(&self) -> Option<&'static str> {
        self.prefix
    }

    /// The stored fields, in declaration order.
    pub const fn fields(&self) -> &'static [FieldSpec] {
        self.fields
    }

    /// Names of the `#[redis_dict(skip)]` fields, which are never stored.
    pub const fn skipped(&self) -> &'static [&'static str] {
        self.skipped
    }

    /// The stored field whose Rust name is `name`.
    pub fn field(&self, name: &str) -> Option<&'static FieldSpec> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The stored field kept under key `key`.
    pub fn field_by_key(&self, key: &str) -> Option<&'static FieldSpec> {
        self.fields.iter().find(|f| f.key == key)
    }

    /// The keys of the stored fields, in declaration order.
    pub fn keys(&self) -> impl ExactSizeIterator<Item = &'static str> {
        self.fields.iter().map(|f| f.key)
    }

    /// The namespace of instance `instance`: `<prefix>:<instance>`, or the
    /// instance itself without a prefix. Fails on an empty instance name.
    pub fn namespace_name(&self, instance: &str) -> Result<String> {
        if instance.is_empty() {
            return Err(Error::InvalidNamespace {
                namespace: instance.to_owned(),
                reason: "the instance name is empty",
            });
        }
        Ok(match self.prefix {
            Some(prefix) => format!("{prefix}:{instance}"),
            None => instance.to_owned(),
        })
    }

    /// The validated namespace of instance `instance` (see [`Schema::namespace_name`]).
    pub fn namespace(&self, instance: &str) -> Result<Namespace> {
        Namespace::new(&self.namespace_name(instance)?)
    }
}

/// One stored field of a derived struct.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldSpec {
    name: &'static str,
    key: &'static str,
    rust_type: &'static str,
    ttl_ms: u64,
    default: bool,
}

impl FieldSpec {
    #[doc(hidden)]
    pub const fn __new(
        name: &'static str,
        key: &'static str,
        rust_type: &'static str,
        ttl_ms: u64,
        default: bool,
    ) -> FieldSpec {
        FieldSpec {
            name,
            key,
            rust_type,
            ttl_ms,
            default,
        }
    }

    /// The field's Rust name.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// The key it is stored under (after `rename` / `rename_all`).
    pub const fn key(&self) -> &'static str {
        self.key
    }

    /// The field's type as written in the struct.
    pub const fn rust_type(&self) -> &'static str {
        self.rust_type
    }

    /// The time-to-live declared with `#[redis_dict(ttl = "...")]`.
    pub const fn ttl(&self) -> Option<Duration> {
        if self.ttl_ms == 0 {
            None
        } else {
            Some(Duration::from_millis(self.ttl_ms))
        }
    }

    /// Whether a missing value loads as a default (`#[redis_dict(default)]`).
    pub const fn has_default(&self) -> bool {
        self.default
    }
}

// ----- encoding and decoding of whole structs ------------------------------------

/// Collects the encoded fields of a struct being saved. Used by generated code.
#[doc(hidden)]
pub struct FieldWriter<'a> {
    schema: &'static Schema,
    namespace: &'a str,
    entries: Vec<(usize, &'static FieldSpec, Vec<u8>)>,
}

impl FieldWriter<'_> {
    /// Encodes stored field number `index`.
    pub fn field<F: Serialize + ?Sized>(&mut self, index: usize, value: &F) -> Result<()> {
        let spec = spec_at(self.schema, index)?;
        let bytes = codec::encode(value, self.namespace, spec.key)?;
        self.entries.push((index, spec, bytes));
        Ok(())
    }
}

/// Hands the stored values of a struct being loaded to generated code.
#[doc(hidden)]
pub struct FieldReader<'a> {
    schema: &'static Schema,
    namespace: &'a str,
    values: Vec<Option<Vec<u8>>>,
}

impl FieldReader<'_> {
    /// Decodes stored field number `index`: missing is `None` for an `Option`
    /// and [`Error::MissingField`] for anything else.
    pub fn field<F: DeserializeOwned>(&mut self, index: usize) -> Result<F> {
        self.decode(index, None)
    }

    /// Decodes stored field number `index`, taking `default()` when missing.
    pub fn field_or<F: DeserializeOwned>(&mut self, index: usize, default: fn() -> F) -> Result<F> {
        self.decode(index, Some(default))
    }

    fn decode<F: DeserializeOwned>(
        &mut self,
        index: usize,
        default: Option<fn() -> F>,
    ) -> Result<F> {
        let spec = spec_at(self.schema, index)?;
        let bytes = self.values.get_mut(index).and_then(Option::take);
        decode_field(self.schema, spec, self.namespace, bytes.as_deref(), default)
    }
}

fn spec_at(schema: &'static Schema, index: usize) -> Result<&'static FieldSpec> {
    schema.fields.get(index).ok_or_else(|| {
        Error::Config(format!(
            "the schema of {} has no stored field #{index} (a redis-pydict derive bug)",
            schema.type_name
        ))
    })
}

/// Decodes one field: the stored value if any, else the default, else the
/// missing-field rule (`Option` → `None`, anything else → an error naming it).
fn decode_field<F: DeserializeOwned>(
    schema: &'static Schema,
    spec: &'static FieldSpec,
    namespace: &str,
    bytes: Option<&[u8]>,
    default: Option<fn() -> F>,
) -> Result<F> {
    match (bytes, default) {
        (Some(bytes), _) => codec::decode(bytes, namespace, spec.key),
        (None, Some(default)) => Ok(default()),
        (None, None) => F::deserialize(Missing).map_err(|e| match e {
            MissingError::Missing => Error::MissingField {
                namespace: namespace.to_owned(),
                type_name: schema.type_name,
                field: spec.name,
                key: spec.key.to_owned(),
            },
            MissingError::Other(reason) => Error::Decode {
                namespace: namespace.to_owned(),
                key: spec.key.to_owned(),
                expected: std::any::type_name::<F>(),
                reason,
            },
        }),
    }
}

/// A deserializer for a value that is not there: an `Option` reads it as
/// `None`, every other type fails (serde's own rule for missing fields).
struct Missing;

#[derive(Debug)]
enum MissingError {
    Missing,
    Other(String),
}

impl fmt::Display for MissingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MissingError::Missing => f.write_str("missing value"),
            MissingError::Other(reason) => f.write_str(reason),
        }
    }
}

impl std::error::Error for MissingError {}

impl de::Error for MissingError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        MissingError::Other(msg.to_string())
    }
}

impl<'de> de::Deserializer<'de> for Missing {
    type Error = MissingError;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, MissingError> {
        Err(MissingError::Missing)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, MissingError> {
        visitor.visit_none()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct newtype_struct seq tuple tuple_struct
        map struct enum identifier ignored_any
    }
}

// ----- change events ------------------------------------------------------------

/// One change seen by a view subscription ([`View::subscribe`]): what changed,
/// as a variant of the generated `<Struct>Event` enum, and who changed it.
///
/// Generic over the enum so that one runtime type serves every derived
/// struct; it is `Debug`, `Clone` and `PartialEq` when the enum is.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewEvent<E> {
    /// The writer's origin id, if it set one (the store's
    /// [`origin`](crate::StoreBuilder::origin), or [`View::with_origin`]).
    pub origin: Option<String>,
    /// What changed: a field's [`Change`] (`ConfigEvent::Threshold(Change::Set(0.5))`),
    /// or the namespace-wide `Cleared` and `Gap`.
    pub event: E,
}

/// A change event for generated code to type: a change of the stored field
/// number `.0`, or a namespace-wide event. Used by generated code.
#[doc(hidden)]
pub enum EventInput<'a> {
    /// A change of stored field number `.0` (schema order).
    Field(usize, FieldChange<'a>),
    /// The whole namespace was cleared.
    Cleared,
    /// Events may have been missed (see [`Change::Gap`]).
    Gap,
}

/// The still untyped change of one field. Used by generated code.
#[doc(hidden)]
pub struct FieldChange<'a> {
    schema: &'static Schema,
    spec: &'static FieldSpec,
    namespace: &'a str,
    kind: RawKind,
}

impl FieldChange<'_> {
    /// The change typed as the field's type `F`; a value that does not
    /// decode as `F` is [`Error::Decode`] naming the key and the field.
    pub fn decode<F: DeserializeOwned>(self) -> Result<Change<F>> {
        let (schema, spec, namespace) = (self.schema, self.spec, self.namespace);
        self.kind.typed(|e| Error::Decode {
            namespace: namespace.to_owned(),
            key: spec.key.to_owned(),
            expected: std::any::type_name::<F>(),
            reason: format!(
                "in a change event of field `{}` of {}: {e}",
                spec.name, schema.type_name
            ),
        })
    }

    /// The error for a field number the generated code does not know (a
    /// redis-pydict derive bug, never the data's fault).
    pub fn unknown<E>(self) -> Result<E> {
        Err(Error::Config(format!(
            "{} has no variant for stored field `{}` (a redis-pydict derive bug)",
            self.schema.type_name, self.spec.name
        )))
    }
}

/// Types a raw event of a view's namespace as a [`ViewEvent`]: `None` for
/// events of keys that are not stored fields of `T`, and for events written
/// with the `skipped` origin.
fn view_event<T: RedisDict>(
    namespace: &str,
    skipped: Option<&str>,
    raw: RawEvent,
) -> Option<Result<ViewEvent<T::Event>>> {
    if skipped.is_some() && raw.origin.as_deref() == skipped {
        return None;
    }
    let input = match raw.kind {
        RawKind::Clear => EventInput::Cleared,
        RawKind::Gap => EventInput::Gap,
        kind => {
            let key = raw.key.as_deref()?;
            let (index, spec) = T::SCHEMA
                .fields
                .iter()
                .enumerate()
                .find(|(_, spec)| spec.key == key)?;
            EventInput::Field(
                index,
                FieldChange {
                    schema: T::SCHEMA,
                    spec,
                    namespace,
                    kind,
                },
            )
        }
    };
    Some(T::__event(input).map(|event| ViewEvent {
        origin: raw.origin,
        event,
    }))
}

// ----- the whole-struct view ------------------------------------------------------

/// The whole-struct operations of a derived view: `load`, `try_load`, `save`,
/// `update`, `clear`. The generated `<Struct>View` dereferences to it.
///
/// Methods are `async` for [`Async`] views and blocking for [`Blocking`] ones.
pub struct View<T, M: Mode = Async> {
    space: Space,
    handle: M::Handle,
    _struct: PhantomData<fn() -> T>,
}

impl<T, M: Mode> Clone for View<T, M> {
    fn clone(&self) -> Self {
        View {
            space: self.space.clone(),
            handle: self.handle.clone(),
            _struct: PhantomData,
        }
    }
}

impl<T, M: Mode> fmt::Debug for View<T, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("View")
            .field("struct", &std::any::type_name::<T>())
            .field("namespace", &self.space.namespace().name())
            .finish()
    }
}

impl<T, M: Mode> View<T, M> {
    fn from_parts(space: Space, handle: M::Handle) -> Self {
        View {
            space,
            handle,
            _struct: PhantomData,
        }
    }

    pub(crate) fn handle(&self) -> &M::Handle {
        &self.handle
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

    /// The durable log cap, when writes append to the log (see [`View::with_durable_log`]).
    pub fn durable_log(&self) -> Option<u64> {
        self.space.log_maxlen()
    }
}

impl<T: RedisDict, M: Mode> View<T, M> {
    /// The stored layout of `T`.
    pub fn schema(&self) -> &'static Schema {
        T::SCHEMA
    }

    /// The same view (a new `<Struct>View`, fields included) with a durable
    /// change log: every write through it also appends its events to the
    /// Redis Stream `{ns}#log`, in the same atomic unit, capped at about
    /// `max_len` entries (`MAXLEN ~`), for [`View::subscribe_durable`]. All
    /// writers of the instance should agree on this setting (see
    /// [`Dict::with_durable_log`]).
    ///
    /// It fails only if the derive's generated code is inconsistent (a bug).
    pub fn with_durable_log(&self, max_len: u64) -> Result<T::View<M>> {
        self.rebuild(|space| space.set_log_maxlen(Some(max_len.max(1))))
    }

    /// The same view writing `origin` into its change events (default: the
    /// store's origin). It fails only if the generated code is inconsistent.
    pub fn with_origin(&self, origin: impl Into<String>) -> Result<T::View<M>> {
        let origin = origin.into();
        self.rebuild(|space| space.set_origin(Some(origin)))
    }

    /// The same view, whose subscriptions (of the view and of its fields) skip
    /// the events written with its own origin id ([`View::with_origin`] or
    /// the store's): a process then sees only the other processes' changes.
    /// It fails only if the generated code is inconsistent.
    pub fn with_skip_own_events(&self, skip: bool) -> Result<T::View<M>> {
        self.rebuild(|space| space.set_skip_own_events(skip))
    }

    /// A new generated view over a changed copy of the space (the field
    /// handles hold the space too, so they are made afresh).
    fn rebuild(&self, change: impl FnOnce(&mut Space)) -> Result<T::View<M>> {
        let mut space = self.space.clone();
        change(&mut space);
        T::__make_view(View::from_parts(space, self.handle.clone()))
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

    pub(crate) async fn subscribe_impl(&self) -> Result<Subscription<ViewEvent<T::Event>>>
    where
        T: 'static,
        T::Event: Send + 'static,
    {
        let store = self.space.store();
        let expiry = subscription::expiry_db(store).await;
        let target = Target::keys(self.namespace(), T::SCHEMA.keys(), expiry);
        subscription::start(store, self.namespace(), target, self.decoder()).await
    }

    pub(crate) async fn subscribe_durable_impl(
        &self,
        from: StartFrom,
    ) -> Result<Subscription<(LogId, ViewEvent<T::Event>)>>
    where
        T: 'static,
        T::Event: Send + 'static,
    {
        durable::start(self.space.store(), self.namespace(), from, self.decoder()).await
    }

    /// The handle of stored field number `index`. Used by generated code.
    #[doc(hidden)]
    pub fn __field<F>(&self, index: usize) -> Result<Field<F, M>> {
        self.make_field(index, None)
    }

    /// The handle of stored field number `index`, with a default. Used by generated code.
    #[doc(hidden)]
    pub fn __field_or<F>(&self, index: usize, default: fn() -> F) -> Result<Field<F, M>> {
        self.make_field(index, Some(default))
    }

    fn make_field<F>(&self, index: usize, default: Option<fn() -> F>) -> Result<Field<F, M>> {
        Ok(Field {
            space: self.space.clone(),
            handle: self.handle.clone(),
            schema: T::SCHEMA,
            spec: spec_at(T::SCHEMA, index)?,
            default,
        })
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
            values,
        })
    }

    fn write(&self, value: &T) -> Result<Vec<(usize, &'static FieldSpec, Vec<u8>)>> {
        let mut out = FieldWriter {
            schema: T::SCHEMA,
            namespace: self.name(),
            entries: Vec::with_capacity(T::SCHEMA.fields.len()),
        };
        value.__write(&mut out)?;
        Ok(out.entries)
    }

    pub(crate) async fn load_impl(&self) -> Result<T> {
        let values = self.space.get_many(&self.keys()).await?;
        self.read(values)
    }

    pub(crate) async fn try_load_impl(&self) -> Result<Option<T>> {
        let values = self.space.get_many(&self.keys()).await?;
        if values.iter().all(Option::is_none) {
            return Ok(None);
        }
        self.read(values).map(Some)
    }

    pub(crate) async fn save_impl(&self, value: &T) -> Result<()> {
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
    }

    pub(crate) async fn update_impl<R>(&self, mut f: impl FnMut(&mut T) -> R) -> Result<R> {
        let keys = self.keys();
        self.space
            .update_with(&keys, |current| {
                let mut value = self.read(current.clone())?;
                let result = f(&mut value);
                let changes: Vec<Write> = self
                    .write(&value)?
                    .into_iter()
                    .filter(|(i, _, bytes)| current.get(*i).and_then(Option::as_ref) != Some(bytes))
                    .map(|(_, spec, bytes)| (spec.key.to_owned(), bytes))
                    .collect();
                Ok((changes, result))
            })
            .await
    }

    pub(crate) async fn clear_impl(&self) -> Result<u64> {
        let flags = self.space.delete(&self.keys()).await?;
        Ok(flags.into_iter().filter(|existed| *existed).count() as u64)
    }
}

impl<T: RedisDict> View<T, Async> {
    /// Reads the whole struct in one MGET round trip, so it is one consistent
    /// snapshot. A field with nothing stored becomes `None` if it is an
    /// `Option`, its default if it has `#[redis_dict(default)]`, and is
    /// otherwise [`Error::MissingField`] naming it. `skip` fields take their default.
    pub async fn load(&self) -> Result<T> {
        self.load_impl().await
    }

    /// Like [`View::load`], but `None` when no field at all is stored.
    pub async fn try_load(&self) -> Result<Option<T>> {
        self.try_load_impl().await
    }

    /// Writes every stored field in one atomic unit (entries, namespace index
    /// and change events), so no reader ever sees half of it. `None` fields
    /// are stored as CBOR `null`; fields with a declared TTL get it afresh;
    /// the others end without a TTL.
    pub async fn save(&self, value: &T) -> Result<()> {
        self.save_impl(value).await
    }

    /// Read-modify-write of the whole struct that never loses an update: loads
    /// it (with the rules of [`View::load`]) under WATCH of every field key,
    /// lets `f` change it, and writes the fields that changed in MULTI/EXEC,
    /// keeping their TTLs; retried from a fresh read while other writers
    /// interfere. Returns what `f` returned on the attempt that won.
    pub async fn update<R>(&self, f: impl FnMut(&mut T) -> R) -> Result<R> {
        self.update_impl(f).await
    }

    /// Deletes every stored field (one atomic unit with index and events);
    /// returns how many were stored. Other entries of the namespace are untouched.
    pub async fn clear(&self) -> Result<u64> {
        self.clear_impl().await
    }

    /// The namespace as a generic dict: the fields are its entries, keyed by
    /// their stored names.
    pub fn dict<V>(&self) -> Dict<String, V> {
        Dict::from_space(self.space.clone())
    }

    /// Subscribes to the changes of every stored field, made by any process:
    /// a stream of [`ViewEvent`]s, each carrying a variant of the generated
    /// `<Struct>Event` enum (one per field, with the field's typed
    /// [`Change`]: `Set(value)`, `Deleted`, `Expired`, `TtlChanged`) and the
    /// writer's origin id.
    ///
    /// * `save` gives one event per field, `update` one per changed field,
    ///   [`View::clear`] a `Deleted` per field that was stored; clearing the
    ///   whole namespace ([`Dict::clear`]) gives one `Cleared`.
    /// * Events of keys of the namespace that are not stored fields of the
    ///   struct are not even received (one channel per field).
    /// * A value that does not decode as its field's type is an `Err` item
    ///   ([`Error::Decode`] naming the key and the field); the stream goes on.
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
    ///     let ViewEvent { origin, event } = item?;
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
        self.subscribe_impl().await
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
    /// let job = Job::view(&store, "nightly")?.with_durable_log(10_000)?;
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
        self.subscribe_durable_impl(from).await
    }
}

// ----- one field ----------------------------------------------------------------

/// The typed handle on one field of a derived view: one Redis key holding
/// the field's CBOR value.
///
/// Methods are `async` for [`Async`] views and blocking for [`Blocking`] ones.
pub struct Field<T, M: Mode = Async> {
    space: Space,
    handle: M::Handle,
    schema: &'static Schema,
    spec: &'static FieldSpec,
    default: Option<fn() -> T>,
}

impl<T, M: Mode> Clone for Field<T, M> {
    fn clone(&self) -> Self {
        Field {
            space: self.space.clone(),
            handle: self.handle.clone(),
            schema: self.schema,
            spec: self.spec,
            default: self.default,
        }
    }
}

impl<T, M: Mode> fmt::Debug for Field<T, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Field")
            .field("struct", &self.schema.type_name)
            .field("field", &self.spec.name)
            .field("namespace", &self.space.namespace().name())
            .field("key", &self.spec.key)
            .finish()
    }
}

impl<T, M: Mode> Field<T, M> {
    /// The field's Rust name.
    pub fn name(&self) -> &'static str {
        self.spec.name
    }

    /// The key the field is stored under, inside the view's namespace.
    pub fn key(&self) -> &'static str {
        self.spec.key
    }

    /// The field's schema entry.
    pub fn spec(&self) -> &'static FieldSpec {
        self.spec
    }

    /// The namespace of the view.
    pub fn namespace(&self) -> &Namespace {
        self.space.namespace()
    }

    pub(crate) fn handle(&self) -> &M::Handle {
        &self.handle
    }
}

impl<T: Serialize + DeserializeOwned, M: Mode> Field<T, M> {
    fn ns(&self) -> &str {
        self.space.namespace().name()
    }

    fn encode(&self, value: &T) -> Result<Vec<u8>> {
        codec::encode(value, self.ns(), self.spec.key)
    }

    fn decode(&self, bytes: &[u8]) -> Result<T> {
        codec::decode(bytes, self.ns(), self.spec.key)
    }

    /// The current value with the load rules applied to a missing one.
    fn current(&self, bytes: Option<&[u8]>) -> Result<T> {
        decode_field(self.schema, self.spec, self.ns(), bytes, self.default)
    }

    pub(crate) async fn get_impl(&self) -> Result<Option<T>> {
        match self.space.get(self.spec.key).await? {
            Some(bytes) => self.decode(&bytes).map(Some),
            None => Ok(None),
        }
    }

    pub(crate) async fn set_impl(&self, value: &T, ttl: Option<Duration>) -> Result<()> {
        let bytes = self.encode(value)?;
        self.space
            .set(SetMode::Set, ttl, &[(self.spec.key, &bytes)])
            .await
            .map(drop)
    }

    pub(crate) async fn set_if_absent_impl(&self, value: &T) -> Result<bool> {
        let bytes = self.encode(value)?;
        let written = self
            .space
            .set(
                SetMode::IfAbsent,
                self.spec.ttl(),
                &[(self.spec.key, &bytes)],
            )
            .await?;
        Ok(written == 1)
    }

    pub(crate) async fn delete_impl(&self) -> Result<bool> {
        let flags = self.space.delete(&[self.spec.key]).await?;
        Ok(flags.first().copied().unwrap_or(false))
    }

    pub(crate) async fn take_impl(&self) -> Result<Option<T>> {
        let mut old = self.space.take(&[self.spec.key]).await?;
        match old.pop().flatten() {
            Some(bytes) => self.decode(&bytes).map(Some),
            None => Ok(None),
        }
    }

    pub(crate) async fn exists_impl(&self) -> Result<bool> {
        self.space.contains(self.spec.key).await
    }

    pub(crate) async fn ttl_impl(&self) -> Result<Ttl> {
        self.space.ttl(self.spec.key).await
    }

    pub(crate) async fn expire_impl(&self, ttl: Option<Duration>) -> Result<bool> {
        self.space.expire(self.spec.key, ttl).await
    }

    pub(crate) async fn update_impl<R>(&self, mut f: impl FnMut(&mut T) -> R) -> Result<R> {
        let key = self.spec.key;
        self.space
            .update_with(&[key], |mut current| {
                let old = current.pop().flatten();
                let mut value = self.current(old.as_deref())?;
                let result = f(&mut value);
                let bytes = self.encode(&value)?;
                let changes = if old.as_deref() == Some(bytes.as_slice()) {
                    Vec::new()
                } else {
                    vec![(key.to_owned(), bytes)]
                };
                Ok((changes, result))
            })
            .await
    }

    pub(crate) async fn update_with_impl(&self, mut f: impl FnMut(Option<T>) -> T) -> Result<T> {
        let key = self.spec.key;
        self.space
            .update_with(&[key], |mut current| {
                let old = match current.pop().flatten() {
                    Some(bytes) => Some(self.decode(&bytes)?),
                    None => None,
                };
                let new = f(old);
                let bytes = self.encode(&new)?;
                Ok((vec![(key.to_owned(), bytes)], new))
            })
            .await
    }
}

impl<T: Serialize + DeserializeOwned> Field<T, Async> {
    /// The stored value, or `None` when the field has none (whatever its type).
    pub async fn get(&self) -> Result<Option<T>> {
        self.get_impl().await
    }

    /// Writes the field (entry, index and change event in one atomic unit).
    /// A field declared with `#[redis_dict(ttl = "...")]` gets that TTL afresh;
    /// any other ends without one.
    pub async fn set(&self, value: &T) -> Result<()> {
        self.set_impl(value, self.spec.ttl()).await
    }

    /// Writes the field expiring after `ttl` (at least 1 ms), whatever it declares.
    pub async fn set_with_ttl(&self, value: &T, ttl: Duration) -> Result<()> {
        self.set_impl(value, Some(ttl)).await
    }

    /// Writes the field only if it holds nothing; true if written.
    pub async fn set_if_absent(&self, value: &T) -> Result<bool> {
        self.set_if_absent_impl(value).await
    }

    /// Deletes the field's key; true if it existed.
    pub async fn delete(&self) -> Result<bool> {
        self.delete_impl().await
    }

    /// Deletes the field's key and returns its value, atomically.
    pub async fn take(&self) -> Result<Option<T>> {
        self.take_impl().await
    }

    /// Whether the field holds a value.
    pub async fn exists(&self) -> Result<bool> {
        self.exists_impl().await
    }

    /// The field's time-to-live state.
    pub async fn ttl(&self) -> Result<Ttl> {
        self.ttl_impl().await
    }

    /// Sets a time-to-live on the field; false if it holds nothing.
    pub async fn expire(&self, ttl: Duration) -> Result<bool> {
        self.expire_impl(Some(ttl)).await
    }

    /// Removes the field's time-to-live; false if it holds nothing.
    pub async fn persist(&self) -> Result<bool> {
        self.expire_impl(None).await
    }

    /// Read-modify-write that never loses an update: `f` changes the current
    /// value in place and the result is written only if nobody wrote the field
    /// meanwhile, else `f` runs again on the fresh value (optimistic
    /// WATCH/MULTI). A missing value starts as `None` for an `Option`, as its
    /// default for a `default` field, and is [`Error::MissingField`] otherwise.
    /// The field keeps its TTL; nothing is written when the value is unchanged.
    /// Returns what `f` returned on the attempt that won.
    pub async fn update<R>(&self, f: impl FnMut(&mut T) -> R) -> Result<R> {
        self.update_impl(f).await
    }

    /// Read-modify-write like [`Dict::update_with`]: `f` gets the current value
    /// (`None` when missing) and returns the new one, which is returned.
    pub async fn update_with(&self, f: impl FnMut(Option<T>) -> T) -> Result<T> {
        self.update_with_impl(f).await
    }

    /// Subscribes to the changes of this field, made by any process: a typed
    /// stream of [`crate::Event`]s whose `change` carries the new value
    /// (see [`Dict::subscribe_key`]).
    pub async fn subscribe(&self) -> Result<crate::Subscription<crate::Event<String, T>>>
    where
        T: Send + 'static,
    {
        Dict::<String, T>::from_space(self.space.clone())
            .subscribe_key(self.spec.key)
            .await
    }
}

// ----- fallback ---------------------------------------------------------------

/// The view type of a struct whose derive failed to compile: it exists only
/// so that the derive's error is the only one reported.
#[doc(hidden)]
pub enum Unavailable<T, M: Mode> {
    #[doc(hidden)]
    __Never(std::convert::Infallible, PhantomData<fn() -> (T, M)>),
}

impl<T, M: Mode> Deref for Unavailable<T, M> {
    type Target = View<T, M>;

    fn deref(&self) -> &View<T, M> {
        match self {
            Unavailable::__Never(never, _) => match *never {},
        }
    }
}

/// The typing and filtering of view events, on a hand-written impl (what the
/// derive generates for `struct Test { count: u32, #[redis_dict(rename =
/// "the-name")] name: Option<String> }`), without a server or the macro.
#[cfg(test)]
mod event_tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq)]
    enum TestEvent {
        Count(Change<u32>),
        Name(Change<Option<String>>),
        Cleared,
        Gap,
    }

    struct Test;

    impl RedisDict for Test {
        type View<M: Mode> = Unavailable<Self, M>;
        type Event = TestEvent;
        const SCHEMA: &'static Schema = &Schema::__new(
            "Test",
            None,
            &[
                FieldSpec::__new("count", "count", "u32", 0, false),
                FieldSpec::__new("name", "the-name", "Option<String>", 0, false),
            ],
            &[],
        );
        fn __make_view<M: Mode>(_: View<Self, M>) -> Result<Self::View<M>> {
            Err(Error::Config("no views in this test".into()))
        }
        fn __write(&self, _: &mut FieldWriter<'_>) -> Result<()> {
            Ok(())
        }
        fn __read(_: &mut FieldReader<'_>) -> Result<Self> {
            Ok(Test)
        }
        fn __event(input: EventInput<'_>) -> Result<TestEvent> {
            Ok(match input {
                EventInput::Field(0, c) => TestEvent::Count(c.decode()?),
                EventInput::Field(1, c) => TestEvent::Name(c.decode()?),
                EventInput::Field(_, c) => return c.unknown(),
                EventInput::Cleared => TestEvent::Cleared,
                EventInput::Gap => TestEvent::Gap,
            })
        }
    }

    fn raw(key: Option<&str>, origin: Option<&str>, kind: RawKind) -> RawEvent {
        RawEvent {
            key: key.map(str::to_owned),
            origin: origin.map(str::to_owned),
            kind,
        }
    }

    fn typed(skipped: Option<&str>, raw: RawEvent) -> Option<Result<ViewEvent<TestEvent>>> {
        view_event::<Test>("cfg:prod", skipped, raw)
    }

    fn ok(origin: Option<&str>, event: TestEvent) -> ViewEvent<TestEvent> {
        ViewEvent {
            origin: origin.map(str::to_owned),
            event,
        }
    }

    #[test]
    fn field_changes_are_typed_by_key() {
        let seven = RawKind::Set(vec![0x07]);
        let got = typed(None, raw(Some("count"), Some("p1"), seven)).unwrap();
        assert_eq!(
            got.unwrap(),
            ok(Some("p1"), TestEvent::Count(Change::Set(7)))
        );
        // The stored name, not the Rust one; null is `None` for an Option.
        let null = RawKind::Set(vec![0xf6]);
        let got = typed(None, raw(Some("the-name"), None, null)).unwrap();
        assert_eq!(got.unwrap(), ok(None, TestEvent::Name(Change::Set(None))));
        for (kind, change) in [
            (RawKind::Del, Change::Deleted),
            (RawKind::Expired, Change::Expired),
            (
                RawKind::Expire(Some(1500)),
                Change::TtlChanged(Some(Duration::from_millis(1500))),
            ),
            (RawKind::Expire(None), Change::TtlChanged(None)),
        ] {
            let got = typed(None, raw(Some("count"), None, kind)).unwrap();
            assert_eq!(got.unwrap(), ok(None, TestEvent::Count(change)));
        }
    }

    #[test]
    fn namespace_events_and_gaps() {
        let got = typed(None, raw(None, Some("p2"), RawKind::Clear)).unwrap();
        assert_eq!(got.unwrap(), ok(Some("p2"), TestEvent::Cleared));
        let got = typed(None, raw(None, None, RawKind::Gap)).unwrap();
        assert_eq!(got.unwrap(), ok(None, TestEvent::Gap));
    }

    #[test]
    fn other_keys_are_ignored() {
        let one = || RawKind::Set(vec![0x01]);
        assert!(typed(None, raw(Some("name"), None, one())).is_none());
        assert!(typed(None, raw(Some("counter"), None, one())).is_none());
        assert!(typed(None, raw(Some("count "), None, RawKind::Del)).is_none());
        assert!(typed(None, raw(None, None, one())).is_none());
    }

    #[test]
    fn undecodable_values_name_key_and_field() {
        let text = RawKind::Set(b"\x64many".to_vec());
        let err = typed(None, raw(Some("count"), None, text))
            .unwrap()
            .unwrap_err();
        let Error::Decode {
            namespace,
            key,
            expected,
            ..
        } = &err
        else {
            panic!("not a decode error: {err:?}")
        };
        assert_eq!(
            (namespace.as_str(), key.as_str(), *expected),
            ("cfg:prod", "count", "u32")
        );
        let message = err.to_string();
        assert!(message.contains("field `count` of Test"), "{message}");
    }

    #[test]
    fn own_events_are_skipped_when_asked() {
        let mine = || raw(Some("count"), Some("me"), RawKind::Del);
        assert!(typed(Some("me"), mine()).is_none());
        assert!(typed(Some("me"), raw(None, Some("me"), RawKind::Clear)).is_none());
        assert!(typed(Some("you"), mine()).is_some());
        assert!(typed(None, mine()).is_some());
        // Gaps have no origin: never skipped.
        assert!(typed(Some("me"), raw(None, None, RawKind::Gap)).is_some());
    }

    #[test]
    fn an_unknown_index_is_an_error_not_a_panic() {
        let change = FieldChange {
            schema: Test::SCHEMA,
            spec: &Test::SCHEMA.fields[1],
            namespace: "cfg:prod",
            kind: RawKind::Del,
        };
        let err = change.unknown::<TestEvent>().unwrap_err().to_string();
        assert!(
            err.contains("derive bug") && err.contains("`name`"),
            "{err}"
        );
    }
}

/// What generated code reaches through `::redis_pydict::__private`.
pub mod private {
    pub use super::{
        Async, Blocking, EventInput, Field, FieldReader, FieldSpec, FieldWriter, Mode, RedisDict,
        Schema, Unavailable, View,
    };
    pub use crate::error::Result;
    pub use crate::subscription::Change;
    pub use core::clone::Clone;
    pub use core::cmp::PartialEq;
    pub use core::convert::Infallible;
    pub use core::default::Default;
    pub use core::fmt::{Debug, Formatter, Result as FmtResult};
    pub use core::marker::PhantomData;
    pub use core::ops::Deref;
    pub use core::option::Option;
    pub use core::result::Result::Ok;
    pub use serde::de::DeserializeOwned;
    pub use serde::Serialize;
}

/// The derive's documentation (redis-pydict-derive/doc/derive.md), compiled
/// here as doctests because its examples need this crate.
#[cfg(doctest)]
#[doc = include_str!("../../redis-pydict-derive/doc/derive.md")]
struct DeriveDocExamples;
