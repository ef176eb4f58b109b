//! Durable subscriptions: replaying and following the `{ns}#log` stream that
//! writes append to (in the same atomic unit) when a dict has a durable log.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::AsyncConnectionConfig;
use tokio::sync::mpsc;

use crate::error::{Error, Result};
use crate::event::{self, RawEvent, RawKind};
use crate::namespace::Namespace;
use crate::store::Store;
use crate::subscription::Subscription;

/// The client name of durable-log reader connections (`CLIENT LIST`).
pub const LOG_READER_NAME: &str = "redis-pydict:log-reader";

/// Entries read per round trip.
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

impl FromStr for LogId {
    type Err = Error;

    fn from_str(text: &str) -> Result<LogId> {
        let bad = || {
            Error::Config(format!(
                "{text:?} is not a log id (expected \"<ms>-<seq>\")"
            ))
        };
        let (ms, seq) = text.split_once('-').ok_or_else(bad)?;
        Ok(LogId {
            ms: ms.parse().map_err(|_| bad())?,
            seq: seq.parse().map_err(|_| bad())?,
        })
    }
}

/// Where a durable subscription starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartFrom {
    /// Every change still in the log.
    Beginning,
    /// Only changes made after the subscription starts.
    Now,
    /// Changes after this id (the last one handled).
    After(LogId),
}

/// KEYS: log. ARGV: after-id, count. Atomically: whether the log exists,
/// the id of its first entry ('0-0' when none), whether entries were ever
/// trimmed from it (entries added > length; Redis 7), and the entries after
/// the id.
const READ_SCRIPT: &str = r#"
local info = redis.pcall('XINFO', 'STREAM', KEYS[1])
local exists, first, trimmed = 0, '0-0', 0
if type(info) == 'table' and not info.err then
  exists = 1
  local length, added = 0, nil
  for i = 1, #info, 2 do
    local name, value = info[i], info[i + 1]
    if name == 'length' then length = value
    elseif name == 'entries-added' then added = value
    elseif name == 'first-entry' and type(value) == 'table' then first = value[1]
    end
  end
  if added == nil or added > length then trimmed = 1 end
end
local entries = redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+', 'COUNT', ARGV[2])
return {exists, first, trimmed, entries}
"#;

type LogEntries = Vec<(String, Vec<(String, Vec<u8>)>)>;

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
    let fail = |source| Error::Redis {
        operation: "subscribe_durable",
        namespace: ns.name().to_owned(),
        source,
    };
    let mut reader = LogReader {
        store: store.clone(),
        ns: ns.clone(),
        last: LogId::ZERO,
        decode,
        conn: None,
        log_seen: false,
        script: redis::Script::new(READ_SCRIPT),
    };
    reader.last = match from {
        StartFrom::Beginning => LogId::ZERO,
        StartFrom::After(id) => id,
        StartFrom::Now => reader.last_generated().await.map_err(fail)?,
    };
    let (tx, rx) = mpsc::channel(BATCH * 2);
    let task = tokio::spawn(reader.run(tx));
    Ok(Subscription::from_parts(rx, task.abort_handle()))
}

struct LogReader<F> {
    store: Store,
    ns: Namespace,
    last: LogId,
    decode: F,
    conn: Option<MultiplexedConnection>,
    /// Whether the log existed at the last read (its disappearance is a gap).
    log_seen: bool,
    script: redis::Script,
}

impl<F, T> LogReader<F>
where
    F: FnMut(RawEvent) -> Option<Result<T>> + Send + 'static,
    T: Send + 'static,
{
    async fn run(mut self, tx: mpsc::Sender<Result<(LogId, T)>>) {
        let mut delay = self.store.settings().min_retry_delay;
        let mut caught_up = false;
        loop {
            if tx.is_closed() {
                return;
            }
            let batch = match self.read(caught_up).await {
                Ok(batch) => batch,
                Err(_) => {
                    // Connection trouble: retry with backoff from the same id; no gap.
                    self.conn = None;
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(self.store.settings().max_retry_delay);
                    continue;
                }
            };
            delay = self.store.settings().min_retry_delay;
            let (truncated, entries) = batch;
            if truncated {
                // Changes after `last` were trimmed (MAXLEN) before being read.
                if let Some(item) = (self.decode)(RawEvent {
                    key: None,
                    origin: None,
                    kind: RawKind::Gap,
                }) {
                    if tx.send(item.map(|t| (self.last, t))).await.is_err() {
                        return;
                    }
                }
            }
            caught_up = entries.len() < BATCH;
            for (id, fields) in entries {
                let Ok(log_id) = id.parse::<LogId>() else {
                    continue;
                };
                self.last = log_id;
                let payload = fields
                    .into_iter()
                    .find(|(name, _)| name == "e")
                    .map(|(_, v)| v);
                let item = match payload.map(|p| event::parse(&p)) {
                    Some(Ok(raw)) => (self.decode)(raw),
                    Some(Err(reason)) => Some(Err(Error::Decode {
                        namespace: self.ns.name().to_owned(),
                        key: format!("log entry {id}"),
                        expected: "a change event (wire format v1)",
                        reason,
                    })),
                    None => None,
                };
                if let Some(item) = item {
                    if tx.send(item.map(|t| (log_id, t))).await.is_err() {
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

    /// Reads the next batch after `last`; `true` when changes after `last`
    /// were trimmed. When `wait`, first blocks (XREAD BLOCK, in the same round
    /// trip) until an entry after `last` exists or `BLOCK` passes.
    async fn read(&mut self, wait: bool) -> redis::RedisResult<(bool, LogEntries)> {
        let log_key = self.ns.log_key().to_owned();
        let after = self.last.to_string();
        let script = self.script.clone();
        let conn = self.connection().await?;
        let (exists, first, trimmed, entries): (i64, String, i64, LogEntries) = if wait {
            let (read,): ((i64, String, i64, LogEntries),) = redis::pipe()
                .cmd("XREAD")
                .arg("COUNT")
                .arg(1)
                .arg("BLOCK")
                .arg(BLOCK.as_millis() as u64)
                .arg("STREAMS")
                .arg(&log_key)
                .arg(&after)
                .ignore()
                .cmd("EVAL")
                .arg(READ_SCRIPT)
                .arg(1)
                .arg(&log_key)
                .arg(&after)
                .arg(BATCH)
                .query_async(conn)
                .await?;
            read
        } else {
            script
                .key(log_key)
                .arg(after)
                .arg(BATCH)
                .invoke_async(conn)
                .await?
        };
        let first: LogId = first.parse().unwrap_or(LogId::ZERO);
        // Trimming removes the oldest entries: when the log has been trimmed and
        // its oldest kept change is newer than `last`, changes after `last` may
        // be gone (reported conservatively: it may also have stopped right at `last`).
        let trimmed_past = exists == 1 && trimmed == 1 && self.last < first;
        // The log vanished (flushed, or a restart without persistence).
        let vanished = self.log_seen && exists == 0;
        self.log_seen = exists == 1;
        Ok((trimmed_past || vanished, entries))
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
