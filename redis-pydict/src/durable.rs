//! Durable subscriptions: replaying and following the `{ns}#log` stream that
//! writes append to (in the same atomic unit) when a dict has a durable log.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::event::{self, RawEvent, RawKind};
use crate::namespace::Namespace;
use crate::store::Store;
use crate::subscription::{self, Feed, Subscription};
use redis::aio::MultiplexedConnection;
use redis::AsyncConnectionConfig;

/// The client name of durable-log reader connections (`CLIENT LIST`).
pub const LOG_READER_NAME: &str = "redis-pydict:log-reader";

/// Entries read per round trip after catching up (fewer when that many
/// entries of the last read's mean size would not fit the buffer's bytes).
const BATCH_MIN: usize = 500;
/// Most entries read per round trip (fewer when the subscription buffer holds fewer).
const BATCH_MAX: usize = 8_000;
/// How long one blocking wait for new entries lasts before it is renewed.
const BLOCK: Duration = Duration::from_secs(2);

/// The id of a change in the durable log (a Redis Stream id, `ms-seq`).
/// Persist the id of the last change you handled and resume after it.
///
/// ```
/// use redis_pydict::LogId;
/// let id: LogId = "1700000000000-3".parse().unwrap();
/// assert_eq!(id.to_string(), "1700000000000-3");
/// assert!(id > LogId::ZERO);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct LogId {
    /// Milliseconds part.
    pub ms: u64,
    /// Sequence part.
    pub seq: u64,
}

impl LogId {
    /// The id before every change.
    pub const ZERO: LogId = LogId { ms: 0, seq: 0 };
}

impl fmt::Display for LogId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// A text that is not a [`LogId`] (`"<ms>-<seq>"`, both decimal `u64`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a log id (expected \"<ms>-<seq>\", e.g. \"1700000000000-3\")")]
pub struct ParseLogIdError {
    /// The rejected text.
    pub text: String,
}

impl FromStr for LogId {
    type Err = ParseLogIdError;

    fn from_str(text: &str) -> std::result::Result<LogId, ParseLogIdError> {
        LogId::from_bytes(text.as_bytes()).ok_or_else(|| ParseLogIdError {
            text: text.to_owned(),
        })
    }
}

impl LogId {
    /// Parses `<ms>-<seq>` (both decimal `u64`, digits only) from bytes, as
    /// stream ids arrive in replies.
    fn from_bytes(bytes: &[u8]) -> Option<LogId> {
        let dash = bytes.iter().position(|&b| b == b'-')?;
        let number = |part: &[u8]| -> Option<u64> {
            if part.is_empty() {
                return None;
            }
            part.iter().try_fold(0u64, |n, &b| {
                let digit = b.checked_sub(b'0').filter(|d| *d < 10)?;
                n.checked_mul(10)?.checked_add(u64::from(digit))
            })
        };
        Some(LogId {
            ms: number(&bytes[..dash])?,
            seq: number(&bytes[dash + 1..])?,
        })
    }
}

/// Where a durable subscription starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StartFrom {
    /// Every change still in the log.
    Beginning,
    /// Only changes made after the subscription starts.
    Now,
    /// Changes after this id (the last one handled). If that change is no
    /// longer in the log (the log was deleted, flushed, lost in a restart
    /// without persistence or a failover, or trimmed past it), the
    /// subscription yields `Change::Gap` first and then replays the log as
    /// it now is, from its oldest change.
    After(LogId),
}

/// One log entry as read: its id and its `e` field (the event payload),
/// `None` when a foreign entry has none.
type LogEntry = (LogId, Option<Vec<u8>>);

/// Starts a durable subscription of `ns`'s log. Items carry the log id of
/// each change. `decode` types raw events (`None` filters one out).
pub(crate) async fn start<T, F>(
    store: &Store,
    ns: &Namespace,
    from: StartFrom,
    decode: F,
) -> Result<Subscription<(LogId, T)>>
where
    T: Send + 'static,
    F: FnMut(RawEvent) -> Option<Result<T>> + Send + 'static,
{
    let mut reader = LogReader {
        store: store.clone(),
        ns: ns.clone(),
        last: LogId::ZERO,
        decode,
        conn: None,
        limit: subscription::limit(store),
        // Entry sizes are unknown until something was read: the first read
        // takes one entry, and batches double from there.
        batch: 1,
        entry_bytes: None,
    };
    reader.last = match from {
        StartFrom::Beginning => LogId::ZERO,
        StartFrom::After(id) => id,
        StartFrom::Now => reader.last_generated().await.map_err(|e| reader.fail(e))?,
    };
    let (feed, buffer) = subscription::buffer(subscription::limit(store));
    let task = tokio::spawn(reader.run(feed));
    Ok(Subscription::from_parts(buffer, task.abort_handle()))
}

struct LogReader<F> {
    store: Store,
    ns: Namespace,
    /// The id of the last entry handed on (`ZERO`: none yet).
    last: LogId,
    decode: F,
    conn: Option<MultiplexedConnection>,
    /// The subscription buffer's bound, which also bounds a batch.
    limit: subscription::BufferLimit,
    /// Entries read per round trip: 1 at first (entry sizes unknown),
    /// doubled after each full batch (the reader is behind), back to
    /// `BATCH_MIN` once caught up; never more than the buffer holds in
    /// events, nor, by `entry_bytes`, in bytes, so that the client holds
    /// about two buffers at most (one queued, one being read) while entry
    /// sizes do not jump.
    batch: usize,
    /// The mean payload size of the entries of the last read that found
    /// any (`None`: nothing read yet).
    entry_bytes: Option<usize>,
}

/// One read of the log.
enum Read {
    /// The entry last handed on is gone: the log is not the one it was read
    /// from (deleted, flushed, lost in a restart or a failover) or was
    /// trimmed past it.
    Lost,
    /// The entries after the last one handed on (at most `batch`).
    Entries(Vec<LogEntry>),
}

impl<F, T> LogReader<F>
where
    F: FnMut(RawEvent) -> Option<Result<T>> + Send + 'static,
    T: Send + 'static,
{
    fn fail(&self, source: redis::RedisError) -> Error {
        Error::Redis {
            operation: "subscribe_durable",
            namespace: self.ns.name().to_owned(),
            source,
        }
    }

    async fn run(mut self, feed: Feed<(LogId, T)>) {
        let mut delay = self.store.settings().min_retry_delay;
        let mut caught_up = false;
        loop {
            if feed.is_closed() {
                return;
            }
            let read = match self.read(caught_up).await {
                Ok(read) => read,
                Err(e) if subscription::is_transient(&e) => {
                    // Connection trouble: retry with backoff from the same id; no gap.
                    crate::observe::reconnecting(
                        crate::observe::Source::Durable,
                        &self.ns,
                        Some(&e),
                    );
                    self.conn = None;
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(self.store.settings().max_retry_delay);
                    continue;
                }
                Err(e) => {
                    // Retrying cannot cure it (WRONGTYPE, NOPERM, ...): say so
                    // and end the stream.
                    let e = self.fail(e);
                    feed.push_wait(Err(e), 0).await;
                    return;
                }
            };
            delay = self.store.settings().min_retry_delay;
            let entries = match read {
                Read::Entries(entries) => entries,
                Read::Lost => {
                    // Replay the log as it now is, from its oldest entry.
                    crate::observe::gap(
                        crate::observe::Source::Durable,
                        Some(&self.ns),
                        "log lost or trimmed",
                    );
                    self.last = LogId::ZERO;
                    caught_up = false;
                    let gap = (self.decode)(RawEvent {
                        key: None,
                        origin: None,
                        kind: RawKind::Gap,
                        seq: None,
                        prev: None,
                    });
                    if let Some(item) = gap {
                        if !feed.push_wait(item.map(|t| (LogId::ZERO, t)), 0).await {
                            return;
                        }
                    }
                    continue;
                }
            };
            caught_up = entries.len() < self.batch;
            if !entries.is_empty() {
                let bytes: usize = entries
                    .iter()
                    .map(|(_, p)| p.as_ref().map_or(0, Vec::len))
                    .sum();
                self.entry_bytes = Some(bytes / entries.len());
            }
            self.batch = next_batch(self.batch, self.limit, self.entry_bytes, caught_up);
            let mut items = Vec::with_capacity(entries.len());
            for (log_id, payload) in entries {
                self.last = log_id;
                let weight = payload.as_ref().map_or(0, Vec::len);
                let decode_error = |reason: String| Error::Decode {
                    namespace: self.ns.name().to_owned(),
                    key: format!("log entry {log_id}"),
                    expected: "a change event (wire format v1)",
                    reason,
                };
                let item = match payload.map(event::parse_owned) {
                    Some(Ok(raw)) => (self.decode)(raw),
                    Some(Err(reason)) => Some(Err(decode_error(reason))),
                    None => Some(Err(decode_error(
                        "the entry has no \"e\" field (the event payload)".into(),
                    ))),
                };
                if let Some(item) = item {
                    items.push((item.map(|t| (log_id, t)), weight));
                }
            }
            if !feed.push_all_wait(items).await {
                return;
            }
            crate::observe::durable_lag(&self.ns, (!caught_up).then_some(self.last.ms));
        }
    }

    async fn connection(&mut self) -> redis::RedisResult<&mut MultiplexedConnection> {
        if self.conn.is_none() {
            self.conn = Some(log_connection(&self.store, &self.ns, BLOCK).await?);
        }
        self.conn
            .as_mut()
            .ok_or_else(|| std::io::Error::other("no log connection").into())
    }

    /// Reads the next batch after `last`. When `wait`, first blocks (XREAD
    /// BLOCK, in the same round trip) until an entry after `last` exists or
    /// `BLOCK` passes. The same round trip then checks that the entry `last`
    /// is still in the log, after reading the batch: if the log was replaced
    /// at any point before the check, the check fails and the batch is not
    /// used; if it is replaced after it, the next read's check fails.
    async fn read(&mut self, wait: bool) -> redis::RedisResult<Read> {
        let log_key = self.ns.log_key().to_owned();
        let last = self.last;
        let batch = self.batch;
        let after = last.to_string();
        let conn = self.connection().await?;
        let mut pipe = redis::pipe();
        if wait {
            pipe.cmd("XREAD")
                .arg("COUNT")
                .arg(1)
                .arg("BLOCK")
                .arg(BLOCK.as_millis() as u64)
                .arg("STREAMS")
                .arg(&log_key)
                .arg(&after)
                .ignore();
        }
        pipe.cmd("XRANGE")
            .arg(&log_key)
            .arg(format!("({after}"))
            .arg("+")
            .arg("COUNT")
            .arg(batch)
            .cmd("XRANGE")
            .arg(&log_key)
            .arg(&after)
            .arg(&after);
        let (entries, still_there): (redis::Value, Vec<redis::Value>) =
            pipe.query_async(conn).await?;
        if last != LogId::ZERO && still_there.is_empty() {
            return Ok(Read::Lost);
        }
        Ok(Read::Entries(log_entries(entries)?))
    }

    /// The id of the newest change in the log (`ZERO` when there is none).
    async fn last_generated(&mut self) -> redis::RedisResult<LogId> {
        let log_key = self.ns.log_key().to_owned();
        let conn = self.connection().await?;
        let newest: Vec<(String, redis::Value)> = redis::cmd("XREVRANGE")
            .arg(log_key)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(conn)
            .await?;
        Ok(newest
            .first()
            .and_then(|(id, _)| id.parse().ok())
            .unwrap_or(LogId::ZERO))
    }
}

/// The size of the batch after one of `batch` entries, given the mean
/// entry size last read (`entry_bytes`) and whether the reader caught up
/// (see [`LogReader::batch`]). With no size known yet, one entry.
fn next_batch(
    batch: usize,
    limit: subscription::BufferLimit,
    entry_bytes: Option<usize>,
    caught_up: bool,
) -> usize {
    let Some(entry_bytes) = entry_bytes else {
        return 1;
    };
    let by_events = BATCH_MAX.min(limit.events);
    let by_bytes = (limit.bytes / entry_bytes.max(1)).max(1);
    let wanted = if caught_up { BATCH_MIN } else { batch * 2 };
    wanted.min(by_events).min(by_bytes).max(1)
}

/// The entries of an `XRANGE` reply, read straight from the reply's
/// values: each payload is moved out of the reply, not copied, and ids are
/// parsed from their bytes. A foreign entry without an `e` field has `None`
/// (it is reported, not fatal); a reply of another shape is an error.
fn log_entries(reply: redis::Value) -> redis::RedisResult<Vec<LogEntry>> {
    use redis::Value;
    let unexpected = |what: &str| -> redis::RedisError {
        (
            redis::ErrorKind::UnexpectedReturnType,
            "unexpected XRANGE reply",
            what.to_owned(),
        )
            .into()
    };
    let items = match reply {
        Value::Array(items) => items,
        Value::Nil => return Ok(Vec::new()),
        other => {
            return Err(other
                .extract_error()
                .err()
                .unwrap_or_else(|| unexpected("not an array")))
        }
    };
    let mut entries = Vec::with_capacity(items.len());
    for item in items {
        let Value::Array(pair) = item else {
            return Err(unexpected("an entry is not an array"));
        };
        let mut pair = pair.into_iter();
        let (Some(id), Some(fields)) = (pair.next(), pair.next()) else {
            return Err(unexpected("an entry is not [id, fields]"));
        };
        let id = match &id {
            Value::BulkString(b) => LogId::from_bytes(b),
            Value::SimpleString(t) => LogId::from_bytes(t.as_bytes()),
            _ => None,
        };
        // Redis makes every stream id "<ms>-<seq>".
        let Some(id) = id else {
            return Err(unexpected("an entry id is not <ms>-<seq>"));
        };
        let payload = match fields {
            Value::Array(flat) => take_field(flat.into_iter(), b"e"),
            Value::Map(pairs) => take_field(pairs.into_iter().flat_map(|(k, v)| [k, v]), b"e"),
            _ => None,
        };
        entries.push((id, payload));
    }
    Ok(entries)
}

/// The value of the field `name` in a flat `[name, value, ...]` list, moved out.
fn take_field(mut flat: impl Iterator<Item = redis::Value>, name: &[u8]) -> Option<Vec<u8>> {
    while let (Some(field), Some(value)) = (flat.next(), flat.next()) {
        let matches = match &field {
            redis::Value::BulkString(b) => b == name,
            redis::Value::SimpleString(t) => t.as_bytes() == name,
            _ => false,
        };
        if matches {
            return match value {
                redis::Value::BulkString(bytes) => Some(bytes),
                redis::Value::SimpleString(text) => Some(text.into_bytes()),
                _ => None,
            };
        }
    }
    None
}

/// A connection of a log reader (named [`LOG_READER_NAME`]) to the node
/// holding `ns`'s log, whose replies may take `block` (a blocking read)
/// plus a margin.
pub(crate) async fn log_connection(
    store: &Store,
    ns: &Namespace,
    block: Duration,
) -> redis::RedisResult<MultiplexedConnection> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(store.settings().connection_timeout)
        .set_response_timeout(Some(block + Duration::from_secs(10)));
    let client = store.node_client(ns.log_key()).await?;
    let mut conn = client
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    // Named, so that operators (and tests) can tell log readers apart.
    redis::cmd("CLIENT")
        .arg("SETNAME")
        .arg(LOG_READER_NAME)
        .query_async::<()>(&mut conn)
        .await?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_grow_while_behind_within_the_buffer_and_shrink_once_caught_up() {
        let limit = subscription::BufferLimit {
            events: 10_000,
            bytes: 16 << 20,
        };
        // Nothing read yet: one entry, whatever the buffer.
        assert_eq!(next_batch(1, limit, None, false), 1);
        assert_eq!(next_batch(1, limit, None, true), 1);
        // Behind, small entries: doubling up to BATCH_MAX.
        assert_eq!(next_batch(1, limit, Some(100), false), 2);
        assert_eq!(next_batch(500, limit, Some(100), false), 1000);
        assert_eq!(next_batch(8000, limit, Some(100), false), BATCH_MAX);
        // Bounded by the buffer's events...
        let few = subscription::BufferLimit {
            events: 300,
            ..limit
        };
        assert_eq!(next_batch(300, few, Some(1), false), 300);
        // ...and by its bytes, at the mean size of what was read.
        let small = subscription::BufferLimit {
            events: 10_000,
            bytes: 1 << 20,
        };
        assert_eq!(next_batch(500, small, Some(10_000), false), 104);
        assert_eq!(next_batch(500, small, Some(2 << 20), false), 1);
        // Caught up: back to BATCH_MIN, within the buffer's events and bytes.
        assert_eq!(next_batch(8000, limit, Some(100), true), BATCH_MIN);
        assert_eq!(next_batch(8000, few, Some(100), true), 300);
        assert_eq!(next_batch(8000, small, Some(256 << 10), true), 4);
    }

    #[test]
    fn log_entries_are_read_from_the_reply_values() {
        use redis::Value::{self, Array, BulkString, Map, Nil};
        let text = |t: &str| BulkString(t.as_bytes().to_vec());
        let reply = Array(vec![
            Array(vec![
                text("1-1"),
                Array(vec![text("x"), text("y"), text("e"), text("P")]),
            ]),
            Array(vec![text("1-2"), Map(vec![(text("e"), text("Q"))])]),
            Array(vec![text("2-0"), Array(vec![text("other"), text("z")])]),
        ]);
        let id = |ms, seq| LogId { ms, seq };
        assert_eq!(
            log_entries(reply).unwrap(),
            [
                (id(1, 1), Some(b"P".to_vec())),
                (id(1, 2), Some(b"Q".to_vec())),
                (id(2, 0), None),
            ]
        );
        assert!(log_entries(Nil).unwrap().is_empty());
        for bad in [
            Value::Int(3),
            Array(vec![Value::Int(1)]),
            Array(vec![Array(vec![text("nope"), Array(vec![])])]),
            Array(vec![Array(vec![text("1-1")])]),
        ] {
            assert!(log_entries(bad).is_err());
        }
    }

    #[test]
    fn log_ids_parse_and_print() {
        let id: LogId = "1700000000000-3".parse().unwrap();
        assert_eq!(
            id,
            LogId {
                ms: 1_700_000_000_000,
                seq: 3
            }
        );
        assert_eq!(id.to_string(), "1700000000000-3");
        let max = format!("{}-{}", u64::MAX, u64::MAX);
        assert_eq!(max.parse::<LogId>().unwrap().to_string(), max);
        for bad in [
            "",
            "-",
            "1",
            "1-",
            "-1",
            "a-1",
            "1-b",
            "+1-2",
            "1-+2",
            "1-2-3",
            " 1-2",
            "18446744073709551616-0",
            "0-18446744073709551616",
        ] {
            let e = bad.parse::<LogId>().unwrap_err();
            assert_eq!(e.text, bad);
            assert!(e.to_string().contains("is not a log id"), "{e}");
        }
        let e: Error = "x".parse::<LogId>().unwrap_err().into();
        assert!(e.to_string().contains("\"x\" is not a log id"), "{e}");
    }
}
