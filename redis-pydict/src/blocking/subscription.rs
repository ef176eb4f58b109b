//! [`Subscription`]: a blocking receiver of an async subscription's items.

use std::time::Duration;

use futures::{Stream, StreamExt};

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
        recv(&self.runtime, "Subscription::recv", &mut self.inner)
    }

    /// The next item, or `None` if none arrives within `timeout`.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Option<Result<T>> {
        let operation = "Subscription::recv_timeout";
        recv_timeout(&self.runtime, operation, &mut self.inner, timeout)
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

/// The next item of an async subscription, blocking for it; on a thread of
/// an async runtime, an [`crate::Error::BlockingInAsync`] item instead.
pub(crate) fn recv<S, T>(
    runtime: &Runtime,
    operation: &'static str,
    stream: &mut S,
) -> Option<Result<T>>
where
    S: Stream<Item = Result<T>> + Unpin,
{
    match runtime.block_on(operation, stream.next()) {
        Ok(item) => item,
        Err(e) => Some(Err(e)),
    }
}

/// [`recv`], or `None` if no item arrives within `timeout`.
pub(crate) fn recv_timeout<S, T>(
    runtime: &Runtime,
    operation: &'static str,
    stream: &mut S,
    timeout: Duration,
) -> Option<Result<T>>
where
    S: Stream<Item = Result<T>> + Unpin,
{
    let waited = runtime.block_on(operation, async {
        tokio::time::timeout(timeout, stream.next()).await
    });
    match waited {
        Ok(Ok(item)) => item,
        Ok(Err(_elapsed)) => None,
        Err(e) => Some(Err(e)),
    }
}
