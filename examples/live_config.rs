//! A service reading its config on a hot path while another process changes
//! it: `cargo run --example live_config`.
//!
//! The service keeps a live view of its config (`view.live()`): every job
//! reads the local snapshot (no I/O, nanoseconds) and sees each change a few
//! hundred microseconds after another process writes it. Halfway, the other
//! process also kills the service's pub/sub connection (a network fault):
//! the service reports `Reloading`, reloads, and is `Fresh` again.
//!
//! Uses the server at `REDIS_URL`, else one on 127.0.0.1:6379, else starts a
//! private `redis-server` for the demo. The writer is this same program,
//! started again as a child process with `--writer <url>`.

use std::time::{Duration, Instant};

use redis_pydict::{LiveStatus, RedisDict, Store};

/// The service's config: every field is one Redis key holding a CBOR value.
#[derive(RedisDict, Debug, Clone, PartialEq)]
#[redis_dict(prefix = "live_config")]
struct Config {
    threshold: f64,
    #[redis_dict(default)]
    beta_enabled: bool,
    #[redis_dict(default)]
    version: u32,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, url] = args.as_slice() {
        if flag == "--writer" {
            return writer(url).await;
        }
    }
    let (url, _private_server) = match redis_pydict_test::demo_server() {
        Ok(found) => found,
        Err(why) => {
            eprintln!("live_config: {why}");
            std::process::exit(1);
        }
    };
    let store = Store::connect(&url).await?;
    println!("service: connected to {}", store.url());
    let cfg = Config::view(&store, "svc")?;
    cfg.save(&Config {
        threshold: 0.5,
        beta_enabled: false,
        version: 1,
    })
    .await?;

    let live = cfg.live().await?;
    println!("service: live config {:?}", live.get());

    // Report every change the service sees, and every status change.
    let mut watcher = live.clone();
    let reporter = tokio::spawn(async move {
        let (mut last, mut fresh) = (watcher.get(), true);
        while watcher.changed().await.is_ok() {
            let now = watcher.get();
            if now != last {
                println!("service: sees {now:?} (seq {})", watcher.seq());
                last = now;
            }
            match watcher.status() {
                LiveStatus::Fresh { .. } if !fresh => {
                    println!("service: fresh again, snapshot {:?}", watcher.get());
                    fresh = true;
                }
                LiveStatus::Fresh { .. } => {}
                LiveStatus::Reloading { synced_at, .. } if fresh => {
                    let ago = synced_at.elapsed().unwrap_or_default();
                    println!("service: reloading: changes may have been missed (last sync {ago:.0?} ago)");
                    fresh = false;
                }
                other if fresh => {
                    println!("service: {other:?}");
                    fresh = false;
                }
                _ => {}
            }
            if last.version >= 5 {
                break;
            }
        }
    });

    // The other process.
    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .arg("--writer")
        .arg(&url)
        .spawn()?;

    // The hot path: a job per iteration, each reading the config.
    let started = Instant::now();
    let (mut jobs, mut accepted) = (0u64, 0u64);
    while !reporter.is_finished() && started.elapsed() < Duration::from_secs(30) {
        for i in 0..10_000u64 {
            let c = live.get(); // local: an Arc clone, no I/O
            let score = (i % 100) as f64 / 100.0;
            if score >= c.threshold || c.beta_enabled {
                accepted += 1;
            }
            jobs += 1;
        }
        tokio::task::yield_now().await;
    }
    child.wait().await?;
    let elapsed = started.elapsed();
    println!(
        "service: {jobs} jobs ({accepted} accepted) in {elapsed:.2?}: {:.0} config reads per second",
        jobs as f64 / elapsed.as_secs_f64()
    );
    println!(
        "service: final {:?}, status {:?}",
        live.get(),
        live.status()
    );
    assert_eq!(*live.get(), cfg.load().await?);
    Ok(())
}

/// The other process: changes the config a few times, with a network fault
/// in the middle.
async fn writer(url: &str) -> Result<(), Box<dyn std::error::Error>> {
    let store = Store::connect(url).await?;
    let cfg = Config::view(&store, "svc")?;
    let pause = Duration::from_millis(300);
    tokio::time::sleep(pause).await;
    println!("writer:  threshold = 0.8");
    cfg.threshold.set(&0.8).await?;
    cfg.version.set(&2).await?;
    tokio::time::sleep(pause).await;
    println!("writer:  beta_enabled = true");
    cfg.update(|c: &mut Config| {
        c.beta_enabled = true;
        c.version = 3;
    })
    .await?;
    tokio::time::sleep(pause).await;
    println!("writer:  kills every pub/sub connection (a network fault), then writes");
    let client = redis::Client::open(url)?;
    let mut raw = client.get_multiplexed_async_connection().await?;
    let _: u64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query_async(&mut raw)
        .await?;
    // Written silently (events off), maybe while the service's subscription
    // is down: its reload after the fault finds it or, if the reload came
    // first, the jump in sequence numbers of the next event makes it reload.
    cfg.with_notifications(false).threshold.set(&0.25).await?;
    cfg.version.set(&4).await?;
    tokio::time::sleep(pause).await;
    println!("writer:  save the whole config");
    cfg.save(&Config {
        threshold: 0.9,
        beta_enabled: false,
        version: 5,
    })
    .await?;
    Ok(())
}
