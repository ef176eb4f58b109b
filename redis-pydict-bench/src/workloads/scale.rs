//! Workload 7, scale: `set_many` of 1,000,000 entries with a probe client,
//! `items()` over them in bounded memory (in a fresh child process), `clear`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use futures::stream::FuturesOrdered;
use futures::StreamExt;
use redis::{RedisResult, Value};
use redis_pydict::{Dict, Store};

use crate::args::Plan;
use crate::measure::{
    check_count, fmt_dur, fmt_kb, fmt_rate, group, reset_peak_rss, share_text, status_kb, Probe,
};
use crate::raw::{raw_connection, raw_scan_mget_each, unlink_matching, RawConn, RAW};
use crate::table::{describe, Row, Table, Target};
use crate::workloads::{cbor, key, progress, session, Ctx, Session};
use crate::BoxResult;

/// On our own server: log every command slower than 10 ms from now on.
pub async fn slowlog_reset(ctx: &mut Ctx) -> BoxResult<()> {
    if ctx.deployment.own {
        redis::cmd("CONFIG")
            .arg("SET")
            .arg("slowlog-log-slower-than")
            .arg(10_000)
            .query_async::<()>(&mut ctx.raw)
            .await?;
        redis::cmd("SLOWLOG")
            .arg("RESET")
            .query_async::<()>(&mut ctx.raw)
            .await?;
    }
    Ok(())
}

/// On our own server: the longest command since [`slowlog_reset`], as text.
pub async fn slowlog_longest(ctx: &mut Ctx) -> BoxResult<String> {
    if !ctx.deployment.own {
        return Ok(String::new());
    }
    let entries: Vec<Value> = redis::cmd("SLOWLOG")
        .arg("GET")
        .arg(10_000)
        .query_async(&mut ctx.raw)
        .await?;
    let mut longest: Option<(u64, String)> = None;
    for entry in entries {
        // [id, timestamp, microseconds, [command, args...], ...]
        let Value::Array(parts) = entry else { continue };
        let micros: u64 = match parts.get(2) {
            Some(v) => redis::from_redis_value(v.clone())?,
            None => continue,
        };
        let command = match parts.get(3) {
            Some(Value::Array(args)) => args
                .first()
                .and_then(|a| redis::from_redis_value::<String>(a.clone()).ok())
                .unwrap_or_default(),
            _ => String::new(),
        };
        if longest.as_ref().is_none_or(|(m, _)| micros > *m) {
            longest = Some((micros, command));
        }
    }
    Ok(match longest {
        Some((micros, command)) => format!(
            "; longest command {} ({command})",
            fmt_dur(Duration::from_micros(micros))
        ),
        None => "; no command ≥ 10 ms".to_owned(),
    })
}

/// What a memory probe child measured.
pub struct RssFigures {
    /// Peak resident-set growth during the iteration, kB.
    pub growth_kb: u64,
    /// How it was measured: peak (VmHWM) or sampled VmRSS.
    pub how: &'static str,
    pub elapsed: Duration,
}

/// Runs this program again as a memory probe (`--rss-probe which`): a fresh
/// process, so memory freed by earlier workloads cannot hide growth.
pub async fn rss_child(ctx: &Ctx, which: &str, entries: usize) -> BoxResult<RssFigures> {
    let exe = std::env::current_exe()?;
    let out = tokio::process::Command::new(exe)
        .arg("--rss-probe")
        .arg(which)
        .arg("--url")
        .arg(&ctx.deployment.urls[0])
        .arg("--entries")
        .arg(entries.to_string())
        .output()
        .await?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "memory probe ({which}) failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    let field = |name: &str| -> BoxResult<u64> {
        let line = stdout
            .lines()
            .find(|l| l.starts_with("rss-probe "))
            .ok_or("no rss-probe line from the memory probe")?;
        let value = line
            .split_whitespace()
            .find_map(|f| f.strip_prefix(name)?.strip_prefix('='))
            .ok_or_else(|| format!("no {name} from the memory probe"))?;
        Ok(value.parse()?)
    };
    let (base, peak, sampled, hwm) = (
        field("base_kb")?,
        field("peak_kb")?,
        field("sampled_kb")?,
        field("hwm_reset")?,
    );
    Ok(RssFigures {
        growth_kb: if hwm == 1 { peak } else { sampled }.saturating_sub(base),
        how: if hwm == 1 {
            "peak VmHWM"
        } else {
            "sampled VmRSS"
        },
        elapsed: Duration::from_nanos(field("elapsed_ns")?),
    })
}

/// The memory probe child: iterates the `bench-scale` namespace (`ours`:
/// `items()`, decoding each entry; `raw`: SCAN+MGET, decoding each value),
/// and prints its resident-set figures.
pub async fn rss_probe(which: &str, url: &str, entries: usize) -> BoxResult<()> {
    let store = Store::connect(url).await?;
    let dict: Dict<String, Session> = store.dict("bench-scale")?;
    let mut raw = RawConn::Single(raw_connection(url).await?);
    let pattern = dict.namespace().scan_pattern();
    let hwm_reset = reset_peak_rss();
    let base = status_kb("VmRSS").ok_or("no VmRSS in /proc/self/status")?;
    let mut sampled = base;
    let mut count = 0usize;
    let mut sample = |count: usize| {
        if count.is_multiple_of(10_000) {
            sampled = sampled.max(status_kb("VmRSS").unwrap_or(0));
        }
    };
    let t = Instant::now();
    match which {
        "ours" => {
            let mut items = std::pin::pin!(dict.items());
            while let Some(item) = items.next().await {
                black_box(item?);
                count += 1;
                sample(count);
            }
        }
        "raw" => {
            raw_scan_mget_each(
                &mut raw,
                &pattern,
                redis_pydict::DEFAULT_PAGE_SIZE,
                |k, v| {
                    let value: Session = ciborium::from_reader(v.as_slice())?;
                    black_box((k, value));
                    count += 1;
                    sample(count);
                    Ok(())
                },
            )
            .await?
        }
        other => return Err(format!("unknown --rss-probe {other:?}").into()),
    }
    let elapsed = t.elapsed();
    check_count(&format!("{which} iteration"), count, entries)?;
    let peak = status_kb("VmHWM").unwrap_or(0);
    println!(
        "rss-probe count={count} base_kb={base} peak_kb={peak} sampled_kb={sampled} hwm_reset={} elapsed_ns={}",
        u8::from(hwm_reset),
        elapsed.as_nanos()
    );
    Ok(())
}

/// Bulk write (`set_many`) of `scale_entries` entries with a probe client measuring how
/// long the server is unavailable at a time, beside raw pipelined SET;
/// `items()` over them in bounded memory; `clear` of them (extra).
pub async fn scale(plan: &Plan, ctx: &mut Ctx, table: &mut Table) -> BoxResult<()> {
    let n = plan.scale_entries;
    let label = group(n as u64);
    let url = ctx.deployment.urls[0].clone();
    let dict: Dict<String, Session> = ctx.store.dict("bench-scale")?;

    progress(&format!(
        "`set_many` of {n} entries with a PING probe, then raw pipelined SET of the same bytes"
    ));
    slowlog_reset(ctx).await?;
    let probe = Probe::start(&url)?;
    let peak_reset = reset_peak_rss();
    let rss_before = status_kb("VmRSS");
    let t = Instant::now();
    let updated = dict.set_many((0..n).map(|i| (key(i), session(i)))).await;
    let ours_t = t.elapsed();
    let ours_probe = probe.finish()?;
    updated?;
    if let (true, Some(before), Some(peak)) = (peak_reset, rss_before, status_kb("VmHWM")) {
        table.notes.push(format!(
            "note: client peak memory growth during `set_many` of {label} entries (pairs generated lazily): {}",
            fmt_kb(peak.saturating_sub(before))
        ));
    }
    let ours_slow = slowlog_longest(ctx).await?;
    check_count("len after set_many", dict.len().await? as usize, n)?;

    // Raw done well: pre-encoded bytes, pipelines of 10,000 SETs (the
    // library's batch size), a few in flight.
    let raw_entries: Vec<(String, Vec<u8>)> = (0..n)
        .map(|i| (format!("{RAW}{}", key(i)), cbor(&session(i))))
        .collect();
    slowlog_reset(ctx).await?;
    let probe = Probe::start(&url)?;
    let t = Instant::now();
    let raw_written = async {
        let mut in_flight = FuturesOrdered::new();
        for batch in raw_entries.chunks(redis_pydict::DEFAULT_MAX_BATCH) {
            let mut pipe = redis::pipe();
            for (k, v) in batch {
                pipe.cmd("SET").arg(k).arg(v).ignore();
            }
            let mut conn = ctx.raw.clone();
            in_flight.push_back(async move { pipe.query_async::<()>(&mut conn).await });
            if in_flight.len() >= 4 {
                if let Some(result) = in_flight.next().await {
                    result?;
                }
            }
        }
        while let Some(result) = in_flight.next().await {
            result?;
        }
        RedisResult::Ok(())
    }
    .await;
    let raw_t = t.elapsed();
    let raw_probe = probe.finish()?;
    raw_written?;
    let raw_slow = slowlog_longest(ctx).await?;
    drop(raw_entries);

    let share = raw_t.as_secs_f64() / ours_t.as_secs_f64().max(1e-12);
    table.rows.push(Row {
        workload: format!("`set_many` of {label} entries (events on)"),
        ours: format!("{} ({})", fmt_rate(n, "entries", ours_t), fmt_dur(ours_t)),
        raw: format!("{} ({})", fmt_rate(n, "entries", raw_t), fmt_dur(raw_t)),
        ratio: share_text(share),
        target: "completes".to_owned(),
        pass: true,
    });
    let limit = Duration::from_millis(100);
    table.rows.push(Row {
        workload: "server blocked during that `set_many` (max PING round trip)".to_owned(),
        ours: format!(
            "{} ({} PINGs{ours_slow})",
            fmt_dur(ours_probe.max),
            group(ours_probe.pings as u64)
        ),
        raw: format!(
            "{} ({} PINGs{raw_slow})",
            fmt_dur(raw_probe.max),
            group(raw_probe.pings as u64)
        ),
        ratio: format!(
            "{:.2}× time",
            ours_probe.max.as_secs_f64() / raw_probe.max.as_secs_f64().max(1e-12)
        ),
        target: describe(&Target::MaxTime(limit)),
        pass: ours_probe.max <= limit,
    });

    // The raw keys go (SCAN + UNLINK), so that the raw iteration below scans
    // what ours does; the probe watches this too (the raw side of `clear`).
    progress("raw SCAN+UNLINK of those keys, with the probe");
    let probe = Probe::start(&url)?;
    let t = Instant::now();
    let unlinked = unlink_matching(&mut ctx.raw, &format!("{RAW}*")).await;
    let raw_clear_t = t.elapsed();
    let raw_clear_probe = probe.finish()?;
    unlinked?;

    progress(&format!(
        "`items()` over {n} entries and raw SCAN+MGET, each in a fresh process measuring its memory"
    ));
    let ours_rss = rss_child(ctx, "ours", n).await?;
    let raw_rss = rss_child(ctx, "raw", n).await?;
    let limit_kb = 64 * 1024;
    table.rows.push(Row {
        workload: format!("`items()` over {label} entries: peak memory growth"),
        ours: format!("{} ({})", fmt_kb(ours_rss.growth_kb), ours_rss.how),
        raw: format!("{} (SCAN+MGET+decode)", fmt_kb(raw_rss.growth_kb)),
        ratio: format!(
            "{:+.1} MB",
            (ours_rss.growth_kb as f64 - raw_rss.growth_kb as f64) / 1024.0
        ),
        target: "< 64 MB".to_owned(),
        pass: ours_rss.growth_kb < limit_kb,
    });
    table.throughput(
        &format!("`items()` over {label} entries, streamed (extra)"),
        n,
        ours_rss.elapsed,
        raw_rss.elapsed,
        0.80,
    );

    progress(&format!("`clear` of {n} entries, with the probe"));
    slowlog_reset(ctx).await?;
    let probe = Probe::start(&url)?;
    let t = Instant::now();
    let cleared = dict.clear().await;
    let clear_t = t.elapsed();
    let clear_probe = probe.finish()?;
    check_count("clear", cleared? as usize, n)?;
    let clear_slow = slowlog_longest(ctx).await?;
    table.rows.push(Row {
        workload: format!("server blocked during `clear` of {label} entries (extra)"),
        ours: format!(
            "{} (took {}{clear_slow})",
            fmt_dur(clear_probe.max),
            fmt_dur(clear_t)
        ),
        raw: format!(
            "{} (SCAN+UNLINK, took {})",
            fmt_dur(raw_clear_probe.max),
            fmt_dur(raw_clear_t)
        ),
        ratio: format!(
            "{:.2}× time",
            clear_probe.max.as_secs_f64() / raw_clear_probe.max.as_secs_f64().max(1e-12)
        ),
        target: describe(&Target::MaxTime(limit)),
        pass: clear_probe.max <= limit,
    });
    Ok(())
}
