//! Live views: a field read from the local snapshot beside a raw GET round
//! trip, a write in one client becoming visible in another client's live
//! view beside raw PUBLISH → message, and the client memory a live view of a
//! 50-field struct takes beside the encoded size of its values.

use std::hint::black_box;
use std::time::{Duration, Instant};

use redis_pydict::{Live, RedisDict, Store};

use crate::args::Plan;
use crate::measure::{fmt_dur, group, heap_bytes, interleaved_timed, Latencies};
use crate::raw::{event_payload, raw_event_channel, RAW_CHANNEL};
use crate::table::{Row, Table};
use crate::workloads::events::RawListener;
use crate::workloads::{progress, Ctx};
use crate::BoxResult;

/// A 50-field struct (the memory row's subject; its first field is the one
/// read and written by the other rows).
#[derive(RedisDict, Debug, Clone, PartialEq)]
#[redis_dict(prefix = "bench-live")]
pub struct Wide {
    f00: String,
    f01: String,
    f02: String,
    f03: String,
    f04: String,
    f05: String,
    f06: String,
    f07: String,
    f08: String,
    f09: String,
    f10: String,
    f11: String,
    f12: String,
    f13: String,
    f14: String,
    f15: String,
    f16: String,
    f17: String,
    f18: String,
    f19: String,
    f20: String,
    f21: String,
    f22: String,
    f23: String,
    f24: String,
    f25: String,
    f26: String,
    f27: String,
    f28: String,
    f29: String,
    f30: String,
    f31: String,
    f32: String,
    f33: String,
    f34: String,
    f35: String,
    f36: String,
    f37: String,
    f38: String,
    f39: String,
    f40: String,
    f41: String,
    f42: String,
    f43: String,
    f44: String,
    f45: String,
    f46: String,
    f47: String,
    f48: String,
    f49: String,
}

impl Wide {
    /// Every field holding `len` bytes of text.
    fn filled(len: usize) -> Wide {
        let text = "x".repeat(len);
        Wide {
            f00: text.clone(),
            f01: text.clone(),
            f02: text.clone(),
            f03: text.clone(),
            f04: text.clone(),
            f05: text.clone(),
            f06: text.clone(),
            f07: text.clone(),
            f08: text.clone(),
            f09: text.clone(),
            f10: text.clone(),
            f11: text.clone(),
            f12: text.clone(),
            f13: text.clone(),
            f14: text.clone(),
            f15: text.clone(),
            f16: text.clone(),
            f17: text.clone(),
            f18: text.clone(),
            f19: text.clone(),
            f20: text.clone(),
            f21: text.clone(),
            f22: text.clone(),
            f23: text.clone(),
            f24: text.clone(),
            f25: text.clone(),
            f26: text.clone(),
            f27: text.clone(),
            f28: text.clone(),
            f29: text.clone(),
            f30: text.clone(),
            f31: text.clone(),
            f32: text.clone(),
            f33: text.clone(),
            f34: text.clone(),
            f35: text.clone(),
            f36: text.clone(),
            f37: text.clone(),
            f38: text.clone(),
            f39: text.clone(),
            f40: text.clone(),
            f41: text.clone(),
            f42: text.clone(),
            f43: text.clone(),
            f44: text.clone(),
            f45: text.clone(),
            f46: text.clone(),
            f47: text.clone(),
            f48: text.clone(),
            f49: text.clone(),
        }
    }
}

/// Reads of the snapshot timed together (one read is below the clock's resolution).
const READS_PER_SAMPLE: u32 = 1_000;
/// Live views per memory measurement (their figures are averaged).
const VIEWS: usize = 20;

/// The three live-view rows.
pub async fn live_views(plan: &Plan, ctx: &mut Ctx, table: &mut Table) -> BoxResult<()> {
    progress(&format!(
        "live views: field read vs GET and write → other client's view vs PUBLISH, {} ops per series; memory of {VIEWS} views of a 50-field struct",
        plan.event_ops
    ));
    let view = Wide::view(&ctx.store, "reads")?;
    view.save(&Wide::filled(8)).await?;
    let live = view.live().await?;
    let entry_key = view.namespace().entry_key("f00");

    // 1. A field read from the snapshot beside a raw GET of the same key.
    let (ours, theirs) = {
        let mut r = ctx.raw.clone();
        let live = &live;
        interleaved_timed(
            plan.single_ops,
            async |_| {
                let t = Instant::now();
                for _ in 0..READS_PER_SAMPLE {
                    black_box(live.get().f00.len());
                }
                Ok(t.elapsed() / READS_PER_SAMPLE)
            },
            async |_| {
                let t = Instant::now();
                let v: Option<Vec<u8>> = redis::cmd("GET")
                    .arg(&entry_key)
                    .query_async(&mut r)
                    .await?;
                black_box(v.ok_or("missing entry")?);
                Ok(t.elapsed())
            },
        )
        .await?
    };
    speedup_row(
        table,
        "live view field read (`live.get().field`) vs raw GET",
        &ours,
        &theirs,
        500.0,
    );

    // 2. A write by client A, until client B's live view shows it, beside
    // raw PUBLISH → message on a pub/sub connection of its own.
    let writer = another_store(ctx).await?;
    let theirs_view = Wide::view(&writer, "reads")?;
    let mut watcher: Live<Wide> = live.clone();
    let values: Vec<String> = (0..1000).map(|i| format!("v{i:08}")).collect();
    let payload = event_payload("f00", &cbor_text(&values[0]));
    // On a cluster the library publishes sharded (SPUBLISH to the
    // namespace's channel), so the raw side does the same.
    let cluster = ctx.deployment.cluster;
    let (publish_cmd, channel) = raw_event_channel(cluster, "f00");
    let mut messages = if cluster {
        RawListener::sharded(ctx, RAW_CHANNEL).await?
    } else {
        RawListener::classic(ctx, RAW_CHANNEL, &channel, false).await?
    };
    let (ours, theirs) = {
        let mut r = ctx.raw.clone();
        interleaved_timed(
            plan.event_ops,
            async |i| {
                let want = &values[i % values.len()];
                let t = Instant::now();
                let (set, seen) = futures::join!(theirs_view.f00.set(want), async {
                    while watcher.get().f00 != *want {
                        watcher.changed().await?;
                    }
                    Ok::<_, redis_pydict::Error>(Instant::now())
                });
                set?;
                Ok(seen? - t)
            },
            async |_| {
                let mut publish = redis::cmd(publish_cmd);
                publish.arg(&channel).arg(&payload);
                let t = Instant::now();
                let (published, arrived) =
                    futures::join!(publish.query_async::<u64>(&mut r), async {
                        (messages.next().await, Instant::now())
                    });
                if published? == 0 {
                    return Err("raw (S)PUBLISH reached no subscriber".into());
                }
                let (msg, at) = arrived;
                black_box(
                    msg.ok_or("the raw pub/sub connection closed")?
                        .get_payload_bytes(),
                );
                Ok(at - t)
            },
        )
        .await?
    };
    table.latency(
        if cluster {
            "write in client A → visible in client B's live view (vs SPUBLISH → sharded message)"
        } else {
            "write in client A → visible in client B's live view (vs PUBLISH → message)"
        },
        &ours,
        &theirs,
        1.5,
    );
    drop((watcher, live, messages));

    // 3. Client memory: live views of a 50-field struct with small and with
    // large values; the growth per byte of encoded values is the ratio.
    let small = view_memory(ctx, 16).await?;
    let large = view_memory(ctx, 2_000).await?;
    memory_row(table, small, large);
    // Leave nothing behind: fields, and each namespace's sequence number.
    let mut namespaces = vec![view.namespace().clone()];
    for len in [16, 2_000] {
        for i in 0..VIEWS {
            namespaces.push(Wide::SCHEMA.namespace(&format!("mem-{len}-{i}"))?);
        }
    }
    for ns in namespaces {
        Wide::view(
            &ctx.store,
            ns.name().strip_prefix("bench-live:").unwrap_or_default(),
        )?
        .clear()
        .await?;
        redis::cmd("DEL")
            .arg(ns.seq_key())
            .query_async::<()>(&mut ctx.raw)
            .await?;
    }
    Ok(())
}

/// Another store on the same deployment: another client, connections of its own.
async fn another_store(ctx: &Ctx) -> BoxResult<Store> {
    let urls = &ctx.deployment.urls;
    Ok(if ctx.deployment.cluster {
        let seeds: Vec<&str> = urls.iter().map(String::as_str).collect();
        Store::connect_cluster(&seeds).await?
    } else {
        Store::connect(&urls[0]).await?
    })
}

fn cbor_text(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    // Encoding a string into a Vec cannot fail.
    ciborium::into_writer(text, &mut out).expect("CBOR encoding of a string");
    out
}

/// (client memory per live view, encoded size of its values), in bytes,
/// with every field `len` bytes long.
async fn view_memory(ctx: &Ctx, len: usize) -> BoxResult<(f64, f64)> {
    let value = Wide::filled(len);
    let encoded: usize = 50 * cbor_text(&value.f00).len();
    let mut views = Vec::new();
    for i in 0..VIEWS {
        Wide::view(&ctx.store, &format!("mem-{len}-{i}"))?
            .save(&value)
            .await?;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let before = heap_bytes();
    for i in 0..VIEWS {
        views.push(
            Wide::view(&ctx.store, &format!("mem-{len}-{i}"))?
                .live()
                .await?,
        );
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let after = heap_bytes();
    black_box(&views);
    drop(views);
    let per_view = after.saturating_sub(before) as f64 / VIEWS as f64;
    Ok((per_view, encoded as f64))
}

/// The memory row: growth of client memory per byte of encoded values
/// between the two sizes (target ≤ 2×), and the constant left.
fn memory_row(table: &mut Table, small: (f64, f64), large: (f64, f64)) {
    let slope = (large.0 - small.0) / (large.1 - small.1).max(1.0);
    let constant = (small.0 - slope * small.1).max(0.0);
    let kb = |bytes: f64| format!("{:.1} kB", bytes / 1024.0);
    table.rows.push(Row {
        workload: format!(
            "live view of a 50-field struct: client heap per view (mean of {VIEWS}; 16-byte and 2,000-byte fields)"
        ),
        ours: format!("{} / {}", kb(small.0), kb(large.0)),
        raw: format!("{} / {} encoded", kb(small.1), kb(large.1)),
        ratio: format!("{slope:.2}× the encoded size + {}", kb(constant)),
        target: "≤ 2.00× + a constant".to_owned(),
        pass: slope <= 2.0,
    });
}

/// A row of "N× faster" (medians), passing at `min_speedup` or more.
fn speedup_row(
    table: &mut Table,
    workload: &str,
    ours: &Latencies,
    raw: &Latencies,
    min_speedup: f64,
) {
    let speedup = raw.median().as_secs_f64() / ours.median().as_secs_f64().max(1e-12);
    table.rows.push(Row {
        workload: workload.to_owned(),
        ours: format!("{} (p99 {})", fine(ours.median()), fine(ours.p99())),
        raw: format!("{} (p99 {})", fmt_dur(raw.median()), fmt_dur(raw.p99())),
        ratio: format!("{}× faster", group(speedup.round() as u64)),
        target: format!("≥ {}× faster", group(min_speedup as u64)),
        pass: speedup >= min_speedup,
    });
}

/// A duration below a microsecond in nanoseconds, else as [`fmt_dur`].
fn fine(d: Duration) -> String {
    if d < Duration::from_micros(1) {
        format!("{:.0} ns", d.as_secs_f64() * 1e9)
    } else {
        fmt_dur(d)
    }
}
