//! Paged iteration over a namespace: one read-only script call per page
//! returns the live members of the next ZSCAN step and their values, and the
//! next page is already being fetched while the caller works on this one.

use std::collections::HashSet;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};

use redis::Value;
use tokio::task::JoinHandle;

use crate::error::Result;
use crate::scripts;
use crate::space::Space;

/// One entry of a page: the key text and, when values were asked for, its value.
pub(crate) type PageEntry = (String, Option<Vec<u8>>);

/// What one script call returns: the next ZSCAN cursor and the page.
type Fetched = (u64, Vec<PageEntry>);

/// A cursor over a namespace index (see [`Space::pages`]).
///
/// ZSCAN may report a member twice while the index is being resized; members
/// already yielded are remembered (as 64-bit hashes) and skipped, so memory
/// grows by 8 bytes per entry, not by the entries themselves.
pub(crate) struct Pages {
    space: Space,
    pattern: String,
    with_values: bool,
    /// The fetch of the next page, started as soon as the previous one arrived.
    next: Option<JoinHandle<Result<Fetched>>>,
    done: bool,
    seen: HashSet<u64>,
}

impl Space {
    /// Pages of live members matching `pattern` (all when `None`), with their
    /// values when `with_values` (entries gone meanwhile are skipped).
    pub(crate) fn pages(&self, pattern: Option<&str>, with_values: bool) -> Pages {
        Pages {
            space: self.clone(),
            pattern: pattern.unwrap_or_default().to_owned(),
            with_values,
            next: None,
            done: false,
            seen: HashSet::new(),
        }
    }
}

impl Pages {
    /// The next non-empty page, or `None` at the end.
    pub(crate) async fn next_page(&mut self) -> Result<Option<Vec<PageEntry>>> {
        loop {
            if self.done {
                return Ok(None);
            }
            let fetching = match self.next.take() {
                Some(fetching) => fetching,
                None => self.fetch(0),
            };
            let (cursor, page) = match fetching.await {
                Ok(fetched) => fetched?,
                Err(join) => {
                    self.done = true;
                    return Err(crate::Error::Redis {
                        operation: "iterate",
                        namespace: self.space.namespace().name().to_owned(),
                        source: std::io::Error::other(join.to_string()).into(),
                    });
                }
            };
            if cursor == 0 {
                self.done = true;
            } else {
                self.next = Some(self.fetch(cursor));
            }
            let seen = &mut self.seen;
            let page: Vec<PageEntry> = page
                .into_iter()
                .filter(|(member, _)| seen.insert(hash_of(member)))
                .collect();
            if !page.is_empty() {
                return Ok(Some(page));
            }
        }
    }

    /// Starts fetching the page at `cursor` in a task of its own.
    fn fetch(&self, cursor: u64) -> JoinHandle<Result<Fetched>> {
        let space = self.space.clone();
        let pattern = self.pattern.clone();
        let with_values = self.with_values;
        tokio::spawn(async move { fetch_page(&space, cursor, &pattern, with_values).await })
    }
}

impl Drop for Pages {
    fn drop(&mut self) {
        if let Some(fetching) = self.next.take() {
            fetching.abort();
        }
    }
}

async fn fetch_page(
    space: &Space,
    cursor: u64,
    pattern: &str,
    with_values: bool,
) -> Result<Fetched> {
    let ns = space.namespace();
    let reply: Vec<Value> = scripts::PAGE
        .key(ns.index_key())
        .arg(cursor)
        .arg(space.page_size())
        .arg(pattern)
        .arg(if with_values { ns.entry_prefix() } else { "" })
        .invoke_async(&mut space.conn())
        .await
        .map_err(space.fail("iterate"))?;
    let mut reply = reply.into_iter();
    let parse = |e: redis::ParsingError| space.fail("iterate")(e.into());
    let next: u64 = match reply.next() {
        Some(cursor) => redis::from_redis_value(cursor).map_err(parse)?,
        None => 0,
    };
    let mut page = Vec::with_capacity(reply.len() / 2);
    if with_values {
        while let (Some(member), Some(value)) = (reply.next(), reply.next()) {
            page.push((
                redis::from_redis_value(member).map_err(parse)?,
                Some(redis::from_redis_value(value).map_err(parse)?),
            ));
        }
    } else {
        for member in reply {
            page.push((redis::from_redis_value(member).map_err(parse)?, None));
        }
    }
    Ok((next, page))
}

fn hash_of(member: &str) -> u64 {
    BuildHasherDefault::<DefaultHasher>::default().hash_one(member)
}
