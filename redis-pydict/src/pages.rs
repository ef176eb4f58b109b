//! Paged iteration over a namespace.
//!
//! A producer task walks the index: each round trip carries the MGET of the
//! values of one page and the ZSCAN of the next page's members, and the next
//! round trip goes out as soon as the previous reply is in, while the caller
//! is still working on earlier entries. Pages reach the caller through a
//! channel of one page, so at most a few pages are held at once. The entry
//! stream gives the producer (and the connection) a turn every
//! [`YIELD_EVERY`] entries, so on a current-thread runtime too the server
//! works on the next page while the caller decodes this one.

use std::collections::HashSet;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::time::Instant;

use futures::stream::{self, Stream};
use redis::Value;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::error::Result;
use crate::space::Space;

/// One entry of a page: the key text and, when values were asked for, its value.
pub(crate) type PageEntry = (String, Option<Vec<u8>>);

/// Entries handed to the caller between two turns of the producer.
const YIELD_EVERY: usize = 128;

/// What one round trip brings back.
struct Step {
    /// The members whose values were asked for, with their values (only the
    /// members still there when values are wanted).
    page: Vec<PageEntry>,
    /// The ZSCAN step, when one was asked for: next cursor and member/score pairs.
    scan: Option<(u64, Vec<Vec<u8>>)>,
    /// Server time in ms and the index size, when asked for (first round trip).
    start: Option<(u64, usize)>,
}

/// Entries of a namespace, as a stream (see [`Space::entries`]).
struct Pages {
    pages: mpsc::Receiver<Result<Vec<PageEntry>>>,
    producer: JoinHandle<()>,
}

impl Drop for Pages {
    fn drop(&mut self) {
        self.producer.abort();
    }
}

impl Space {
    /// The live members matching `pattern` (all when `None`), with their
    /// values when `with_values` (entries gone meanwhile are skipped). After
    /// a Redis error the stream yields it and ends.
    pub(crate) fn entries(
        &self,
        pattern: Option<&str>,
        with_values: bool,
    ) -> impl Stream<Item = Result<PageEntry>> + Send + 'static {
        let walk = Walk {
            space: self.clone(),
            pattern: pattern.map(str::to_owned),
            with_values,
            cursor: Some(0),
            members: Vec::new(),
            clock: None,
            seen: HashSet::new(),
            trips: 0,
        };
        // The producer starts at the first poll, inside the caller's runtime
        // (the stream may be made outside one, as the blocking API does).
        stream::unfold(
            Some((Err(walk), Vec::new().into_iter(), 0usize)),
            |state| async move {
                let (pages, mut page, mut handed) = state?;
                let mut pages = pages.unwrap_or_else(Pages::start);
                loop {
                    if let Some(entry) = page.next() {
                        handed += 1;
                        if handed % YIELD_EVERY == 0 {
                            tokio::task::yield_now().await;
                        }
                        return Some((Ok(entry), Some((Ok(pages), page, handed))));
                    }
                    match pages.pages.recv().await {
                        Some(Ok(next)) => page = next.into_iter(),
                        Some(Err(e)) => return Some((Err(e), None)),
                        None => return None,
                    }
                }
            },
        )
    }
}

impl Pages {
    fn start(walk: Walk) -> Pages {
        let (sender, receiver) = mpsc::channel(1);
        Pages {
            pages: receiver,
            producer: tokio::spawn(walk.run(sender)),
        }
    }
}

/// The producer's state: a cursor over the namespace index.
///
/// ZSCAN may report a member twice while the index is being resized; members
/// already yielded are remembered (as 64-bit hashes) and skipped, so memory
/// grows by a few bytes per entry, never by the entries themselves.
struct Walk {
    space: Space,
    pattern: Option<String>,
    with_values: bool,
    /// Where the next ZSCAN starts; `None` once the scan is complete.
    cursor: Option<u64>,
    /// Live members found by the last ZSCAN, whose values are not read yet.
    members: Vec<String>,
    /// Server time (ms) at the first round trip and the local instant it arrived.
    clock: Option<(u64, Instant)>,
    seen: HashSet<u64>,
    /// Round trips made so far.
    trips: usize,
}

impl Walk {
    /// Walks the index, sending each non-empty page; stops at the end, after
    /// sending an error, or when the receiver is gone.
    async fn run(mut self, pages: mpsc::Sender<Result<Vec<PageEntry>>>) {
        let mut ready: Option<Vec<PageEntry>> = None;
        loop {
            let more = !self.members.is_empty() || self.cursor.is_some();
            // The next round trip and the hand-over of the page before it
            // run together: the request goes out before the page waits for room.
            let trip = async {
                if more {
                    Some(self.round_trip().await)
                } else {
                    None
                }
            };
            let hand_over = async {
                match ready.take() {
                    Some(page) => pages.send(Ok(page)).await.is_ok(),
                    None => true,
                }
            };
            let (step, receiver_alive) = futures::join!(trip, hand_over);
            if !receiver_alive {
                return;
            }
            let step = match step {
                None => return,
                Some(Ok(step)) => step,
                Some(Err(e)) => {
                    let _ = pages.send(Err(e)).await;
                    return;
                }
            };
            if let Some((ms, members)) = step.start {
                self.clock = Some((ms, Instant::now()));
                // Sized once: growing the set would briefly hold two tables.
                self.seen.reserve(members);
            }
            if let Some((cursor, found)) = step.scan {
                self.cursor = (cursor != 0).then_some(cursor);
                self.collect_live(found);
            }
            if !step.page.is_empty() {
                ready = Some(step.page);
            }
        }
    }

    /// Keeps the members whose expiry has not passed and that were not seen yet.
    fn collect_live(&mut self, found: Vec<Vec<u8>>) {
        let now = match self.clock {
            Some((ms, at)) => ms + at.elapsed().as_millis() as u64,
            None => 0,
        };
        let mut found = found.into_iter();
        while let (Some(member), Some(score)) = (found.next(), found.next()) {
            let live = match score.as_slice() {
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
            if live && self.seen.insert(hash_of(&member)) {
                self.members.push(member);
            }
        }
    }

    /// The round trip for the pending members and the next ZSCAN step.
    async fn round_trip(&mut self) -> Result<Step> {
        let members = std::mem::take(&mut self.members);
        // The first pages are small, so the caller gets entries soon.
        let page_size = self.space.page_size();
        let count = match self.trips {
            0 => page_size / 8,
            1 => page_size / 2,
            _ => page_size,
        };
        self.trips += 1;
        round_trip(
            &self.space,
            members,
            self.with_values,
            self.cursor,
            count.max(1),
            self.pattern.as_deref(),
            self.clock.is_none(),
        )
        .await
    }
}

/// One round trip: MGET of `members` (when values are wanted), TIME (once),
/// and the ZSCAN step at `cursor` (while the scan goes on).
async fn round_trip(
    space: &Space,
    members: Vec<String>,
    with_values: bool,
    cursor: Option<u64>,
    count: usize,
    pattern: Option<&str>,
    need_clock: bool,
) -> Result<Step> {
    let ns = space.namespace();
    let fetch_values = with_values && !members.is_empty();
    let mut pipe = redis::pipe();
    if fetch_values {
        let mget = pipe.cmd("MGET");
        let mut key = String::new();
        for member in &members {
            key.clear();
            key.push_str(ns.entry_prefix());
            key.push_str(member);
            mget.arg(key.as_str());
        }
    }
    if let Some(cursor) = cursor {
        if need_clock {
            pipe.cmd("TIME");
            pipe.cmd("ZCARD").arg(ns.index_key());
        }
        let scan = pipe.cmd("ZSCAN").arg(ns.index_key()).arg(cursor);
        if let Some(pattern) = pattern {
            scan.arg("MATCH").arg(pattern);
        }
        scan.arg("COUNT").arg(count);
    }
    let replies: Vec<Value> = if pipe.is_empty() {
        Vec::new()
    } else {
        pipe.query_async(&mut space.conn())
            .await
            .map_err(space.fail("iterate"))?
    };
    let parse = |e: redis::ParsingError| space.fail("iterate")(e.into());
    let unexpected = |command: &str, reply: Option<Value>| {
        parse(redis::ParsingError::from(format!(
            "unexpected {command} reply {reply:?}"
        )))
    };
    let mut replies = replies.into_iter();
    let page = if fetch_values {
        let values = match replies.next() {
            Some(Value::Array(values)) if values.len() == members.len() => values,
            other => return Err(unexpected("MGET", other)),
        };
        let mut page = Vec::with_capacity(members.len());
        for (member, value) in members.into_iter().zip(values) {
            match value {
                Value::BulkString(bytes) => page.push((member, Some(bytes))),
                Value::Nil => {} // deleted or expired since the ZSCAN
                other => return Err(unexpected("MGET", Some(other))),
            }
        }
        page
    } else {
        members.into_iter().map(|m| (m, None)).collect()
    };
    let mut start = None;
    let mut scan = None;
    if cursor.is_some() {
        if need_clock {
            let (secs, micros): (u64, u64) =
                redis::from_redis_value(replies.next().unwrap_or(Value::Nil)).map_err(parse)?;
            let members: usize =
                redis::from_redis_value(replies.next().unwrap_or(Value::Nil)).map_err(parse)?;
            start = Some((secs * 1000 + micros / 1000, members));
        }
        scan = Some(scan_step(replies.next()).map_err(|e| unexpected("ZSCAN", Some(e)))?);
    }
    Ok(Step { page, scan, start })
}

/// The next cursor and the (member, score) texts of a ZSCAN reply, taking
/// the reply's buffers rather than copying them; the unexpected reply on error.
fn scan_step(reply: Option<Value>) -> std::result::Result<(u64, Vec<Vec<u8>>), Value> {
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

fn hash_of(member: &str) -> u64 {
    BuildHasherDefault::<DefaultHasher>::default().hash_one(member)
}
