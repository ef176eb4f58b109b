//! [`Subscription`]: a blocking receiver of an async subscription's items.

use std::time::Duration;

use super::runtime::Runtime;
use crate::error::Result;

/// A blocking [`crate::Subscription`]: receive with a deadline, poll, or
/// iterate. Dropping it unsubscribes.
#[must_use = "dropping a subscription unsubscribes"]
pub struct Subscription<T> {
    inner: crate::Subscription<T>,
    runtime: Runtime,
}

impl<T> std::fmt::Debug for Subscription<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

impl<T> Subscription<T> {
    pub(crate) fn new(inner: crate::Subscription<T>, runtime: Runtime) -> Self {
        Subscription { inner, runtime }
    }

    /// The async subscription underneath.
    pub fn as_async(&mut self) -> &mut crate::Subscription<T> {
        &mut self.inner
    }

    /// The next item, waiting as long as it takes. On a thread of an async
    /// runtime, an [`crate::Error::BlockingInAsync`] item instead.
    pub fn recv(&mut self) -> Option<Result<T>> {
        let inner = &mut self.inner;
        match self.runtime.block_on("Subscription::recv", inner.recv()) {
            Ok(item) => item,
            Err(e) => Some(Err(e)),
        }
    }

    /// The next item, or `None` if none arrives within `timeout`.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Option<Result<T>> {
        let inner = &mut self.inner;
        let waited = self.runtime.block_on("Subscription::recv_timeout", async {
            tokio::time::timeout(timeout, inner.recv()).await
        });
        match waited {
            Ok(Ok(item)) => item,
            Ok(Err(_elapsed)) => None,
            Err(e) => Some(Err(e)),
        }
    }

    /// The next item if one is already waiting (never blocks).
    pub fn try_recv(&mut self) -> Option<Result<T>> {
        self.inner.try_recv()
    }
}

impl<T> Iterator for Subscription<T> {
    type Item = Result<T>;

    /// Waits for the next item; never `None` while the subscription lives.
    fn next(&mut self) -> Option<Self::Item> {
        self.recv()
    }
}
