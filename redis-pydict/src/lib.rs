//! # redis-pydict
//!
//! Shared state for distributed Rust programs, kept in Redis and used like
//! plain Rust data.
//!
//! * [`Dict<K, V>`]: a namespaced, typed dictionary over Redis keys: get, set,
//!   delete, contains, len, iterate, glob matching, bulk update, clear, TTLs,
//!   atomic take, set-if-absent and optimistic read-modify-write. Every write
//!   updates the entry, the namespace index and publishes a change event in
//!   one atomic round trip.
//! * [`Store`]: the self-reconnecting connection dicts are made from.
//! * [`blocking`]: the same API for code without an async runtime.
//!
//! Values are CBOR (RFC 8949) via serde; the wire format is documented in
//! the README so that programs in other languages can share the data.
//!
//! ```no_run
//! # async fn demo() -> redis_pydict::Result<()> {
//! use redis_pydict::Store;
//!
//! let store = Store::connect("redis://127.0.0.1:6379").await?;
//! let d = store.dict::<String, Vec<u32>>("jobs")?;
//! d.set("done", &vec![1, 2, 3]).await?;
//! assert_eq!(d.get("done").await?, Some(vec![1, 2, 3]));
//! let total = d.update_with("done", |v| {
//!     let mut v = v.unwrap_or_default();
//!     v.push(4);
//!     v
//! }).await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod blocking;
mod codec;
mod dict;
mod error;
mod event;
mod key;
mod namespace;
mod scripts;
mod space;
mod store;

pub use dict::Dict;
pub use error::{Error, Result};
pub use event::Op;
pub use key::{DictKey, KeyText};
pub use namespace::{escape_glob, Namespace, MAX_NAMESPACE_LEN};
pub use space::{RepairReport, Ttl};
pub use store::{
    Store, StoreBuilder, DEFAULT_CONNECTION_TIMEOUT, DEFAULT_MAX_UPDATE_ATTEMPTS,
    DEFAULT_MAX_VALUE_SIZE, DEFAULT_PAGE_SIZE, DEFAULT_RECONNECT_RETRIES, DEFAULT_RESPONSE_TIMEOUT,
};
