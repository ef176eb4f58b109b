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

/// Entries read per round trip (fewer when the subscription buffer holds fewer).
const BATCH: usize = 500;
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
        let bad = || ParseLogIdError {
            text: text.to_owned(),
        };
        let (ms, seq) = text.split_once('-').ok_or_else(bad)?;
        let number = |part: &str| -> std::result::Result<u64, ParseLogIdError> {
            // u64's own parser takes a leading '+', which is no part of an id.
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            part.parse().map_err(|_| bad())
        };
        Ok(LogId {
            ms: number(ms)?,
            seq: number(seq)?,
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

/// `XRANGE` reply: entries as (id, [(field, value)...]), fields kept as bytes
/// so that a foreign entry cannot fail the whole read.
type LogEntries = Vec<(String, Vec<(Vec<u8>, Vec<u8>)>)>;

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
        batch: BATCH.min(subscription::limit(store).events),
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
    /// Entries read per round trip: at most what the buffer holds, so that
    /// a consumer that keeps up never holds more than about two buffers.
    batch: usize,
}

/// One read of the log.
enum Read {
    /// The entry last handed on is gone: the log is not the one it was read
    /// from (deleted, flushed, lost in a restart or a failover) or was
    /// trimmed past it.
    Lost,
    /// The entries after the last one handed on (at most `batch`).
    Entries(LogEntries),
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
                    self.last = LogId::ZERO;
                    caught_up = false;
                    let gap = (self.decode)(RawEvent {
                        key: None,
                        origin: None,
                        kind: RawKind::Gap,
                        seq: None,
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
            for (id, fields) in entries {
                let Ok(log_id) = id.parse::<LogId>() else {
                    // Redis makes every stream id "<ms>-<seq>".
                    continue;
                };
                self.last = log_id;
                let payload = fields
                    .into_iter()
                    .find(|(name, _)| name == b"e")
                    .map(|(_, v)| v);
                let weight = payload.as_ref().map_or(0, Vec::len);
                let decode_error = |reason: String| Error::Decode {
                    namespace: self.ns.name().to_owned(),
                    key: format!("log entry {id}"),
                    expected: "a change event (wire format v1)",
                    reason,
                };
                let item = match payload.map(|p| event::parse(&p)) {
                    Some(Ok(raw)) => (self.decode)(raw),
                    Some(Err(reason)) => Some(Err(decode_error(reason))),
                    None => Some(Err(decode_error(
                        "the entry has no \"e\" field (the event payload)".into(),
                    ))),
                };
                if let Some(item) = item {
                    if !feed.push_wait(item.map(|t| (log_id, t)), weight).await {
                        return;
                    }
                }
            }
        }
    }

    async fn connection(&mut self) -> redis::RedisResult<&mut MultiplexedConnection> {
        if self.conn.is_none() {
            let config = AsyncConnectionConfig::new()
                .set_connection_timeout(self.store.settings().connection_timeout)
                .set_response_timeout(Some(BLOCK + Duration::from_secs(10)));
            let client = self.store.node_client(self.ns.log_key()).await?;
            let mut conn = client
                .get_multiplexed_async_connection_with_config(&config)
                .await?;
            // Named, so that operators (and tests) can tell log readers apart.
            redis::cmd("CLIENT")
                .arg("SETNAME")
                .arg(LOG_READER_NAME)
                .query_async::<()>(&mut conn)
                .await?;
            self.conn = Some(conn);
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
        let (entries, still_there): (LogEntries, Vec<redis::Value>) =
            pipe.query_async(conn).await?;
        if last != LogId::ZERO && still_there.is_empty() {
            return Ok(Read::Lost);
        }
        Ok(Read::Entries(entries))
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

#[cfg(test)]
mod tests {
    use super::*;

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
        for bad in [
            "", "-", "1", "1-", "-1", "a-1", "1-b", "+1-2", "1-+2", "1-2-3", " 1-2",
        ] {
            let e = bad.parse::<LogId>().unwrap_err();
            assert_eq!(e.text, bad);
            assert!(e.to_string().contains("is not a log id"), "{e}");
        }
        let e: Error = "x".parse::<LogId>().unwrap_err().into();
        assert!(e.to_string().contains("\"x\" is not a log id"), "{e}");
    }
}
