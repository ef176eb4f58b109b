//! [`GroupSubscription`]: a blocking receiver of a consumer group's
//! deliveries, and the blocking acknowledgement of a [`crate::Delivery`].

use std::time::Duration;

use super::runtime::{self, Runtime};
use super::subscription;
use crate::error::Result;
use crate::group::{self, Delivery};

/// A blocking [`crate::GroupSubscription`]: receive with a deadline, poll,
/// or iterate; acknowledge with [`Delivery::ack_blocking`] or by dropping
/// the delivery. Dropping it stops reading (see the async twin).
#[must_use = "dropping a subscription stops reading"]
pub struct GroupSubscription<T> {
    inner: crate::GroupSubscription<T>,
    runtime: Runtime,
}

impl<T> std::fmt::Debug for GroupSubscription<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

impl<T> GroupSubscription<T> {
    pub(crate) fn new(inner: crate::GroupSubscription<T>, runtime: Runtime) -> Self {
        GroupSubscription { inner, runtime }
    }

    /// The async subscription underneath.
    pub fn as_async(&mut self) -> &mut crate::GroupSubscription<T> {
        &mut self.inner
    }

    /// The next delivery, waiting as long as it takes. On a thread of an
    /// async runtime, an [`crate::Error::BlockingInAsync`] item instead.
    pub fn recv(&mut self) -> Option<Result<Delivery<T>>> {
        subscription::recv(&self.runtime, "GroupSubscription::recv", &mut self.inner)
    }

    /// The next delivery, or `None` if none arrives within `timeout`.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Option<Result<Delivery<T>>> {
        let operation = "GroupSubscription::recv_timeout";
        subscription::recv_timeout(&self.runtime, operation, &mut self.inner, timeout)
    }

    /// The next delivery if one is already waiting (never blocks).
    pub fn try_recv(&mut self) -> Option<Result<Delivery<T>>> {
        self.inner.try_recv()
    }

    /// See [`crate::GroupSubscription::retire_consumer`].
    pub fn retire_consumer(&self, consumer: &str) -> Result<u64> {
        self.runtime.run(
            "GroupSubscription::retire_consumer",
            self.inner.retire_consumer(consumer),
        )
    }

    /// See [`crate::GroupSubscription::flush_acks`].
    pub fn flush_acks(&self) -> Result<()> {
        runtime::check("GroupSubscription::flush_acks")?;
        group::ack_outcome(self.inner.flush_request().blocking_recv())
    }
}

impl<T> Iterator for GroupSubscription<T> {
    type Item = Result<Delivery<T>>;

    /// Waits for the next delivery; `None` only after an error that ends
    /// the subscription.
    fn next(&mut self) -> Option<Self::Item> {
        self.recv()
    }
}

impl<T> Delivery<T> {
    /// [`Delivery::ack`] for code without an async runtime: acknowledges the
    /// change and blocks until the server has the `XACK`. On a thread of an
    /// async runtime, [`crate::Error::BlockingInAsync`] instead, and the
    /// change is left unacknowledged (as by [`Delivery::release`]).
    pub fn ack_blocking(mut self) -> Result<()> {
        if let Err(e) = runtime::check("Delivery::ack_blocking") {
            self.release();
            return Err(e);
        }
        match self.ack_request() {
            Some(done) => group::ack_outcome(done.blocking_recv()),
            None => Ok(()),
        }
    }
}
