//! Two programs sharing one derived struct: `cargo run --example shared_struct`.
//!
//! A worker and a monitor run as two tasks, each with its own `Store` (its own
//! connections, as two processes would have). The worker updates fields one at
//! a time; the monitor loads consistent snapshots of the whole struct and at
//! the end pauses the worker by writing one field. The data is plain CBOR in
//! the namespace `demo:shared`, visible to a generic `Dict` too.
//!
//! Uses the server at `REDIS_URL`, else one on 127.0.0.1:6379, else starts a
//! private `redis-server` for the demo.

use std::time::Duration;

use redis_pydict::{Dict, RedisDict, Store};

/// The shared state of a pipeline.
#[derive(RedisDict, Debug, Clone, PartialEq)]
#[redis_dict(prefix = "demo")]
struct Pipeline {
    stage: String,
    processed: u64,
    errors: Vec<String>,
    /// Written by the monitor, read by the worker; `false` until then.
    #[redis_dict(default)]
    paused: bool,
    /// The worker's liveness: expires if it stops refreshing it.
    #[redis_dict(ttl = "5s", default)]
    heartbeat: u64,
}

async fn worker(url: String) -> redis_pydict::Result<u64> {
    let store = Store::builder(&url).origin("worker").connect().await?;
    let pipeline = Pipeline::view(&store, "shared")?;
    let mut beats = 0;
    while !pipeline.paused.get().await?.unwrap_or(false) {
        beats += 1;
        // Each field is its own key: updates of different fields never conflict.
        pipeline.processed.update(|n| *n += 10).await?;
        pipeline.heartbeat.set(&beats).await?;
        if beats % 7 == 0 {
            pipeline
                .errors
                .update(|e| e.push(format!("item {beats} failed")))
                .await?;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    pipeline.stage.set(&"stopped".to_string()).await?;
    Ok(beats)
}

async fn monitor(url: String) -> redis_pydict::Result<Pipeline> {
    let store = Store::builder(&url).origin("monitor").connect().await?;
    let pipeline = Pipeline::view(&store, "shared")?;
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        // One MGET: a consistent snapshot of every field.
        let now: Pipeline = pipeline.load().await?;
        println!(
            "monitor: stage={} processed={} errors={} heartbeat={}",
            now.stage,
            now.processed,
            now.errors.len(),
            now.heartbeat
        );
    }
    pipeline.paused.set(&true).await?;
    // Wait for the worker to acknowledge, then read the final state.
    while pipeline.stage.get().await?.as_deref() != Some("stopped") {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    pipeline.load().await
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (url, _private_server) = match redis_pydict_test::demo_server() {
        Ok(found) => found,
        Err(why) => {
            eprintln!("shared_struct: {why}");
            std::process::exit(1);
        }
    };

    // Set the initial state: one atomic save of every field.
    let store = Store::connect(&url).await?;
    let pipeline = Pipeline::view(&store, "shared")?;
    pipeline.clear().await?;
    pipeline
        .save(&Pipeline {
            stage: "running".into(),
            processed: 0,
            errors: Vec::new(),
            paused: false,
            heartbeat: 0,
        })
        .await?;

    let worker = tokio::spawn(worker(url.clone()));
    let monitor = tokio::spawn(monitor(url.clone()));
    let beats = worker.await??;
    let last = monitor.await??;
    println!("worker stopped after {beats} beats; final state: {last:?}");
    assert_eq!(last.processed, beats * 10);

    // The same keys through a generic dict: the fields are its entries.
    let raw: Dict<String, ciborium::Value> = store.dict("demo:shared")?;
    let mut keys: Vec<String> = raw.to_map().await?.into_keys().collect();
    keys.sort();
    println!("entries of namespace demo:shared: {keys:?}");
    pipeline.clear().await?;
    Ok(())
}
