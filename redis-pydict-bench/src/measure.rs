//! Measuring: interleaved latency series, medians, this process's memory,
//! and a probe client that measures how long the server keeps others waiting.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::Client;

use crate::BoxResult;

/// Latencies of one series of sequential operations.
pub struct Latencies(Vec<Duration>);

impl Latencies {
    pub fn new() -> Self {
        Latencies(Vec::new())
    }
    pub fn push(&mut self, d: Duration) {
        self.0.push(d);
    }
    pub fn sorted(&self) -> Vec<Duration> {
        let mut v = self.0.clone();
        v.sort_unstable();
        v
    }
    pub fn median(&self) -> Duration {
        let v = self.sorted();
        v.get(v.len() / 2).copied().unwrap_or_default()
    }
    pub fn p99(&self) -> Duration {
        let v = self.sorted();
        v.get(v.len() * 99 / 100).copied().unwrap_or_default()
    }
}

/// Runs `ours` and `raw` for `ops` sequential operations each, alternating in
/// blocks so that load from other processes hits both alike, after a warm-up.
pub async fn interleaved<A, B>(
    ops: usize,
    mut ours: A,
    mut raw: B,
) -> BoxResult<(Latencies, Latencies)>
where
    A: AsyncFnMut(usize) -> BoxResult<()>,
    B: AsyncFnMut(usize) -> BoxResult<()>,
{
    interleaved_timed(
        ops,
        async |i| {
            let t = Instant::now();
            ours(i).await?;
            Ok(t.elapsed())
        },
        async |i| {
            let t = Instant::now();
            raw(i).await?;
            Ok(t.elapsed())
        },
    )
    .await
}

/// [`interleaved`] for operations that time themselves (e.g. from just
/// before a write to the arrival of its event).
pub async fn interleaved_timed<A, B>(
    ops: usize,
    mut ours: A,
    mut raw: B,
) -> BoxResult<(Latencies, Latencies)>
where
    A: AsyncFnMut(usize) -> BoxResult<Duration>,
    B: AsyncFnMut(usize) -> BoxResult<Duration>,
{
    let block = 100.min(ops.max(1));
    for i in 0..(ops / 10).max(block) {
        ours(i).await?;
        raw(i).await?;
    }
    let (mut a, mut b) = (Latencies::new(), Latencies::new());
    let mut done = 0;
    while done < ops {
        let n = block.min(ops - done);
        for i in done..done + n {
            a.push(ours(i).await?);
        }
        for i in done..done + n {
            b.push(raw(i).await?);
        }
        done += n;
    }
    Ok((a, b))
}

/// The median of a series (zero when empty).
pub fn median_of(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// A duration in µs, ms or s.
pub fn fmt_dur(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1_000.0 {
        format!("{us:.1} µs")
    } else if us < 1_000_000.0 {
        format!("{:.2} ms", us / 1e3)
    } else {
        format!("{:.2} s", us / 1e6)
    }
}

/// `count` per second over `d`, e.g. `1,234 entries/s`.
pub fn fmt_rate(count: usize, unit: &str, d: Duration) -> String {
    let rate = count as f64 / d.as_secs_f64().max(1e-9);
    format!("{} {unit}/s", group(rate.round() as u64))
}

/// kB as MB.
pub fn fmt_kb(kb: u64) -> String {
    format!("{:.1} MB", kb as f64 / 1024.0)
}

/// `n` with thousands separators.
pub fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A share of raw's throughput, as a percentage (or a multiple when ≥ 10×).
pub fn share_text(share: f64) -> String {
    if share >= 10.0 {
        format!("{}× raw", group(share.round() as u64))
    } else {
        format!("{:.0} % of raw", share * 100.0)
    }
}

/// The bytes of heap this process holds now (all threads).
pub fn heap_bytes() -> usize {
    crate::ALLOCATOR.allocated()
}

/// A field of `/proc/self/status` (e.g. `VmRSS`, `VmHWM`), in kB; `None`
/// where there is no such file (not Linux).
pub fn status_kb(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.trim().trim_end_matches("kB").trim().parse().ok()
    })
}

/// Resets this process's peak resident set (`VmHWM`) to its current size
/// (Linux ≥ 4.0); false where that is not possible.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// A client on a connection of its own that PINGs the server about every
/// millisecond from a thread of its own while a workload runs, keeping the
/// longest round trip: how long the server kept other clients waiting.
pub struct Probe {
    pub stop: Arc<AtomicBool>,
    pub thread: std::thread::JoinHandle<Result<ProbeStats, String>>,
}

/// What a [`Probe`] saw.
pub struct ProbeStats {
    pub max: Duration,
    pub pings: usize,
}

impl Probe {
    pub fn start(url: &str) -> BoxResult<Probe> {
        let client = Client::open(url)?;
        let mut conn = client.get_connection_with_timeout(Duration::from_secs(5))?;
        conn.set_read_timeout(Some(Duration::from_secs(60)))?;
        redis::cmd("PING").query::<()>(&mut conn)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut stats = ProbeStats {
                max: Duration::ZERO,
                pings: 0,
            };
            while !flag.load(Ordering::Relaxed) {
                let t = Instant::now();
                redis::cmd("PING")
                    .query::<()>(&mut conn)
                    .map_err(|e| format!("probe PING: {e}"))?;
                stats.max = stats.max.max(t.elapsed());
                stats.pings += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
            Ok(stats)
        });
        Ok(Probe { stop, thread })
    }

    pub fn finish(self) -> BoxResult<ProbeStats> {
        self.stop.store(true, Ordering::Relaxed);
        Ok(self
            .thread
            .join()
            .map_err(|_| "the PING probe panicked")??)
    }
}

/// An error unless a workload saw as many entries as it should (a benchmark
/// that measures wrong work measures nothing).
pub fn check_count(what: &str, got: usize, want: usize) -> BoxResult<()> {
    if got != want {
        return Err(format!("{what} returned {got} entries, expected {want}").into());
    }
    Ok(())
}
