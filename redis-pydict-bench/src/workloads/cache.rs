//! The near cache (`Dict::cached`): a hit beside a raw GET round trip, and
//! the client memory of a 100,000-entry near cache beside the encoded size of
//! its values.

use std::hint::black_box;
use std::time::{Duration, Instant};

use redis_pydict::Dict;

use crate::args::Plan;
use crate::measure::{fmt_kb, heap_bytes, interleaved_timed};
use crate::table::{Row, Table};
use crate::workloads::{cbor, key, progress, session, Ctx, Session};
use crate::BoxResult;

/// Hits timed per measured operation: one hit is too short for the clock.
const HITS_PER_OP: u32 = 100;

pub async fn near_cache(plan: &Plan, ctx: &mut Ctx, table: &mut Table) -> BoxResult<()> {
    progress(&format!(
        "near cache: hits vs raw GET, {} ops per series",
        plan.single_ops
    ));
    const KEYS: usize = 1000;
    let dict: Dict<String, Session> = ctx.store.dict("bench-cache")?;
    let keys: Vec<String> = (0..KEYS).map(key).collect();
    let values: Vec<Session> = (0..KEYS).map(session).collect();
    dict.set_many(keys.iter().zip(&values)).await?;
    let entry_keys: Vec<String> = keys.iter().map(|k| dict.namespace().entry_key(k)).collect();
    let cached = dict.cached(KEYS).await?;
    for k in &keys {
        cached.get(k).await?.ok_or("missing entry")?;
    }
    let (ours, theirs) = {
        let mut r = ctx.raw.clone();
        interleaved_timed(
            plan.single_ops,
            async |i| {
                let t = Instant::now();
                for j in 0..HITS_PER_OP as usize {
                    black_box(cached.get(&keys[(i + j) % KEYS]).await?);
                }
                Ok(t.elapsed() / HITS_PER_OP)
            },
            async |i| {
                let t = Instant::now();
                let v: Option<Vec<u8>> = redis::cmd("GET")
                    .arg(&entry_keys[i % KEYS])
                    .query_async(&mut r)
                    .await?;
                black_box(v.ok_or("missing entry")?);
                Ok(t.elapsed())
            },
        )
        .await?
    };
    let status = cached.status();
    if status.misses != KEYS as u64 {
        return Err(format!("near cache: hits went to the server: {status:?}").into());
    }
    let speedup = theirs.median().as_secs_f64() / ours.median().as_secs_f64().max(1e-12);
    table.rows.push(Row {
        workload: "near-cache hit vs raw `GET`".to_owned(),
        ours: format!(
            "{:.0} ns (p99 {:.0} ns)",
            nanos(ours.median()),
            nanos(ours.p99())
        ),
        raw: format!(
            "{:.1} µs (p99 {:.1} µs)",
            nanos(theirs.median()) / 1e3,
            nanos(theirs.p99()) / 1e3
        ),
        ratio: format!("{speedup:.0}× faster"),
        target: "≥ 200× faster".to_owned(),
        pass: speedup >= 200.0,
    });
    drop(cached);

    let n = 100_000;
    progress(&format!("near cache of {n} entries: client heap growth"));
    let big: Dict<String, Session> = ctx.store.dict("bench-cache")?;
    let max_batch = 10_000;
    for start in (0..n).step_by(max_batch) {
        let end = (start + max_batch).min(n);
        big.set_many((start..end).map(|i| (key(i), session(i))))
            .await?;
    }
    let encoded: usize = (0..n).map(|i| cbor(&session(i)).len()).sum();
    let keys_len: usize = (0..n).map(|i| key(i).len()).sum();
    let cached = big.cached(n).await?;
    // Let the tracking connection's start-up finish before the baseline.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let before = heap_bytes();
    for i in 0..n {
        black_box(cached.get(&key(i)).await?.ok_or("missing entry")?);
    }
    let after = heap_bytes();
    let status = cached.status();
    if status.entries != n {
        return Err(format!("near cache holds {} of {n} entries", status.entries).into());
    }
    let growth_kb = (after.saturating_sub(before) / 1024) as u64;
    let encoded_kb = (encoded / 1024) as u64;
    let ratio = growth_kb as f64 / encoded_kb.max(1) as f64;
    table.rows.push(Row {
        workload: format!("near cache of {n} entries: client heap"),
        ours: format!("{} (heap growth)", fmt_kb(growth_kb)),
        raw: format!(
            "{} encoded values (+ {} of keys)",
            fmt_kb(encoded_kb),
            fmt_kb((keys_len / 1024) as u64)
        ),
        ratio: format!("{ratio:.1}× the encoded size"),
        target: "≤ 2× + constant".to_owned(),
        pass: ratio <= 2.0,
    });
    table.notes.push(format!(
        "near cache: entries hold decoded values (a hit clones, never decodes); \
         {} bytes per entry in all against {} encoded bytes per value",
        growth_kb * 1024 / n as u64,
        encoded / n
    ));
    big.clear().await?;
    Ok(())
}

fn nanos(d: Duration) -> f64 {
    d.as_secs_f64() * 1e9
}
