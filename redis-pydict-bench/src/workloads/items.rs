//! Workload 4: `items()` / `to_map()` of 10,000 entries.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Instant;

use futures::TryStreamExt;
use redis_pydict::Dict;

use crate::args::Plan;
use crate::measure::{check_count, group, median_of};
use crate::raw::{raw_scan_mget, raw_scan_mget_each};
use crate::table::Table;
use crate::workloads::{key, progress, session, Ctx, Session};
use crate::BoxResult;

/// `items()` and `to_map()` beside raw SCAN+MGET (into the same container,
/// and with the CBOR decode a raw program needs).
pub async fn items(plan: &Plan, ctx: &mut Ctx, table: &mut Table) -> BoxResult<()> {
    let n = plan.items_entries;
    progress(&format!(
        "items/to_map of {n} entries, {} runs",
        plan.items_runs
    ));
    let dict: Dict<String, Session> = ctx.store.dict("bench-items")?;
    let values: Vec<(String, Session)> = (0..n).map(|i| (key(i), session(i))).collect();
    dict.set_many(values.iter().map(|(k, v)| (k, v))).await?;
    let pattern = dict.namespace().scan_pattern();
    let batch = redis_pydict::DEFAULT_PAGE_SIZE;

    let (mut t_items, mut t_map, mut t_raw, mut t_raw_map, mut t_raw_dec) =
        (vec![], vec![], vec![], vec![], vec![]);
    for run in 0..plan.items_runs + 2 {
        let warm = run < 2;
        let t = Instant::now();
        let got: Vec<(String, Session)> = dict.items().try_collect().await?;
        let d = t.elapsed();
        check_count("items()", got.len(), n)?;
        black_box(got);
        if !warm {
            t_items.push(d);
        }

        let t = Instant::now();
        let got = raw_scan_mget(&mut ctx.raw, &pattern, batch).await?;
        let d = t.elapsed();
        check_count("raw SCAN+MGET", got.len(), n)?;
        black_box(got);
        if !warm {
            t_raw.push(d);
        }

        let t = Instant::now();
        let got = dict.to_map().await?;
        let d = t.elapsed();
        check_count("to_map()", got.len(), n)?;
        black_box(got);
        if !warm {
            t_map.push(d);
        }

        // The same into the same container: a HashMap of key to bytes.
        let t = Instant::now();
        let mut got = HashMap::new();
        raw_scan_mget_each(&mut ctx.raw, &pattern, batch, |k, v| {
            got.insert(k, v);
            Ok(())
        })
        .await?;
        let d = t.elapsed();
        check_count("raw SCAN+MGET into a HashMap", got.len(), n)?;
        black_box(got);
        if !warm {
            t_raw_map.push(d);
        }

        // The raw approach plus what a raw program must do to use the data:
        // decode each value into the struct.
        let t = Instant::now();
        let got = raw_scan_mget(&mut ctx.raw, &pattern, batch).await?;
        let decoded: Vec<(String, Session)> = got
            .into_iter()
            .map(|(k, v)| Ok((k, ciborium::from_reader(v.as_slice())?)))
            .collect::<Result<_, ciborium::de::Error<std::io::Error>>>()?;
        let d = t.elapsed();
        black_box(decoded);
        if !warm {
            t_raw_dec.push(d);
        }
    }
    let (items_t, map_t, raw_t, raw_map_t, raw_dec_t) = (
        median_of(t_items),
        median_of(t_map),
        median_of(t_raw),
        median_of(t_raw_map),
        median_of(t_raw_dec),
    );
    table.throughput(
        &format!("`items()` of {} entries", group(n as u64)),
        n,
        items_t,
        raw_t,
        0.80,
    );
    table.throughput(
        &format!(
            "`to_map()` of {} entries (vs raw into a HashMap)",
            group(n as u64)
        ),
        n,
        map_t,
        raw_map_t,
        0.80,
    );
    table.throughput(
        "`items()` vs raw SCAN+MGET+CBOR decode (extra)",
        n,
        items_t,
        raw_dec_t,
        0.80,
    );
    Ok(())
}
