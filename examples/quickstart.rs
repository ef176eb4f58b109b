//! The README's first command: `cargo run --example quickstart`.
//!
//! Uses the server at `REDIS_URL`, else one on 127.0.0.1:6379, else starts a
//! private `redis-server` for the demo.

use std::time::Duration;

use futures::TryStreamExt;
use redis_pydict::Store;
use redis_pydict_suite::RedisServer;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
struct Job {
    name: String,
    attempts: u32,
    tags: Vec<String>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (url, _private_server) = match find_server() {
        Ok(found) => found,
        Err(why) => {
            eprintln!("quickstart: {why}");
            std::process::exit(1);
        }
    };
    let store = Store::builder(&url).origin("quickstart").connect().await?;
    println!("connected to {}", store.url());

    // A typed dict: String keys, any serde value (CBOR on the wire).
    let jobs = store.dict::<String, Job>("quickstart:jobs")?;
    jobs.clear().await?;
    let job = Job {
        name: "resize".into(),
        attempts: 0,
        tags: vec!["img".into()],
    };
    jobs.set("job:1", &job).await?;
    jobs.update([
        (
            "job:2",
            Job {
                name: "encode".into(),
                attempts: 0,
                tags: vec![],
            },
        ),
        (
            "job:3",
            Job {
                name: "upload".into(),
                attempts: 2,
                tags: vec!["net".into()],
            },
        ),
    ])
    .await?;
    println!(
        "jobs: {} entries; job:1 = {:?}",
        jobs.len().await?,
        jobs.get("job:1").await?
    );

    // Read-modify-write that never loses an update, even with many writers.
    let updated = jobs
        .update_with("job:1", |job| {
            let mut job = job.unwrap_or(Job {
                name: "?".into(),
                attempts: 0,
                tags: vec![],
            });
            job.attempts += 1;
            job
        })
        .await?;
    println!("job:1 after update_with: attempts = {}", updated.attempts);

    // Iterate (paged through the namespace index, values in MGET batches).
    let mut names: Vec<String> = jobs.values().map_ok(|job| job.name).try_collect().await?;
    names.sort();
    println!("all job names: {names:?}");

    // Counters, TTLs, atomic take.
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
    println!(
        "took job:3 = {:?}",
        jobs.remove("job:3").await?.map(|j| j.name)
    );

    println!(
        "cleared {} jobs and {} counters",
        jobs.clear().await?,
        counters.clear().await?
    );
    Ok(())
}

/// `REDIS_URL`, else a server on 127.0.0.1:6379, else a private one we start.
fn find_server() -> Result<(String, Option<RedisServer>), String> {
    if let Ok(url) = std::env::var("REDIS_URL") {
        return Ok((url, None));
    }
    if redis_pydict_suite::ping(6379) {
        return Ok(("redis://127.0.0.1:6379/".into(), None));
    }
    println!(
        "no Redis at REDIS_URL or 127.0.0.1:6379; starting a private redis-server for the demo"
    );
    let server = RedisServer::try_start_with(&[])?;
    Ok((server.url(), Some(server)))
}
