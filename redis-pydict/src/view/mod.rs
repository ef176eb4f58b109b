//! Typed struct views: the runtime half of `#[derive(RedisDict)]`.
//!
//! The derive emits only what needs the struct's names and types: a
//! [`Schema`] constant, a view struct with one [`Field`] handle per stored
//! field, two small functions that write and read the fields in schema
//! order, and the change enum `<Struct>Event` with a per-field dispatch.
//! Everything else lives here, one responsibility per module:
//!
//! * `mode`: [`Mode`] ([`Async`]; the blocking mirror adds its own) and
//!   [`ViewStore`], the stores a view is opened on;
//! * `schema`: the stored layout, [`Schema`] and [`FieldSpec`];
//! * `whole`: [`View`], the whole-struct load, save, update, clear and
//!   subscriptions;
//! * `field`: [`Field`], one field, a thin layer over the namespace's dict;
//! * `events`: [`ViewEvent`] and the typing of raw events by field;
//! * `internals`: the private surface generated code reaches through
//!   `::redis_pydict::__private`, and the missing-field rules.

mod events;
mod field;
pub(crate) mod internals;
pub(crate) mod mode;
mod schema;
mod whole;

pub use events::ViewEvent;
pub use field::Field;
pub use mode::{Async, Mode, ViewStore};
pub use schema::{FieldSpec, Schema};
pub use whole::View;

use std::ops::Deref;

use crate::error::Result;

use events::EventInput;
use internals::{Core, FieldReader, FieldWriter};

/// A struct stored in Redis one field per key: implemented by
/// `#[derive(RedisDict)]`, never by hand.
///
/// [`RedisDict::view`] opens the typed view of one instance (the derive's
/// generated `<Struct>View`; async on a [`crate::Store`], blocking on a
/// [`crate::blocking::Store`]): a namespace whose entries are the struct's
/// fields, each a CBOR value at `{namespace}:<field>`, written through the
/// same atomic write path as [`Dict`](crate::Dict) (entry, index and change event in one
/// round trip). A [`crate::Dict`]`<String, ciborium::Value>` on the same namespace sees
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
/// any other is [`crate::Error::MissingField`] naming it.
pub trait RedisDict: Sized {
    /// The generated view type (`<Struct>View<M>`): one public field handle
    /// per stored field ([`Field`] in async mode), and the whole-struct
    /// operations ([`View`] in async mode) through `Deref`.
    type View<M: Mode>: Deref<Target = M::View<Self>>;

    /// The generated change enum (`<Struct>Event`): one variant per stored
    /// field carrying its [`crate::Change`], plus `Cleared` and `Gap`. The
    /// items of [`View::subscribe`] (see there).
    type Event;

    /// The stored layout: field names, keys, TTLs and missing-field rules.
    const SCHEMA: &'static Schema;

    /// The view of instance `instance`: namespace `instance`, or
    /// `<prefix>:<instance>` when the struct has `#[redis_dict(prefix = "...")]`.
    /// Async on a [`crate::Store`], blocking on a [`crate::blocking::Store`].
    /// The namespace is validated here, before any I/O.
    fn view<S: ViewStore>(store: &S, instance: &str) -> Result<Self::View<S::Mode>> {
        store.__open::<Self>(instance)
    }

    /// Builds the generated view around its core. Generated.
    #[doc(hidden)]
    fn __make_view<M: Mode>(core: Core<Self, M>) -> Self::View<M>;

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

/// The derive's documentation (redis-pydict-derive/doc/derive.md), compiled
/// here as doctests because its examples need this crate.
#[cfg(doctest)]
#[doc = include_str!("../../../redis-pydict-derive/doc/derive.md")]
struct DeriveDocExamples;
