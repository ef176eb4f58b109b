//! The private tokio runtime every blocking call runs on, and the guard that
//! refuses blocking on a thread of an async runtime (where tokio would panic,
//! or the call would stall the runtime's other tasks).

use std::future::Future;
use std::sync::Arc;

use crate::error::{Error, Result};

/// The runtime shared by a blocking store and everything made from it.
/// Shut down (without waiting) when the last handle is dropped, so that
/// dropping one is never an error, whatever thread it happens on.
#[derive(Clone, Debug)]
#[doc(hidden)]
pub struct Runtime {
    owned: Arc<Owned>,
}

#[derive(Debug)]
struct Owned(Option<tokio::runtime::Runtime>);

impl Drop for Owned {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            // A plain drop would block for the runtime's threads, which tokio
            // forbids (with a panic) on a thread of another runtime.
            runtime.shutdown_background();
        }
    }
}

/// Refuses a blocking call made on a thread of a tokio runtime.
pub(crate) fn check(operation: &'static str) -> Result<()> {
    match tokio::runtime::Handle::try_current() {
        Ok(_) => Err(Error::BlockingInAsync { operation }),
        Err(_) => Ok(()),
    }
}

impl Runtime {
    /// A new runtime (one worker thread), after checking that the caller may block.
    pub(crate) fn new(operation: &'static str) -> Result<Runtime> {
        check(operation)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("redis-pydict")
            .enable_all()
            .build()
            .map_err(Error::Runtime)?;
        Ok(Runtime {
            owned: Arc::new(Owned(Some(runtime))),
        })
    }

    /// Runs `future` to completion, blocking the calling thread; on a thread
    /// of an async runtime, [`Error::BlockingInAsync`] instead, before
    /// anything is done.
    pub(crate) fn block_on<F: Future>(
        &self,
        operation: &'static str,
        future: F,
    ) -> Result<F::Output> {
        check(operation)?;
        match &self.owned.0 {
            Some(runtime) => Ok(runtime.block_on(future)),
            // Only `Owned::drop` empties it, and then no handle is left.
            None => Err(Error::Runtime(std::io::Error::other(
                "the blocking runtime is shut down",
            ))),
        }
    }

    /// [`Runtime::block_on`] of a fallible future.
    pub(crate) fn run<T>(
        &self,
        operation: &'static str,
        future: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        self.block_on(operation, future)?
    }
}
