//! Workloads 1 and 2: single `get` / `set` round trips.

use std::hint::black_box;

use redis_pydict::Dict;

use crate::args::Plan;
use crate::measure::interleaved;
use crate::raw::{event_payload, raw_event_channel, RawConn, RAW, RAW_INDEX};
use crate::table::Table;
use crate::workloads::{cbor, key, progress, session, Ctx, Session};
use crate::BoxResult;

/// Sequential `get` and `set` (events on and off) beside raw GET and SET, and
/// the atomic unit hand-built with raw redis-rs (MULTI of SET, ZADD, PUBLISH).
pub async fn single_ops(plan: &Plan, ctx: &mut Ctx, table: &mut Table) -> BoxResult<()> {
    progress(&format!(
        "single get/set, {} sequential ops per series",
        plan.single_ops
    ));
    const KEYS: usize = 1000;
    let dict: Dict<String, Session> = ctx.store.dict("bench-single")?;
    let quiet = dict.clone().with_notifications(false);
    let keys: Vec<String> = (0..KEYS).map(key).collect();
    let values: Vec<Session> = (0..KEYS).map(session).collect();
    let bytes: Vec<Vec<u8>> = values.iter().map(cbor).collect();
    let entry_keys: Vec<String> = keys.iter().map(|k| dict.namespace().entry_key(k)).collect();
    let raw_keys: Vec<String> = keys.iter().map(|k| format!("{RAW}{k}")).collect();
    dict.set_many(keys.iter().zip(&values)).await?;
    // The raw side of every set row: one SET of pre-encoded bytes.
    let raw_set = async |r: &mut RawConn, i: usize| -> BoxResult<()> {
        redis::cmd("SET")
            .arg(&raw_keys[i % KEYS])
            .arg(&bytes[i % KEYS])
            .query_async::<()>(r)
            .await?;
        Ok(())
    };

    // get: raw GET reads the very same entry keys, so the same bytes travel.
    let (ours, theirs) = {
        let mut r = ctx.raw.clone();
        interleaved(
            plan.single_ops,
            async |i| {
                let v = dict.get(&keys[i % KEYS]).await?;
                black_box(v.ok_or("missing entry")?);
                Ok(())
            },
            async |i| {
                let v: Option<Vec<u8>> = redis::cmd("GET")
                    .arg(&entry_keys[i % KEYS])
                    .query_async(&mut r)
                    .await?;
                black_box(v.ok_or("missing entry")?);
                Ok(())
            },
        )
        .await?
    };
    table.latency("`get` (single round trip)", &ours, &theirs, 1.15);

    // set (events on, the default), then with events off.
    let (ours, theirs) = {
        let mut r = ctx.raw.clone();
        interleaved(
            plan.single_ops,
            async |i| Ok(dict.set(&keys[i % KEYS], &values[i % KEYS]).await?),
            async |i| raw_set(&mut r, i).await,
        )
        .await?
    };
    // The design's target: 1.15x on one server; issue 13's on a cluster.
    let set_target = if ctx.deployment.cluster { 1.30 } else { 1.15 };
    table.latency("`set` (events on, default)", &ours, &theirs, set_target);

    // The floor of the design: the same atomic unit (entry, index, event)
    // hand-built with raw redis-rs, one MULTI/EXEC of SET, ZADD and PUBLISH
    // with pre-encoded bytes. Beside raw SET it shows what the atomic unit
    // itself costs at this round trip; beside `set`, what the library adds.
    let cluster = ctx.deployment.cluster;
    let raw_events: Vec<(String, Vec<u8>)> = keys
        .iter()
        .zip(&bytes)
        .map(|(k, b)| (raw_event_channel(cluster, k).1, event_payload(k, b)))
        .collect();
    let publish = raw_event_channel(cluster, "").0;
    let raw_atomic_set = async |r: &mut RawConn, i: usize| -> BoxResult<()> {
        let (channel, payload) = &raw_events[i % KEYS];
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("SET")
            .arg(&raw_keys[i % KEYS])
            .arg(&bytes[i % KEYS])
            .ignore()
            .cmd("ZADD")
            .arg(RAW_INDEX)
            .arg("inf")
            .arg(&keys[i % KEYS])
            .ignore()
            .cmd(publish)
            .arg(channel)
            .arg(payload)
            .ignore();
        pipe.query_async::<()>(r).await?;
        Ok(())
    };
    let (floor, theirs) = {
        let (mut r1, mut r2) = (ctx.raw.clone(), ctx.raw.clone());
        interleaved(
            plan.single_ops,
            async |i| raw_atomic_set(&mut r1, i).await,
            async |i| raw_set(&mut r2, i).await,
        )
        .await?
    };
    table.latency(
        "raw MULTI SET+ZADD+PUBLISH vs raw SET: the atomic unit's own cost (extra)",
        &floor,
        &theirs,
        1.15,
    );
    let (ours, floor) = {
        let mut r = ctx.raw.clone();
        interleaved(
            plan.single_ops,
            async |i| Ok(dict.set(&keys[i % KEYS], &values[i % KEYS]).await?),
            async |i| raw_atomic_set(&mut r, i).await,
        )
        .await?
    };
    table.latency(
        "`set` vs that raw MULTI: what the library adds (extra)",
        &ours,
        &floor,
        1.15,
    );

    let (ours, theirs) = {
        let mut r = ctx.raw.clone();
        interleaved(
            plan.single_ops,
            async |i| Ok(quiet.set(&keys[i % KEYS], &values[i % KEYS]).await?),
            async |i| raw_set(&mut r, i).await,
        )
        .await?
    };
    table.latency("`set` (events off) (extra)", &ours, &theirs, 1.15);
    Ok(())
}
