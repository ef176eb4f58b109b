//! `StoreConnection`: the shared connection of a store, to one server or a cluster.

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{Cmd, FromRedisValue, Pipeline, RedisFuture, RedisResult, Value};

/// The shared, self-reconnecting connection of a [`crate::Store`]: a redis-rs
/// `ConnectionManager` for one server, a cluster connection for a cluster.
/// Implements redis-rs's async `ConnectionLike`, so any redis-rs command or
/// pipeline can be sent through it. Cheap to clone.
///
/// ```no_run
/// # async fn demo(store: redis_pydict::Store) -> redis::RedisResult<()> {
/// let mut conn = store.connection();
/// let n: u64 = redis::cmd("DBSIZE").query_async(&mut conn).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct StoreConnection(Inner);

#[derive(Clone)]
enum Inner {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl std::fmt::Debug for StoreConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.0 {
            Inner::Single(_) => "StoreConnection(single server)",
            Inner::Cluster(_) => "StoreConnection(cluster)",
        })
    }
}

impl StoreConnection {
    pub(crate) fn single(conn: ConnectionManager) -> Self {
        StoreConnection(Inner::Single(conn))
    }

    pub(crate) fn cluster(conn: ClusterConnection) -> Self {
        StoreConnection(Inner::Cluster(conn))
    }

    /// Runs `cmd` on the server holding `key`: the server itself, or on a
    /// cluster the master of the key's slot (for commands such as SCAN whose
    /// routing redis-rs cannot infer).
    pub(crate) async fn query_on_node_of<T: FromRedisValue>(
        &mut self,
        cmd: &Cmd,
        key: &str,
    ) -> RedisResult<T> {
        match &mut self.0 {
            Inner::Single(conn) => cmd.query_async(conn).await,
            Inner::Cluster(conn) => {
                let route = Route::with_key(key.as_bytes(), SlotAddr::Master);
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route));
                let reply = conn.route_command(cmd.clone(), routing).await?;
                Ok(redis::from_redis_value(reply)?)
            }
        }
    }

    /// The address (host, port) of every master: the server itself on one
    /// server (`None`), each cluster master's otherwise.
    pub(crate) async fn masters(&mut self) -> RedisResult<Option<Vec<(String, u16)>>> {
        if let Inner::Single(_) = self.0 {
            return Ok(None);
        }
        let ranges: Vec<Value> = redis::cmd("CLUSTER").arg("SLOTS").query_async(self).await?;
        let mut masters = Vec::new();
        for range in ranges {
            // [start, end, [host, port, id, ...] (master), replicas...]
            let Value::Array(parts) = range else { continue };
            let Some(master) = parts.get(2) else { continue };
            let master: Vec<Value> = redis::from_redis_value_ref(master)?;
            if let (Some(host), Some(port)) = (master.first(), master.get(1)) {
                let address: (String, u16) = (
                    redis::from_redis_value_ref(host)?,
                    redis::from_redis_value_ref(port)?,
                );
                if !masters.contains(&address) {
                    masters.push(address);
                }
            }
        }
        Ok(Some(masters))
    }

    /// Runs `cmd` on the cluster node at `address` (on one server: the server).
    pub(crate) async fn query_on_address<T: FromRedisValue>(
        &mut self,
        cmd: &Cmd,
        address: &(String, u16),
    ) -> RedisResult<T> {
        match &mut self.0 {
            Inner::Single(conn) => cmd.query_async(conn).await,
            Inner::Cluster(conn) => {
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                    host: address.0.clone(),
                    port: address.1,
                });
                let reply = conn.route_command(cmd.clone(), routing).await?;
                Ok(redis::from_redis_value(reply)?)
            }
        }
    }

    /// The address (host, port) of the cluster master serving `key`'s slot.
    pub(crate) async fn master_of(&mut self, key: &str) -> RedisResult<(String, u16)> {
        let slot: i64 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query_async(self)
            .await?;
        let ranges: Vec<Value> = redis::cmd("CLUSTER").arg("SLOTS").query_async(self).await?;
        for range in ranges {
            // [start, end, [host, port, id, ...] (master), replicas...]
            let Value::Array(parts) = range else { continue };
            let (Some(start), Some(end), Some(master)) =
                (parts.first(), parts.get(1), parts.get(2))
            else {
                continue;
            };
            let (start, end): (i64, i64) = (
                redis::from_redis_value_ref(start)?,
                redis::from_redis_value_ref(end)?,
            );
            if (start..=end).contains(&slot) {
                let master: Vec<Value> = redis::from_redis_value_ref(master)?;
                if let (Some(host), Some(port)) = (master.first(), master.get(1)) {
                    return Ok((
                        redis::from_redis_value_ref(host)?,
                        redis::from_redis_value_ref(port)?,
                    ));
                }
            }
        }
        Err(
            std::io::Error::other(format!("no cluster master serves slot {slot} (of {key:?})"))
                .into(),
        )
    }
}

// On one server, a request that fails because the connection could not be
// made (refused: nothing was sent) is tried once more. redis-rs's
// ConnectionManager hands every request the outcome of its latest reconnection
// attempt, and starts a new attempt only when a request meets a failed one:
// without this, the first request after a long outage would fail although the
// server is back. The second try waits for that new attempt.
impl ConnectionLike for StoreConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match &mut self.0 {
            Inner::Single(conn) => Box::pin(async move {
                match conn.send_packed_command(cmd).await {
                    Err(e) if e.is_connection_refusal() => conn.send_packed_command(cmd).await,
                    result => result,
                }
            }),
            Inner::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match &mut self.0 {
            Inner::Single(conn) => Box::pin(async move {
                match conn.send_packed_commands(pipeline, offset, count).await {
                    Err(e) if e.is_connection_refusal() => {
                        conn.send_packed_commands(pipeline, offset, count).await
                    }
                    result => result,
                }
            }),
            Inner::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match &self.0 {
            Inner::Single(conn) => conn.get_db(),
            Inner::Cluster(conn) => conn.get_db(),
        }
    }
}
