//! Where the time of set → event goes on a cluster: each link of the chain
//! timed beside raw SPUBLISH → SSUBSCRIBE, interleaved, medians.
//! `cargo run --release -p redis-pydict-bench --example event_latency`
use std::time::{Duration, Instant};

use redis::AsyncConnectionConfig;
use redis_pydict::Store;
use redis_pydict_test::RedisCluster;

const OPS: usize = 3000;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cluster = RedisCluster::start();
    let store = Store::connect_cluster(cluster.urls()).await?;
    let dict = store.dict::<String, String>("lat")?;
    dict.set("warm", &"x".to_owned()).await?;
    let channel = dict.namespace().event_channel().to_owned();
    let node = redis_pydict_test::master_for_key(&cluster.urls()[0], &channel)?;
    let client = redis::Client::open(format!(
        "{}?protocol=resp3",
        redis_pydict_test::node_url(node.port)
    ))?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let config = AsyncConnectionConfig::new().set_push_sender(tx);
    let mut listener = client
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    redis::cmd("SSUBSCRIBE")
        .arg(&channel)
        .query_async::<()>(&mut listener)
        .await?;
    let mut raw = client.get_multiplexed_async_connection().await?;
    let mut sub = dict.subscribe("*").await?;
    async fn next_smessage(rx: &mut tokio::sync::mpsc::UnboundedReceiver<redis::PushInfo>) {
        while let Some(p) = rx.recv().await {
            if p.kind == redis::PushKind::SMessage {
                return;
            }
        }
    }
    let value = "v".repeat(100);
    let (mut a, mut b, mut c, mut d, mut e) = (vec![], vec![], vec![], vec![], vec![]);
    for i in 0..OPS {
        // A: raw SPUBLISH → raw listener (the bench's baseline). The library's
        // subscriber also gets it (and filters nothing: it is not a valid event).
        let mut publish = redis::cmd("SPUBLISH");
        publish.arg(&channel).arg(&value);
        let k = format!("k{}", i % 100);
        let t = Instant::now();
        let (r, _) = futures::join!(publish.query_async::<u64>(&mut raw), next_smessage(&mut rx));
        r?;
        a.push(t.elapsed());
        while sub.try_recv().is_some() {}
        // B: raw SET (no event).
        let t = Instant::now();
        redis::cmd("SET")
            .arg("{lat}:raw")
            .arg(&value)
            .query_async::<()>(&mut raw)
            .await?;
        b.push(t.elapsed());
        // C: dict.set → raw listener.
        let t = Instant::now();
        let (r, _) = futures::join!(dict.set(&k, &value), next_smessage(&mut rx));
        r?;
        c.push(t.elapsed());
        while sub.try_recv().is_some() {}
        // D: dict.set → dict.subscribe("*").
        let t = Instant::now();
        let (r, ev) = futures::join!(dict.set(&k, &value), sub.recv());
        r?;
        ev.ok_or("ended")??;
        d.push(t.elapsed());
        next_smessage(&mut rx).await;
        // E: dict.set alone.
        let t = Instant::now();
        dict.set(&k, &value).await?;
        e.push(t.elapsed());
        next_smessage(&mut rx).await;
        let _ = sub.recv().await;
    }
    let (a, b, c, d, e) = (median(a), median(b), median(c), median(d), median(e));
    println!("A raw SPUBLISH -> raw listener   {a:?}");
    println!("B raw SET                         {b:?}");
    println!(
        "E dict.set                        {e:?}  ({:.2}x B)",
        e.as_secs_f64() / b.as_secs_f64()
    );
    println!(
        "C dict.set -> raw listener        {c:?}  ({:.2}x A)",
        c.as_secs_f64() / a.as_secs_f64()
    );
    println!(
        "D dict.set -> dict.subscribe(*)   {d:?}  ({:.2}x A)",
        d.as_secs_f64() / a.as_secs_f64()
    );
    Ok(())
}
