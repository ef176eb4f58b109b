//! The workloads, run in order by [`run`], and what they share: the value
//! stored, the namespaces, the context.

use std::time::Instant;

use redis::Client;
use redis_pydict::{Dict, Store};
use serde::{Deserialize, Serialize};

use crate::args::Plan;
use crate::deploy::Deployment;
use crate::raw::{
    raw_cluster_connection, raw_connection, resp3_info, unlink_matching, RawConn, FILLER, RAW,
    RAW_INDEX,
};
use crate::table::Table;
use crate::BoxResult;

mod among_others;
mod bulk;
mod cache;
mod events;
mod items;
mod live;
mod scale;
mod single;

pub use scale::rss_probe;

use among_others::{among_others, growth_note};
use bulk::{bulk_clear, bulk_update};
use cache::near_cache;
use events::{durable_events, events};
use items::items;
use live::live_views;
use scale::scale;
use single::single_ops;

/// The value stored in every benchmark: a realistic record whose CBOR form
/// is about 100 bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub user_id: u64,
    pub name: String,
    pub email: String,
    pub roles: Vec<String>,
    pub last_seen: u64,
    pub active: bool,
}

/// The `i`th value.
pub fn session(i: usize) -> Session {
    Session {
        user_id: 1_000_000 + i as u64,
        name: format!("user-{i:06}"),
        email: format!("user-{i:06}@example.com"),
        roles: vec!["reader".into(), "ops".into()],
        last_seen: 1_732_000_000_000 + i as u64,
        active: !i.is_multiple_of(3),
    }
}

/// The `i`th key.
pub fn key(i: usize) -> String {
    format!("user:{i:06}")
}

/// The CBOR bytes of a value, as the library stores them (the raw side
/// writes these pre-encoded).
pub fn cbor(value: &Session) -> Vec<u8> {
    let mut out = Vec::new();
    // Encoding a plain struct into a Vec cannot fail.
    ciborium::into_writer(value, &mut out).expect("CBOR encoding of a plain struct");
    out
}

/// Every namespace the benchmark writes.
pub const NAMESPACES: [&str; 8] = [
    "bench-single",
    "bench-cache",
    "bench-items",
    "bench-bulk",
    "bench-len",
    "bench-events",
    "bench-durable",
    "bench-scale",
];
/// Cap of the durable logs (ours and raw): above what one run appends.
pub const LOG_CAP: u64 = 1_000_000;

/// Everything a workload needs: the store, the raw connection, and where
/// connections of their own (pub/sub, blocking reads) go.
pub struct Ctx {
    pub store: Store,
    pub raw: RawConn,
    pub deployment: Deployment,
}

impl Ctx {
    /// A client for connections of their own to the server holding `key`: the
    /// server, or the master of the key's slot on a cluster (where the store
    /// connects its subscriptions and log readers too).
    pub async fn node_client(&self, key: &str) -> BoxResult<Client> {
        let seed = resp3_info(&self.deployment.urls[0])?;
        if !self.deployment.cluster {
            return Ok(Client::open(seed)?);
        }
        let master = redis_pydict_test::master_for_key(&self.deployment.urls[0], key)?;
        let info = seed.set_addr(redis::ConnectionAddr::Tcp(master.host, master.port));
        Ok(Client::open(info)?)
    }
}

/// Runs the planned workloads in order against `deployment` and prints the
/// table; `setup` describes where it runs, for the header.
pub async fn run(plan: Plan, deployment: Deployment, setup: &str) -> BoxResult<()> {
    let started = Instant::now();
    let (store, raw) = if deployment.cluster {
        let seeds: Vec<&str> = deployment.urls.iter().map(String::as_str).collect();
        (
            Store::connect_cluster(&seeds).await?,
            RawConn::Cluster(raw_cluster_connection(&deployment.urls).await?),
        )
    } else {
        (
            Store::connect(&deployment.urls[0]).await?,
            RawConn::Single(raw_connection(&deployment.urls[0]).await?),
        )
    };
    let mut ctx = Ctx {
        store,
        raw,
        deployment,
    };
    let info: String = ctx
        .raw
        .query_one_node(redis::cmd("INFO").arg("server"))
        .await?;
    let version = info
        .lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .unwrap_or("?")
        .trim()
        .to_owned();
    let dbsize: u64 = redis::cmd("DBSIZE").query_async(&mut ctx.raw).await?;
    let value_len = cbor(&session(0)).len();
    let connection = if ctx.deployment.cluster {
        "both sides on a redis-rs async cluster connection (RESP3)"
    } else {
        "both sides on a redis-rs ConnectionManager (RESP3)"
    };
    println!(
        "redis-pydict benchmark{}{}: redis-server {version}, {setup}; \
         value: {value_len}-byte CBOR struct; {connection}, tokio current-thread runtime",
        if ctx.deployment.cluster {
            " --cluster"
        } else {
            ""
        },
        if plan.quick { " (--quick)" } else { "" },
    );
    if dbsize > 0 {
        println!("note: the database already holds {dbsize} keys; raw SCAN figures depend on it");
    }
    // Clean up whatever an interrupted earlier run may have left.
    cleanup(&mut ctx, true).await?;

    let mut table = Table::default();
    if plan.runs("single") {
        single_ops(&plan, &mut ctx, &mut table).await?;
        cleanup(&mut ctx, false).await?;
    }
    if plan.runs("items") {
        items(&plan, &mut ctx, &mut table).await?;
        cleanup(&mut ctx, false).await?;
    }
    if plan.runs("bulk") {
        bulk_update(&plan, &mut ctx, &mut table).await?;
        cleanup(&mut ctx, false).await?;
        bulk_clear(&plan, &mut ctx, &mut table).await?;
        cleanup(&mut ctx, false).await?;
    }
    if plan.runs("cache") {
        near_cache(&plan, &mut ctx, &mut table).await?;
        cleanup(&mut ctx, false).await?;
    }
    if plan.runs("events") {
        events(&plan, &mut ctx, &mut table).await?;
    }
    if plan.runs("durable") {
        durable_events(&plan, &mut ctx, &mut table).await?;
    }
    if plan.runs("live") {
        live_views(&plan, &mut ctx, &mut table).await?;
    }
    cleanup(&mut ctx, false).await?;
    if !plan.runs("scale") {
        // --only without the scale group: no filler keys, no scale rows.
    } else if ctx.deployment.cluster {
        // The core rows only: no filler keys (DEBUG POPULATE, SCAN across
        // nodes) and no scale rows on a cluster.
        among_others(&plan, &mut ctx, &mut table, None).await?;
    } else {
        let small = among_others(&plan, &mut ctx, &mut table, Some(plan.small_others)).await?;
        let big = among_others(&plan, &mut ctx, &mut table, Some(plan.filler_keys)).await?;
        if let (Some(small), Some(big)) = (small, big) {
            table.notes.push(growth_note(&plan, &small, &big));
        }
        scale(&plan, &mut ctx, &mut table).await?;
    }
    if !ctx.deployment.own {
        eprint!("cleaning up ...");
        cleanup(&mut ctx, true).await?;
        eprintln!(" done");
    }

    println!();
    print!("{}", table.render());
    println!();
    for note in &table.notes {
        println!("{note}");
    }
    let missed: Vec<&str> = table
        .rows
        .iter()
        .filter(|r| !r.pass)
        .map(|r| r.workload.as_str())
        .collect();
    if missed.is_empty() {
        println!(
            "all targets met; whole run took {:.0} s",
            started.elapsed().as_secs_f64()
        );
    } else {
        println!(
            "{} of {} rows MISS their target ({}); whole run took {:.0} s",
            missed.len(),
            table.rows.len(),
            missed.join("; "),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// A progress line on stderr (the table goes to stdout).
pub fn progress(what: &str) {
    eprintln!("… {what}");
}

/// Deletes the benchmark's keys: the dicts' namespaces (and durable logs) and
/// the raw prefix (and, with `filler`, the big-database filler keys).
pub async fn cleanup(ctx: &mut Ctx, filler: bool) -> BoxResult<()> {
    for ns in NAMESPACES {
        let d: Dict<String, Session> = ctx.store.dict(ns)?;
        d.clear().await?;
        // The log and its declaration: a later workload's plain dict would
        // otherwise honour it and append too.
        redis::cmd("DEL")
            .arg(d.namespace().log_key())
            .arg(d.namespace().meta_key())
            .query_async::<()>(&mut ctx.raw)
            .await?;
        redis::cmd("DEL")
            .arg(d.namespace().seq_key())
            .query_async::<()>(&mut ctx.raw)
            .await?;
        // Keys written by raw SCAN/SET under the namespace prefix, if any.
        unlink_matching(&mut ctx.raw, &d.namespace().scan_pattern()).await?;
    }
    unlink_matching(&mut ctx.raw, &format!("{RAW}*")).await?;
    redis::cmd("DEL")
        .arg(RAW_INDEX)
        .query_async::<()>(&mut ctx.raw)
        .await?;
    if filler && !ctx.deployment.cluster {
        unlink_matching(&mut ctx.raw, &format!("{FILLER}*")).await?;
    }
    Ok(())
}
