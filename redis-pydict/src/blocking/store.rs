//! [`Store`]: the blocking twin of [`crate::Store`], which it wraps with the
//! runtime every blocking call runs on.

use std::future::Future;

use super::dict::Dict;
use super::runtime::Runtime;
use super::view::Blocking;
use crate::error::Result;
use crate::key::DictKey;
use crate::store::StoreBuilder;
use crate::view::mode::sealed::Sealed;
use crate::view::{RedisDict, View, ViewStore};

/// A blocking [`crate::Store`]: the same connection, reconnecting by itself,
/// and a private runtime its calls run on. Clones share both.
#[derive(Clone, Debug)]
pub struct Store {
    inner: crate::Store,
    runtime: Runtime,
}

impl Store {
    /// Connects to `url` with default settings (see [`crate::Store::connect`]).
    pub fn connect(url: &str) -> Result<Store> {
        Store::connect_with(crate::Store::builder(url))
    }

    /// Connects to a Redis Cluster (see [`crate::Store::connect_cluster`]).
    pub fn connect_cluster<I>(nodes: I) -> Result<Store>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        Store::connect_with(crate::Store::cluster_builder(nodes))
    }

    /// A store over your own `redis::Client` (see [`crate::Store::from_client`]).
    pub fn from_client(client: redis::Client) -> Result<Store> {
        Store::connect_with(crate::Store::client_builder(client))
    }

    /// A store over your own cluster client (see [`crate::Store::from_cluster_client`]).
    pub fn from_cluster_client(client: redis::cluster::ClusterClient) -> Result<Store> {
        Store::connect_with(crate::Store::cluster_client_builder(client))
    }

    /// Connects with a configured [`StoreBuilder`] (single server or cluster).
    pub fn connect_with(builder: StoreBuilder) -> Result<Store> {
        let runtime = Runtime::new("Store::connect")?;
        let inner = runtime.run("Store::connect", builder.connect())?;
        Ok(Store { inner, runtime })
    }

    /// A typed dict over `namespace` (validated here, before any I/O).
    pub fn dict<K: DictKey, V>(&self, namespace: &str) -> Result<Dict<K, V>> {
        Ok(Dict::new(self.inner.dict(namespace)?, self.runtime.clone()))
    }

    /// The async store underneath (for use on an async runtime).
    pub fn as_async(&self) -> &crate::Store {
        &self.inner
    }

    /// Runs a future of the async API to completion on this store's runtime.
    /// On a thread of an async runtime, [`crate::Error::BlockingInAsync`]
    /// instead (await the future there).
    pub fn block_on<F: Future>(&self, future: F) -> Result<F::Output> {
        self.runtime.block_on("Store::block_on", future)
    }

    /// Round-trips a PING.
    pub fn ping(&self) -> Result<()> {
        self.runtime.run("Store::ping", self.inner.ping())
    }
}

impl Sealed for Store {}

/// A blocking store opens blocking views: `Config::view(&blocking_store, "prod")`.
impl ViewStore for Store {
    type Mode = Blocking;

    fn __open<T: RedisDict>(&self, instance: &str) -> Result<T::View<Blocking>> {
        let space = self.inner.space(&T::SCHEMA.namespace_name(instance)?)?;
        Ok(View::<T>::from_space(space).open::<Blocking>(self.runtime.clone()))
    }
}
