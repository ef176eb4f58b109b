//! Paged iteration over a namespace. Each round trip carries the MGET of the
//! values of one page and the ZSCAN of the next page's members, and the next
//! round trip is already under way (in a task of its own) while the caller
//! works on the current page.

use std::collections::HashSet;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::time::Instant;

use redis::Value;
use tokio::task::JoinHandle;

use crate::error::{Error, Result};
use crate::space::Space;

/// One entry of a page: the key text and, when values were asked for, its value.
pub(crate) type PageEntry = (String, Option<Vec<u8>>);

/// What one round trip brings back.
struct Step {
    /// The members whose values were asked for, with their values (`None` when
    /// only keys are wanted, or when the entry vanished meanwhile).
    page: Vec<(String, Option<Vec<u8>>)>,
    /// The ZSCAN step, when one was asked for: next cursor and member/score pairs.
    scan: Option<(u64, Vec<String>)>,
    /// Server time in ms and the index size, when asked for (first round trip).
    start: Option<(u64, usize)>,
}

/// A cursor over a namespace index (see [`Space::pages`]).
///
/// ZSCAN may report a member twice while the index is being resized; members
/// already yielded are remembered (as 64-bit hashes) and skipped, so memory
/// grows by a few bytes per entry, never by the entries themselves.
pub(crate) struct Pages {
    space: Space,
    pattern: Option<String>,
    with_values: bool,
    /// Where the next ZSCAN starts; `None` once the scan is complete.
    cursor: Option<u64>,
    /// Live members found by the last ZSCAN, whose values are not read yet.
    members: Vec<String>,
    /// The round trip under way.
    next: Option<JoinHandle<Result<Step>>>,
    /// Server time (ms) at the first round trip and the local instant it arrived.
    clock: Option<(u64, Instant)>,
    seen: HashSet<u64>,
}

impl Space {
    /// Pages of live members matching `pattern` (all when `None`), with their
    /// values when `with_values` (entries gone meanwhile are skipped).
    pub(crate) fn pages(&self, pattern: Option<&str>, with_values: bool) -> Pages {
        Pages {
            space: self.clone(),
            pattern: pattern.map(str::to_owned),
            with_values,
            cursor: Some(0),
            members: Vec::new(),
            next: None,
            clock: None,
            seen: HashSet::new(),
        }
    }
}

impl Pages {
    /// The next non-empty page, or `None` at the end.
    pub(crate) async fn next_page(&mut self) -> Result<Option<Vec<PageEntry>>> {
        loop {
            let running = match self.next.take() {
                Some(running) => running,
                None if self.members.is_empty() && self.cursor.is_none() => return Ok(None),
                None => self.start(),
            };
            let step = match running.await {
                Ok(step) => step?,
                Err(join) => {
                    return Err(Error::Redis {
                        operation: "iterate",
                        namespace: self.space.namespace().name().to_owned(),
                        source: std::io::Error::other(join.to_string()).into(),
                    })
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
            // Start the next round trip before handing this page over.
            if !self.members.is_empty() || self.cursor.is_some() {
                self.next = Some(self.start());
            }
            let page: Vec<PageEntry> = step
                .page
                .into_iter()
                .filter(|(_, value)| !self.with_values || value.is_some())
                .collect();
            if !page.is_empty() {
                return Ok(Some(page));
            }
        }
    }

    /// Keeps the members whose expiry has not passed and that were not seen yet.
    fn collect_live(&mut self, found: Vec<String>) {
        let now = match self.clock {
            Some((ms, at)) => ms + at.elapsed().as_millis() as u64,
            None => 0,
        };
        let mut found = found.into_iter();
        while let (Some(member), Some(score)) = (found.next(), found.next()) {
            let live = match score.as_str() {
                "inf" | "+inf" => true,
                score => score.parse::<f64>().map_or(true, |s| s >= now as f64),
            };
            if live && self.seen.insert(hash_of(&member)) {
                self.members.push(member);
            }
        }
    }

    /// Starts the round trip for the pending members and the next ZSCAN step.
    fn start(&mut self) -> JoinHandle<Result<Step>> {
        let space = self.space.clone();
        let members = std::mem::take(&mut self.members);
        let cursor = self.cursor;
        let pattern = self.pattern.clone();
        let with_values = self.with_values;
        let need_clock = self.clock.is_none();
        tokio::spawn(async move {
            round_trip(
                &space,
                members,
                with_values,
                cursor,
                pattern.as_deref(),
                need_clock,
            )
            .await
        })
    }
}

impl Drop for Pages {
    fn drop(&mut self) {
        if let Some(running) = self.next.take() {
            running.abort();
        }
    }
}

/// One round trip: MGET of `members` (when values are wanted), TIME (once),
/// and the ZSCAN step at `cursor` (while the scan goes on).
async fn round_trip(
    space: &Space,
    members: Vec<String>,
    with_values: bool,
    cursor: Option<u64>,
    pattern: Option<&str>,
    need_clock: bool,
) -> Result<Step> {
    let ns = space.namespace();
    let fetch_values = with_values && !members.is_empty();
    let mut pipe = redis::pipe();
    if fetch_values {
        let keys: Vec<String> = members.iter().map(|m| ns.entry_key(m)).collect();
        pipe.cmd("MGET").arg(keys);
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
        scan.arg("COUNT").arg(space.page_size());
    }
    let replies: Vec<Value> = if pipe.is_empty() {
        Vec::new()
    } else {
        pipe.query_async(&mut space.conn())
            .await
            .map_err(space.fail("iterate"))?
    };
    let parse = |e: redis::ParsingError| space.fail("iterate")(e.into());
    let mut replies = replies.into_iter();
    let page = if fetch_values {
        let values: Vec<Option<Vec<u8>>> =
            redis::from_redis_value(replies.next().unwrap_or(Value::Nil)).map_err(parse)?;
        members.into_iter().zip(values).collect()
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
        scan = Some(redis::from_redis_value(replies.next().unwrap_or(Value::Nil)).map_err(parse)?);
    }
    Ok(Step { page, scan, start })
}

fn hash_of(member: &str) -> u64 {
    BuildHasherDefault::<DefaultHasher>::default().hash_one(member)
}
