//! The raw redis-rs side: connections of the same kind and settings as the
//! store's, and the baselines "done well" (pipelines, MGET batches,
//! pre-encoded values) that each workload measures beside redis-pydict.

use std::hint::black_box;
use std::time::Instant;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{
    Client, Cmd, ConnectionInfo, FromRedisValue, IntoConnectionInfo, Pipeline, ProtocolVersion,
    RedisFuture, RedisResult, Value,
};

use crate::BoxResult;

/// Prefix of the raw redis-rs keys, kept apart from the dicts' namespaces.
/// The hash tag keeps them in one cluster slot, as a namespace's entries are
/// (so raw pipelines stay legal on a cluster and do the same work on one node).
pub const RAW: &str = "{bench-raw}:";
/// Channel prefix of the raw side's events (`{bench-raw}#ev:<key>`), shaped
/// like a namespace's (`{ns}#ev:<key>`).
pub const RAW_CHANNEL: &str = "{bench-raw}#ev";

/// The raw side's event channel of `key` and the command publishing to it:
/// on one server PUBLISH to `{bench-raw}#ev:<key>`; on a cluster, sharded
/// pub/sub as the library uses there, SPUBLISH to `{bench-raw}#ev`.
pub fn raw_event_channel(cluster: bool, key: &str) -> (&'static str, String) {
    if cluster {
        ("SPUBLISH", RAW_CHANNEL.to_owned())
    } else {
        ("PUBLISH", format!("{RAW_CHANNEL}:{key}"))
    }
}
/// The raw side's index, shaped like a namespace's (`{ns}#keys`).
pub const RAW_INDEX: &str = "{bench-raw}#keys";
/// Prefix of the filler keys of the big-database workload.
pub const FILLER: &str = "bench-filler:";

/// `url`'s connection info, RESP3 unless the URL says otherwise (as the store does).
pub fn resp3_info(url: &str) -> RedisResult<ConnectionInfo> {
    let mut info = url.into_connection_info()?;
    if !url.contains("protocol=") {
        let redis = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        info = info.set_redis_settings(redis);
    }
    Ok(info)
}

/// A raw redis-rs connection of the same type and settings as the store's:
/// `ConnectionManager`, RESP3, 30 s response timeout.
pub async fn raw_connection(url: &str) -> BoxResult<ConnectionManager> {
    let client = Client::open(resp3_info(url)?)?;
    let config = ConnectionManagerConfig::new()
        .set_response_timeout(Some(redis_pydict::DEFAULT_RESPONSE_TIMEOUT))
        .set_connection_timeout(Some(redis_pydict::DEFAULT_CONNECTION_TIMEOUT));
    Ok(ConnectionManager::new_with_config(client, config).await?)
}

/// A raw redis-rs cluster connection of the same settings as the store's:
/// RESP3, 30 s response timeout.
pub async fn raw_cluster_connection(urls: &[String]) -> BoxResult<ClusterConnection> {
    let infos = urls
        .iter()
        .map(|u| u.as_str().into_connection_info())
        .collect::<RedisResult<Vec<_>>>()?;
    let client = ClusterClientBuilder::new(infos)
        .use_protocol(ProtocolVersion::RESP3)
        .response_timeout(redis_pydict::DEFAULT_RESPONSE_TIMEOUT)
        .connection_timeout(redis_pydict::DEFAULT_CONNECTION_TIMEOUT)
        .build()?;
    Ok(client.get_async_connection().await?)
}

/// The raw side's connection: a `ConnectionManager` on one server, redis-rs's
/// async cluster connection on a cluster. Cheap to clone.
#[derive(Clone)]
pub enum RawConn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for RawConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            RawConn::Single(conn) => conn.req_packed_command(cmd),
            RawConn::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            RawConn::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            RawConn::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RawConn::Single(conn) => conn.get_db(),
            RawConn::Cluster(conn) => conn.get_db(),
        }
    }
}

impl RawConn {
    /// Runs `cmd` on the server holding `key`: on a cluster the master of its
    /// slot (for SCAN, whose routing redis-rs cannot infer).
    pub async fn query_on_node_of<T: FromRedisValue>(
        &mut self,
        cmd: &Cmd,
        key: &str,
    ) -> BoxResult<T> {
        match self {
            RawConn::Single(conn) => Ok(cmd.query_async(conn).await?),
            RawConn::Cluster(conn) => {
                let route = Route::with_key(key.as_bytes(), SlotAddr::Master);
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route));
                let reply = conn.route_command(cmd.clone(), routing).await?;
                Ok(redis::from_redis_value(reply)?)
            }
        }
    }

    /// Runs a (non-atomic) pipeline on the server holding `key`.
    pub async fn pipeline_on_node_of(
        &mut self,
        pipe: &Pipeline,
        key: &str,
    ) -> BoxResult<Vec<Value>> {
        match self {
            RawConn::Single(conn) => Ok(pipe.query_async(conn).await?),
            RawConn::Cluster(conn) => {
                let route = Route::with_key(key.as_bytes(), SlotAddr::Master);
                Ok(conn
                    .route_pipeline(
                        pipe.clone(),
                        0,
                        pipe.len(),
                        SingleNodeRoutingInfo::SpecificNode(route),
                    )
                    .await?)
            }
        }
    }

    /// Runs `cmd` on one server (any node of a cluster).
    pub async fn query_one_node<T: FromRedisValue>(&mut self, cmd: &Cmd) -> BoxResult<T> {
        match self {
            RawConn::Single(conn) => Ok(cmd.query_async(conn).await?),
            RawConn::Cluster(conn) => {
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random);
                let reply = conn.route_command(cmd.clone(), routing).await?;
                Ok(redis::from_redis_value(reply)?)
            }
        }
    }
}

/// The change event that `Dict::set` publishes (WIRE.md §6): the CBOR map
/// `{"v": 1, "op": "set", "key": key, "origin": null, "value": <the
/// value's CBOR item>, "seq": seq}`, with a sequence number of the width
/// the benchmark's own writes reach ([`RAW_SEQ`]). The raw side publishes
/// these very bytes (checked against a real event by the events workload).
pub fn event_payload(key: &str, value: &[u8]) -> Vec<u8> {
    event_payload_seq(key, value, RAW_SEQ)
}

/// The sequence number in the raw side's payloads: the benchmark's writes
/// number their events in the hundreds of thousands and millions, which
/// CBOR encodes in 5 bytes, like this one.
pub const RAW_SEQ: u64 = 1_000_000;

/// [`event_payload`] with the sequence number `seq`.
pub fn event_payload_seq(key: &str, value: &[u8], seq: u64) -> Vec<u8> {
    fn text(out: &mut Vec<u8>, s: &str) {
        let n = s.len();
        if n < 24 {
            out.push(0x60 | n as u8);
        } else if n < 256 {
            out.extend_from_slice(&[0x78, n as u8]);
        } else {
            out.push(0x79);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        out.extend_from_slice(s.as_bytes());
    }
    let mut out = Vec::with_capacity(40 + key.len() + value.len());
    out.push(0xa6); // a map of 6 pairs
    text(&mut out, "v");
    out.push(0x01);
    text(&mut out, "op");
    text(&mut out, "set");
    text(&mut out, "key");
    text(&mut out, key);
    text(&mut out, "origin");
    out.push(0xf6); // null
    text(&mut out, "value");
    out.extend_from_slice(value);
    text(&mut out, "seq");
    match seq {
        0..24 => out.push(seq as u8),
        24..256 => out.extend_from_slice(&[0x18, seq as u8]),
        256..65_536 => {
            out.push(0x19);
            out.extend_from_slice(&(seq as u16).to_be_bytes());
        }
        65_536..4_294_967_296 => {
            out.push(0x1a);
            out.extend_from_slice(&(seq as u32).to_be_bytes());
        }
        _ => {
            out.push(0x1b);
            out.extend_from_slice(&seq.to_be_bytes());
        }
    }
    out
}

/// Raw redis-rs "done well": SCAN MATCH with COUNT = `batch`, each round trip
/// carrying the MGET of the previous batch together with the next SCAN (on a
/// cluster, on the node of the pattern's hash tag). Hands each entry to `f`.
pub async fn raw_scan_mget_each(
    conn: &mut RawConn,
    pattern: &str,
    batch: usize,
    mut f: impl FnMut(String, Vec<u8>) -> BoxResult<()>,
) -> BoxResult<()> {
    let mut cursor: u64 = 0;
    let mut started = false;
    let mut pending: Vec<String> = Vec::new();
    loop {
        let scan_more = !started || cursor != 0;
        if !scan_more && pending.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        if !pending.is_empty() {
            pipe.cmd("MGET").arg(&pending);
        }
        if scan_more {
            pipe.cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(batch);
        }
        let replies = conn.pipeline_on_node_of(&pipe, pattern).await?;
        let mut replies = replies.into_iter();
        if !pending.is_empty() {
            let values: Vec<Option<Vec<u8>>> =
                redis::from_redis_value(replies.next().unwrap_or(Value::Nil))?;
            for (k, v) in pending.drain(..).zip(values) {
                if let Some(v) = v {
                    f(k, v)?;
                }
            }
        }
        if scan_more {
            let (next, keys): (u64, Vec<String>) =
                redis::from_redis_value(replies.next().unwrap_or(Value::Nil))?;
            started = true;
            cursor = next;
            pending = keys;
        }
    }
}

/// [`raw_scan_mget_each`], collected.
pub async fn raw_scan_mget(
    conn: &mut RawConn,
    pattern: &str,
    batch: usize,
) -> BoxResult<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    raw_scan_mget_each(conn, pattern, batch, |k, v| {
        out.push((k, v));
        Ok(())
    })
    .await?;
    Ok(out)
}

/// SCAN MATCH `pattern` (on a cluster, on the node of the pattern's hash tag)
/// and UNLINK what it finds, 10,000 keys a round trip.
pub async fn unlink_matching(raw: &mut RawConn, pattern: &str) -> BoxResult<()> {
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<Vec<u8>>) = raw
            .query_on_node_of(
                redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(pattern)
                    .arg("COUNT")
                    .arg(10_000),
                pattern,
            )
            .await?;
        if !keys.is_empty() {
            redis::cmd("UNLINK")
                .arg(keys)
                .query_async::<()>(raw)
                .await?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}

/// Fills the database up to `count` filler keys (`DEBUG POPULATE` where the
/// server allows it, else pipelined MSET); says which it used.
pub async fn populate(raw: &mut RawConn, count: usize) -> BoxResult<&'static str> {
    let debug: RedisResult<()> = redis::cmd("DEBUG")
        .arg("POPULATE")
        .arg(count)
        .arg(FILLER.trim_end_matches(':'))
        .arg(100)
        .query_async(raw)
        .await;
    if debug.is_ok() {
        // DEBUG POPULATE names keys "<prefix>:<n>" and skips existing ones.
        return Ok("DEBUG POPULATE");
    }
    // DEBUG is disabled on this server: pipelined MSET, 1,000 keys a command.
    let filler = [b'x'; 100];
    let mut i = 0;
    while i < count {
        let mut pipe = redis::pipe();
        for _ in 0..50 {
            if i >= count {
                break;
            }
            let mset = pipe.cmd("MSET");
            for j in i..(i + 1000).min(count) {
                mset.arg(format!("{FILLER}{j}")).arg(&filler[..]);
            }
            mset.ignore();
            i = (i + 1000).min(count);
        }
        pipe.query_async::<()>(raw).await?;
    }
    Ok("pipelined MSET")
}

/// How many raw log entries the reader has seen, and when (or its error).
pub type Arrivals = tokio::sync::mpsc::UnboundedReceiver<Result<(usize, Instant), String>>;

/// Reads the raw durable log like a follower done well: XREAD BLOCK on a
/// connection of its own, reporting how many entries have arrived and when.
pub fn raw_log_reader(
    mut conn: redis::aio::MultiplexedConnection,
    log: String,
) -> (tokio::task::JoinHandle<()>, Arrivals) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        let mut last = "0-0".to_owned();
        let mut count = 0usize;
        loop {
            let reply: RedisResult<Option<redis::streams::StreamReadReply>> = redis::cmd("XREAD")
                .arg("COUNT")
                .arg(500)
                .arg("BLOCK")
                .arg(1000)
                .arg("STREAMS")
                .arg(&log)
                .arg(&last)
                .query_async(&mut conn)
                .await;
            let reply = match reply {
                Ok(reply) => reply,
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                    return;
                }
            };
            let Some(reply) = reply else { continue };
            for stream in reply.keys {
                for entry in stream.ids {
                    black_box(entry.map.get("e"));
                    last = entry.id;
                    count += 1;
                }
            }
            if tx.send(Ok((count, Instant::now()))).is_err() {
                return;
            }
        }
    });
    (task, rx)
}

/// Waits until the raw log reader has seen `total` entries; when it did.
pub async fn raw_log_until(rx: &mut Arrivals, total: usize) -> BoxResult<Instant> {
    loop {
        let (count, at) = rx.recv().await.ok_or("the raw log reader ended")??;
        if count >= total {
            return Ok(at);
        }
    }
}
