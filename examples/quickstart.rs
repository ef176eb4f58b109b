//! The README's first command: `cargo run --example quickstart`.
//!
//! Uses the server at `REDIS_URL`, else one on 127.0.0.1:6379, else starts a
//! private `redis-server` for the demo.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use redis_pydict::{Change, RedisDict, Store};
use serde::{Deserialize, Serialize};

/// Shared configuration: every field is one Redis key holding a CBOR value.
#[derive(RedisDict, Debug)]
#[redis_dict(prefix = "quickstart")]
struct Config {
    threshold: f64,
    workers: Vec<String>,
    #[redis_dict(rename = "max-conn")]
    max_conn: u32,
    #[redis_dict(default)]
    verbose: bool,
    label: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Job {
    name: String,
    attempts: u32,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (url, _private_server) = match redis_pydict_test::demo_server() {
        Ok(found) => found,
        Err(why) => {
            eprintln!("quickstart: {why}");
            std::process::exit(1);
        }
    };
    let store = Store::builder(&url).origin("quickstart").connect().await?;
    println!("connected to {}", store.url());

    // 1. A derived struct: a typed view over namespace "quickstart:prod".
    let cfg = Config::view(&store, "prod")?;
    cfg.clear().await?;
    let mut threshold_changes = cfg.threshold.subscribe().await?;
    cfg.save(&Config {
        threshold: 0.5,
        workers: vec!["w1".into(), "w2".into()],
        max_conn: 10,
        verbose: false,
        label: None,
    })
    .await?; // one atomic unit
    cfg.threshold.set(&0.75).await?; // one field, one key
    cfg.workers.update(|w| w.push("w3".into())).await?; // never loses an update
    cfg.update(|c: &mut Config| c.max_conn += 5).await?; // whole struct, optimistic
    let snapshot: Config = cfg.load().await?; // one MGET
    println!("config: {snapshot:?}");
    println!("threshold field alone: {:?}", cfg.threshold.get().await?);
    for _ in 0..2 {
        if let Some(Ok(event)) = threshold_changes.next().await {
            if let Change::Set(value) = event.change {
                println!("threshold changed to {value} by {:?}", event.origin);
            }
        }
    }

    // 2. A generic typed dict: String keys, any serde value.
    let jobs = store.dict::<String, Job>("quickstart:jobs")?;
    jobs.clear().await?;
    jobs.set(
        "job:1",
        &Job {
            name: "resize".into(),
            attempts: 0,
        },
    )
    .await?;
    jobs.set_many([
        (
            "job:2",
            Job {
                name: "encode".into(),
                attempts: 0,
            },
        ),
        (
            "job:3",
            Job {
                name: "upload".into(),
                attempts: 2,
            },
        ),
    ])
    .await?;
    let retried = jobs
        .update_with("job:1", |job| {
            let mut job = job.unwrap_or(Job {
                name: "?".into(),
                attempts: 0,
            });
            job.attempts += 1;
            job
        })
        .await?;
    println!(
        "jobs: {} entries; job:1 attempts = {}",
        jobs.len().await?,
        retried.attempts
    );
    let mut names: Vec<String> = jobs.values().map_ok(|job| job.name).try_collect().await?;
    names.sort();
    println!("job names: {names:?}");
    println!(
        "took job:3 = {:?}",
        jobs.remove("job:3").await?.map(|j| j.name)
    );

    // 3. Counters with a time-to-live.
    let counters = store.dict::<String, u64>("quickstart:counters")?;
    counters
        .set_with_ttl("visits", &41, Duration::from_secs(60))
        .await?;
    let visits = counters
        .update_with("visits", |n| n.unwrap_or(0) + 1)
        .await?;
    println!(
        "visits = {visits}, ttl = {:?}",
        counters.ttl("visits").await?
    );

    let removed = cfg.clear().await? + jobs.clear().await? + counters.clear().await?;
    println!("cleaned up {removed} keys");
    Ok(())
}
