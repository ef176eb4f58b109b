//! Workload 5: `len` / `contains` / `get` / `set` of a namespace among 1,000
//! and among 1,000,000 other keys.

use std::hint::black_box;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use redis_pydict::Dict;

use crate::args::Plan;
use crate::measure::{check_count, group, interleaved, median_of, Latencies};
use crate::raw::{populate, raw_scan_mget, unlink_matching, RAW};
use crate::table::Table;
use crate::workloads::{cbor, key, progress, session, Ctx, Session};
use crate::BoxResult;

/// Median costs of one database size, for the growth note.
pub struct SizeCosts {
    pub len: Duration,
    pub contains: (Duration, Duration),
    pub get: (Duration, Duration),
    pub set: (Duration, Duration),
}

/// `len`, `contains`, `get` and `set` of a 1,000-entry namespace in a
/// database that holds `others` other keys (filled up to that many); `None`
/// on a cluster: `len` only, among whatever the cluster holds.
pub async fn among_others(
    plan: &Plan,
    ctx: &mut Ctx,
    table: &mut Table,
    others: Option<usize>,
) -> BoxResult<Option<SizeCosts>> {
    let place = match others {
        Some(others) => {
            progress(&format!("filling the database up to {others} other keys"));
            let t = Instant::now();
            let how = populate(&mut ctx.raw, others).await?;
            let dbsize: u64 = redis::cmd("DBSIZE").query_async(&mut ctx.raw).await?;
            progress(&format!(
                "{how}: {} keys in {:.1} s; len/contains/get/set of a {}-entry namespace",
                dbsize,
                t.elapsed().as_secs_f64(),
                plan.len_entries
            ));
            format!("among {} other keys", group(others as u64))
        }
        None => {
            progress(&format!("len of a {}-entry namespace", plan.len_entries));
            "on the cluster".to_owned()
        }
    };
    let dict: Dict<String, Session> = ctx.store.dict("bench-len")?;
    let m = plan.len_entries;
    let entries: Vec<(String, Session)> = (0..m).map(|i| (key(i), session(i))).collect();
    dict.set_many(entries.iter().map(|(k, v)| (k, v))).await?;
    let pattern = dict.namespace().scan_pattern();
    let entry_keys: Vec<String> = entries
        .iter()
        .map(|(k, _)| dict.namespace().entry_key(k))
        .collect();
    let bytes: Vec<Vec<u8>> = entries.iter().map(|(_, v)| cbor(v)).collect();
    let raw_keys: Vec<String> = entries.iter().map(|(k, _)| format!("{RAW}{k}")).collect();

    // len: ours, sequential calls after a warm-up.
    for _ in 0..100 {
        black_box(dict.len().await?);
    }
    let mut ours = Latencies::new();
    for _ in 0..plan.len_ops {
        let t = Instant::now();
        let n = dict.len().await?;
        ours.push(t.elapsed());
        check_count("len()", n as usize, m)?;
    }
    // The raw approach of a hand-rolled program (and of the Python
    // original): SCAN MATCH over the keyspace, counting. COUNT 10,000 per
    // call, generous to raw (the Python original's default is 10).
    let mut scans = vec![];
    for run in 0..plan.scan_runs + usize::from(!plan.quick) {
        let t = Instant::now();
        let mut cursor: u64 = 0;
        let mut count = 0usize;
        loop {
            let (next, keys): (u64, Vec<Vec<u8>>) = ctx
                .raw
                .query_on_node_of(
                    redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(10_000),
                    &pattern,
                )
                .await?;
            count += keys.len();
            if next == 0 {
                break;
            }
            cursor = next;
        }
        let d = t.elapsed();
        check_count("raw SCAN count", count, m)?;
        if plan.quick || run > 0 {
            scans.push(d);
        }
    }
    let len_median = ours.median();
    table.absolute(
        &format!("`len` of {} entries {place}", group(m as u64)),
        &ours,
        median_of(scans),
        "SCAN MATCH count",
        Duration::from_millis(2),
    );
    let Some(others) = others else {
        dict.clear().await?;
        return Ok(None);
    };

    if others >= plan.filler_keys {
        // items of the namespace in the big database: the index against a
        // scan of the whole keyspace (COUNT 10,000 per call, generous to raw).
        let mut ours_items = vec![];
        for run in 0..12 {
            let t = Instant::now();
            let got: Vec<(String, Session)> = dict.items().try_collect().await?;
            let d = t.elapsed();
            check_count("items()", got.len(), m)?;
            black_box(got);
            if run >= 2 {
                ours_items.push(d);
            }
        }
        let mut raw_items = vec![];
        for _ in 0..plan.scan_runs {
            let t = Instant::now();
            let got = raw_scan_mget(&mut ctx.raw, &pattern, 10_000).await?;
            let d = t.elapsed();
            check_count("raw SCAN+MGET", got.len(), m)?;
            black_box(got);
            raw_items.push(d);
        }
        table.throughput(
            &format!("`items()` of those {} entries (extra)", group(m as u64)),
            m,
            median_of(ours_items),
            median_of(raw_items),
            0.80,
        );
    }

    // contains / get / set in that database.
    let (ours, theirs) = {
        let mut r = ctx.raw.clone();
        interleaved(
            plan.big_ops,
            async |i| {
                if !dict.contains(&entries[i % m].0).await? {
                    return Err("missing entry".into());
                }
                Ok(())
            },
            async |i| {
                let n: u64 = redis::cmd("EXISTS")
                    .arg(&entry_keys[i % m])
                    .query_async(&mut r)
                    .await?;
                if n != 1 {
                    return Err("missing entry".into());
                }
                Ok(())
            },
        )
        .await?
    };
    let contains = (ours.median(), theirs.median());
    table.latency(
        &format!("`contains` {place} (vs EXISTS)"),
        &ours,
        &theirs,
        1.15,
    );

    let (ours, theirs) = {
        let mut r = ctx.raw.clone();
        interleaved(
            plan.big_ops,
            async |i| {
                black_box(dict.get(&entries[i % m].0).await?.ok_or("missing entry")?);
                Ok(())
            },
            async |i| {
                let v: Option<Vec<u8>> = redis::cmd("GET")
                    .arg(&entry_keys[i % m])
                    .query_async(&mut r)
                    .await?;
                black_box(v.ok_or("missing entry")?);
                Ok(())
            },
        )
        .await?
    };
    let get = (ours.median(), theirs.median());
    table.latency(&format!("`get` {place} (vs GET)"), &ours, &theirs, 1.15);

    let (ours, theirs) = {
        let mut r = ctx.raw.clone();
        interleaved(
            plan.big_ops,
            async |i| Ok(dict.set(&entries[i % m].0, &entries[i % m].1).await?),
            async |i| {
                redis::cmd("SET")
                    .arg(&raw_keys[i % m])
                    .arg(&bytes[i % m])
                    .query_async::<()>(&mut r)
                    .await?;
                Ok(())
            },
        )
        .await?
    };
    let set = (ours.median(), theirs.median());
    table.latency(&format!("`set` {place} (vs SET)"), &ours, &theirs, 1.15);
    dict.clear().await?;
    unlink_matching(&mut ctx.raw, &format!("{RAW}*")).await?;
    Ok(Some(SizeCosts {
        len: len_median,
        contains,
        get,
        set,
    }))
}

/// One line saying how the median costs changed from the small database to
/// the big one (ours, and raw's for the same commands).
pub fn growth_note(plan: &Plan, small: &SizeCosts, big: &SizeCosts) -> String {
    let x = |a: Duration, b: Duration| b.as_secs_f64() / a.as_secs_f64().max(1e-12);
    format!(
        "cost growth from {} to {} other keys (median, big ÷ small): `len` {:.2}×; \
         `contains` {:.2}× (EXISTS {:.2}×); `get` {:.2}× (GET {:.2}×); `set` {:.2}× (SET {:.2}×)",
        group(plan.small_others as u64),
        group(plan.filler_keys as u64),
        x(small.len, big.len),
        x(small.contains.0, big.contains.0),
        x(small.contains.1, big.contains.1),
        x(small.get.0, big.get.0),
        x(small.get.1, big.get.1),
        x(small.set.0, big.set.0),
        x(small.set.1, big.set.1),
    )
}
