//! `dump` and `restore`: a namespace as newline-delimited JSON, lossless.
//!
//! # Dump format, version 1
//!
//! UTF-8 text, one JSON object per line (`\n`-terminated):
//!
//! 1. A header: `{"format":"redis-pydict-dump","version":1,"namespace":"jobs",
//!    "match":null,"time_ms":1764857000000}`: the namespace dumped, the glob
//!    applied to its keys (`null`: all), and the time (Unix ms, the dumping
//!    machine's clock) when the dump started.
//! 2. One line per entry: `{"key":"job:1","cbor":"gQE","ttl_ms":null}`: the
//!    key (the text after `{ns}:`), the value's exact stored bytes (one CBOR
//!    item) in base64url without padding, and the entry's remaining
//!    time-to-live in ms when it was read (`null`: none).
//! 3. A trailer: `{"end":true,"entries":N}`, the number of entry lines. A
//!    file without it is cut short, and `restore` says so.
//!
//! Readers ignore fields they do not know; a new version number means an
//! incompatible change.
//!
//! Entries are read in pages of the namespace index, so the dump is not a
//! point-in-time snapshot of a namespace being written meanwhile: each entry
//! is as it was when its page was read.

use std::io::{BufRead, Write};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use futures::StreamExt;
use redis_pydict::{Dict, RawCbor, Store};
use serde::{Deserialize, Serialize};

use crate::{Failure, Progress};

const FORMAT: &str = "redis-pydict-dump";
const VERSION: u64 = 1;
/// Entries whose TTL is read in one round trip.
const PAGE: usize = 1000;

#[derive(Serialize, Deserialize)]
struct Header {
    format: String,
    version: u64,
    namespace: String,
    #[serde(rename = "match")]
    pattern: Option<String>,
    time_ms: u64,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    key: String,
    cbor: String,
    ttl_ms: Option<u64>,
}

#[derive(Serialize, Deserialize)]
struct Trailer {
    end: bool,
    entries: u64,
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Writes the dump of `dict` (keys matching `pattern`) to `out`; returns
/// (entries written, entries skipped because their value is not CBOR).
pub async fn dump(
    store: &Store,
    dict: &Dict<String, RawCbor>,
    pattern: Option<&str>,
    out: &mut impl Write,
) -> Result<(u64, u64), Failure> {
    let header = Header {
        format: FORMAT.into(),
        version: VERSION,
        namespace: dict.namespace().name().into(),
        pattern: pattern.map(str::to_owned),
        time_ms: now_ms(),
    };
    writeln!(out, "{}", serde_json::to_string(&header)?)?;
    let progress = Progress::new(dict.len().await?, "dumping");
    let items = match pattern {
        Some(p) => dict.items_matching(p).boxed(),
        None => dict.items().boxed(),
    };
    let mut pages = items.ready_chunks(PAGE);
    let (mut written, mut skipped) = (0u64, 0u64);
    let mut conn = store.connection();
    while let Some(page) = pages.next().await {
        let mut entries = Vec::with_capacity(page.len());
        for item in page {
            match item {
                Ok(entry) => entries.push(entry),
                Err(e @ redis_pydict::Error::Decode { .. }) => {
                    eprintln!("redis-pydict: skipped: {e}");
                    skipped += 1;
                }
                Err(e) => return Err(e.into()),
            }
        }
        let mut pipe = redis::pipe();
        for (key, _) in &entries {
            pipe.cmd("PTTL").arg(dict.namespace().entry_key(key));
        }
        let ttls: Vec<i64> = pipe.query_async(&mut conn).await.map_err(|e| {
            Failure::Server(format!(
                "reading TTLs of namespace {:?}: {e}",
                dict.namespace().name()
            ))
        })?;
        for ((key, value), ttl) in entries.into_iter().zip(ttls) {
            let ttl_ms = match ttl {
                -2 => continue, // expired or deleted since it was read
                -1 => None,
                ms => Some(ms.max(1) as u64),
            };
            let entry = Entry {
                key,
                cbor: URL_SAFE_NO_PAD.encode(value.as_bytes()),
                ttl_ms,
            };
            writeln!(out, "{}", serde_json::to_string(&entry)?)?;
            written += 1;
        }
        progress.set(written + skipped);
    }
    writeln!(
        out,
        "{}",
        serde_json::to_string(&Trailer {
            end: true,
            entries: written
        })?
    )?;
    out.flush()?;
    progress.finish();
    Ok((written, skipped))
}

/// What a restore did.
#[derive(Serialize)]
pub struct Restored {
    pub restored: u64,
    /// Entries whose TTL ran out between the dump and the restore.
    pub expired: u64,
}

/// Reads a dump from `input` and writes its entries into `dict` in atomic
/// batches of `batch` entries. TTLs are shortened by the time since the dump
/// started unless `keep_ttl`.
pub async fn restore(
    dict: &Dict<String, RawCbor>,
    input: impl BufRead,
    batch: usize,
    keep_ttl: bool,
) -> Result<Restored, Failure> {
    let mut lines = input.lines();
    let first = lines
        .next()
        .transpose()?
        .ok_or_else(|| Failure::Data("the dump is empty (no header line)".into()))?;
    let header: Header = serde_json::from_str(&first)
        .map_err(|e| Failure::Data(format!("line 1 is not a dump header: {e}")))?;
    if header.format != FORMAT {
        return Err(Failure::Data(format!(
            "line 1: format {:?} is not {FORMAT:?}",
            header.format
        )));
    }
    if header.version != VERSION {
        return Err(Failure::Data(format!(
            "dump format version {} is not supported (this tool reads version {VERSION})",
            header.version
        )));
    }
    let progress = Progress::new(0, "restoring");
    let mut done = Restored {
        restored: 0,
        expired: 0,
    };
    let mut pending: Vec<(String, RawCbor, Option<u64>)> = Vec::with_capacity(batch);
    let mut entries_seen = 0u64;
    let mut trailer: Option<Trailer> = None;
    for (index, line) in lines.enumerate() {
        let number = index + 2;
        let line = line?;
        if trailer.is_some() {
            return Err(Failure::Data(format!(
                "line {number}: data after the end line"
            )));
        }
        if line.starts_with("{\"end\"") {
            let end: Trailer = serde_json::from_str(&line)
                .map_err(|e| Failure::Data(format!("line {number}: bad end line: {e}")))?;
            trailer = Some(end);
            continue;
        }
        let entry: Entry = serde_json::from_str(&line)
            .map_err(|e| Failure::Data(format!("line {number}: not a dump entry: {e}")))?;
        entries_seen += 1;
        let bytes = URL_SAFE_NO_PAD.decode(&entry.cbor).map_err(|e| {
            Failure::Data(format!(
                "line {number} (key {:?}): cbor is not base64url: {e}",
                entry.key
            ))
        })?;
        let value = RawCbor::new(bytes)
            .map_err(|e| Failure::Data(format!("line {number} (key {:?}): {e}", entry.key)))?;
        pending.push((entry.key, value, entry.ttl_ms));
        if pending.len() >= batch {
            write(dict, &mut pending, &header, keep_ttl, &mut done).await?;
            progress.set(done.restored);
        }
    }
    write(dict, &mut pending, &header, keep_ttl, &mut done).await?;
    progress.finish();
    match trailer {
        None => Err(Failure::Data(format!(
            "the dump is cut short (no end line after {entries_seen} entries); the {} entries read were restored: restore a complete dump (rerunning is safe)",
            done.restored
        ))),
        Some(end) if end.entries != entries_seen => Err(Failure::Data(format!(
            "the dump's end line counts {} entries but {entries_seen} were read",
            end.entries
        ))),
        Some(_) => Ok(done),
    }
}

/// Writes the `pending` entries as one atomic batch, their TTLs shortened
/// by the time since the dump started (measured now, as the batch goes out)
/// unless `keep_ttl`; entries whose TTL has run out are skipped and counted.
async fn write(
    dict: &Dict<String, RawCbor>,
    pending: &mut Vec<(String, RawCbor, Option<u64>)>,
    header: &Header,
    keep_ttl: bool,
    done: &mut Restored,
) -> Result<(), Failure> {
    let elapsed = if keep_ttl {
        0
    } else {
        now_ms().saturating_sub(header.time_ms)
    };
    let mut entries = Vec::with_capacity(pending.len());
    for (key, value, ttl_ms) in pending.drain(..) {
        let ttl = match ttl_ms {
            None => None,
            Some(ms) if ms > elapsed => Some(Duration::from_millis(ms - elapsed)),
            Some(_) => {
                done.expired += 1;
                continue;
            }
        };
        entries.push((key, value, ttl));
    }
    let count = entries.len() as u64;
    dict.set_many_with_ttl(entries)
        .await
        .map_err(|e| applied(e, done))?;
    done.restored += count;
    Ok(())
}

/// A restore error, with how far the restore got.
fn applied(error: redis_pydict::Error, done: &Restored) -> Failure {
    let mut failure = Failure::from(error);
    failure.add_context(format!(
        "restore stopped; {} entries restored before this batch (rerunning is safe)",
        done.restored
    ));
    failure
}
