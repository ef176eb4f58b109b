//! The `tracing` and `metrics` features wired to `tracing-subscriber`'s fmt
//! layer and to the Prometheus exporter: `cargo run --example observability`.
//!
//! Uses the server at `REDIS_URL`, else one on 127.0.0.1:6379, else starts a
//! private `redis-server` for the demo. Prints the operations' spans and
//! events (DEBUG, on stderr) and then the metrics in Prometheus' text format
//! (what a `/metrics` endpoint would serve).

use futures::StreamExt;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use redis_pydict::{observe, Store};
use tracing::Level;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::prelude::*;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Spans and events: this crate's at DEBUG (it logs nothing at INFO or
    // above on the happy path), everything else at INFO. FmtSpan::CLOSE
    // prints each operation span when it ends, with its duration.
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_span_events(FmtSpan::CLOSE),
        )
        .with(
            Targets::new()
                .with_target("redis_pydict", Level::DEBUG)
                .with_default(Level::INFO),
        )
        .init();

    // Metrics: the Prometheus recorder, with latency buckets (without them
    // the exporter renders histograms as summaries).
    let prometheus = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(observe::OPERATION_DURATION.to_owned()),
            &[
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
            ],
        )?
        .install_recorder()?;
    observe::describe();

    let (url, _private_server) = match redis_pydict_test::demo_server() {
        Ok(found) => found,
        Err(why) => {
            eprintln!("observability: {why}");
            std::process::exit(1);
        }
    };
    let store = Store::connect(&url).await?;
    let hits = store.dict::<String, u64>("observability-demo")?;
    let mut changes = hits.subscribe("*").await?;

    hits.set("home", &1).await?;
    hits.set_many([("about", 1), ("blog", 2)]).await?;
    let home = hits.update_with("home", |n| n.unwrap_or(0) + 1).await?;
    println!("home: {home}, blog: {:?}", hits.get("blog").await?);
    for _ in 0..4 {
        changes.next().await.transpose()?;
    }
    hits.clear().await?;

    println!("{}", prometheus.render());
    Ok(())
}
