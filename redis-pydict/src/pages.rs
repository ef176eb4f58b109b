//! Paged iteration over a namespace.
//!
//! Two tasks read ahead of the caller. The scanner walks the index (ZSCAN)
//! and sends the next ZSCAN as soon as the previous reply is in; the fetcher
//! reads the values of each batch of members (MGET), two batches in flight.
//! So the server always has the next request queued while the client takes
//! a reply apart, and both work at once. Pages reach the caller through a
//! channel of one page, so at most a few pages are held at a time. The entry
//! stream gives the tasks (and the connection) a turn every [`YIELD_EVERY`]
//! entries, so on a current-thread runtime too they go on while the caller
//! works.

use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Instant;

use futures::stream::{self, Stream, StreamExt};
use hashbrown::hash_table::{Entry, HashTable};
use redis::Value;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::error::Result;
use crate::space::{joined, Space};

/// One entry of a page: the key text and, when values were asked for, its value.
pub(crate) type PageEntry = (String, Option<Vec<u8>>);

/// An entry of a page, or the error for an entry that holds a non-string
/// value (foreign data): an `Err` item, after which the stream goes on.
type PageItem = Result<PageEntry>;

/// Entries handed to the caller between two turns of the reading tasks.
const YIELD_EVERY: usize = 128;

/// Up to this many index members, iteration of entries with values takes
/// all members in one ZRANGE (a snapshot: no duplicates to track, no scores
/// to parse, about 1 ms of server time per 10,000) instead of a ZSCAN walk.
/// Expired members it includes are skipped when their values are read.
const SNAPSHOT_LIMIT: usize = 20_000;

/// MGETs the fetcher keeps in flight.
const FETCHES_IN_FLIGHT: usize = 2;

/// The entries of a namespace as a stream, read ahead by two tasks (see the
/// module docs), which start at the first poll: inside the caller's runtime,
/// even when the stream was made outside one (as the blocking API does).
struct Entries {
    /// The scan to start, until the first poll.
    start: Option<(Scan, bool)>,
    pages: Option<mpsc::Receiver<Result<Vec<PageItem>>>>,
    tasks: Vec<JoinHandle<()>>,
    /// The page being handed out.
    page: std::vec::IntoIter<PageItem>,
    /// Entries handed out so far.
    handed: usize,
    /// A turn given to the reading tasks, under way.
    yielding: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
}

impl Drop for Entries {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Stream for Entries {
    type Item = Result<PageEntry>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(yielding) = &mut this.yielding {
            ready!(yielding.as_mut().poll(cx));
            this.yielding = None;
        }
        loop {
            if let Some(entry) = this.page.next() {
                this.handed += 1;
                if this.handed.is_multiple_of(YIELD_EVERY) {
                    this.yielding = Some(Box::pin(tokio::task::yield_now()));
                }
                return Poll::Ready(Some(entry));
            }
            if let Some((scan, with_values)) = this.start.take() {
                let (members, found) = mpsc::channel(2);
                let (pages, receiver) = mpsc::channel(1);
                let space = scan.space.clone();
                this.tasks = vec![
                    tokio::spawn(scan.run(members)),
                    tokio::spawn(fetch(space, with_values, found, pages)),
                ];
                this.pages = Some(receiver);
            }
            let Some(pages) = &mut this.pages else {
                return Poll::Ready(None);
            };
            match ready!(pages.poll_recv(cx)) {
                Some(Ok(page)) => this.page = page.into_iter(),
                Some(Err(e)) => {
                    // A Redis error ends the stream.
                    this.pages = None;
                    return Poll::Ready(Some(Err(e)));
                }
                None => {
                    this.pages = None;
                    return Poll::Ready(None);
                }
            }
        }
    }
}

impl Space {
    /// The live members matching `pattern` (all when `None`), with their
    /// values when `with_values` (entries gone meanwhile are skipped; an
    /// entry holding a non-string value is an `Err` item naming its key and
    /// type, and the stream goes on). After a Redis error the stream yields
    /// it and ends.
    pub(crate) fn entries(
        &self,
        pattern: Option<&str>,
        with_values: bool,
    ) -> impl Stream<Item = Result<PageEntry>> + Send + 'static {
        let scan = Scan {
            space: self.clone(),
            pattern: pattern.map(str::to_owned),
            cursor: Some(0),
            clock: None,
            seen: HashTable::new(),
            hasher: RandomState::new(),
            trips: 0,
            // Only where values are read (MGET skips expired members) and
            // every member is wanted (ZRANGE has no MATCH).
            snapshot: with_values && pattern.is_none(),
        };
        Entries {
            start: Some((scan, with_values)),
            pages: None,
            tasks: Vec::new(),
            page: Vec::new().into_iter(),
            handed: 0,
            yielding: None,
        }
    }
}

/// The scanner's state: a cursor over the namespace index.
///
/// ZSCAN may report a member twice while the index is being resized; members
/// already yielded are remembered (as 64-bit hashes) and skipped, so memory
/// grows by a few bytes per entry, never by the entries themselves.
struct Scan {
    space: Space,
    pattern: Option<String>,
    /// Where the next ZSCAN starts; `None` once the scan is complete.
    cursor: Option<u64>,
    /// Server time (ms) at the first ZSCAN and the local instant it arrived.
    clock: Option<(u64, Instant)>,
    /// Hashes of the members sent so far, each its own table hash.
    seen: HashTable<u64>,
    /// Keyed afresh for every iteration, so nobody can pick member names
    /// whose hashes collide and hide one of them.
    hasher: RandomState,
    /// ZSCANs made so far.
    trips: usize,
    /// Whether a small index may be read in one snapshot (see [`SNAPSHOT_LIMIT`]).
    snapshot: bool,
}

/// What one ZSCAN round trip brings back.
struct ScanStep {
    cursor: u64,
    /// Member and score texts, alternating.
    found: Vec<Vec<u8>>,
    /// Server time in ms and the index size (first round trip only).
    start: Option<(u64, usize)>,
}

impl Scan {
    /// Walks the index, sending each non-empty batch of live members (or, for
    /// a small index, reads it in one snapshot and sends that in pages);
    /// stops at the end, after sending an error, or when the receiver is gone.
    async fn run(mut self, members: mpsc::Sender<Result<Vec<String>>>) {
        while let Some(cursor) = self.cursor {
            let step = match self.step(cursor).await {
                Ok(step) => step,
                Err(e) => {
                    let _ = members.send(Err(e)).await;
                    return;
                }
            };
            if let Some((ms, size)) = step.start {
                self.clock = Some((ms, Instant::now()));
                if self.snapshot && step.cursor != 0 && size <= SNAPSHOT_LIMIT {
                    match self.snapshot().await {
                        Ok(Some(all)) => {
                            return send_in_pages(all, self.space.page_size(), &members).await
                        }
                        Ok(None) => {} // grew meanwhile: go on scanning
                        Err(e) => {
                            let _ = members.send(Err(e)).await;
                            return;
                        }
                    }
                }
                // Sized once: growing the set would briefly hold two tables.
                self.seen.reserve(size, |&h| h);
            }
            self.cursor = (step.cursor != 0).then_some(step.cursor);
            let live = self.live(step.found);
            if !live.is_empty() && members.send(Ok(live)).await.is_err() {
                return;
            }
        }
    }

    /// All members at once (ZRANGE by rank), or `None` if the index holds
    /// more than [`SNAPSHOT_LIMIT`] by now.
    async fn snapshot(&self) -> Result<Option<Vec<String>>> {
        let found: Vec<Vec<u8>> = redis::cmd("ZRANGE")
            .arg(self.space.namespace().index_key())
            .arg(0)
            .arg(SNAPSHOT_LIMIT)
            .query_async(&mut self.space.conn())
            .await
            .map_err(self.space.fail("iterate"))?;
        if found.len() > SNAPSHOT_LIMIT {
            return Ok(None);
        }
        // Members are written from Rust strings; anything else was not
        // written by this library and is skipped like a foreign key.
        Ok(Some(
            found
                .into_iter()
                .filter_map(|m| String::from_utf8(m).ok())
                .collect(),
        ))
    }

    /// One ZSCAN (with TIME and ZCARD the first time). The first steps ask
    /// for fewer members, so the caller gets entries soon.
    async fn step(&mut self, cursor: u64) -> Result<ScanStep> {
        let page_size = self.space.page_size();
        let count = match self.trips {
            0 => page_size / 8,
            1 => page_size / 2,
            _ => page_size,
        };
        self.trips += 1;
        let ns = self.space.namespace();
        let need_clock = self.clock.is_none();
        let mut pipe = redis::pipe();
        if need_clock {
            pipe.cmd("TIME");
            pipe.cmd("ZCARD").arg(ns.index_key());
        }
        let scan = pipe.cmd("ZSCAN").arg(ns.index_key()).arg(cursor);
        if let Some(pattern) = &self.pattern {
            scan.arg("MATCH").arg(pattern);
        }
        scan.arg("COUNT").arg(count.max(1));
        let replies: Vec<Value> = pipe
            .query_async(&mut self.space.conn())
            .await
            .map_err(self.space.fail("iterate"))?;
        let mut replies = replies.into_iter();
        let start = if need_clock {
            let parse = |e: redis::ParsingError| self.space.fail("iterate")(e.into());
            let (secs, micros): (u64, u64) =
                redis::from_redis_value(replies.next().unwrap_or(Value::Nil)).map_err(parse)?;
            let size: usize =
                redis::from_redis_value(replies.next().unwrap_or(Value::Nil)).map_err(parse)?;
            Some((secs * 1000 + micros / 1000, size))
        } else {
            None
        };
        let (cursor, found) =
            scan_reply(replies.next()).map_err(|reply| unexpected(&self.space, "ZSCAN", reply))?;
        Ok(ScanStep {
            cursor,
            found,
            start,
        })
    }

    /// The members whose expiry has not passed and that were not seen yet.
    fn live(&mut self, found: Vec<Vec<u8>>) -> Vec<String> {
        let now = match self.clock {
            Some((ms, at)) => ms + at.elapsed().as_millis() as u64,
            None => 0,
        };
        let mut live = Vec::with_capacity(found.len() / 2);
        let mut found = found.into_iter();
        while let (Some(member), Some(score)) = (found.next(), found.next()) {
            let alive = match score.as_slice() {
                b"inf" | b"+inf" => true,
                score => std::str::from_utf8(score)
                    .ok()
                    .and_then(|s| s.parse::<f64>().ok())
                    .is_none_or(|s| s >= now as f64),
            };
            // Members are written from Rust strings; anything else was not
            // written by this library and is skipped like a foreign key.
            let Ok(member) = String::from_utf8(member) else {
                continue;
            };
            if !alive {
                continue;
            }
            let hash = self.hasher.hash_one(&member);
            if let Entry::Vacant(new) = self.seen.entry(hash, |&h| h == hash, |&h| h) {
                new.insert(hash);
                live.push(member);
            }
        }
        live
    }
}

/// Sends `members` in batches of `page_size`.
async fn send_in_pages(
    members: Vec<String>,
    page_size: usize,
    to: &mpsc::Sender<Result<Vec<String>>>,
) {
    let mut members = members.into_iter();
    loop {
        let batch: Vec<String> = members.by_ref().take(page_size.max(1)).collect();
        if batch.is_empty() || to.send(Ok(batch)).await.is_err() {
            return;
        }
    }
}

/// The fetcher: turns batches of members into pages, reading their values
/// (MGET, [`FETCHES_IN_FLIGHT`] at a time, in order) when `with_values`.
async fn fetch(
    space: Space,
    with_values: bool,
    found: mpsc::Receiver<Result<Vec<String>>>,
    pages: mpsc::Sender<Result<Vec<PageItem>>>,
) {
    let batches = stream::unfold(found, |mut found| async move {
        found.recv().await.map(|batch| (batch, found))
    });
    let mut read = std::pin::pin!(batches
        .map(|batch| {
            let space = space.clone();
            async move {
                let members = batch?;
                if with_values {
                    values(&space, members).await
                } else {
                    Ok(members.into_iter().map(|m| Ok((m, None))).collect())
                }
            }
        })
        .buffered(FETCHES_IN_FLIGHT));
    while let Some(page) = read.next().await {
        match page {
            Ok(page) if page.is_empty() => {}
            Ok(page) => {
                if pages.send(Ok(page)).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                let _ = pages.send(Err(e)).await;
                return;
            }
        }
    }
}

/// The values of `members` (one MGET), skipping entries gone since the
/// ZSCAN. MGET answers nil for a key holding a non-string value too; the
/// nil keys' types (one pipelined TYPE each, only when there are any) tell
/// those apart, and each becomes an `Err` item naming the key and its type.
async fn values(space: &Space, members: Vec<String>) -> Result<Vec<PageItem>> {
    let prefix = space.namespace().entry_prefix();
    let mut mget = redis::cmd("MGET");
    let mut key = Vec::new();
    for member in &members {
        mget.arg(joined(&mut key, prefix, member));
    }
    let reply: Value = mget
        .query_async(&mut space.conn())
        .await
        .map_err(space.fail("iterate"))?;
    let values = match reply {
        Value::Array(values) if values.len() == members.len() => values,
        other => return Err(unexpected(space, "MGET", other)),
    };
    let mut page = Vec::with_capacity(members.len());
    let mut nil = Vec::new();
    for (member, value) in members.into_iter().zip(values) {
        match value {
            Value::BulkString(bytes) => page.push(Ok((member, Some(bytes)))),
            Value::Nil => nil.push(member),
            other => return Err(unexpected(space, "MGET", other)),
        }
    }
    if !nil.is_empty() {
        let mut types = redis::pipe();
        for member in &nil {
            types.cmd("TYPE").arg(joined(&mut key, prefix, member));
        }
        let found: Vec<String> = types
            .query_async(&mut space.conn())
            .await
            .map_err(space.fail("iterate"))?;
        for (member, found) in nil.into_iter().zip(found) {
            // "none": deleted or expired since the ZSCAN. "string": deleted
            // and written again between the MGET and the TYPE, so not present
            // from start to end: skipped like a deleted entry, never reported
            // as foreign (the soak program caught that race).
            if found != "none" && found != "string" {
                let redis_key = format!("{prefix}{member}");
                page.push(Err(space.wrong_type("iterate", &redis_key, found)));
            }
        }
    }
    Ok(page)
}

/// The error for a reply of an unexpected shape.
fn unexpected(space: &Space, command: &str, reply: Value) -> crate::Error {
    let e = redis::ParsingError::from(format!("unexpected {command} reply {reply:?}"));
    space.fail("iterate")(e.into())
}

/// The next cursor and the (member, score) texts of a ZSCAN reply, taking
/// the reply's buffers rather than copying them; the unexpected reply on error.
fn scan_reply(reply: Option<Value>) -> std::result::Result<(u64, Vec<Vec<u8>>), Value> {
    let Some(Value::Array(mut parts)) = reply else {
        return Err(reply.unwrap_or(Value::Nil));
    };
    match (parts.pop(), parts.pop()) {
        (Some(Value::Array(found)), Some(Value::BulkString(cursor))) => {
            let cursor = std::str::from_utf8(&cursor)
                .ok()
                .and_then(|c| c.parse().ok())
                .ok_or_else(|| Value::BulkString(cursor.clone()))?;
            let found = found
                .into_iter()
                .map(|v| match v {
                    Value::BulkString(bytes) => Ok(bytes),
                    Value::Double(score) => Ok(score.to_string().into_bytes()),
                    other => Err(other),
                })
                .collect::<std::result::Result<_, _>>()?;
            Ok((cursor, found))
        }
        (found, cursor) => Err(Value::Array(cursor.into_iter().chain(found).collect())),
    }
}
