//! Soak: `cargo run --release --example soak -- --minutes N`.
//!
//! Runs every kind of writer and subscriber of redis-pydict at once against a
//! server that a chaos task keeps breaking, then checks the promises that must
//! survive that: compare-and-set counters exact, durable subscribers saw every
//! acknowledged change in order exactly once, every change a plain subscriber
//! missed is covered by a `Gap`, the namespace index matches the entries,
//! derived structs are never torn, nothing hangs, a fault costs each task at
//! most one failed operation, and client memory stays bounded. It prints a
//! table and exits non-zero when an invariant fails.
//!
//! By default it starts a private `redis-server` on a free loopback port
//! (through `redis_pydict_test::RedisServer`) with `--appendonly yes`
//! (`--appendfsync no`: the file is written before each reply, synced by the
//! kernel), so that a restart (SIGKILL, then start again on the same port and
//! directory) keeps every acknowledged write, and a small
//! pub/sub output-buffer limit, so that the server cuts off subscribers that
//! fall behind. `--url redis://127.0.0.1:PORT/` uses a loopback server of yours
//! instead: then there are no restarts, and the chaos is limited to `CLIENT
//! KILL` of this process's own connections. Everything is bounded: each task
//! stops at the deadline or after a fixed number of requests, each request
//! has a time limit, and a watchdog ends the program if it does not finish
//! by itself.
//!
//! Options: `--minutes N` (default 2, fractions allowed), `--seed N`,
//! `--url URL` (loopback only), `--max-rss-growth-mb N` (default 64).

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use redis::aio::MultiplexedConnection;
use redis::AsyncConnectionConfig;
use redis_pydict::{
    Change, Dict, Error, Event, LogId, RedisDict, StartFrom, Store, Subscription, LOG_READER_NAME,
};
use redis_pydict_test::RedisServer;
use serde::{Deserialize, Serialize};

// ----- settings --------------------------------------------------------------

/// Longest any one request may take before it counts as hung.
const OP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long subscribers may take, after the writers stop, to catch up.
const DRAIN: Duration = Duration::from_secs(60);
/// Keys of the plain namespace.
const PLAIN_KEYS: u64 = 2000;
/// Counters of the CAS namespace.
const COUNTERS: usize = 8;
/// Keys of the sequence namespace (number `n` goes to key `s{n % SEQ_KEYS}`).
const SEQ_KEYS: u64 = 64;
/// Requests per task per minute at most (a bound, far above what a task does).
const MAX_OPS_PER_MINUTE: f64 = 600_000.0;
/// Writer tasks of each kind.
const PLAIN_WRITERS: usize = 3;
const CAS_WRITERS: usize = 4;
const TALLY_WRITERS: usize = 2;
const SNAP_WRITERS: usize = 2;

/// The server arguments of the private server.
const SERVER_ARGS: &[&str] = &[
    // Persistence, so that a restart keeps every acknowledged write. The
    // restart is a SIGKILL of the process, not of the machine: what counts is
    // that the append-only file is written (to the kernel) before a write is
    // acknowledged, which Redis does in every event-loop turn unless
    // `appendfsync everysec` postpones it behind a slow fsync. `no` writes
    // every turn and leaves syncing to the kernel; `always` would also fsync
    // every turn, which cuts throughput here to about 700 requests/s.
    "--appendonly",
    "yes",
    "--appendfsync",
    "no",
    // A subscriber that falls behind by this much is disconnected by the
    // server (the library must report it as a Gap).
    "--client-output-buffer-limit",
    "pubsub",
    "1mb",
    "256kb",
    "5",
];

// ----- command line ----------------------------------------------------------

struct Args {
    minutes: f64,
    seed: u64,
    url: Option<String>,
    max_rss_growth_mb: u64,
}

const USAGE: &str = "usage: cargo run --release --example soak -- [--minutes N] [--seed N] [--url redis://127.0.0.1:PORT/] [--max-rss-growth-mb N]";

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        minutes: 2.0,
        seed: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
        url: None,
        max_rss_growth_mb: 64,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match flag.as_str() {
            "--minutes" => {
                args.minutes = value("--minutes")?
                    .parse()
                    .map_err(|e| format!("--minutes: {e}"))?;
                if !(args.minutes > 0.0 && args.minutes <= 24.0 * 60.0) {
                    return Err("--minutes must be in (0, 1440]".into());
                }
            }
            "--seed" => {
                args.seed = value("--seed")?
                    .parse()
                    .map_err(|e| format!("--seed: {e}"))?
            }
            "--url" => args.url = Some(value("--url")?),
            "--max-rss-growth-mb" => {
                args.max_rss_growth_mb = value("--max-rss-growth-mb")?
                    .parse()
                    .map_err(|e| format!("--max-rss-growth-mb: {e}"))?
            }
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    if let Some(url) = &args.url {
        if !is_loopback_url(url) {
            return Err(format!(
                "--url must point at a loopback server (127.0.0.0/8, localhost or [::1]): {}",
                url.split('@').next_back().unwrap_or("")
            ));
        }
    }
    Ok(args)
}

/// True for `redis[s]://[user[:pass]@]HOST[:port][/db]` with a loopback HOST.
fn is_loopback_url(url: &str) -> bool {
    let Some(rest) = url
        .strip_prefix("redis://")
        .or_else(|| url.strip_prefix("rediss://"))
    else {
        return false;
    };
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or("");
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    host == "localhost"
        || host == "::1"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

// ----- randomness ------------------------------------------------------------

/// SplitMix64: small, seedable, good enough to pick operations.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(self.range(lo, hi))
    }

    fn fork(&mut self) -> Rng {
        Rng(self.next())
    }
}

// ----- the data written ------------------------------------------------------

/// A value of the plain namespace: it names its own key and its padding is
/// derived from `n`, so a mixed-up or corrupted value is detected on read.
#[derive(Serialize, Deserialize, Debug, Clone)]
struct PlainVal {
    key: String,
    n: u64,
    pad: Vec<u8>,
}

impl PlainVal {
    fn new(key: &str, n: u64, len: usize) -> PlainVal {
        PlainVal {
            key: key.to_owned(),
            n,
            pad: vec![(n % 251) as u8; len],
        }
    }

    fn intact(&self, key: &str) -> bool {
        self.key == key && self.pad.iter().all(|&b| u64::from(b) == self.n % 251)
    }
}

/// A derived struct whose fields all follow from `a`: a struct read that
/// mixes two writes shows as `!consistent()`.
#[derive(RedisDict, Debug, Clone, PartialEq, Default)]
#[redis_dict(prefix = "soak")]
struct Tally {
    #[redis_dict(default)]
    a: u64,
    #[redis_dict(default)]
    b: u64,
    #[redis_dict(default)]
    label: String,
    #[redis_dict(default)]
    hist: Vec<u64>,
}

impl Tally {
    fn of(a: u64) -> Tally {
        Tally {
            a,
            b: a.wrapping_mul(2),
            label: format!("n{a}"),
            hist: (0..a % 7).map(|i| a + i).collect(),
        }
    }

    fn consistent(&self) -> bool {
        *self == Tally::of(self.a)
    }
}

// ----- shared bookkeeping ----------------------------------------------------

/// How a request ended.
enum Outcome<T> {
    /// It succeeded.
    Done(T),
    /// It failed, and may or may not have been applied.
    Unknown,
    /// It failed and was certainly not applied.
    NotApplied,
}

/// Whether a failed request may have been applied (sent, no reply), as the
/// library classifies it; the checks below hold it to that.
fn outcome_unknown(e: &Error) -> bool {
    e.outcome_unknown()
}

#[derive(Default)]
struct OpStats {
    ok: u64,
    unknown: u64,
    not_applied: u64,
    max_latency: Duration,
}

#[derive(Default)]
struct ErrorBucket {
    count: u64,
    sample: String,
}

#[derive(Default)]
struct Violations {
    count: u64,
    samples: Vec<String>,
}

/// The invariants, in the order of the final table.
const CHECKS: &[&str] = &[
    "CAS counters exact (dict update_with)",
    "CAS counters never go backwards",
    "view update counter exact",
    "view structs never torn",
    "values intact, no data errors",
    "iteration yields each key once",
    "durable: every acknowledged change, in order, once",
    "plain: every missed change covered by a Gap",
    "no failed-as-not-applied write took effect",
    "last acknowledged write wins",
    "index consistent with entries",
    "one failure per fault per task",
    "connection loss reported as a connection error",
    "no request hangs",
    "subscriptions never end by themselves",
    "client memory bounded",
];

struct Soak {
    started: Instant,
    deadline: Instant,
    max_ops: u64,
    ops: Mutex<BTreeMap<&'static str, OpStats>>,
    errors: Mutex<BTreeMap<String, ErrorBucket>>,
    violations: Mutex<BTreeMap<&'static str, Violations>>,
    /// Bumped by the chaos task around every fault it injects.
    epoch: AtomicU64,
    /// When the epoch last changed, in ms since the start.
    last_fault_ms: AtomicU64,
    /// True while the server is being restarted.
    down: AtomicBool,
    longest_error: AtomicUsize,
    /// Set once every writer has stopped; then subscribers drain.
    writers_done: AtomicBool,
    drain_deadline_ms: AtomicU64,
    /// Source of unique numbers for plain values.
    counter: AtomicU64,
}

/// One task's view of its own request history.
struct Task {
    name: String,
    rng: Rng,
    /// The chaos epoch of this task's last failed request, when no fault
    /// was injected while it ran.
    /// Per kind of connection (0: the shared one, 1: a pooled dedicated
    /// one, for optimistic updates): a fault may cost one failure on each.
    failed_in: [Option<u64>; 2],
    /// That failure, for the report: how long after the fault, and what.
    last_failure: [String; 2],
}

impl Soak {
    /// Marks a fault being injected (before and after it).
    fn fault(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.last_fault_ms
            .store(self.started.elapsed().as_millis() as u64, Ordering::SeqCst);
    }

    fn since_fault(&self) -> u64 {
        (self.started.elapsed().as_millis() as u64)
            .saturating_sub(self.last_fault_ms.load(Ordering::SeqCst))
    }

    fn running(&self, done: u64) -> bool {
        Instant::now() < self.deadline && done < self.max_ops
    }

    fn violation(&self, check: &'static str, detail: String) {
        let mut all = self.violations.lock().unwrap_or_else(|p| p.into_inner());
        let v = all.entry(check).or_default();
        v.count += 1;
        if v.samples.len() < 5 {
            v.samples.push(detail);
        }
    }

    fn record_error(&self, op: &str, e: &Error) {
        let text = e.to_string();
        self.longest_error.fetch_max(text.len(), Ordering::Relaxed);
        let kind = error_kind(e);
        if is_data_error(e) {
            self.violation(
                "values intact, no data errors",
                format!("{op}: {}", clip(&text)),
            );
        }
        if kind == "request: server parse error" {
            // A reply cut short by a dropped connection, surfaced as a parse
            // error: callers would not know to retry it.
            self.violation(
                "connection loss reported as a connection error",
                format!("{op}: {}", clip(&text)),
            );
        }
        let mut errors = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        let bucket = errors.entry(kind).or_default();
        bucket.count += 1;
        if bucket.sample.is_empty() {
            bucket.sample = format!("{op}: {}", clip(&text));
        }
    }

    /// Runs one request with a time limit, records how it ended, and checks
    /// that a task never fails twice in a row without a fault in between.
    async fn op<T>(
        &self,
        task: &mut Task,
        name: &'static str,
        request: impl Future<Output = redis_pydict::Result<T>>,
    ) -> Outcome<T> {
        let epoch = self.epoch.load(Ordering::SeqCst);
        let was_down = self.down.load(Ordering::SeqCst);
        let start = Instant::now();
        let result = tokio::time::timeout(OP_TIMEOUT, request).await;
        let latency = start.elapsed();
        let class = usize::from(matches!(name, "update_with" | "view update"));
        let quiet = !was_down
            && !self.down.load(Ordering::SeqCst)
            && self.epoch.load(Ordering::SeqCst) == epoch;
        let outcome = match result {
            Ok(Ok(value)) => {
                task.failed_in[class] = None;
                Outcome::Done(value)
            }
            Ok(Err(e)) => {
                self.record_error(name, &e);
                if e.is_connection_error() {
                    let this = format!(
                        "{name} ({} ms after the last fault, took {} ms): {}",
                        self.since_fault(),
                        latency.as_millis(),
                        clip(&e.to_string())
                    );
                    if quiet && task.failed_in[class] == Some(epoch) {
                        self.violation(
                            "one failure per fault per task",
                            format!(
                                "{}: failed twice with no fault injected in between: first {}, then {this}",
                                task.name, task.last_failure[class]
                            ),
                        );
                    }
                    task.failed_in[class] = quiet.then_some(epoch);
                    task.last_failure[class] = this;
                } else {
                    task.failed_in[class] = None;
                }
                if outcome_unknown(&e) {
                    Outcome::Unknown
                } else {
                    Outcome::NotApplied
                }
            }
            Err(_) => {
                self.violation(
                    "no request hangs",
                    format!("{}: {name} gave no answer within {OP_TIMEOUT:?}", task.name),
                );
                task.failed_in[class] = None;
                Outcome::Unknown
            }
        };
        {
            let mut ops = self.ops.lock().unwrap_or_else(|p| p.into_inner());
            let stats = ops.entry(name).or_default();
            match outcome {
                Outcome::Done(_) => stats.ok += 1,
                Outcome::Unknown => stats.unknown += 1,
                Outcome::NotApplied => stats.not_applied += 1,
            }
            stats.max_latency = stats.max_latency.max(latency);
        }
        if !matches!(outcome, Outcome::Done(_)) {
            // As a careful caller would, pause briefly before the next request.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        outcome
    }

    fn drain_deadline_passed(&self) -> bool {
        let ms = self.drain_deadline_ms.load(Ordering::SeqCst);
        ms != 0 && self.started.elapsed() > Duration::from_millis(ms)
    }
}

/// The first 240 characters of an error message, on one line.
fn clip(text: &str) -> String {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match text.char_indices().nth(240) {
        Some((i, _)) => format!("{}… ({} bytes)", &text[..i], text.len()),
        None => text,
    }
}

/// Errors that mean data was wrong or misread, never expected in a soak
/// (nothing but the soak writes its namespaces): by kind, so that variants
/// added to the library later are named here without a match on them.
fn is_data_error(e: &Error) -> bool {
    let kind = error_kind(e);
    [
        "Decode",
        "Encode",
        "InvalidKey",
        "MissingField",
        "WrongType",
        "request: server type error",
    ]
    .contains(&kind.as_str())
}

/// A short name for the kind of an error, for the table.
fn error_kind(e: &Error) -> String {
    match e {
        Error::Redis { source, .. } | Error::Connect { source, .. } => {
            let what = if matches!(e, Error::Connect { .. }) {
                "connect"
            } else {
                "request"
            };
            if e.is_connection_error() {
                let text = source.to_string().to_lowercase();
                let cause = [
                    "broken pipe",
                    "connection reset",
                    "timed out",
                    "refused",
                    "dropped",
                    "closed",
                    "eof",
                ]
                .into_iter()
                .find(|c| text.contains(c))
                .unwrap_or("other i/o");
                format!("{what}: connection {cause}")
            } else {
                let code = source
                    .code()
                    .map(str::to_owned)
                    .unwrap_or_else(|| source.category().to_owned());
                format!("{what}: server {code}")
            }
        }
        other => {
            let debug = format!("{other:?}");
            debug
                .split(|c: char| !c.is_alphanumeric())
                .next()
                .unwrap_or("?")
                .to_owned()
        }
    }
}

// ----- the sequence namespace: numbered writes, checked by subscribers -------

const PENDING: u8 = 0;
const ACKED: u8 = 1;
const UNKNOWN: u8 = 2;
const NOT_APPLIED: u8 = 3;

/// What became of each numbered write of the sequence writer.
struct SeqLog {
    status: Vec<AtomicU8>,
    max_acked: AtomicU64,
    last: AtomicU64,
}

impl SeqLog {
    fn new(capacity: u64) -> SeqLog {
        SeqLog {
            status: (0..=capacity).map(|_| AtomicU8::new(PENDING)).collect(),
            max_acked: AtomicU64::new(0),
            last: AtomicU64::new(0),
        }
    }

    fn capacity(&self) -> u64 {
        self.status.len() as u64 - 1
    }

    fn get(&self, n: u64) -> u8 {
        self.status
            .get(n as usize)
            .map_or(PENDING, |s| s.load(Ordering::SeqCst))
    }

    fn set(&self, n: u64, status: u8) {
        if let Some(s) = self.status.get(n as usize) {
            s.store(status, Ordering::SeqCst);
        }
        if status == ACKED {
            self.max_acked.fetch_max(n, Ordering::SeqCst);
        }
        self.last.fetch_max(n, Ordering::SeqCst);
    }
}

fn seq_key(n: u64) -> String {
    format!("s{}", n % SEQ_KEYS)
}

/// Checks one subscriber's view of the numbered writes.
struct SeqCheck {
    who: &'static str,
    durable: bool,
    last: u64,
    last_id: LogId,
    seen: Vec<u64>,
    events: u64,
    gaps: u64,
    resumes: u64,
    gap_pending: bool,
    /// Numbers skipped while their write was still unsettled, with whether a
    /// Gap covered them; judged at the end.
    deferred: Vec<(u64, bool)>,
    last_event: Instant,
}

impl SeqCheck {
    fn new(who: &'static str, durable: bool, capacity: u64) -> SeqCheck {
        SeqCheck {
            who,
            durable,
            last: 0,
            last_id: LogId::ZERO,
            seen: vec![0; (capacity as usize) / 64 + 1],
            events: 0,
            gaps: 0,
            resumes: 0,
            gap_pending: false,
            deferred: Vec::new(),
            last_event: Instant::now(),
        }
    }

    fn missed(&mut self, soak: &Soak, seq: &SeqLog, range: std::ops::Range<u64>) {
        let mut acked = Vec::new();
        for m in range {
            match seq.get(m) {
                ACKED => acked.push(m),
                PENDING => self.deferred.push((m, self.gap_pending)),
                _ => {}
            }
        }
        self.report_missed(soak, &acked, self.gap_pending);
    }

    fn report_missed(&self, soak: &Soak, acked: &[u64], covered: bool) {
        let Some(first) = acked.first() else { return };
        if self.durable {
            soak.violation(
                "durable: every acknowledged change, in order, once",
                format!(
                    "{}: {} acknowledged changes never delivered (first: {first}, after {})",
                    self.who,
                    acked.len(),
                    self.last
                ),
            );
        } else if !covered {
            soak.violation(
                "plain: every missed change covered by a Gap",
                format!(
                    "{}: {} acknowledged changes missed with no Gap (first: {first}, after {})",
                    self.who,
                    acked.len(),
                    self.last
                ),
            );
        }
    }

    fn event(
        &mut self,
        soak: &Soak,
        seq: &SeqLog,
        n: u64,
        id: Option<LogId>,
        origin: Option<&str>,
    ) {
        self.last_event = Instant::now();
        if let Some(id) = id {
            if id <= self.last_id {
                soak.violation(
                    "durable: every acknowledged change, in order, once",
                    format!("{}: log id {id} after {}", self.who, self.last_id),
                );
            }
            self.last_id = id;
        }
        if origin != Some("soak-seq") {
            soak.violation(
                "values intact, no data errors",
                format!("{}: change {n} carries origin {origin:?}", self.who),
            );
        }
        if n == 0 || n > seq.capacity() {
            soak.violation(
                "values intact, no data errors",
                format!("{}: change {n} was never written", self.who),
            );
            return;
        }
        if n <= self.last {
            let check = if self.durable {
                "durable: every acknowledged change, in order, once"
            } else {
                "plain: every missed change covered by a Gap"
            };
            soak.violation(
                check,
                format!(
                    "{}: change {n} after {} (a duplicate or out of order)",
                    self.who, self.last
                ),
            );
            return;
        }
        self.missed(soak, seq, self.last + 1..n);
        self.gap_pending = false;
        self.seen[(n / 64) as usize] |= 1 << (n % 64);
        self.last = n;
        self.events += 1;
    }

    fn gap(&mut self, soak: &Soak) {
        self.gaps += 1;
        self.gap_pending = true;
        if self.durable {
            soak.violation(
                "durable: every acknowledged change, in order, once",
                format!(
                    "{}: Gap after change {} (the log is never trimmed nor lost here)",
                    self.who, self.last
                ),
            );
        }
    }

    /// Caught up with every acknowledged write?
    fn caught_up(&self, seq: &SeqLog) -> bool {
        self.last >= seq.max_acked.load(Ordering::SeqCst)
    }

    /// The final judgement, once the writer is done and the drain is over.
    fn finish(&mut self, soak: &Soak, seq: &SeqLog) {
        let max = seq.last.load(Ordering::SeqCst);
        if self.last < max {
            self.missed(soak, seq, self.last + 1..max + 1);
        }
        let deferred = std::mem::take(&mut self.deferred);
        let mut covered = Vec::new();
        let mut uncovered = Vec::new();
        for (m, gap) in deferred {
            if seq.get(m) == ACKED {
                if gap {
                    covered.push(m);
                } else {
                    uncovered.push(m);
                }
            }
        }
        self.report_missed(soak, &covered, true);
        self.report_missed(soak, &uncovered, false);
        let mut taken = 0u64;
        let mut first = None;
        for n in 1..=max.min(seq.capacity()) {
            if self.seen[(n / 64) as usize] & (1 << (n % 64)) != 0 && seq.get(n) == NOT_APPLIED {
                taken += 1;
                first.get_or_insert(n);
            }
        }
        if let Some(first) = first {
            soak.violation(
                "no failed-as-not-applied write took effect",
                format!(
                    "{}: {taken} changes whose write failed as certainly not applied were delivered (first: {first})",
                    self.who
                ),
            );
        }
    }
}

/// What a subscriber saw, for the table.
struct SubReport {
    who: &'static str,
    events: u64,
    gaps: u64,
    resumes: u64,
    errors: u64,
    last: String,
}

// ----- writers -----------------------------------------------------------------

async fn plain_writer(soak: Arc<Soak>, dict: Dict<String, PlainVal>, mut task: Task) {
    let mut done = 0;
    while soak.running(done) {
        done += 1;
        let key = format!("p{}", task.rng.below(PLAIN_KEYS));
        let roll = task.rng.below(1000);
        let n = soak.counter.fetch_add(1, Ordering::Relaxed);
        let len = task.rng.below(1500) as usize;
        match roll {
            0..=299 => {
                let value = PlainVal::new(&key, n, len);
                soak.op(&mut task, "set", dict.set(&key, &value)).await;
            }
            300..=399 => {
                let count = task.rng.range(2, 50);
                let mut pairs = Vec::new();
                let mut keys = HashSet::new();
                for _ in 0..count {
                    let key = format!("p{}", task.rng.below(PLAIN_KEYS));
                    if keys.insert(key.clone()) {
                        let n = soak.counter.fetch_add(1, Ordering::Relaxed);
                        let len = task.rng.below(300) as usize;
                        pairs.push((key.clone(), PlainVal::new(&key, n, len)));
                    }
                }
                soak.op(&mut task, "set_many", dict.set_many(pairs)).await;
            }
            400..=449 => {
                let value = PlainVal::new(&key, n, len);
                let ttl = Duration::from_secs(3600);
                soak.op(
                    &mut task,
                    "set_with_ttl",
                    dict.set_with_ttl(&key, &value, ttl),
                )
                .await;
            }
            450..=549 => {
                soak.op(&mut task, "delete", dict.delete(&key)).await;
            }
            550..=599 => {
                if let Outcome::Done(Some(v)) =
                    soak.op(&mut task, "remove", dict.remove(&key)).await
                {
                    check_plain(&soak, "remove", &key, &v);
                }
            }
            600..=649 => {
                let value = PlainVal::new(&key, n, len);
                soak.op(&mut task, "set_if_absent", dict.set_if_absent(&key, &value))
                    .await;
            }
            650..=799 => {
                if let Outcome::Done(Some(v)) = soak.op(&mut task, "get", dict.get(&key)).await {
                    check_plain(&soak, "get", &key, &v);
                }
            }
            800..=869 => {
                let keys: Vec<String> = (0..task.rng.range(2, 40))
                    .map(|_| format!("p{}", task.rng.below(PLAIN_KEYS)))
                    .collect();
                let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
                if let Outcome::Done(values) =
                    soak.op(&mut task, "get_many", dict.get_many(refs)).await
                {
                    for (key, value) in keys.iter().zip(values) {
                        if let Some(v) = value {
                            check_plain(&soak, "get_many", key, &v);
                        }
                    }
                }
            }
            870..=919 => {
                soak.op(&mut task, "contains", dict.contains(&key)).await;
            }
            920..=949 => {
                soak.op(&mut task, "len", dict.len()).await;
            }
            950..=964 => {
                let ttl = Duration::from_secs(7200);
                soak.op(&mut task, "expire", dict.expire(&key, ttl)).await;
            }
            965..=974 => {
                soak.op(&mut task, "persist", dict.persist(&key)).await;
            }
            975..=998 => {
                let d = dict.clone();
                let walk = async move {
                    let mut stream = std::pin::pin!(d.items());
                    let mut keys = HashSet::new();
                    let mut duplicates = Vec::new();
                    let mut broken = Vec::new();
                    while let Some(item) = stream.next().await {
                        let (key, value) = item?;
                        if !value.intact(&key) {
                            broken.push(key.clone());
                        }
                        if !keys.insert(key.clone()) {
                            duplicates.push(key);
                        }
                    }
                    Ok((duplicates, broken))
                };
                if let Outcome::Done((duplicates, broken)) = soak.op(&mut task, "items", walk).await
                {
                    if let Some(key) = duplicates.first() {
                        soak.violation(
                            "iteration yields each key once",
                            format!(
                                "items() yielded {} keys twice (first: {key:?})",
                                duplicates.len()
                            ),
                        );
                    }
                    if let Some(key) = broken.first() {
                        soak.violation(
                            "values intact, no data errors",
                            format!(
                                "items(): {} values not intact (first: {key:?})",
                                broken.len()
                            ),
                        );
                    }
                }
            }
            _ => {
                soak.op(&mut task, "clear", dict.clear()).await;
            }
        }
    }
}

fn check_plain(soak: &Soak, op: &str, key: &str, value: &PlainVal) {
    if !value.intact(key) {
        soak.violation(
            "values intact, no data errors",
            format!(
                "{op}({key:?}) returned the value of {:?} (n {}, {} pad bytes) or a corrupted one",
                value.key,
                value.n,
                value.pad.len()
            ),
        );
    }
}

/// Per counter: successful increments, and increments whose outcome is unknown.
#[derive(Default, Clone, Copy)]
struct CasBook {
    ok: u64,
    unknown: u64,
}

async fn cas_writer(
    soak: Arc<Soak>,
    dict: Dict<String, u64>,
    book: Arc<Mutex<Vec<CasBook>>>,
    mut task: Task,
) {
    let mut done = 0;
    let mut last_read = [0u64; COUNTERS];
    while soak.running(done) {
        done += 1;
        let i = task.rng.below(COUNTERS as u64) as usize;
        let key = format!("c{i}");
        if task.rng.below(10) == 0 {
            if let Outcome::Done(value) = soak.op(&mut task, "get", dict.get(&key)).await {
                let value = value.unwrap_or(0);
                if value < last_read[i] {
                    soak.violation(
                        "CAS counters never go backwards",
                        format!(
                            "{}: counter {key} read {value} after {}",
                            task.name, last_read[i]
                        ),
                    );
                }
                last_read[i] = value;
            }
            continue;
        }
        let outcome = soak
            .op(
                &mut task,
                "update_with",
                dict.update_with(&key, |n| n.unwrap_or(0) + 1),
            )
            .await;
        let mut book = book.lock().unwrap_or_else(|p| p.into_inner());
        match outcome {
            Outcome::Done(value) => {
                book[i].ok += 1;
                last_read[i] = last_read[i].max(value);
            }
            Outcome::Unknown => book[i].unknown += 1,
            Outcome::NotApplied => {}
        }
    }
}

/// `update` of the "tally" instance: counts how often it succeeded.
async fn tally_writer(soak: Arc<Soak>, view: TallyView, book: Arc<Mutex<CasBook>>, mut task: Task) {
    let mut done = 0;
    while soak.running(done) {
        done += 1;
        if task.rng.below(8) == 0 {
            if let Outcome::Done(t) = soak.op(&mut task, "view load", view.load()).await {
                check_tally(&soak, &task.name, "load", &t);
            }
            continue;
        }
        let outcome = soak
            .op(
                &mut task,
                "view update",
                view.update(|t: &mut Tally| {
                    let seen = t.clone();
                    *t = Tally::of(t.a + 1);
                    seen
                }),
            )
            .await;
        match outcome {
            Outcome::Done(seen) => {
                check_tally(&soak, &task.name, "update", &seen);
                book.lock().unwrap_or_else(|p| p.into_inner()).ok += 1;
            }
            Outcome::Unknown => book.lock().unwrap_or_else(|p| p.into_inner()).unknown += 1,
            Outcome::NotApplied => {}
        }
    }
}

/// `save`, `update` and `load` of the "snap" instance: never a torn struct.
async fn snap_writer(soak: Arc<Soak>, view: TallyView, mut task: Task) {
    let mut done = 0;
    while soak.running(done) {
        done += 1;
        match task.rng.below(10) {
            0..=3 => {
                let value = Tally::of(task.rng.below(1_000_000));
                soak.op(&mut task, "view save", view.save(&value)).await;
            }
            4..=6 => {
                let update = view.update(|t: &mut Tally| {
                    let seen = t.clone();
                    *t = Tally::of(t.a + 1);
                    seen
                });
                if let Outcome::Done(seen) = soak.op(&mut task, "view update", update).await {
                    check_tally(&soak, &task.name, "update", &seen);
                }
            }
            _ => {
                if let Outcome::Done(t) = soak.op(&mut task, "view load", view.load()).await {
                    check_tally(&soak, &task.name, "load", &t);
                }
            }
        }
    }
}

fn check_tally(soak: &Soak, who: &str, op: &str, t: &Tally) {
    if !t.consistent() {
        soak.violation(
            "view structs never torn",
            format!("{who}: {op} saw a struct mixing two writes: {t:?}"),
        );
    }
}

/// The sequence writer: numbers 1, 2, 3, ... written in order with `set`
/// and `set_many`, each recorded as acknowledged, unknown or not applied
/// before the next is written.
async fn seq_writer(soak: Arc<Soak>, dict: Dict<String, u64>, seq: Arc<SeqLog>, mut task: Task) {
    let mut n = 0u64;
    let mut done = 0;
    while soak.running(done) && n + 16 < seq.capacity() {
        done += 1;
        if task.rng.below(5) == 0 {
            let count = task.rng.range(2, 16);
            let numbers: Vec<u64> = (n + 1..=n + count).collect();
            let pairs: Vec<(String, u64)> = numbers.iter().map(|&m| (seq_key(m), m)).collect();
            let status = status_of(
                soak.op(&mut task, "set_many (seq)", dict.set_many(pairs))
                    .await,
            );
            for m in numbers {
                seq.set(m, status);
            }
            n += count;
        } else {
            n += 1;
            let outcome = soak
                .op(&mut task, "set (seq)", dict.set(&seq_key(n), &n))
                .await;
            seq.set(n, status_of(outcome));
        }
    }
}

fn status_of<T>(outcome: Outcome<T>) -> u8 {
    match outcome {
        Outcome::Done(_) => ACKED,
        Outcome::Unknown => UNKNOWN,
        Outcome::NotApplied => NOT_APPLIED,
    }
}

// ----- subscribers -------------------------------------------------------------

/// A durable subscriber of the sequence namespace. With `resume`, it drops
/// its subscription every few seconds and resumes after the last id it saw.
async fn durable_reader(
    soak: Arc<Soak>,
    seq: Arc<SeqLog>,
    dict: Dict<String, u64>,
    mut sub: Subscription<(LogId, Event<String, u64>)>,
    who: &'static str,
    resume: bool,
    mut task: Task,
) -> SubReport {
    let mut check = SeqCheck::new(who, true, seq.capacity());
    let mut errors = 0;
    let mut cycle_end = Instant::now() + task.rng.millis(2000, 8000);
    loop {
        let done = soak.writers_done.load(Ordering::SeqCst);
        if (done && check.caught_up(&seq)) || soak.drain_deadline_passed() {
            break;
        }
        if resume && !done && Instant::now() > cycle_end {
            // A fresh subscription after the last id handled; the old one,
            // and whatever it had buffered beyond that id, is dropped.
            let mut fresh = None;
            for _ in 0..300 {
                let from = StartFrom::After(check.last_id);
                match soak
                    .op(&mut task, "subscribe_durable", dict.subscribe_durable(from))
                    .await
                {
                    Outcome::Done(s) => {
                        fresh = Some(s);
                        break;
                    }
                    _ => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
            match fresh {
                Some(s) => {
                    sub = s;
                    check.resumes += 1;
                }
                None => soak.violation(
                    "no request hangs",
                    format!("{who}: subscribe_durable failed 300 times in a row"),
                ),
            }
            cycle_end = Instant::now() + task.rng.millis(2000, 8000);
        }
        match tokio::time::timeout(Duration::from_millis(500), sub.next()).await {
            Err(_) => {}
            Ok(None) => {
                soak.violation(
                    "subscriptions never end by themselves",
                    format!("{who}: the stream ended"),
                );
                break;
            }
            Ok(Some(Err(e))) => {
                errors += 1;
                soak.record_error(who, &e);
            }
            Ok(Some(Ok((id, event)))) => match event.change {
                Change::Set(n) => check.event(&soak, &seq, n, Some(id), event.origin.as_deref()),
                Change::Gap => check.gap(&soak),
                other => soak.violation(
                    "values intact, no data errors",
                    format!("{who}: unexpected change {other:?} at {id}"),
                ),
            },
        }
    }
    check.finish(&soak, &seq);
    SubReport {
        who,
        events: check.events,
        gaps: check.gaps,
        resumes: check.resumes,
        errors,
        last: format!("{} of {}", check.last, seq.max_acked.load(Ordering::SeqCst)),
    }
}

/// A plain subscriber of the sequence namespace; with `slow`, it reads at
/// about 500 events/s while the writers run, so that it falls behind.
async fn plain_seq_reader(
    soak: Arc<Soak>,
    seq: Arc<SeqLog>,
    mut sub: Subscription<Event<String, u64>>,
    who: &'static str,
    slow: bool,
) -> SubReport {
    let mut check = SeqCheck::new(who, false, seq.capacity());
    let mut errors = 0;
    let mut since_pause = 0;
    loop {
        let done = soak.writers_done.load(Ordering::SeqCst);
        let quiet = check.last_event.elapsed() > Duration::from_secs(3);
        if (done && (check.caught_up(&seq) || (check.gap_pending && quiet)))
            || soak.drain_deadline_passed()
        {
            break;
        }
        if slow && !done {
            since_pause += 1;
            if since_pause >= 25 {
                since_pause = 0;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        match tokio::time::timeout(Duration::from_millis(500), sub.next()).await {
            Err(_) => {}
            Ok(None) => {
                soak.violation(
                    "subscriptions never end by themselves",
                    format!("{who}: the stream ended"),
                );
                break;
            }
            Ok(Some(Err(e))) => {
                errors += 1;
                soak.record_error(who, &e);
            }
            Ok(Some(Ok(event))) => match event.change {
                Change::Set(n) => check.event(&soak, &seq, n, None, event.origin.as_deref()),
                Change::Gap => check.gap(&soak),
                other => soak.violation(
                    "values intact, no data errors",
                    format!("{who}: unexpected change {other:?}"),
                ),
            },
        }
    }
    check.finish(&soak, &seq);
    SubReport {
        who,
        events: check.events,
        gaps: check.gaps,
        resumes: 0,
        errors,
        last: format!("{} of {}", check.last, seq.max_acked.load(Ordering::SeqCst)),
    }
}

/// A slow plain subscriber of the plain namespace (large values): checks
/// every value it gets, counts gaps; its backlog tests memory bounds.
async fn plain_laggard(
    soak: Arc<Soak>,
    mut sub: Subscription<Event<String, PlainVal>>,
    who: &'static str,
) -> SubReport {
    let (mut events, mut gaps, mut errors) = (0, 0, 0);
    let mut since_pause = 0;
    let mut last_event = Instant::now();
    loop {
        let done = soak.writers_done.load(Ordering::SeqCst);
        if (done && last_event.elapsed() > Duration::from_secs(3)) || soak.drain_deadline_passed() {
            break;
        }
        if !done {
            since_pause += 1;
            if since_pause >= 10 {
                since_pause = 0;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        match tokio::time::timeout(Duration::from_millis(500), sub.next()).await {
            Err(_) => {}
            Ok(None) => {
                soak.violation(
                    "subscriptions never end by themselves",
                    format!("{who}: the stream ended"),
                );
                break;
            }
            Ok(Some(Err(e))) => {
                errors += 1;
                soak.record_error(who, &e);
            }
            Ok(Some(Ok(event))) => {
                last_event = Instant::now();
                match (event.key, event.change) {
                    (_, Change::Gap) => gaps += 1,
                    (Some(key), Change::Set(value)) => {
                        events += 1;
                        check_plain(&soak, who, &key, &value);
                    }
                    _ => events += 1,
                }
            }
        }
    }
    SubReport {
        who,
        events,
        gaps,
        resumes: 0,
        errors,
        last: String::new(),
    }
}

/// A subscriber of the "snap" view: typed struct events under chaos.
async fn view_reader(
    soak: Arc<Soak>,
    mut sub: Subscription<redis_pydict::ViewEvent<TallyEvent>>,
    who: &'static str,
) -> SubReport {
    let (mut events, mut gaps, mut errors) = (0, 0, 0);
    let mut last_event = Instant::now();
    loop {
        let done = soak.writers_done.load(Ordering::SeqCst);
        if (done && last_event.elapsed() > Duration::from_secs(3)) || soak.drain_deadline_passed() {
            break;
        }
        match tokio::time::timeout(Duration::from_millis(500), sub.next()).await {
            Err(_) => {}
            Ok(None) => {
                soak.violation(
                    "subscriptions never end by themselves",
                    format!("{who}: the stream ended"),
                );
                break;
            }
            Ok(Some(Err(e))) => {
                errors += 1;
                soak.record_error(who, &e);
            }
            Ok(Some(Ok(item))) => {
                last_event = Instant::now();
                match item.event {
                    TallyEvent::Gap => gaps += 1,
                    _ => events += 1,
                }
            }
        }
    }
    SubReport {
        who,
        events,
        gaps,
        resumes: 0,
        errors,
        last: String::new(),
    }
}

// ----- chaos -------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum ClientKind {
    Normal,
    PubSub,
    LogReader,
}

impl ClientKind {
    fn name(self) -> &'static str {
        match self {
            ClientKind::Normal => "normal",
            ClientKind::PubSub => "pub/sub",
            ClientKind::LogReader => "durable log reader",
        }
    }
}

#[derive(Default)]
struct ChaosReport {
    /// Per action: how many times, how many clients it killed.
    actions: BTreeMap<String, (u64, u64)>,
    restarts: u64,
    longest_restart: Duration,
    failures: Vec<String>,
}

/// The loopback ports of this process's own TCP sockets (so that only our
/// connections are ever killed).
fn own_local_ports() -> HashSet<u16> {
    let mut inodes = HashSet::new();
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        for entry in dir.flatten() {
            if let Ok(target) = std::fs::read_link(entry.path()) {
                let target = target.to_string_lossy();
                if let Some(inode) = target
                    .strip_prefix("socket:[")
                    .and_then(|rest| rest.strip_suffix(']'))
                    .and_then(|n| n.parse::<u64>().ok())
                {
                    inodes.insert(inode);
                }
            }
        }
    }
    let mut ports = HashSet::new();
    for file in ["/proc/self/net/tcp", "/proc/self/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(inode)) = (cols.get(1), cols.get(9)) else {
                continue;
            };
            if !inode.parse::<u64>().is_ok_and(|i| inodes.contains(&i)) {
                continue;
            }
            if let Some(port) = local
                .rsplit_once(':')
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
            {
                ports.insert(port);
            }
        }
    }
    ports
}

async fn raw_connection(url: &str) -> redis::RedisResult<MultiplexedConnection> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(Duration::from_secs(10)));
    redis::Client::open(url)?
        .get_multiplexed_async_connection_with_config(&config)
        .await
}

/// This process's clients of the server, by kind, with their ids.
async fn our_clients(
    conn: &mut MultiplexedConnection,
) -> redis::RedisResult<Vec<(u64, ClientKind)>> {
    let me: u64 = redis::cmd("CLIENT").arg("ID").query_async(conn).await?;
    let list: String = redis::cmd("CLIENT").arg("LIST").query_async(conn).await?;
    let ours = own_local_ports();
    let mut clients = Vec::new();
    for line in list.lines() {
        let field = |name: &str| {
            line.split(' ')
                .find_map(|f| f.strip_prefix(name)?.strip_prefix('='))
                .unwrap_or("")
        };
        let Ok(id) = field("id").parse::<u64>() else {
            continue;
        };
        let port = field("addr")
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse::<u16>().ok());
        if id == me || !port.is_some_and(|p| ours.contains(&p)) {
            continue;
        }
        let subscribed =
            field("sub") != "0" || field("psub") != "0" || field("flags").contains('P');
        let kind = if field("name") == LOG_READER_NAME {
            ClientKind::LogReader
        } else if subscribed {
            ClientKind::PubSub
        } else {
            ClientKind::Normal
        };
        clients.push((id, kind));
    }
    Ok(clients)
}

/// Waits until the server answers PING with PONG (not LOADING).
async fn wait_ready(url: &str, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(mut conn) = raw_connection(url).await {
            let pong: redis::RedisResult<String> = redis::cmd("PING").query_async(&mut conn).await;
            if pong.is_ok() {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

async fn chaos(
    soak: Arc<Soak>,
    url: String,
    server: Option<Arc<Mutex<RedisServer>>>,
    server_pid: Arc<AtomicU32>,
    mut rng: Rng,
) -> ChaosReport {
    let mut report = ChaosReport::default();
    let mut last_restart = Instant::now();
    while Instant::now() < soak.deadline {
        let pause = rng.millis(300, 2500);
        if Instant::now() + pause >= soak.deadline {
            break;
        }
        tokio::time::sleep(pause).await;
        let roll = rng.below(100);
        let restart_due = last_restart.elapsed() > Duration::from_secs(10);
        if let (Some(server), true, true) = (&server, roll < 12, restart_due) {
            soak.fault();
            soak.down.store(true, Ordering::SeqCst);
            let started = Instant::now();
            let server = server.clone();
            let restarted = tokio::task::spawn_blocking(move || {
                let mut server = server.lock().unwrap_or_else(|p| p.into_inner());
                server.restart();
                server.pid()
            })
            .await;
            match restarted {
                Ok(pid) => server_pid.store(pid.unwrap_or(0), Ordering::SeqCst),
                Err(e) => {
                    report.failures.push(format!("restart failed: {e}"));
                    break;
                }
            }
            if !wait_ready(&url, Duration::from_secs(60)).await {
                report
                    .failures
                    .push("the restarted server did not answer PING within 60 s".into());
                break;
            }
            report.restarts += 1;
            report.longest_restart = report.longest_restart.max(started.elapsed());
            last_restart = Instant::now();
            soak.down.store(false, Ordering::SeqCst);
            soak.fault();
            continue;
        }
        let Ok(mut conn) = raw_connection(&url).await else {
            continue;
        };
        let Ok(clients) = our_clients(&mut conn).await else {
            continue;
        };
        let (action, victims): (String, Vec<u64>) = match roll % 4 {
            0 if !clients.is_empty() => {
                let (id, kind) = clients[rng.below(clients.len() as u64) as usize];
                (format!("kill one {} client", kind.name()), vec![id])
            }
            r => {
                let kind = [
                    ClientKind::Normal,
                    ClientKind::PubSub,
                    ClientKind::LogReader,
                ][(r as usize).saturating_sub(1).min(2)];
                let ids = clients
                    .iter()
                    .filter(|(_, k)| *k == kind)
                    .map(|(id, _)| *id)
                    .collect();
                (format!("kill all {} clients", kind.name()), ids)
            }
        };
        soak.fault();
        let mut killed = 0;
        for id in &victims {
            let n: redis::RedisResult<u64> = redis::cmd("CLIENT")
                .arg("KILL")
                .arg("ID")
                .arg(id)
                .arg("SKIPME")
                .arg("yes")
                .query_async(&mut conn)
                .await;
            killed += n.unwrap_or(0);
        }
        // Requests that overlapped the kills are not held to "one failure per fault".
        soak.fault();
        let entry = report.actions.entry(action).or_default();
        entry.0 += 1;
        entry.1 += killed;
    }
    report
}

// ----- memory ------------------------------------------------------------------

/// A field of `/proc/self/status` in kB (`VmRSS`, `VmHWM`).
fn status_kb(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.trim().trim_end_matches("kB").trim().parse().ok()
    })
}

fn mb(kb: u64) -> String {
    format!("{:.1} MB", kb as f64 / 1024.0)
}

// ----- final checks ------------------------------------------------------------

/// Compares the namespace index with the entries found by SCAN, then asks
/// `repair` whether anything needs fixing. Returns a line for the table.
async fn check_index<V>(
    soak: &Soak,
    conn: &mut MultiplexedConnection,
    dict: &Dict<String, V>,
) -> String {
    let ns = dict.namespace();
    let mut scanned = HashSet::new();
    let mut cursor: u64 = 0;
    loop {
        let page: redis::RedisResult<(u64, Vec<String>)> = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(ns.scan_pattern())
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await;
        match page {
            Ok((next, keys)) => {
                scanned.extend(
                    keys.iter()
                        .filter_map(|k| ns.member_of(k).map(str::to_owned)),
                );
                cursor = next;
                if cursor == 0 {
                    break;
                }
            }
            Err(e) => return format!("{}: SCAN failed: {e}", ns.name()),
        }
    }
    let members: redis::RedisResult<Vec<String>> = redis::cmd("ZRANGE")
        .arg(ns.index_key())
        .arg(0)
        .arg(-1)
        .query_async(conn)
        .await;
    let members: HashSet<String> = match members {
        Ok(m) => m.into_iter().collect(),
        Err(e) => return format!("{}: ZRANGE failed: {e}", ns.name()),
    };
    let len = dict.len().await;
    let mut problems = Vec::new();
    let unindexed: Vec<&String> = scanned.difference(&members).collect();
    let dangling: Vec<&String> = members.difference(&scanned).collect();
    if let Some(k) = unindexed.first() {
        problems.push(format!(
            "{} entries missing from the index (e.g. {k:?})",
            unindexed.len()
        ));
    }
    if let Some(k) = dangling.first() {
        problems.push(format!(
            "{} index members without entry (e.g. {k:?})",
            dangling.len()
        ));
    }
    match len {
        Ok(len) if len != scanned.len() as u64 => {
            problems.push(format!("len() {len} but SCAN finds {}", scanned.len()))
        }
        Ok(_) => {}
        Err(e) => problems.push(format!("len() failed: {e}")),
    }
    match dict.repair().await {
        Ok(r) if r.added != 0 || r.removed != 0 => problems.push(format!(
            "repair() added {} and removed {} members",
            r.added, r.removed
        )),
        Ok(_) => {}
        Err(e) => problems.push(format!("repair() failed: {e}")),
    }
    if problems.is_empty() {
        format!("{}: {} entries", ns.name(), scanned.len())
    } else {
        let line = format!("{}: {}", ns.name(), problems.join("; "));
        soak.violation("index consistent with entries", line.clone());
        line
    }
}

/// Retries a final read a few times (the server is up and quiet by then).
async fn settle<T, F, Fut>(mut read: F) -> redis_pydict::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = redis_pydict::Result<T>>,
{
    let mut last = None;
    for _ in 0..5 {
        match read().await {
            Ok(v) => return Ok(v),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(last.unwrap_or_else(|| Error::Config("no attempt".into())))
}

// ----- tables --------------------------------------------------------------------

fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
            .collect();
        format!("| {} |\n", padded.join(" | "))
    };
    let mut out = line(headers.to_vec());
    out.push_str(&line(
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str)
            .collect(),
    ));
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

// ----- main --------------------------------------------------------------------

/// A fixed point after which the program ends whatever happens (the
/// private server is killed first).
fn watchdog(limit: Duration, server_pid: Arc<AtomicU32>) {
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        eprintln!("soak: did not finish within {limit:?}; giving up");
        let pid = server_pid.load(Ordering::SeqCst);
        if pid != 0 {
            let _ = std::process::Command::new("kill")
                .arg("-9")
                .arg(pid.to_string())
                .status();
        }
        std::process::exit(3);
    });
}

fn task(name: impl Into<String>, rng: &mut Rng) -> Task {
    Task {
        name: name.into(),
        rng: rng.fork(),
        failed_in: [None, None],
        last_failure: [String::new(), String::new()],
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let server_pid = Arc::new(AtomicU32::new(0));
    let (url, server) = match &args.url {
        Some(url) => (url.clone(), None),
        None => match RedisServer::try_start_with(SERVER_ARGS) {
            Ok(server) => {
                server_pid.store(server.pid().unwrap_or(0), Ordering::SeqCst);
                (server.url(), Some(Arc::new(Mutex::new(server))))
            }
            Err(e) => {
                eprintln!("soak: cannot start redis-server: {e}");
                return ExitCode::from(2);
            }
        },
    };
    let run = Duration::from_secs_f64(args.minutes * 60.0);
    watchdog(run + DRAIN + Duration::from_secs(240), server_pid.clone());
    let code = match soak(&args, &url, server.clone(), server_pid, run).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("soak: {e}");
            ExitCode::from(2)
        }
    };
    if let Some(server) = server {
        server.lock().unwrap_or_else(|p| p.into_inner()).kill();
    }
    code
}

/// The whole run; `Ok(false)` when an invariant failed.
async fn soak(
    args: &Args,
    url: &str,
    server: Option<Arc<Mutex<RedisServer>>>,
    server_pid: Arc<AtomicU32>,
    run: Duration,
) -> Result<bool, Box<dyn std::error::Error>> {
    let mut rng = Rng(args.seed);
    // Namespaces of their own on a server of yours; plain names on ours.
    let tag = match args.url {
        Some(_) => format!("{:x}-", std::process::id() as u64 ^ args.seed),
        None => String::new(),
    };
    let max_ops = (MAX_OPS_PER_MINUTE * args.minutes).ceil() as u64;
    let seq_capacity = max_ops.min(50_000_000);

    let writers = Store::builder(url).origin("soak").connect().await?;
    let counters = Store::connect(url).await?;
    let readers = Store::connect(url).await?;
    let plain = writers.dict::<String, PlainVal>(&format!("soak:{tag}plain"))?;
    let cas = counters.dict::<String, u64>(&format!("soak:{tag}cas"))?;
    // A log cap above anything the writer can write: the log is never
    // trimmed, so a durable Gap is always a defect here.
    let seq_dict = writers
        .dict::<String, u64>(&format!("soak:{tag}seq"))?
        .with_origin("soak-seq")
        .with_durable_log(seq_capacity * 2);
    let tally = Tally::view(&counters, &format!("{tag}tally"))?;
    let snap = Tally::view(&counters, &format!("{tag}snap"))?;
    let snap_readers = Tally::view(&readers, &format!("{tag}snap"))?;
    let seq_readers = readers.dict::<String, u64>(seq_dict.namespace().name())?;
    let plain_readers = readers.dict::<String, PlainVal>(plain.namespace().name())?;

    // A clean start (on a server of yours, these namespaces are new anyway).
    let mut raw = raw_connection(url).await?;
    plain.clear().await?;
    cas.clear().await?;
    seq_dict.clear().await?;
    let _: () = redis::cmd("DEL")
        .arg(seq_dict.namespace().log_key())
        .query_async(&mut raw)
        .await?;
    tally.save(&Tally::of(0)).await?;
    snap.save(&Tally::of(0)).await?;
    let version: String = redis::cmd("INFO")
        .arg("server")
        .query_async(&mut raw)
        .await?;
    let version = version
        .lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .unwrap_or("?")
        .trim()
        .to_owned();

    let soak = Arc::new(Soak {
        started: Instant::now(),
        deadline: Instant::now() + run,
        max_ops,
        ops: Mutex::default(),
        errors: Mutex::default(),
        violations: Mutex::default(),
        epoch: AtomicU64::new(0),
        last_fault_ms: AtomicU64::new(0),
        down: AtomicBool::new(false),
        longest_error: AtomicUsize::new(0),
        writers_done: AtomicBool::new(false),
        drain_deadline_ms: AtomicU64::new(0),
        counter: AtomicU64::new(1),
    });
    let seq = Arc::new(SeqLog::new(seq_capacity));

    // Subscribers first: every change written after this is theirs to see.
    let mut subscribers = Vec::new();
    {
        let sub = seq_readers.subscribe_durable(StartFrom::Beginning).await?;
        let t = task("durable live", &mut rng);
        subscribers.push(tokio::spawn(durable_reader(
            soak.clone(),
            seq.clone(),
            seq_readers.clone(),
            sub,
            "durable (follows)",
            false,
            t,
        )));
        let sub = seq_readers.subscribe_durable(StartFrom::Beginning).await?;
        let t = task("durable resumer", &mut rng);
        subscribers.push(tokio::spawn(durable_reader(
            soak.clone(),
            seq.clone(),
            seq_readers.clone(),
            sub,
            "durable (drops and resumes)",
            true,
            t,
        )));
        let sub = seq_readers.subscribe("*").await?;
        subscribers.push(tokio::spawn(plain_seq_reader(
            soak.clone(),
            seq.clone(),
            sub,
            "plain (keeps up)",
            false,
        )));
        let sub = seq_readers.subscribe("*").await?;
        subscribers.push(tokio::spawn(plain_seq_reader(
            soak.clone(),
            seq.clone(),
            sub,
            "plain (slow, 500/s)",
            true,
        )));
        let sub = plain_readers.subscribe("*").await?;
        subscribers.push(tokio::spawn(plain_laggard(
            soak.clone(),
            sub,
            "plain (slow, 200/s, large values)",
        )));
        let sub = snap_readers.subscribe().await?;
        subscribers.push(tokio::spawn(view_reader(
            soak.clone(),
            sub,
            "view subscribe",
        )));
    }
    let baseline_kb = status_kb("VmRSS").unwrap_or(0);

    // Memory sampler.
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let sampling = sampling.clone();
        tokio::spawn(async move {
            let mut peak = 0;
            while sampling.load(Ordering::SeqCst) {
                peak = peak.max(status_kb("VmRSS").unwrap_or(0));
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            peak
        })
    };

    let cas_book = Arc::new(Mutex::new(vec![CasBook::default(); COUNTERS]));
    let tally_book = Arc::new(Mutex::new(CasBook::default()));
    let mut workers = Vec::new();
    for i in 0..PLAIN_WRITERS {
        let t = task(format!("plain writer {i}"), &mut rng);
        workers.push(tokio::spawn(plain_writer(soak.clone(), plain.clone(), t)));
    }
    for i in 0..CAS_WRITERS {
        let t = task(format!("counter writer {i}"), &mut rng);
        workers.push(tokio::spawn(cas_writer(
            soak.clone(),
            cas.clone(),
            cas_book.clone(),
            t,
        )));
    }
    for i in 0..TALLY_WRITERS {
        let t = task(format!("view updater {i}"), &mut rng);
        workers.push(tokio::spawn(tally_writer(
            soak.clone(),
            Tally::view(&counters, &format!("{tag}tally"))?,
            tally_book.clone(),
            t,
        )));
    }
    for i in 0..SNAP_WRITERS {
        let t = task(format!("view saver {i}"), &mut rng);
        workers.push(tokio::spawn(snap_writer(
            soak.clone(),
            Tally::view(&counters, &format!("{tag}snap"))?,
            t,
        )));
    }
    {
        let t = task("sequence writer", &mut rng);
        workers.push(tokio::spawn(seq_writer(
            soak.clone(),
            seq_dict.clone(),
            seq.clone(),
            t,
        )));
    }
    let chaos_task = tokio::spawn(chaos(
        soak.clone(),
        url.to_owned(),
        server.clone(),
        server_pid.clone(),
        rng.fork(),
    ));
    println!(
        "soak: {:.1} min against redis {version} at {}{}, seed {}",
        args.minutes,
        url,
        if server.is_some() {
            " (private, appendonly yes, appendfsync no)"
        } else {
            " (yours: no restarts, CLIENT KILL of this process's connections only)"
        },
        args.seed
    );

    let mut panics = Vec::new();
    for w in workers {
        if let Err(e) = w.await {
            panics.push(format!("a writer task failed: {e}"));
        }
    }
    let chaos = match chaos_task.await {
        Ok(report) => report,
        Err(e) => {
            panics.push(format!("the chaos task failed: {e}"));
            ChaosReport::default()
        }
    };
    let writers_elapsed = soak.started.elapsed();
    // Everything written is settled; subscribers catch up.
    soak.drain_deadline_ms.store(
        (soak.started.elapsed() + DRAIN).as_millis() as u64,
        Ordering::SeqCst,
    );
    soak.writers_done.store(true, Ordering::SeqCst);
    let mut reports = Vec::new();
    for s in subscribers {
        match s.await {
            Ok(report) => reports.push(report),
            Err(e) => panics.push(format!("a subscriber task failed: {e}")),
        }
    }
    sampling.store(false, Ordering::SeqCst);
    let peak_rss_kb = sampler.await.unwrap_or(0);
    let hwm_kb = status_kb("VmHWM").unwrap_or(0);
    let end_rss_kb = status_kb("VmRSS").unwrap_or(0);

    // ----- invariants on the data -----
    let mut raw = raw_connection(url).await?;
    let mut notes: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    {
        let book = cas_book.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut line = Vec::new();
        for (i, entry) in book.iter().enumerate() {
            let key = format!("c{i}");
            let stored = settle(|| cas.get(&key)).await;
            match stored {
                Ok(value) => {
                    let value = value.unwrap_or(0);
                    let (lo, hi) = (entry.ok, entry.ok + entry.unknown);
                    line.push(format!("{key} {lo} ≤ {value} ≤ {hi}"));
                    if value < lo || value > hi {
                        soak.violation(
                            "CAS counters exact (dict update_with)",
                            format!("{key}: stored {value}, but {lo} increments succeeded and {} had an unknown outcome", entry.unknown),
                        );
                    }
                }
                Err(e) => soak.violation(
                    "CAS counters exact (dict update_with)",
                    format!("{key}: cannot read: {e}"),
                ),
            }
        }
        notes.insert("CAS counters exact (dict update_with)", line);
    }
    {
        let book = *tally_book.lock().unwrap_or_else(|p| p.into_inner());
        match settle(|| tally.load()).await {
            Ok(t) => {
                let (lo, hi) = (book.ok, book.ok + book.unknown);
                notes.insert(
                    "view update counter exact",
                    vec![format!("{lo} ≤ {} ≤ {hi}", t.a)],
                );
                check_tally(&soak, "final", "load", &t);
                if t.a < lo || t.a > hi {
                    soak.violation(
                        "view update counter exact",
                        format!(
                            "stored {}, but {lo} updates succeeded and {} had an unknown outcome",
                            t.a, book.unknown
                        ),
                    );
                }
            }
            Err(e) => soak.violation("view update counter exact", format!("cannot load: {e}")),
        }
        if let Ok(t) = settle(|| snap.load()).await {
            check_tally(&soak, "final", "load of snap", &t);
        }
    }
    {
        // Each sequence key holds the last number written to it, and that
        // write was acknowledged or of unknown outcome.
        let keys: Vec<String> = (0..SEQ_KEYS).map(seq_key).collect();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        match settle(|| seq_dict.get_many(refs.clone())).await {
            Ok(values) => {
                let last = seq.last.load(Ordering::SeqCst);
                for (j, value) in values.into_iter().enumerate() {
                    let j = j as u64;
                    let newest_acked = (1..=last)
                        .rev()
                        .filter(|m| m % SEQ_KEYS == j)
                        .find(|&m| seq.get(m) == ACKED);
                    match (value, newest_acked) {
                        (None, Some(m)) => soak.violation(
                            "last acknowledged write wins",
                            format!("{}: missing, but {m} was acknowledged", seq_key(j)),
                        ),
                        (Some(v), acked) => {
                            if v % SEQ_KEYS != j || !matches!(seq.get(v), ACKED | UNKNOWN) {
                                soak.violation(
                                    "last acknowledged write wins",
                                    format!(
                                        "{}: holds {v}, never written there successfully",
                                        seq_key(j)
                                    ),
                                );
                            } else if acked.is_some_and(|m| m > v) {
                                soak.violation(
                                    "last acknowledged write wins",
                                    format!(
                                        "{}: holds {v}, but {} was acknowledged later",
                                        seq_key(j),
                                        acked.unwrap_or(0)
                                    ),
                                );
                            }
                        }
                        (None, None) => {}
                    }
                }
            }
            Err(e) => soak.violation("last acknowledged write wins", format!("cannot read: {e}")),
        }
    }
    let mut index_lines = Vec::new();
    index_lines.push(check_index(&soak, &mut raw, &plain).await);
    index_lines.push(check_index(&soak, &mut raw, &cas).await);
    index_lines.push(check_index(&soak, &mut raw, &seq_dict).await);
    index_lines.push(check_index(&soak, &mut raw, &tally.dict::<ciborium::Value>()).await);
    index_lines.push(check_index(&soak, &mut raw, &snap.dict::<ciborium::Value>()).await);
    notes.insert("index consistent with entries", index_lines);

    let growth_kb = hwm_kb.saturating_sub(baseline_kb);
    let limit_kb = args.max_rss_growth_mb * 1024;
    notes.insert(
        "client memory bounded",
        vec![format!(
            "peak VmHWM {} − baseline {} = {} (limit {})",
            mb(hwm_kb),
            mb(baseline_kb),
            mb(growth_kb),
            mb(limit_kb)
        )],
    );
    if growth_kb > limit_kb {
        soak.violation(
            "client memory bounded",
            format!("grew by {} (limit {})", mb(growth_kb), mb(limit_kb)),
        );
    }
    for failure in chaos.failures.iter().chain(&panics) {
        soak.violation("no request hangs", failure.clone());
    }
    let server_memory: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(&mut raw)
        .await
        .unwrap_or_default();
    let server_memory = server_memory
        .lines()
        .find_map(|l| l.strip_prefix("used_memory_human:"))
        .unwrap_or("?")
        .trim()
        .to_owned();

    if args.url.is_some() {
        // Leave a server of yours as it was.
        let _ = plain.clear().await;
        let _ = cas.clear().await;
        let _ = seq_dict.clear().await;
        let _ = tally.clear().await;
        let _ = snap.clear().await;
        for ns in [plain.namespace(), cas.namespace(), seq_dict.namespace()] {
            let _: redis::RedisResult<()> = redis::cmd("DEL")
                .arg(ns.log_key())
                .arg(ns.meta_key())
                .arg(ns.seq_key())
                .query_async(&mut raw)
                .await;
        }
    }

    // ----- the report -----
    let ops = std::mem::take(&mut *soak.ops.lock().unwrap_or_else(|p| p.into_inner()));
    let total: u64 = ops.values().map(|s| s.ok + s.unknown + s.not_applied).sum();
    let secs = writers_elapsed.as_secs_f64().max(0.001);
    println!(
        "\nran {:.1} s: {} requests ({:.0}/s), chaos: {} restarts (longest {:.2} s), {} kill actions",
        secs,
        group(total),
        total as f64 / secs,
        chaos.restarts,
        chaos.longest_restart.as_secs_f64(),
        chaos.actions.values().map(|a| a.0).sum::<u64>()
    );
    let rows: Vec<Vec<String>> = ops
        .iter()
        .map(|(name, s)| {
            vec![
                format!("`{name}`"),
                group(s.ok),
                group(s.unknown),
                group(s.not_applied),
                format!("{:.1} ms", s.max_latency.as_secs_f64() * 1000.0),
            ]
        })
        .collect();
    println!(
        "\n{}",
        table(
            &[
                "operation",
                "ok",
                "failed, outcome unknown",
                "failed, not applied",
                "slowest"
            ],
            &rows
        )
    );
    let errors = std::mem::take(&mut *soak.errors.lock().unwrap_or_else(|p| p.into_inner()));
    let rows: Vec<Vec<String>> = errors
        .iter()
        .map(|(kind, b)| vec![kind.clone(), group(b.count), b.sample.clone()])
        .collect();
    println!("{}", table(&["error kind", "count", "first seen"], &rows));
    println!(
        "longest error message: {} bytes\n",
        soak.longest_error.load(Ordering::Relaxed)
    );
    let rows: Vec<Vec<String>> = reports
        .iter()
        .map(|r| {
            vec![
                r.who.to_owned(),
                group(r.events),
                group(r.gaps),
                group(r.resumes),
                group(r.errors),
                r.last.clone(),
            ]
        })
        .collect();
    println!(
        "{}",
        table(
            &[
                "subscriber",
                "events",
                "gaps",
                "resumes",
                "errors",
                "last seen of acknowledged"
            ],
            &rows
        )
    );
    let mut rows: Vec<Vec<String>> = chaos
        .actions
        .iter()
        .map(|(action, (n, killed))| vec![action.clone(), group(*n), group(*killed)])
        .collect();
    rows.push(vec![
        "restart the server (SIGKILL, same port and data)".into(),
        group(chaos.restarts),
        String::new(),
    ]);
    println!(
        "{}",
        table(&["chaos action", "times", "connections killed"], &rows)
    );
    println!(
        "{}",
        table(
            &["memory", "value"],
            &[
                vec![
                    "client VmRSS after setup (baseline)".into(),
                    mb(baseline_kb)
                ],
                vec!["client peak VmRSS (sampled)".into(), mb(peak_rss_kb)],
                vec!["client peak VmHWM".into(), mb(hwm_kb)],
                vec!["client VmRSS at the end".into(), mb(end_rss_kb)],
                vec!["server used_memory at the end".into(), server_memory],
            ]
        )
    );
    let violations =
        std::mem::take(&mut *soak.violations.lock().unwrap_or_else(|p| p.into_inner()));
    let mut rows = Vec::new();
    let mut ok = true;
    for check in CHECKS {
        let (result, detail) = match violations.get(check) {
            Some(v) => {
                ok = false;
                (
                    format!("**FAIL** ({})", group(v.count)),
                    v.samples.join(" / "),
                )
            }
            None => (
                "PASS".to_owned(),
                notes.get(check).map(|n| n.join("; ")).unwrap_or_default(),
            ),
        };
        rows.push(vec![check.to_string(), result, detail]);
    }
    for (check, v) in &violations {
        if !CHECKS.contains(check) {
            ok = false;
            rows.push(vec![
                check.to_string(),
                format!("**FAIL** ({})", v.count),
                v.samples.join(" / "),
            ]);
        }
    }
    println!("{}", table(&["invariant", "result", "detail"], &rows));
    println!("{}", if ok { "soak: PASS" } else { "soak: FAIL" });
    Ok(ok)
}
