//! [`Iter`]: a blocking iterator over a stream of the async API.

use futures::stream::{BoxStream, StreamExt};

use super::runtime::Runtime;
use crate::error::Result;

/// A blocking iterator over the entries, keys or values of a dict, paging
/// through the namespace index like the async stream it wraps. On a thread
/// of an async runtime it yields one [`crate::Error::BlockingInAsync`] and ends.
#[must_use = "iterators are lazy and do nothing unless consumed"]
pub struct Iter<T> {
    stream: Option<BoxStream<'static, Result<T>>>,
    runtime: Runtime,
}

impl<T> Iter<T> {
    pub(crate) fn new(stream: BoxStream<'static, Result<T>>, runtime: Runtime) -> Self {
        Iter {
            stream: Some(stream),
            runtime,
        }
    }
}

impl<T> std::fmt::Debug for Iter<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Iter")
            .field("done", &self.stream.is_none())
            .finish()
    }
}

impl<T> Iterator for Iter<T> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Self::Item> {
        let stream = self.stream.as_mut()?;
        match self.runtime.block_on("Iter::next", stream.next()) {
            Ok(item) => item,
            Err(e) => {
                self.stream = None;
                Some(Err(e))
            }
        }
    }
}
