//! Shared state for distributed Rust programs, kept in Redis and used like
//! plain Rust data.
//!
//! Annotate a struct with [`#[derive(RedisDict)]`](derive@RedisDict) and its
//! fields live in Redis as separate keys holding CBOR values: any process can
//! read and write them, typed, one field or the whole struct at a time, and
//! subscribe to their changes. Under the views sits [`Dict<K, V>`], a
//! namespaced, typed dictionary over Redis keys where every write updates the
//! entry, the namespace index and publishes its change event in one atomic
//! unit. One server or a Redis Cluster; async on tokio, with a
//! [`blocking`] mirror.
//!
//! ```
//! use redis_pydict::{RedisDict, Store};
//!
//! #[derive(RedisDict, Debug)]
//! struct Config {
//!     threshold: f64,
//!     workers: Vec<String>,
//!     #[redis_dict(default)]
//!     verbose: bool,
//! }
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let server = redis_pydict_test::RedisServer::start();
//! # let url = server.url();
//! let store = Store::connect(&url).await?;            // e.g. "redis://127.0.0.1:6379"
//! let cfg = Config::view(&store, "prod")?;            // namespace "prod"
//! cfg.threshold.set(&0.75).await?;                    // one key: {prod}:threshold
//! cfg.workers.set(&vec!["w1".into()]).await?;
//! cfg.workers.update(|w| w.push("w2".into())).await?; // optimistic read-modify-write
//! let snapshot: Config = cfg.load().await?;           // one MGET
//! assert_eq!(snapshot.workers, ["w1", "w2"]);
//! assert!(!snapshot.verbose);                         // not stored: its default
//! # Ok(()) }
//! ```
//!
//! # Installing
//!
//! ```toml
//! [dependencies]
//! redis-pydict = "0.1"
//! tokio = { version = "1", features = ["macros", "rt-multi-thread"] }
//! futures = "0.3"   # StreamExt / TryStreamExt
//! ```
//!
//! The generated code reaches serde, redis and ciborium through this crate, so
//! a derived struct needs no other dependency. MSRV: Rust 1.88.
//!
//! # Views: `#[derive(RedisDict)]`
//!
//! The derive implements [`RedisDict`] and generates a view type
//! (`ConfigView` for `Config`, a [`View`]) whose public fields are [`Field`]
//! handles, plus an event enum (`ConfigEvent`). `Config::view(&store, "prod")`
//! opens the instance `"prod"` (async on a [`Store`], blocking on a
//! [`blocking::Store`]); `#[redis_dict(prefix = "config")]` makes its
//! namespace `config:prod`.
//!
//! * [`View::load`] reads every field in one MGET ([`View::try_load`] returns
//!   `None` when nothing is stored); [`View::save`] writes them in one atomic
//!   unit; [`View::update`] is an optimistic read-modify-write of the whole
//!   struct that writes only the fields that changed; [`View::clear`] deletes
//!   the struct's keys.
//! * A [`Field`] has `get`, `set`, `set_with_ttl`, `set_if_absent`, `delete`,
//!   `take`, `exists`, `ttl`, `expire`, `persist`, `update`, `update_with` and
//!   `subscribe`.
//! * A field with nothing stored loads as `None` if it is an `Option`, as its
//!   default with `#[redis_dict(default)]`, and is otherwise
//!   [`Error::MissingField`], naming the field. Adding such a field to a struct
//!   keeps data written before it readable.
//! * Field attributes: `rename = "key"`, `default`, `default = "path"`,
//!   `skip`, `ttl = "30s"`, `variant = "Name"`; struct attributes: `prefix`,
//!   `rename_all`, `crate`. Misuse is a compile error at the culprit.
//!
//! # Dicts: `Dict<K, V>`
//!
//! [`Store::dict`] opens a namespace as a [`Dict`]: keys are `String` (looked
//! up with `&str`) or integers, values any serde type, stored as CBOR.
//!
//! ```
//! use futures::TryStreamExt;
//! use redis_pydict::Store;
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let server = redis_pydict_test::RedisServer::start();
//! # let url = server.url();
//! let store = Store::connect(&url).await?;
//! let jobs = store.dict::<String, Vec<u32>>("jobs")?; // namespace checked before any I/O
//! jobs.set("done", &vec![1, 2, 3]).await?;
//! assert_eq!(jobs.get("done").await?, Some(vec![1, 2, 3]));
//! jobs.set_many([("a", vec![1]), ("b", vec![2])]).await?;  // bulk, atomic per batch
//! let total = jobs.update_with("done", |v| {          // never loses a concurrent update
//!     let mut v = v.unwrap_or_default();
//!     v.push(4);
//!     v
//! }).await?;
//! assert_eq!(total, [1, 2, 3, 4]);
//! let keys: Vec<String> = jobs.keys().try_collect().await?;  // a Stream over the index
//! assert_eq!(keys.len(), 3);
//! assert_eq!(jobs.len().await?, 3);                   // O(log n), not a SCAN
//! assert_eq!(jobs.remove("a").await?, Some(vec![1])); // atomic take
//! # Ok(()) }
//! ```
//!
//! Also: `contains`, `delete`, `set_if_absent`, TTLs (`set_with_ttl`,
//! `expire`, `persist`, `ttl`), `get_many`, `values`, `items` and their
//! `_matching(glob)` forms, `to_map`, `clear` and `repair`. Per-dict settings
//! are infallible builders: [`Dict::with_origin`],
//! [`Dict::with_notifications`], [`Dict::with_skip_own_events`],
//! [`Dict::with_durable_log`]. Store-wide defaults are set with
//! [`Store::builder`] ([`StoreBuilder`]). For mixed values shared with other
//! languages use `ciborium::Value`: integer map keys, byte strings and big
//! integers have no `serde_json::Value` form.
//!
//! # Subscriptions
//!
//! Every write publishes its change in the same atomic unit, so any process
//! can follow any namespace: [`Dict::subscribe`] (a glob on the key),
//! [`Dict::subscribe_key`], [`Field::subscribe`] and [`View::subscribe`]
//! return a [`Subscription`], a `Stream` of [`Event`]s (or [`ViewEvent`]s)
//! carrying a [`Change`]: `Set(value)`, `Deleted`, `Expired`, `TtlChanged`,
//! `Cleared`, or `Gap` when the subscription reconnected and events may have
//! been missed (re-read what you depend on). A subscription never ends by
//! itself; dropping it unsubscribes.
//!
//! ```
//! use futures::StreamExt;
//! use redis_pydict::{Change, Store};
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let server = redis_pydict_test::RedisServer::start();
//! # let url = server.url();
//! let store = Store::connect(&url).await?;
//! let d = store.dict::<String, u32>("jobs")?;
//! let mut changes = d.subscribe("job:*").await?;
//! d.set("job:1", &7).await?;                          // any process may write
//! let event = changes.next().await.expect("a subscription never ends")?;
//! assert_eq!(event.key.as_deref(), Some("job:1"));
//! assert_eq!(event.change, Change::Set(7));
//! # Ok(()) }
//! ```
//!
//! # Durable logs
//!
//! A dict or view made with `with_durable_log(max_len)` also appends every
//! change to a capped Redis Stream, `{ns}#log`. [`Dict::subscribe_durable`]
//! and [`View::subscribe_durable`] replay it from a [`StartFrom`] and follow
//! it live, yielding each change with its [`LogId`]: persist the id of the
//! last change handled (`id.to_string()`) and resume with
//! `StartFrom::After(id)`. Changes lost before they were read (the cap
//! exceeded, the log deleted or lost) are reported as `Change::Gap`. The
//! first logged write declares the log in the namespace metadata
//! (`{ns}#meta`, field [`LOG_MAXLEN_FIELD`]); from then on every writer of
//! the namespace appends to it, with or without a log of its own
//! ([`Dict::durable_log_declared`]; WIRE.md §8 for other languages).
//!
//! ```
//! use futures::StreamExt;
//! use redis_pydict::{StartFrom, Store};
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let server = redis_pydict_test::RedisServer::start();
//! # let url = server.url();
//! let store = Store::connect(&url).await?;
//! let orders = store.dict::<String, u32>("orders")?.with_durable_log(100_000);
//! orders.set("a", &1).await?;
//! let mut log = orders.subscribe_durable(StartFrom::Beginning).await?;
//! let (id, event) = log.next().await.expect("a subscription never ends")?;
//! assert_eq!(event.key.as_deref(), Some("a"));
//! let saved = id.to_string();                         // persist it; later: saved.parse()?
//! # let _ = saved;
//! # Ok(()) }
//! ```
//!
//! # Cluster
//!
//! [`Store::connect_cluster`] takes the node URLs; everything else is
//! unchanged. Every key of namespace `ns` carries the hash tag `{ns}`, so a
//! namespace lives in one slot and everything atomic on one server stays
//! atomic on a cluster; namespaces spread over the masters. Writes are script
//! calls there (redis-rs follows MOVED/ASK for a command, not inside an
//! aborted transaction), and optimistic updates use a compare-and-set script.
//! [`Store::from_client`] and [`Store::from_cluster_client`] wrap a client you
//! built yourself.
//!
//! ```no_run
//! // no_run: needs a Redis Cluster (the workspace's tests/cluster.rs runs one).
//! # async fn demo() -> redis_pydict::Result<()> {
//! let store = redis_pydict::Store::connect_cluster(["redis://10.0.0.1:7000", "redis://10.0.0.2:7000"]).await?;
//! store.dict::<String, u32>("jobs")?.set("job:1", &1).await?;
//! # Ok(()) }
//! ```
//!
//! # Blocking
//!
//! [`blocking::Store`], [`blocking::Dict`] and blocking views
//! (`Config::view(&blocking_store, "prod")`) mirror the async API with plain
//! methods, iterators and [`blocking::Subscription`] (`recv`, `recv_timeout`,
//! `try_recv`, `Iterator`), on top of the same async core. Do not call them
//! from inside an async runtime.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let server = redis_pydict_test::RedisServer::start();
//! # let url = server.url();
//! let store = redis_pydict::blocking::Store::connect(&url)?;
//! let d = store.dict::<String, String>("greetings")?;
//! d.set("en", &"hello".to_owned())?;
//! assert_eq!(d.get("en")?.as_deref(), Some("hello"));
//! # Ok(()) }
//! ```
//!
//! # Errors
//!
//! One enum, [`Error`]; every message names what was wrong (the namespace,
//! key, field or expected type), and library code never panics on data from
//! Redis or from callers. [`Error::outcome_unknown`] is true when a request
//! was sent and no reply came, so it may have been applied: idempotent
//! operations (`set`, `delete`, `save`, ...) may be retried, read-modify-write
//! callers (`update_with`, `update`) should re-read first.
//! [`Error::is_connection_error`] without `outcome_unknown` means certainly
//! not applied: retry later. Other errors are about the data or the call.
//!
//! # Wire format
//!
//! Normative and language-neutral (the README has the full text): namespace
//! `ns` (non-empty UTF-8, at most 256 bytes, no `{` or `}`); entry `{ns}:<key>`
//! holding the value's CBOR encoding; index `{ns}#keys`, a sorted set of keys
//! scored by absolute expiry in ms (`inf` for none); events, a CBOR map
//! `{"v": 1, "op", "key", "origin", "value" | "ttl_ms"}` published on
//! `{ns}#ev:<key>` (a clear on `{ns}#ev`); optional durable log `{ns}#log`, a
//! Redis Stream with the same payload in field `e`. The write, its index
//! update, event and log entry are one atomic unit.
//!
//! # Cargo features
//!
//! | feature | default | what it gives |
//! |---|---|---|
//! | `tls` | on | `rediss://` URLs and TLS client certificates, through rustls with the ring provider (installed as the process default only when none is); without it neither rustls nor ring is compiled |
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod blocking;
mod cache;
mod canonical;
mod catalog;
mod codec;
mod connection;
mod dict;
mod durable;
mod error;
mod event;
mod glob;
mod group;
mod key;
mod live;
mod meta;
mod namespace;
pub mod observe;
mod pages;
mod raw;
mod scripts;
mod space;
mod status;
mod store;
mod subscription;
mod view;
#[cfg(test)]
mod wire_vectors;

pub use cache::{CacheStatus, CachedDict, FlushCause, CACHE_CLIENT_NAME};
pub use dict::Dict;
pub use durable::{LogId, ParseLogIdError, StartFrom, LOG_READER_NAME};
pub use error::{Error, Result};
pub use group::{
    Delivery, GroupOptions, GroupSubscription, DEFAULT_CLAIM_IDLE, DEFAULT_DEAD_LETTER_CAP,
    DEFAULT_MAX_DELIVERIES,
};
pub use key::{DictKey, KeyText};
pub use live::{Live, LiveStatus};
pub use meta::LOG_MAXLEN_FIELD;
pub use namespace::{escape_glob, Namespace, MAX_NAMESPACE_LEN};
pub use raw::RawCbor;
pub use redis_pydict_derive::RedisDict;
pub use status::{RepairReport, Ttl};
pub use store::{
    Store, StoreBuilder, StoreConnection, DEFAULT_CLUSTER_RETRIES, DEFAULT_CONNECTION_TIMEOUT,
    DEFAULT_MAX_BATCH, DEFAULT_MAX_UPDATE_ATTEMPTS, DEFAULT_MAX_VALUE_SIZE, DEFAULT_PAGE_SIZE,
    DEFAULT_RECONNECT_RETRIES, DEFAULT_RESPONSE_TIMEOUT, DEFAULT_SUBSCRIPTION_BUFFER_BYTES,
    DEFAULT_SUBSCRIPTION_BUFFER_EVENTS,
};
pub use subscription::{Change, Event, Previous, Subscription};
pub use view::{Async, Field, FieldSpec, Mode, RedisDict, Schema, View, ViewEvent, ViewStore};

/// What code generated by `#[derive(RedisDict)]` reaches, so that user crates
/// need no direct dependency on serde or redis. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::view::internals::private::*;
}
