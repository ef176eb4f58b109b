//! `redis-pydict`: the operator's tool for redis-pydict namespaces: list,
//! read, write, watch, dump and restore them from a shell.
//!
//! Output is for pipes by default (one JSON value per line); `--pretty`, or
//! a terminal on stdout, gives human tables. Errors are one line on stderr
//! and a non-zero exit code: 1 data (wrong type, undecodable value, bad dump
//! file), 2 usage (bad arguments, namespace, JSON, TTL or URL), 3 not found,
//! 4 server or connection.

#![forbid(unsafe_code)]

mod diag;
mod dump;
mod glob;
mod json;

use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, Parser, Subcommand};
use futures::StreamExt;
use redis_pydict::{Change, Dict, Error, Event, LogId, RawCbor, StartFrom, Store};
use serde_json::{json, Value as Json};

/// Inspect, watch, dump and restore redis-pydict namespaces.
#[derive(Parser, Debug)]
#[command(name = "redis-pydict", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Debug)]
struct Global {
    /// Server URL (`redis://`, `rediss://` for TLS, `redis+unix://`).
    #[arg(
        long,
        env = "REDIS_URL",
        default_value = "redis://127.0.0.1:6379",
        global = true
    )]
    url: String,
    /// Cluster node URLs (repeat, or separate with commas); overrides --url.
    #[arg(long, env = "REDIS_CLUSTER", value_delimiter = ',', global = true)]
    cluster: Vec<String>,
    /// TLS: trust this root certificate (PEM file) instead of the system's.
    #[arg(long, value_name = "PEM", global = true)]
    tls_ca: Option<PathBuf>,
    /// TLS: client certificate (PEM file), with --tls-key.
    #[arg(long, value_name = "PEM", requires = "tls_key", global = true)]
    tls_cert: Option<PathBuf>,
    /// TLS: client private key (PEM file), with --tls-cert.
    #[arg(long, value_name = "PEM", requires = "tls_cert", global = true)]
    tls_key: Option<PathBuf>,
    /// Time to wait for a connection.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration, global = true)]
    connect_timeout: Duration,
    /// Origin id written into the change events of this tool's writes.
    #[arg(long, default_value = "redis-pydict-cli", global = true)]
    origin: String,
    /// Append writes to the namespace's durable log, capped at this length
    /// (default: append when the namespace declares a log in `{ns}#meta`,
    /// with its cap; else, uncapped, when the log `{ns}#log` exists).
    #[arg(long, value_name = "MAXLEN", global = true)]
    log_max_len: Option<u64>,
    /// Human tables and indented JSON (the default when stdout is a terminal).
    #[arg(long, global = true, conflicts_with = "json")]
    pretty: bool,
    /// One JSON value per line (the default when stdout is not a terminal).
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Namespaces (matching GLOB) with their entry counts, found by their
    /// index keys on the server or every cluster master.
    Ls {
        /// Redis glob on the namespace name.
        #[arg(default_value = "*")]
        glob: String,
    },
    /// The value at KEY, as JSON (lossy: see the docs) or, with --diag, as
    /// exact CBOR diagnostic notation.
    Get {
        namespace: String,
        key: String,
        /// CBOR diagnostic notation instead of JSON.
        #[arg(long)]
        diag: bool,
    },
    /// Writes JSON at KEY through the library's write path (index, event,
    /// durable log).
    Set {
        namespace: String,
        key: String,
        /// The value, as JSON (`42`, `1.5`, `"text"`, `[1,2]`, `{"a":1}`).
        #[arg(value_name = "JSON")]
        value: String,
        /// Time to live (`30s`, `5m`, `1h 30m`, `250ms`).
        #[arg(long, value_parser = humantime::parse_duration)]
        ttl: Option<Duration>,
    },
    /// Deletes KEY through the library's write path.
    Del { namespace: String, key: String },
    /// Keys (matching GLOB), one JSON string per line.
    Keys {
        namespace: String,
        #[arg(default_value = "*")]
        glob: String,
    },
    /// Entries (matching GLOB), one `{"key", "value"}` object per line.
    Items {
        namespace: String,
        #[arg(default_value = "*")]
        glob: String,
    },
    /// Writes a lossless dump of the namespace to stdout (see the docs for
    /// the format).
    Dump {
        namespace: String,
        /// Only the keys matching this Redis glob.
        #[arg(long = "match", value_name = "GLOB")]
        pattern: Option<String>,
    },
    /// Restores a dump from stdin into NAMESPACE (safe to rerun).
    Restore {
        namespace: String,
        /// Entries per atomic batch.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
        batch: u64,
        /// Keep TTLs as dumped instead of shortening them by the time since
        /// the dump.
        #[arg(long)]
        keep_ttl: bool,
    },
    /// Change events (of keys matching GLOB) as they happen, one JSON object
    /// per line.
    Watch {
        namespace: String,
        #[arg(default_value = "*")]
        glob: String,
        /// Read the durable log `{ns}#log` (replayed from --from, then live).
        #[arg(long)]
        durable: bool,
        /// With --durable: `beginning`, `now`, or the log id to resume after.
        #[arg(long, requires = "durable", default_value = "beginning")]
        from: String,
        /// Exit after this many events.
        #[arg(long)]
        count: Option<u64>,
    },
    /// Rebuilds the namespace index from the keyspace and reports what changed.
    Repair { namespace: String },
    /// Entry count, TTL spread, sampled memory, durable log length.
    Stats {
        namespace: String,
        /// Entries sampled for `MEMORY USAGE`.
        #[arg(long, default_value_t = 100)]
        samples: u64,
    },
}

/// Why a command failed, and so its exit code.
#[derive(Debug)]
pub enum Failure {
    /// Exit 1: the data (wrong type, undecodable, bad dump file).
    Data(String),
    /// Exit 2: bad arguments.
    Usage(String),
    /// Exit 3: the key or namespace does not exist.
    NotFound(String),
    /// Exit 4: the server could not be reached or refused.
    Server(String),
    /// Stdout closed (`| head`): stop quietly.
    Closed,
}

impl Failure {
    fn code(&self) -> u8 {
        match self {
            Failure::Closed => 0,
            Failure::Data(_) => 1,
            Failure::Usage(_) => 2,
            Failure::NotFound(_) => 3,
            Failure::Server(_) => 4,
        }
    }

    /// Appends `context` to the message.
    pub fn add_context(&mut self, context: String) {
        match self {
            Failure::Data(m) | Failure::Usage(m) | Failure::NotFound(m) | Failure::Server(m) => {
                m.push_str("; ");
                m.push_str(&context);
            }
            Failure::Closed => {}
        }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        let message = e.to_string();
        let inner = match &e {
            Error::PartlyApplied { source, .. } => source.as_ref(),
            other => other,
        };
        match inner {
            Error::InvalidNamespace { .. }
            | Error::InvalidKey { .. }
            | Error::InvalidTtl { .. }
            | Error::InvalidCbor { .. }
            | Error::InvalidLogId(_)
            | Error::Config(_) => Failure::Usage(message),
            Error::Connect { source, .. }
                if source.kind() == redis::ErrorKind::InvalidClientConfig =>
            {
                Failure::Usage(message)
            }
            Error::Connect { .. } | Error::Redis { .. } => Failure::Server(message),
            _ => Failure::Data(message),
        }
    }
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::BrokenPipe {
            Failure::Closed
        } else {
            Failure::Data(format!("I/O error: {e}"))
        }
    }
}

impl From<serde_json::Error> for Failure {
    fn from(e: serde_json::Error) -> Self {
        if e.io_error_kind() == Some(io::ErrorKind::BrokenPipe) {
            Failure::Closed
        } else {
            Failure::Data(format!("JSON error: {e}"))
        }
    }
}

/// A progress bar on stderr, drawn only when stderr is a terminal.
pub struct Progress(Option<indicatif::ProgressBar>);

impl Progress {
    /// A bar for `total` entries (0: unknown, a spinner).
    pub fn new(total: u64, what: &str) -> Self {
        if !io::stderr().is_terminal() {
            return Progress(None);
        }
        let bar = if total > 0 {
            indicatif::ProgressBar::new(total)
        } else {
            indicatif::ProgressBar::new_spinner()
        };
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{msg} [{bar:40}] {pos}/{len} entries ({per_sec}, {eta})",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(what.to_owned());
        Progress(Some(bar))
    }

    pub fn set(&self, done: u64) {
        if let Some(bar) = &self.0 {
            bar.set_position(done);
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

/// Where results go: JSON lines, or tables for a human.
struct Out {
    pretty: bool,
    stdout: BufWriter<io::Stdout>,
}

impl Out {
    /// One JSON value: a compact line, or indented when pretty.
    fn value(&mut self, value: &Json) -> Result<(), Failure> {
        if self.pretty {
            serde_json::to_writer_pretty(&mut self.stdout, value)?;
        } else {
            serde_json::to_writer(&mut self.stdout, value)?;
        }
        writeln!(self.stdout)?;
        Ok(())
    }

    fn line(&mut self, text: &str) -> Result<(), Failure> {
        writeln!(self.stdout, "{text}")?;
        Ok(())
    }

    /// Rows as an aligned table (pretty) or one JSON object each.
    fn table(&mut self, headers: &[&str], rows: &[Vec<Json>]) -> Result<(), Failure> {
        if !self.pretty {
            for row in rows {
                let object: serde_json::Map<String, Json> = headers
                    .iter()
                    .map(|h| h.to_string())
                    .zip(row.iter().cloned())
                    .collect();
                self.value(&Json::Object(object))?;
            }
            return Ok(());
        }
        let cells: Vec<Vec<String>> = rows
            .iter()
            .map(|row| row.iter().map(cell).collect())
            .collect();
        let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
        for row in &cells {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        let head: Vec<String> = headers.iter().map(|h| h.to_uppercase()).collect();
        for row in std::iter::once(&head).chain(&cells) {
            let mut text = String::new();
            for (i, (c, w)) in row.iter().zip(&widths).enumerate() {
                if i + 1 == row.len() {
                    text.push_str(c);
                } else {
                    text.push_str(&format!("{c:<w$}  "));
                }
            }
            self.line(text.trim_end())?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Failure> {
        self.stdout.flush()?;
        Ok(())
    }
}

/// A table cell: strings bare, null empty, anything else as JSON.
fn cell(value: &Json) -> String {
    match value {
        Json::String(s) => s.clone(),
        Json::Null => "-".to_owned(),
        other => other.to_string(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("redis-pydict: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let pretty = cli.global.pretty || (!cli.global.json && io::stdout().is_terminal());
    let mut out = Out {
        pretty,
        stdout: BufWriter::new(io::stdout()),
    };
    let result = runtime.block_on(async {
        let done = run(cli, &mut out).await;
        done.and_then(|()| out.flush())
    });
    match result {
        Ok(()) | Err(Failure::Closed) => ExitCode::SUCCESS,
        Err(failure) => {
            let code = failure.code();
            if let Failure::Data(m)
            | Failure::Usage(m)
            | Failure::NotFound(m)
            | Failure::Server(m) = &failure
            {
                // One line, whatever the message holds.
                eprintln!("redis-pydict: {}", m.replace('\n', " "));
            }
            ExitCode::from(code)
        }
    }
}

fn read_pem(path: &PathBuf) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|e| Failure::Usage(format!("cannot read {}: {e}", path.display())))
}

/// A store from the connection options, its reachability checked.
async fn connect(global: &Global, max_batch: usize) -> Result<Store, Failure> {
    let builder = if global.cluster.is_empty() {
        // Fail fast when the server is down: a tool, not a service.
        Store::builder(&global.url).reconnect(
            2,
            Duration::from_millis(50),
            Duration::from_millis(200),
        )
    } else {
        Store::cluster_builder(&global.cluster)
    };
    let mut builder = builder
        .connection_timeout(global.connect_timeout)
        .origin(global.origin.clone())
        .max_batch(max_batch);
    if let Some(ca) = &global.tls_ca {
        builder = builder.tls_root_certificate(read_pem(ca)?);
    }
    if let (Some(cert), Some(key)) = (&global.tls_cert, &global.tls_key) {
        builder = builder.tls_client_certificate(read_pem(cert)?, read_pem(key)?);
    }
    let store = builder.connect().await?;
    store.ping().await?;
    Ok(store)
}

/// A dict of `namespace` for writing: with the durable log when asked, or
/// when the namespace has one.
async fn writable<V>(
    store: &Store,
    global: &Global,
    namespace: &str,
) -> Result<Dict<String, V>, Failure> {
    let dict = store.dict::<String, V>(namespace)?;
    let max_len = match global.log_max_len {
        Some(n) => Some(n),
        // The namespace declares its log (`{ns}#meta`): the library appends
        // with the declared cap by itself.
        None if dict.durable_log_declared().await?.is_some() => None,
        None => {
            // A log written before declarations existed.
            let exists: bool = redis::cmd("EXISTS")
                .arg(dict.namespace().log_key())
                .query_async(&mut store.connection())
                .await
                .map_err(|e| server(namespace, e))?;
            // Never trims a log another writer caps.
            exists.then_some(i64::MAX as u64)
        }
    };
    Ok(match max_len {
        Some(n) => dict.with_durable_log(n),
        None => dict,
    })
}

fn server(namespace: &str, e: redis::RedisError) -> Failure {
    Failure::Server(format!("namespace {namespace:?}: {e}"))
}

/// NotFound unless the namespace has an index (entries written through the library).
async fn require_namespace<V>(store: &Store, dict: &Dict<String, V>) -> Result<(), Failure> {
    let name = dict.namespace().name();
    let exists: bool = redis::cmd("EXISTS")
        .arg(dict.namespace().index_key())
        .query_async(&mut store.connection())
        .await
        .map_err(|e| server(name, e))?;
    if exists {
        Ok(())
    } else {
        Err(Failure::NotFound(format!(
            "namespace {name:?} not found (no index key {:?}; `redis-pydict ls` lists namespaces, `repair` rebuilds an index)",
            dict.namespace().index_key()
        )))
    }
}

async fn run(cli: Cli, out: &mut Out) -> Result<(), Failure> {
    let global = &cli.global;
    let max_batch = match &cli.command {
        Command::Restore { batch, .. } => *batch as usize,
        _ => redis_pydict::DEFAULT_MAX_BATCH,
    };
    let store = connect(global, max_batch).await?;
    match cli.command {
        Command::Ls { glob } => {
            let mut rows = Vec::new();
            for name in store.namespaces(&glob).await? {
                match store.dict::<String, RawCbor>(&name)?.len().await {
                    Ok(entries) => rows.push(vec![json!(name), json!(entries)]),
                    // A user confined to some namespaces sees every index
                    // key in SCAN but may not read the others': skip them.
                    Err(Error::Redis { source, .. })
                        if source.kind()
                            == redis::ErrorKind::Server(redis::ServerErrorKind::NoPerm) =>
                    {
                        eprintln!(
                            "redis-pydict: skipped namespace {name:?}: this user may not read it (NOPERM)"
                        );
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            out.table(&["namespace", "entries"], &rows)
        }
        Command::Get {
            namespace,
            key,
            diag,
        } => {
            let dict = store.dict::<String, RawCbor>(&namespace)?;
            let Some(value) = dict.get(&key).await? else {
                require_namespace(&store, &dict).await?;
                return Err(Failure::NotFound(format!(
                    "key {key:?} not found in namespace {namespace:?}"
                )));
            };
            if diag {
                let text = diag::diag(value.as_bytes()).map_err(|e| {
                    Failure::Data(format!(
                        "value of key {key:?} in namespace {namespace:?}: {e}"
                    ))
                })?;
                out.line(&text)
            } else {
                out.value(&json::to_json(&value.to_value()?))
            }
        }
        Command::Set {
            namespace,
            key,
            value,
            ttl,
        } => {
            let value: Json = serde_json::from_str(&value).map_err(|e| {
                Failure::Usage(format!("the value for key {key:?} is not valid JSON: {e}"))
            })?;
            let dict = writable::<Json>(&store, global, &namespace).await?;
            match ttl {
                Some(ttl) => dict.set_with_ttl(&key, &value, ttl).await?,
                None => dict.set(&key, &value).await?,
            }
            Ok(())
        }
        Command::Del { namespace, key } => {
            let dict = writable::<RawCbor>(&store, global, &namespace).await?;
            if dict.delete(&key).await? {
                Ok(())
            } else {
                Err(Failure::NotFound(format!(
                    "key {key:?} not found in namespace {namespace:?}"
                )))
            }
        }
        Command::Keys { namespace, glob } => {
            // Keys only: the value type is never used.
            let dict = store.dict::<String, ciborium::Value>(&namespace)?;
            require_namespace(&store, &dict).await?;
            let mut keys = dict.keys_matching(&glob);
            while let Some(key) = keys.next().await {
                let key = key?;
                if out.pretty {
                    out.line(&key)?;
                } else {
                    out.value(&Json::String(key))?;
                }
            }
            Ok(())
        }
        Command::Items { namespace, glob } => {
            let dict = store.dict::<String, RawCbor>(&namespace)?;
            require_namespace(&store, &dict).await?;
            let mut items = dict.items_matching(&glob);
            let mut skipped = 0u64;
            let mut rows = Vec::new();
            while let Some(item) = items.next().await {
                match item {
                    Ok((key, value)) => {
                        let value = json::to_json(&value.to_value()?);
                        if out.pretty {
                            rows.push(vec![json!(key), value]);
                        } else {
                            out.value(&json!({"key": key, "value": value}))?;
                        }
                    }
                    Err(e @ (Error::Decode { .. } | Error::WrongType { .. })) => {
                        eprintln!("redis-pydict: skipped: {e}");
                        skipped += 1;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            out.table(&["key", "value"], &rows)?;
            skipped_entries(skipped, &namespace)
        }
        Command::Dump { namespace, pattern } => {
            let dict = store.dict::<String, RawCbor>(&namespace)?;
            require_namespace(&store, &dict).await?;
            let (written, skipped) =
                dump::dump(&store, &dict, pattern.as_deref(), &mut out.stdout).await?;
            if io::stderr().is_terminal() {
                eprintln!("redis-pydict: dumped {written} entries of namespace {namespace:?}");
            }
            skipped_entries(skipped, &namespace)
        }
        Command::Restore {
            namespace,
            batch,
            keep_ttl,
        } => {
            let dict = writable::<RawCbor>(&store, global, &namespace).await?;
            let stdin = io::stdin().lock();
            let done = dump::restore(&dict, stdin, batch as usize, keep_ttl).await?;
            out.value(&serde_json::to_value(&done)?)
        }
        Command::Watch {
            namespace,
            glob,
            durable,
            from,
            count,
        } => {
            watch(
                &store,
                out,
                &namespace,
                &glob,
                durable.then_some(from.as_str()),
                count,
            )
            .await
        }
        Command::Repair { namespace } => {
            let report = store.dict::<String, RawCbor>(&namespace)?.repair().await?;
            let rows = vec![vec![
                json!(report.added),
                json!(report.removed),
                json!(report.live),
            ]];
            out.table(&["added", "removed", "live"], &rows)
        }
        Command::Stats { namespace, samples } => stats(&store, out, &namespace, samples).await,
    }
}

fn skipped_entries(skipped: u64, namespace: &str) -> Result<(), Failure> {
    if skipped == 0 {
        Ok(())
    } else {
        Err(Failure::Data(format!(
            "{skipped} entries of namespace {namespace:?} were skipped (see the messages above)"
        )))
    }
}

/// RFC 3339 UTC time with milliseconds.
fn time_text(ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// One event as a JSON object.
fn event_json(event: &Event<String, ciborium::Value>, time_ms: u64, id: Option<LogId>) -> Json {
    let mut object = json!({
        "key": event.key,
        "origin": event.origin,
        "time": time_text(time_ms),
    });
    let op = match &event.change {
        Change::Set(value) => {
            object["value"] = json::to_json(value);
            "set"
        }
        Change::Deleted => "del",
        Change::Expired => "expired",
        Change::TtlChanged(ttl) => {
            object["ttl_ms"] = json!(ttl.map(|t| t.as_millis() as u64));
            "expire"
        }
        Change::Cleared => "clear",
        Change::Gap => "gap",
        _ => "unknown",
    };
    object["op"] = json!(op);
    if let Some(id) = id {
        object["id"] = json!(id.to_string());
    }
    object
}

async fn watch(
    store: &Store,
    out: &mut Out,
    namespace: &str,
    glob: &str,
    durable_from: Option<&str>,
    count: Option<u64>,
) -> Result<(), Failure> {
    let dict = store.dict::<String, ciborium::Value>(namespace)?;
    let limit = count.unwrap_or(u64::MAX);
    let mut seen = 0u64;
    let mut emit = |out: &mut Out, object: Json| -> Result<bool, Failure> {
        out.value(&object)?;
        out.flush()?;
        seen += 1;
        Ok(seen < limit)
    };
    if limit == 0 {
        return Ok(());
    }
    match durable_from {
        None => {
            let mut events = dict.subscribe(glob).await?;
            while let Some(event) = events.next().await {
                let now = dump::now_ms();
                match event {
                    Ok(event) => {
                        if !emit(out, event_json(&event, now, None))? {
                            break;
                        }
                    }
                    Err(e) => eprintln!("redis-pydict: skipped an event: {e}"),
                }
            }
        }
        Some(from) => {
            let from = match from {
                "beginning" => StartFrom::Beginning,
                "now" => StartFrom::Now,
                id => StartFrom::After(id.parse::<LogId>().map_err(Error::from)?),
            };
            let mut events = dict.subscribe_durable(from).await?;
            while let Some(event) = events.next().await {
                match event {
                    Ok((id, event)) => {
                        let wanted = match &event.key {
                            Some(key) => glob::matches(glob, key),
                            None => true,
                        };
                        if wanted && !emit(out, event_json(&event, id.ms, Some(id)))? {
                            break;
                        }
                    }
                    Err(e) => eprintln!("redis-pydict: skipped an event: {e}"),
                }
            }
        }
    }
    Ok(())
}

async fn stats(store: &Store, out: &mut Out, namespace: &str, samples: u64) -> Result<(), Failure> {
    let dict = store.dict::<String, RawCbor>(namespace)?;
    require_namespace(store, &dict).await?;
    let ns = dict.namespace();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let index = ns.index_key();
    let bounds = [
        ("ttl_under_1m", 60_000u64),
        ("ttl_under_1h", 3_600_000),
        ("ttl_under_1d", 86_400_000),
    ];
    let mut pipe = redis::pipe();
    pipe.cmd("ZCARD").arg(index);
    pipe.cmd("ZCOUNT")
        .arg(index)
        .arg(format!("({now}"))
        .arg("+inf");
    pipe.cmd("ZCOUNT").arg(index).arg("+inf").arg("+inf");
    for (_, ms) in bounds {
        pipe.cmd("ZCOUNT")
            .arg(index)
            .arg(format!("({now}"))
            .arg(now + ms);
    }
    pipe.cmd("EXISTS").arg(ns.log_key());
    pipe.cmd("ZRANDMEMBER").arg(index).arg(samples.max(1));
    let mut conn = store.connection();
    let (members, live, persistent, under_1m, under_1h, under_1d, has_log, sample): (
        u64,
        u64,
        u64,
        u64,
        u64,
        u64,
        bool,
        Vec<String>,
    ) = pipe
        .query_async(&mut conn)
        .await
        .map_err(|e| server(namespace, e))?;
    let log_len: Option<u64> = if has_log {
        let n: u64 = redis::cmd("XLEN")
            .arg(ns.log_key())
            .query_async(&mut conn)
            .await
            .map_err(|e| server(namespace, e))?;
        Some(n)
    } else {
        None
    };
    let mut memory = redis::pipe();
    for key in &sample {
        memory
            .cmd("MEMORY")
            .arg("USAGE")
            .arg(ns.entry_key(key))
            .arg("SAMPLES")
            .arg(0);
    }
    let usages: Vec<Option<u64>> = if sample.is_empty() {
        Vec::new()
    } else {
        memory
            .query_async(&mut conn)
            .await
            .map_err(|e| server(namespace, e))?
    };
    let measured: Vec<u64> = usages.into_iter().flatten().collect();
    let average = if measured.is_empty() {
        None
    } else {
        Some(measured.iter().sum::<u64>() / measured.len() as u64)
    };
    let with_ttl = live.saturating_sub(persistent);
    let rows: Vec<(&str, Json)> = vec![
        ("namespace", json!(namespace)),
        ("entries", json!(live)),
        ("index_members", json!(members)),
        ("expired_in_index", json!(members.saturating_sub(live))),
        ("persistent", json!(persistent)),
        ("with_ttl", json!(with_ttl)),
        (bounds[0].0, json!(under_1m)),
        (bounds[1].0, json!(under_1h)),
        (bounds[2].0, json!(under_1d)),
        ("ttl_1d_or_more", json!(with_ttl.saturating_sub(under_1d))),
        ("memory_sampled", json!(measured.len())),
        ("memory_avg_bytes", json!(average)),
        ("memory_estimated_bytes", json!(average.map(|a| a * live))),
        ("log_length", json!(log_len)),
    ];
    if out.pretty {
        let table: Vec<Vec<Json>> = rows.into_iter().map(|(k, v)| vec![json!(k), v]).collect();
        out.table(&["stat", "value"], &table)
    } else {
        let object: serde_json::Map<String, Json> =
            rows.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        out.value(&Json::Object(object))
    }
}
