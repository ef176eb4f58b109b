//! Consumer groups on the durable log on one server: the shared cases (each
//! on a redis-server of its own; `tests/cluster.rs` runs them on a cluster),
//! then what needs a server of its own: restarts with and without
//! persistence, and a killed consumer connection.

mod support;
mod cases {
    pub mod groups;
}

use std::time::Duration;

use cases::groups::{next, nothing_more, pending, Group, WAIT};
use futures::StreamExt;
use redis_pydict::{Change, GroupOptions, LogId, Store};
use redis_pydict_test::RedisServer;
use support::on_a_server;

cases::groups::cases!(on_a_server);

/// With persistence (`appendonly yes`, `appendfsync always`), a restart
/// loses nothing: the consumer reconnects by itself (no `Gap`), the change
/// it held unacknowledged across the restart is delivered again, the
/// acknowledged ones are not, and new changes flow.
#[tokio::test]
async fn server_restart_with_persistence_loses_nothing() {
    let mut server = RedisServer::start_with(&["--appendonly", "yes", "--appendfsync", "always"]);
    let store = Store::connect(&server.url()).await.unwrap();
    let d = store
        .dict::<String, u32>("jobs")
        .unwrap()
        .with_durable_log(1000);
    let options = GroupOptions::new().claim_idle(Duration::from_millis(500));
    let mut sub: Group<u32> = d.subscribe_group_with("g", "me", &options).await.unwrap();
    for i in 0..3 {
        d.set(&format!("k{i}"), &i).await.unwrap();
    }
    let k0 = next(&mut sub).await;
    k0.ack().await.unwrap();
    let k1 = next(&mut sub).await;
    k1.ack().await.unwrap();
    let held = next(&mut sub).await; // being handled when the server goes down
    let held_id = held.id();
    std::mem::forget(held);

    server.restart();
    // The store's first request after the restart may meet the dead connection.
    support::eventually(WAIT, || d.set("k3", &3)).await;
    let mut got: Vec<(LogId, u64, Change<u32>)> = Vec::new();
    for _ in 0..2 {
        let delivery = next(&mut sub).await;
        got.push((
            delivery.id(),
            delivery.deliveries(),
            delivery.change.clone(),
        ));
        delivery.ack().await.unwrap();
    }
    got.sort_by_key(|g| g.0);
    assert_eq!(
        (got[0].0, got[0].1, &got[0].2),
        (held_id, 2, &Change::Set(2))
    );
    assert_eq!((got[1].1, &got[1].2), (1, &Change::Set(3)));
    nothing_more(&mut sub, Duration::from_millis(1500)).await;
    let mut raw = support::raw(&server).await;
    assert_eq!(pending(&mut raw, "jobs", "g").await, 0);
}

/// Without persistence, a restart loses the log and the group with it:
/// the consumer reconnects, yields a `Gap` (with `LogId::ZERO`), makes the
/// group again over the new log and delivers the changes written since.
#[tokio::test]
async fn server_restart_without_persistence_yields_a_gap() {
    let mut server = RedisServer::start();
    let store = Store::connect(&server.url()).await.unwrap();
    let d = store
        .dict::<String, u32>("jobs")
        .unwrap()
        .with_durable_log(1000);
    let mut sub: Group<u32> = d.subscribe_group("g", "me").await.unwrap();
    d.set("before", &1).await.unwrap();
    next(&mut sub).await.ack().await.unwrap();
    server.restart();
    support::eventually(WAIT, || d.set("after", &2)).await;
    let gap = next(&mut sub).await;
    assert_eq!((gap.change.clone(), gap.id()), (Change::Gap, LogId::ZERO));
    let after = next(&mut sub).await;
    assert_eq!(
        (after.key.as_deref(), after.change.clone()),
        (Some("after"), Change::Set(2))
    );
    after.ack().await.unwrap();
}

/// The consumer's connection killed (CLIENT KILL) mid-stream: it
/// reconnects, no `Gap`, every change delivered, the acknowledgements land.
#[tokio::test]
async fn killed_consumer_connection_is_retried_without_loss() {
    let server = RedisServer::start();
    let store = Store::connect(&server.url()).await.unwrap();
    let d = store
        .dict::<String, u32>("jobs")
        .unwrap()
        .with_durable_log(1000);
    let options = GroupOptions::new().claim_idle(Duration::from_millis(500));
    let mut sub: Group<u32> = d.subscribe_group_with("g", "me", &options).await.unwrap();
    let mut raw = support::raw(&server).await;
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..20u32 {
        d.set(&format!("k{i}"), &i).await.unwrap();
        if i == 10 {
            let _: i64 = redis::cmd("CLIENT")
                .arg("KILL")
                .arg("TYPE")
                .arg("normal")
                .arg("SKIPME")
                .arg("yes")
                .query_async(&mut raw)
                .await
                .unwrap();
        }
    }
    while seen.len() < 20 {
        let delivery = tokio::time::timeout(WAIT, sub.next())
            .await
            .expect("deliveries go on")
            .expect("the subscription goes on");
        let delivery = match delivery {
            Ok(delivery) => delivery,
            // An acknowledgement cut by the kill is reported; its change is
            // delivered again.
            Err(e) => {
                assert!(e.is_connection_error(), "{e}");
                continue;
            }
        };
        assert_ne!(delivery.change, Change::Gap, "no gap: nothing is lost");
        if let Change::Set(i) = delivery.change {
            seen.insert(i);
        }
        delivery.ack().await.ok();
    }
    sub.flush_acks().await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Whatever was delivered twice is acknowledged too.
    while let Some(item) = sub.try_recv() {
        drop(item);
    }
    sub.flush_acks().await.unwrap();
    assert_eq!(pending(&mut raw, "jobs", "g").await, 0);
}
