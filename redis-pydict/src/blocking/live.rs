//! [`Live`]: the blocking mirror of a live view ([`crate::Live`]).

use std::sync::Arc;
use std::time::Duration;

use super::runtime::Runtime;
use super::view::{Field, View};
use crate::error::Result;
use crate::live::LiveStatus;
use crate::view::RedisDict;

/// A live view for plain threads (see [`crate::Live`], which it wraps): a
/// local snapshot kept current by a task on the store's runtime. [`Live::get`]
/// does no I/O and never blocks for long; [`Live::wait_changed`] and
/// [`Live::wait_fresh`] block with a timeout.
///
/// ```
/// use std::time::Duration;
/// use redis_pydict::{blocking, RedisDict};
///
/// #[derive(RedisDict)]
/// struct Flags {
///     #[redis_dict(default)]
///     beta: bool,
/// }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let server = redis_pydict_test::RedisServer::start();
/// let store = blocking::Store::connect(&server.url())?;
/// let flags = Flags::view(&store, "web")?;
/// let mut live = flags.live()?;
/// assert!(!live.get().beta); // no I/O
/// flags.beta.set(&true)?; // any writer
/// while !live.get().beta {
///     assert!(live.wait_changed(Duration::from_secs(5))?, "no change within 5 s");
/// }
/// # Ok(()) }
/// ```
pub struct Live<T> {
    inner: crate::Live<T>,
    runtime: Runtime,
}

impl<T> Clone for Live<T> {
    fn clone(&self) -> Self {
        Live {
            inner: self.inner.clone(),
            runtime: self.runtime.clone(),
        }
    }
}

impl<T> std::fmt::Debug for Live<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

impl<T: RedisDict> Live<T> {
    pub(crate) fn new(inner: crate::Live<T>, runtime: Runtime) -> Self {
        Live { inner, runtime }
    }

    /// The async live view underneath.
    pub fn as_async(&mut self) -> &mut crate::Live<T> {
        &mut self.inner
    }

    /// See [`crate::Live::get`]: the current snapshot, without I/O.
    pub fn get(&self) -> Arc<T> {
        self.inner.get()
    }

    /// See [`crate::Live::seq`].
    pub fn seq(&self) -> u64 {
        self.inner.seq()
    }

    /// See [`crate::Live::status`].
    pub fn status(&self) -> LiveStatus {
        self.inner.status()
    }

    /// Waits up to `timeout` for the snapshot or the status to change (see
    /// [`crate::Live::changed`]): true if it changed, false on timeout.
    pub fn wait_changed(&mut self, timeout: Duration) -> Result<bool> {
        let inner = &mut self.inner;
        self.runtime.run("Live::wait_changed", async {
            match tokio::time::timeout(timeout, inner.changed()).await {
                Ok(changed) => changed.map(|()| true),
                Err(_elapsed) => Ok(false),
            }
        })
    }

    /// Waits up to `timeout` until the status is fresh (see
    /// [`crate::Live::fresh`]): true if it is.
    pub fn wait_fresh(&self, timeout: Duration) -> Result<bool> {
        self.runtime
            .block_on("Live::wait_fresh", self.inner.fresh_within(timeout))
    }

    /// See [`crate::Live::sync`].
    pub fn sync(&self) -> Result<()> {
        self.runtime.run("Live::sync", self.inner.sync())
    }

    /// See [`crate::Live::save`]: when it returns, the snapshot shows `value`
    /// or a later state.
    pub fn save(&self, value: &T) -> Result<()> {
        self.runtime.run("Live::save", self.inner.save(value))
    }

    /// See [`crate::Live::update`].
    pub fn update<R>(&self, f: impl FnMut(&mut T) -> R) -> Result<R> {
        self.runtime.run("Live::update", self.inner.update(f))
    }

    /// See [`crate::Live::set`]: sets one field (`flags.beta`), then syncs.
    pub fn set<F: serde::Serialize + serde::de::DeserializeOwned>(
        &self,
        field: &Field<F>,
        value: &F,
    ) -> Result<()> {
        self.runtime
            .run("Live::set", self.inner.set(field.as_async(), value))
    }
}

impl<T: RedisDict + Send + Sync + 'static> View<T> {
    /// See [`crate::View::live`]: a live view whose snapshot is read without I/O.
    pub fn live(&self) -> Result<Live<T>> {
        let inner = self.runtime().run("View::live", self.as_async().live())?;
        Ok(Live::new(inner, self.runtime().clone()))
    }
}
