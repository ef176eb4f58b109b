//! Typed struct views: the runtime half of `#[derive(RedisDict)]`.
//!
//! The derive emits only what needs the struct's names and types: a
//! [`Schema`] constant, a view struct with one [`Field`] handle per stored
//! field, and two small functions that write and read the fields in schema
//! order. Everything else (namespaces, missing-field rules, the atomic save,
//! the optimistic whole-struct update, the blocking mirror) lives here.

use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;
use std::time::Duration;

use serde::de::{self, DeserializeOwned, Visitor};
use serde::Serialize;

use crate::codec;
use crate::dict::Dict;
use crate::error::{Error, Result};
use crate::namespace::Namespace;
use crate::space::{SetMode, Space, Ttl, TtlGroup, Write};
use crate::store::Store;

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
}

impl<T: RedisDict, M: Mode> View<T, M> {
    /// The stored layout of `T`.
    pub fn schema(&self) -> &'static Schema {
        T::SCHEMA
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

/// What generated code reaches through `::redis_pydict::__private`.
pub mod private {
    pub use super::{
        Async, Blocking, Field, FieldReader, FieldSpec, FieldWriter, Mode, RedisDict, Schema,
        Unavailable, View,
    };
    pub use crate::error::Result;
    pub use core::clone::Clone;
    pub use core::default::Default;
    pub use core::fmt::{Debug, Formatter, Result as FmtResult};
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
