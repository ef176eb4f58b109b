//! The blocking API, for code without an async runtime: [`Store`], [`Dict`],
//! derived views ([`View`], [`Field`]), [`Subscription`]s and [`Iter`]ators
//! with plain methods. Like reqwest's `blocking`, it wraps the async API and
//! never rebuilds it: each blocking type holds its async twin (reachable with
//! `as_async`) and runs every call to completion on the store's private
//! tokio runtime, so settings, write path, events and errors are the async
//! ones by construction.
//!
//! A blocking call made on a thread of an async (tokio) runtime does nothing
//! and returns [`crate::Error::BlockingInAsync`]: blocking there would stall
//! the runtime (tokio forbids it with a panic). Use the async API on such
//! threads (`as_async()` gives the twin of any blocking handle), or run the
//! blocking code on a thread of your own (`std::thread::spawn`).
//!
//! ```no_run
//! # fn demo() -> redis_pydict::Result<()> {
//! use redis_pydict::{blocking, RedisDict};
//!
//! #[derive(RedisDict, Debug)]
//! struct Counter {
//!     hits: u64,
//!     #[redis_dict(default)]
//!     misses: u64,
//! }
//!
//! let store = blocking::Store::connect("redis://127.0.0.1/")?;
//! let d = store.dict::<String, i64>("counters")?;
//! d.set("a", &1)?;
//! for item in d.items() {
//!     let (key, value) = item?;
//!     println!("{key} = {value}");
//! }
//!
//! // A view opened on a blocking store is a blocking view.
//! let counter = Counter::view(&store, "home")?;
//! counter.hits.set(&1)?;
//! counter.misses.update(|m| *m += 1)?;
//! let snapshot: Counter = counter.load()?;
//! counter.update(|c: &mut Counter| c.hits += 1)?;
//! # Ok(()) }
//! ```

mod cache;
mod dict;
mod group;
mod iter;
mod live;
mod runtime;
mod store;
mod subscription;
mod view;

pub use cache::CachedDict;
pub use dict::Dict;
pub use group::GroupSubscription;
pub use iter::Iter;
pub use live::Live;
#[doc(hidden)]
pub use runtime::Runtime;
pub use store::Store;
pub use subscription::Subscription;
pub use view::{Blocking, Field, View};
