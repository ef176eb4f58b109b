//! Consumer groups on the durable log: changes shared out among consumers,
//! acknowledged explicitly or on drop, claimed from dead consumers, poison
//! parked. Run on one server by `tests/groups.rs` and on the shared cluster
//! by `tests/cluster.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use redis::aio::MultiplexedConnection;
use redis_pydict::{
    Change, Delivery, Dict, Error, Event, GroupOptions, GroupSubscription, LogId, RedisDict,
    StartFrom,
};

use crate::support::Ctx;

/// Every case of this file, listed once (see the runners in
/// `tests/support/mod.rs`).
macro_rules! cases {
    ($runner:ident) => {
        $runner! { groups:
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            shared three_consumers_share_ten_thousand_changes_and_claim_a_dead_ones;
            #[tokio::test] shared poison_change_is_parked_after_max_deliveries;
            #[tokio::test] shared undecodable_changes_are_parked_at_once;
            #[tokio::test] shared groups_are_created_idempotently_where_asked;
            #[tokio::test] shared a_returning_consumer_gets_its_pending_changes_back_at_once;
            #[tokio::test] shared dropped_deliveries_are_acknowledged_but_not_when_panicking;
            #[tokio::test] shared deleted_log_yields_a_gap_and_delivery_goes_on;
            #[tokio::test] shared wrong_typed_log_is_a_clear_error;
            #[tokio::test] shared a_group_behind_the_cap_gets_one_gap_then_the_rest;
            #[tokio::test] shared a_group_that_keeps_up_gets_no_gap;
            #[tokio::test] shared view_group_delivers_typed_view_events;
            #[tokio::test] shared removing_a_consumer_never_loses_its_pending_changes;
            #[tokio::test] shared destroying_a_group_drops_it_and_nothing_else;
            #[test] blocking blocking_group_recv_ack_and_flush;
            #[test] blocking blocking_consumer_removal;
        }
    };
}
pub(crate) use cases;

pub const WAIT: Duration = Duration::from_secs(15);

pub type Group<V> = GroupSubscription<Event<String, V>>;

/// Stream entries as read raw: (id, fields).
type Entries = Vec<(String, Vec<(String, Vec<u8>)>)>;

pub async fn next<V: std::fmt::Debug>(sub: &mut Group<V>) -> Delivery<Event<String, V>> {
    match tokio::time::timeout(WAIT, sub.next()).await {
        Ok(Some(Ok(item))) => item,
        other => panic!("expected a delivery, got {other:?}"),
    }
}

pub async fn next_err<V: std::fmt::Debug>(sub: &mut Group<V>) -> Error {
    match tokio::time::timeout(WAIT, sub.next()).await {
        Ok(Some(Err(e))) => e,
        other => panic!("expected an error item, got {other:?}"),
    }
}

pub async fn nothing_more<V: std::fmt::Debug>(sub: &mut Group<V>, quiet: Duration) {
    let extra = tokio::time::timeout(quiet, sub.next()).await;
    assert!(extra.is_err(), "unexpected item: {extra:?}");
}

/// How many changes of `group` are pending (delivered, not acknowledged).
pub async fn pending(raw: &mut MultiplexedConnection, ns: &str, group: &str) -> u64 {
    let summary: (u64, redis::Value, redis::Value, redis::Value) = redis::cmd("XPENDING")
        .arg(format!("{{{ns}}}#log"))
        .arg(group)
        .query_async(raw)
        .await
        .unwrap();
    summary.0
}

/// The entries of `{ns}#dead`, each as its fields.
pub async fn dead_letters(
    raw: &mut MultiplexedConnection,
    ns: &str,
) -> Vec<BTreeMap<String, Vec<u8>>> {
    let entries: Entries = redis::cmd("XRANGE")
        .arg(format!("{{{ns}}}#dead"))
        .arg("-")
        .arg("+")
        .query_async(raw)
        .await
        .unwrap();
    entries
        .into_iter()
        .map(|(_, fields)| fields.into_iter().collect())
        .collect()
}

fn logged(ctx: &Ctx, store: &redis_pydict::Store, name: &str) -> Dict<String, u32> {
    store
        .dict::<String, u32>(&ctx.ns(name))
        .unwrap()
        .with_durable_log(1_000_000)
}

/// What the consumers saw: each receipt (consumer, log id, key,
/// deliveries), the ids known to be acknowledged, and any receipt of an id
/// after its acknowledgement (a broken promise).
#[derive(Default)]
struct Seen {
    receipts: Vec<(&'static str, LogId, String, u64)>,
    acked: BTreeSet<LogId>,
    redelivered_after_ack: Vec<(&'static str, LogId)>,
}

type Shared = Arc<Mutex<Seen>>;

/// A live consumer: handles every delivery until `stop`. `explicit`
/// acknowledges each with `ack().await`; otherwise it drops them and
/// flushes every 100 (an id counts as acknowledged once its ack returned).
async fn live_consumer(
    name: &'static str,
    mut sub: Group<u32>,
    explicit: bool,
    seen: Shared,
    stop: Arc<AtomicBool>,
) {
    let mut dropped = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let item = match tokio::time::timeout(Duration::from_millis(100), sub.next()).await {
            Err(_) => None,
            Ok(None) => panic!("{name}: the group subscription ended"),
            Ok(Some(item)) => Some(item.unwrap_or_else(|e| panic!("{name}: {e}"))),
        };
        let idle = item.is_none();
        if let Some(delivery) = item {
            let id = delivery.id();
            {
                let mut seen = seen.lock().unwrap();
                if seen.acked.contains(&id) {
                    seen.redelivered_after_ack.push((name, id));
                }
                let key = delivery.key.clone().unwrap_or_default();
                seen.receipts.push((name, id, key, delivery.deliveries()));
            }
            if explicit {
                delivery.ack().await.unwrap();
                seen.lock().unwrap().acked.insert(id);
            } else {
                drop(delivery);
                dropped.push(id);
            }
        }
        if dropped.len() >= 100 || (idle && !dropped.is_empty()) {
            sub.flush_acks().await.unwrap();
            seen.lock().unwrap().acked.extend(dropped.drain(..));
        }
    }
    sub.flush_acks().await.unwrap();
}

/// 3 consumers, 10,000 changes; one consumer dies mid-way (it handled and
/// acknowledged some, was handling more, had more buffered: none of those
/// acknowledged). Every change is handled at least once; a change
/// acknowledged by a consumer is never delivered again; the dead
/// consumer's pending changes are claimed by the live ones (their delivery
/// count says so); nothing stays pending.
pub async fn three_consumers_share_ten_thousand_changes_and_claim_a_dead_ones(ctx: &Ctx) {
    const N: usize = 10_000;
    let ns = ctx.ns("share");
    // A buffer small enough that no delivery waits in it for `claim_idle`.
    let store = ctx
        .builder()
        .subscription_buffer(200, 1 << 20)
        .connect()
        .await
        .unwrap();
    let d = logged(ctx, &store, "share");
    let options = GroupOptions::new()
        .start(StartFrom::Beginning)
        .claim_idle(Duration::from_secs(3));
    let seen: Shared = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));

    // The consumer that dies: it joins first, so it gets its share.
    let mut dying = d
        .subscribe_group_with("workers", "c", &options)
        .await
        .unwrap();
    let a = d
        .subscribe_group_with("workers", "a", &options)
        .await
        .unwrap();
    let b = d
        .subscribe_group_with("workers", "b", &options)
        .await
        .unwrap();
    let batch: Vec<(String, u32)> = (0..N as u32).map(|i| (format!("k{i}"), i)).collect();
    d.set_many(batch).await.unwrap();

    let tasks = [
        tokio::spawn(live_consumer("a", a, true, seen.clone(), stop.clone())),
        tokio::spawn(live_consumer("b", b, false, seen.clone(), stop.clone())),
    ];
    for _ in 0..100 {
        let delivery = next(&mut dying).await;
        let id = delivery.id();
        seen.lock()
            .unwrap()
            .receipts
            .push(("c", id, String::new(), 1));
        delivery.ack().await.unwrap();
        seen.lock().unwrap().acked.insert(id);
    }
    let mut lost_in_c = BTreeSet::new();
    for _ in 0..50 {
        let delivery = next(&mut dying).await;
        lost_in_c.insert(delivery.id());
        // The process dies while handling it: no destructor runs.
        std::mem::forget(delivery);
    }
    // ... and with whatever it had read and not handed on yet.
    drop(dying);

    let mut raw = ctx.raw(&ns).await;
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let (ids, broken) = {
            let seen = seen.lock().unwrap();
            let ids: BTreeSet<LogId> = seen.receipts.iter().map(|r| r.1).collect();
            (ids.len(), seen.redelivered_after_ack.clone())
        };
        assert!(
            broken.is_empty(),
            "delivered again after an ack: {broken:?}"
        );
        if ids >= N && pending(&mut raw, &ns, "workers").await == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{ids} of {N} changes handled");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(pending(&mut raw, &ns, "workers").await, 0);

    let seen = seen.lock().unwrap();
    assert!(seen.redelivered_after_ack.is_empty());
    let mut by_id: BTreeMap<LogId, Vec<(&str, u64)>> = BTreeMap::new();
    for (consumer, id, _, deliveries) in &seen.receipts {
        by_id.entry(*id).or_default().push((consumer, *deliveries));
    }
    // Every change handled at least once, and acknowledged.
    assert_eq!(by_id.len(), N, "changes handled");
    assert_eq!(seen.acked.len(), N, "changes acknowledged");
    let keys: BTreeSet<&str> = seen.receipts.iter().map(|r| r.2.as_str()).collect();
    assert!(
        keys.len() > N - 100,
        "the live consumers' receipts name their keys"
    );
    // c's pending changes were claimed by a and b: delivered a second time.
    for id in &lost_in_c {
        let receipts = &by_id[id];
        assert!(
            receipts.iter().any(|(who, n)| *who != "c" && *n >= 2),
            "{id}: {receipts:?}"
        );
    }
    // Both live consumers got a share.
    for name in ["a", "b"] {
        assert!(
            seen.receipts.iter().any(|r| r.0 == name),
            "{name} got nothing"
        );
    }
}

/// A change released (handler failed) twice with `max_deliveries(2)` is
/// parked on its next claim: an `Error::Parked` item, a copy in `{ns}#dead`
/// (payload byte for byte, its log id, group, consumer, count, reason), no
/// longer pending; the changes after it are delivered.
pub async fn poison_change_is_parked_after_max_deliveries(ctx: &Ctx) {
    let ns = ctx.ns("poison");
    let d = logged(ctx, &ctx.store, "poison");
    let options = GroupOptions::new()
        .claim_idle(Duration::from_millis(200))
        .max_deliveries(2);
    let mut sub = d.subscribe_group_with("g", "one", &options).await.unwrap();
    d.set("bad", &1).await.unwrap();
    let first = next(&mut sub).await;
    let poison_id = first.id();
    assert_eq!((first.key.as_deref(), first.deliveries()), (Some("bad"), 1));
    first.release();
    let second = next(&mut sub).await;
    assert_eq!((second.id(), second.deliveries()), (poison_id, 2));
    second.release();
    match next_err(&mut sub).await {
        Error::Parked {
            namespace,
            group,
            id,
            deliveries,
            dead_key,
            reason,
        } => {
            assert_eq!(
                (namespace, group, id, deliveries),
                (ns.clone(), "g".into(), poison_id, 2)
            );
            assert_eq!(dead_key, format!("{{{ns}}}#dead"));
            assert!(reason.contains("delivered 2 times"), "{reason}");
        }
        other => panic!("expected Parked, got {other}"),
    }
    let mut raw = ctx.raw(&ns).await;
    assert_eq!(pending(&mut raw, &ns, "g").await, 0, "parked means acked");
    let dead = dead_letters(&mut raw, &ns).await;
    assert_eq!(dead.len(), 1);
    let log: Entries = redis::cmd("XRANGE")
        .arg(format!("{{{ns}}}#log"))
        .arg(poison_id.to_string())
        .arg(poison_id.to_string())
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(dead[0]["e"], log[0].1[0].1, "the payload, byte for byte");
    assert_eq!(dead[0]["log_id"], poison_id.to_string().into_bytes());
    assert_eq!(dead[0]["group"], b"g");
    assert_eq!(dead[0]["consumer"], b"one");
    assert_eq!(dead[0]["deliveries"], b"2");
    // The group is not held up.
    d.set("good", &2).await.unwrap();
    let good = next(&mut sub).await;
    assert_eq!(good.change, Change::Set(2));
    good.ack().await.unwrap();
    nothing_more(&mut sub, Duration::from_millis(600)).await;
}

/// Entries that do not decode (a foreign payload, no payload field, a value
/// of the wrong type) are parked as soon as they are read, reported, and
/// the stream goes on.
pub async fn undecodable_changes_are_parked_at_once(ctx: &Ctx) {
    let ns = ctx.ns("undecodable");
    let d = logged(ctx, &ctx.store, "undecodable");
    let mut sub = d.subscribe_group("g", "one").await.unwrap();
    let mut raw = ctx.raw(&ns).await;
    let log = format!("{{{ns}}}#log");
    let _: String = redis::cmd("XADD")
        .arg(&log)
        .arg("*")
        .arg("e")
        .arg(b"\xff\x00".as_slice())
        .query_async(&mut raw)
        .await
        .unwrap();
    let _: String = redis::cmd("XADD")
        .arg(&log)
        .arg("*")
        .arg("foreign")
        .arg("x")
        .query_async(&mut raw)
        .await
        .unwrap();
    let words = ctx
        .store
        .dict::<String, String>(&ns)
        .unwrap()
        .with_durable_log(1000);
    words.set("w", &"not a number".to_owned()).await.unwrap();
    d.set("n", &7).await.unwrap();
    for expected in ["wire format", "no \"e\" field", "u32"] {
        match next_err(&mut sub).await {
            Error::Parked {
                deliveries, reason, ..
            } => {
                assert_eq!(deliveries, 1);
                assert!(reason.contains(expected), "{expected}: {reason}");
            }
            other => panic!("expected Parked, got {other}"),
        }
    }
    let n = next(&mut sub).await;
    assert_eq!(n.change, Change::Set(7));
    n.ack().await.unwrap();
    let dead = dead_letters(&mut raw, &ns).await;
    assert_eq!(dead.len(), 3);
    assert_eq!(
        dead[1]["foreign"], b"x",
        "a foreign entry is copied as it was"
    );
    assert_eq!(pending(&mut raw, &ns, "g").await, 0);
}

/// Joining a group that exists is fine and does not move it; a new group
/// starts where asked; each group gets every change.
pub async fn groups_are_created_idempotently_where_asked(ctx: &Ctx) {
    let d = logged(ctx, &ctx.store, "idempotent");
    d.set("old", &1).await.unwrap();
    let from_now = GroupOptions::new().start(StartFrom::Now);
    let from_start = GroupOptions::new().start(StartFrom::Beginning);
    let mut late = d
        .subscribe_group_with("late", "x", &from_now)
        .await
        .unwrap();
    let mut all = d
        .subscribe_group_with("all", "x", &from_start)
        .await
        .unwrap();
    // Again, with another start: the group exists, it stays where it is.
    let mut late2 = d
        .subscribe_group_with("late", "y", &from_start)
        .await
        .unwrap();
    d.set("new", &2).await.unwrap();
    let first = next(&mut all).await;
    assert_eq!(first.key.as_deref(), Some("old"));
    drop(first);
    assert_eq!(next(&mut all).await.key.as_deref(), Some("new"));
    // "late" saw only "new", once, at x or y.
    let got = tokio::select! {
        d = late.next() => d,
        d = late2.next() => d,
    };
    let got = got.unwrap().unwrap();
    assert_eq!(got.key.as_deref(), Some("new"));
    drop(got);
    nothing_more(&mut late, Duration::from_millis(400)).await;
    nothing_more(&mut late2, Duration::from_millis(100)).await;
    // After(id): from the change after it.
    let mut log = d.subscribe_durable(StartFrom::Beginning).await.unwrap();
    let (old_id, _) = log.next().await.unwrap().unwrap();
    let after = GroupOptions::new().start(StartFrom::After(old_id));
    let mut mid = d.subscribe_group_with("mid", "x", &after).await.unwrap();
    assert_eq!(next(&mut mid).await.key.as_deref(), Some("new"));
    // Empty names are refused before any I/O.
    let e = d.subscribe_group("", "x").await.unwrap_err();
    assert!(e.to_string().contains("group name"), "{e}");
}

/// A consumer that subscribes again under its name gets its unacknowledged
/// changes back at once (not after `claim_idle`), counted as redeliveries.
pub async fn a_returning_consumer_gets_its_pending_changes_back_at_once(ctx: &Ctx) {
    let ns = ctx.ns("returning");
    let d = logged(ctx, &ctx.store, "returning");
    let options = GroupOptions::new().claim_idle(Duration::from_secs(3600));
    let mut sub = d.subscribe_group_with("g", "me", &options).await.unwrap();
    for i in 0..5 {
        d.set(&format!("k{i}"), &i).await.unwrap();
    }
    let mut ids = Vec::new();
    for _ in 0..5 {
        let delivery = next(&mut sub).await;
        ids.push(delivery.id());
        std::mem::forget(delivery); // died while handling it
    }
    drop(sub);
    let mut sub = d.subscribe_group_with("g", "me", &options).await.unwrap();
    for id in ids {
        let again = next(&mut sub).await;
        assert_eq!((again.id(), again.deliveries()), (id, 2));
    }
    sub.flush_acks().await.unwrap();
    let mut raw = ctx.raw(&ns).await;
    assert_eq!(pending(&mut raw, &ns, "g").await, 0);
}

/// Dropped deliveries are acknowledged (in the background; `flush_acks`
/// waits for it); one dropped while a panic unwinds is not, nor one released.
pub async fn dropped_deliveries_are_acknowledged_but_not_when_panicking(ctx: &Ctx) {
    let ns = ctx.ns("dropped");
    let d = logged(ctx, &ctx.store, "dropped");
    let mut sub = d.subscribe_group("g", "me").await.unwrap();
    for i in 0..12 {
        d.set(&format!("k{i}"), &i).await.unwrap();
    }
    for _ in 0..10 {
        drop(next(&mut sub).await);
    }
    let in_panic = next(&mut sub).await;
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let _handling = in_panic;
        panic!("the handler failed");
    }));
    assert!(unwound.is_err());
    next(&mut sub).await.release();
    sub.flush_acks().await.unwrap();
    let mut raw = ctx.raw(&ns).await;
    assert_eq!(pending(&mut raw, &ns, "g").await, 2);
}

/// The log (and its group with it) deleted under a running group: a `Gap`
/// item, the group made again, and the changes written since delivered.
pub async fn deleted_log_yields_a_gap_and_delivery_goes_on(ctx: &Ctx) {
    let ns = ctx.ns("deleted");
    let d = logged(ctx, &ctx.store, "deleted");
    let mut sub = d.subscribe_group("g", "me").await.unwrap();
    d.set("a", &1).await.unwrap();
    next(&mut sub).await.ack().await.unwrap();
    let mut raw = ctx.raw(&ns).await;
    let _: () = redis::cmd("DEL")
        .arg(format!("{{{ns}}}#log"))
        .query_async(&mut raw)
        .await
        .unwrap();
    d.set("b", &2).await.unwrap();
    let gap = next(&mut sub).await;
    assert_eq!((gap.change.clone(), gap.id()), (Change::Gap, LogId::ZERO));
    let b = next(&mut sub).await;
    assert_eq!(b.change, Change::Set(2));
    b.ack().await.unwrap();
    assert_eq!(pending(&mut raw, &ns, "g").await, 0);
}

/// `destroy_group`: without a log, `Ok(false)`; a group with consumers and
/// changes pending is gone (`Ok(true)`, then `Ok(false)`), the log and
/// another group (its consumers and pending changes) are untouched, and a
/// consumer that subscribes again starts a new group at the end of the log
/// (`StartFrom::Now`: nothing of before is redelivered). A consumer still
/// running when its group goes gets a `Gap` and goes on in the recreated
/// group. A log of another type is a `WrongType` error that changes nothing.
pub async fn destroying_a_group_drops_it_and_nothing_else(ctx: &Ctx) {
    let ns = ctx.ns("destroy");
    let d = logged(ctx, &ctx.store, "destroy");
    assert!(!d.destroy_group("g").await.unwrap(), "no log yet");
    let mut doomed = d.subscribe_group("g", "a").await.unwrap();
    let mut other = d.subscribe_group("h", "b").await.unwrap();
    d.set("k1", &1).await.unwrap();
    d.set("k2", &2).await.unwrap();
    let held = next(&mut doomed).await; // pending in g, never acknowledged
    let kept = next(&mut other).await; // pending in h
    assert_eq!(
        (held.change.clone(), kept.change.clone()),
        (Change::Set(1), Change::Set(1))
    );
    held.release();
    kept.release();
    drop((doomed, other));
    let mut raw = ctx.raw(&ns).await;
    let pending_in_h = pending(&mut raw, &ns, "h").await;
    assert!(pending_in_h >= 1, "{pending_in_h}");

    assert!(d.destroy_group("g").await.unwrap());
    assert!(!d.destroy_group("g").await.unwrap(), "gone");
    let groups: Vec<std::collections::HashMap<String, redis::Value>> = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(format!("{{{ns}}}#log"))
        .query_async(&mut raw)
        .await
        .unwrap();
    let names: Vec<String> = groups
        .into_iter()
        .map(|mut g| redis::from_redis_value(g.remove("name").unwrap()).unwrap())
        .collect();
    assert_eq!(names, ["h"]);
    assert_eq!(
        pending(&mut raw, &ns, "h").await,
        pending_in_h,
        "the other group keeps its own"
    );
    assert_eq!(
        log_ids(&mut raw, &ns).await.len(),
        2,
        "the log keeps its changes"
    );

    // Subscribing again: a new group from now on.
    let mut again = d.subscribe_group("g", "a").await.unwrap();
    d.set("k3", &3).await.unwrap();
    assert_eq!(next(&mut again).await.change, Change::Set(3));
    // Destroyed under a running consumer: a gap, then delivery goes on.
    assert!(d.destroy_group("g").await.unwrap());
    d.set("k4", &4).await.unwrap();
    let gap = next(&mut again).await;
    assert_eq!((gap.change.clone(), gap.id()), (Change::Gap, LogId::ZERO));
    let mut seen = Vec::new();
    while seen.last() != Some(&Change::Set(4)) {
        let delivery = next(&mut again).await;
        seen.push(delivery.change.clone());
        delivery.ack().await.unwrap();
    }
    drop(again);

    let foreign = logged(ctx, &ctx.store, "destroy-foreign");
    let foreign_log = format!("{{{}}}#log", ctx.ns("destroy-foreign"));
    let _: () = redis::cmd("SET")
        .arg(&foreign_log)
        .arg("foreign")
        .query_async(&mut ctx.raw(&ctx.ns("destroy-foreign")).await)
        .await
        .unwrap();
    let e = foreign.destroy_group("g").await.unwrap_err();
    assert!(
        matches!(&e, Error::WrongType { role: "durable log", found, .. } if found == "string"),
        "{e}"
    );
    let kept: String = redis::cmd("GET")
        .arg(&foreign_log)
        .query_async(&mut ctx.raw(&ctx.ns("destroy-foreign")).await)
        .await
        .unwrap();
    assert_eq!(kept, "foreign");
}

/// The consumers of `group`, by name, with how many changes each holds.
async fn consumers(
    raw: &mut MultiplexedConnection,
    ns: &str,
    group: &str,
) -> BTreeMap<String, u64> {
    let listed: Vec<std::collections::HashMap<String, redis::Value>> = redis::cmd("XINFO")
        .arg("CONSUMERS")
        .arg(format!("{{{ns}}}#log"))
        .arg(group)
        .query_async(raw)
        .await
        .unwrap();
    listed
        .into_iter()
        .map(|mut c| {
            let name: String = redis::from_redis_value(c.remove("name").unwrap()).unwrap();
            let pending: u64 = redis::from_redis_value(c.remove("pending").unwrap()).unwrap();
            (name, pending)
        })
        .collect()
}

/// Removing consumers: an idle one with nothing pending is removed
/// (`Ok(true)`, then `Ok(false)`: it is gone); one holding unacknowledged
/// changes is refused with `ConsumerHasPending` naming it and the count,
/// and nothing changes (it is still listed, its changes still pending);
/// `retire_consumer` from a live subscription hands them over atomically
/// and removes it: the live consumer gets them again (delivery count 2, the
/// hand-over counts none) at its next claim pass, and nothing stays
/// pending. A consumer cannot retire itself; an unknown group is a clear
/// error naming the namespace.
pub async fn removing_a_consumer_never_loses_its_pending_changes(ctx: &Ctx) {
    let ns = ctx.ns("removal");
    let d = logged(ctx, &ctx.store, "removal");
    let options = GroupOptions::new().claim_idle(Duration::from_secs(5));
    let mut idle = d.subscribe_group_with("g", "idle", &options).await.unwrap();
    d.set("z", &0).await.unwrap();
    next(&mut idle).await.ack().await.unwrap(); // listed once it was delivered one
    drop(idle);
    let mut gone = d.subscribe_group_with("g", "gone", &options).await.unwrap();
    d.set("a", &1).await.unwrap();
    d.set("b", &2).await.unwrap();
    let mut held = Vec::new();
    for _ in 0..2 {
        let delivery = next(&mut gone).await;
        held.push(delivery.id());
        delivery.release(); // it dies while handling them
    }
    drop(gone);
    let mut raw = ctx.raw(&ns).await;
    let listed = consumers(&mut raw, &ns, "g").await;
    assert_eq!(listed.get("idle"), Some(&0));
    assert_eq!(listed.get("gone"), Some(&2));

    assert!(d.remove_group_consumer("g", "idle").await.unwrap());
    assert!(!d.remove_group_consumer("g", "idle").await.unwrap());
    match d.remove_group_consumer("g", "gone").await {
        Err(Error::ConsumerHasPending {
            namespace,
            group,
            consumer,
            pending,
        }) => assert_eq!(
            (
                namespace.as_str(),
                group.as_str(),
                consumer.as_str(),
                pending
            ),
            (ns.as_str(), "g", "gone", 2)
        ),
        other => panic!("expected ConsumerHasPending, got {other:?}"),
    }
    let listed = consumers(&mut raw, &ns, "g").await;
    assert_eq!(
        listed.into_iter().collect::<Vec<_>>(),
        vec![("gone".to_owned(), 2)]
    );

    let mut live = d.subscribe_group_with("g", "live", &options).await.unwrap();
    assert_eq!(live.retire_consumer("gone").await.unwrap(), 2);
    let listed = consumers(&mut raw, &ns, "g").await;
    assert_eq!(
        listed.into_iter().collect::<Vec<_>>(),
        vec![("live".to_owned(), 2)]
    );
    let mut again = Vec::new();
    for _ in 0..2 {
        let delivery = next(&mut live).await;
        again.push((delivery.id(), delivery.deliveries()));
        delivery.ack().await.unwrap();
    }
    again.sort();
    assert_eq!(again, held.iter().map(|id| (*id, 2)).collect::<Vec<_>>());
    assert_eq!(pending(&mut raw, &ns, "g").await, 0);
    assert_eq!(live.retire_consumer("nobody").await.unwrap(), 0);
    let e = live.retire_consumer("live").await.unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e}");
    let e = d.remove_group_consumer("nogroup", "x").await.unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains(&format!("{ns:?}")) && text.contains("NOGROUP"),
        "{text}"
    );
}

/// The ids of the entries of `{ns}#log`, oldest first.
async fn log_ids(raw: &mut MultiplexedConnection, ns: &str) -> Vec<LogId> {
    let entries: Entries = redis::cmd("XRANGE")
        .arg(format!("{{{ns}}}#log"))
        .arg("-")
        .arg("+")
        .query_async(raw)
        .await
        .unwrap();
    entries.iter().map(|(id, _)| id.parse().unwrap()).collect()
}

/// A consumer stopped while the log is written past its cap (`MAXLEN ~
/// 10`: whole nodes of 100 entries are trimmed), so that changes the group
/// was never delivered are trimmed: resumed, it gets one `Gap` (id
/// `LogId::ZERO`) and then exactly the changes still in the log, in order,
/// and nothing more. Another group, caught up before the same writes and
/// reading along, gets every change and no `Gap`.
pub async fn a_group_behind_the_cap_gets_one_gap_then_the_rest(ctx: &Ctx) {
    let ns = ctx.ns("behind");
    let d = ctx
        .store
        .dict::<String, u32>(&ns)
        .unwrap()
        .with_durable_log(10);
    let mut slow = d.subscribe_group("slow", "me").await.unwrap();
    let mut fast = d.subscribe_group("fast", "me").await.unwrap();
    d.set("first", &0).await.unwrap();
    next(&mut slow).await.ack().await.unwrap();
    next(&mut fast).await.ack().await.unwrap();
    drop(slow); // stopped
    for i in 1..=450 {
        d.set(&format!("k{i}"), &i).await.unwrap();
        // The other group keeps up as it goes.
        let got = next(&mut fast).await;
        assert_eq!(got.change, Change::Set(i), "{:?}", got.key);
    }
    let mut raw = ctx.raw(&ns).await;
    let kept = log_ids(&mut raw, &ns).await;
    assert!(kept.len() < 450, "the log was trimmed: {} left", kept.len());
    let mut slow = d.subscribe_group("slow", "me").await.unwrap();
    let gap = next(&mut slow).await;
    assert_eq!((gap.change.clone(), gap.id()), (Change::Gap, LogId::ZERO));
    for id in &kept {
        let got = next(&mut slow).await;
        assert_eq!(got.id(), *id);
        assert_ne!(got.change, Change::Gap);
    }
    d.set("after", &1).await.unwrap();
    assert_eq!(next(&mut slow).await.change, Change::Set(1));
    assert_eq!(next(&mut fast).await.change, Change::Set(1));
    nothing_more(&mut slow, Duration::from_millis(500)).await;
    nothing_more(&mut fast, Duration::from_millis(100)).await;
}

/// No false positives: consumers that keep up with a log trimmed all along
/// (`MAXLEN ~ 50`, two thousand changes, many reads, two consumers sharing
/// the group, entries trimmed right behind them) get no `Gap`; nor does a
/// group created late at `StartFrom::Beginning` on a log trimmed long
/// before it existed (it starts at the oldest change still there, which it
/// gets first).
pub async fn a_group_that_keeps_up_gets_no_gap(ctx: &Ctx) {
    let ns = ctx.ns("keepsup");
    let d = ctx
        .store
        .dict::<String, u32>(&ns)
        .unwrap()
        .with_durable_log(50);
    let mut one = d.subscribe_group("g", "one").await.unwrap();
    let mut two = d.subscribe_group("g", "two").await.unwrap();
    let mut seen = BTreeSet::new();
    for round in 0..100u32 {
        for i in 0..20 {
            d.set(&format!("k{i}"), &(round * 20 + i)).await.unwrap();
        }
        // Both consumers take what comes until the round is all in.
        while seen.len() < ((round + 1) * 20) as usize {
            tokio::select! {
                Some(item) = one.next() => {
                    let got = item.unwrap();
                    assert_ne!(got.change, Change::Gap, "one: false gap in round {round}");
                    assert!(seen.insert(got.id()));
                }
                Some(item) = two.next() => {
                    let got = item.unwrap();
                    assert_ne!(got.change, Change::Gap, "two: false gap in round {round}");
                    assert!(seen.insert(got.id()));
                }
                _ = tokio::time::sleep(WAIT) => panic!("round {round} stalled at {}", seen.len()),
            }
        }
    }
    nothing_more(&mut one, Duration::from_millis(300)).await;
    nothing_more(&mut two, Duration::from_millis(100)).await;
    let mut raw = ctx.raw(&ns).await;
    let kept = log_ids(&mut raw, &ns).await;
    assert!(
        kept.len() < 2000,
        "the log was trimmed: {} left",
        kept.len()
    );
    let options = GroupOptions::new().start(StartFrom::Beginning);
    let mut late = d
        .subscribe_group_with("late", "me", &options)
        .await
        .unwrap();
    for id in &kept {
        let got = next(&mut late).await;
        assert_eq!((got.id(), got.deliveries()), (*id, 1));
    }
    nothing_more(&mut late, Duration::from_millis(300)).await;
}

/// A log key holding another type: joining is a clear error naming the
/// namespace and WRONGTYPE, and nothing is changed.
pub async fn wrong_typed_log_is_a_clear_error(ctx: &Ctx) {
    let ns = ctx.ns("wrongtype");
    let d = logged(ctx, &ctx.store, "wrongtype");
    let mut raw = ctx.raw(&ns).await;
    let _: () = redis::cmd("SET")
        .arg(format!("{{{ns}}}#log"))
        .arg("foreign")
        .query_async(&mut raw)
        .await
        .unwrap();
    let e = d.subscribe_group("g", "me").await.unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains(&format!("{ns:?}")) && text.contains("WRONGTYPE"),
        "{text}"
    );
    assert!(!e.is_connection_error());
    let kept: String = redis::cmd("GET")
        .arg(format!("{{{ns}}}#log"))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(kept, "foreign");
}

#[derive(RedisDict, Debug, Clone, PartialEq)]
pub struct Task {
    pub state: String,
}

/// A view's group delivers its typed events.
pub async fn view_group_delivers_typed_view_events(ctx: &Ctx) {
    let task = Task::view(&ctx.store, &ctx.ns("task"))
        .unwrap()
        .with_durable_log(100);
    let mut sub = task.subscribe_group("g", "me").await.unwrap();
    task.state.set(&"running".to_owned()).await.unwrap();
    let delivery = match tokio::time::timeout(WAIT, sub.next()).await {
        Ok(Some(Ok(delivery))) => delivery,
        other => panic!("expected a delivery, got {other:?}"),
    };
    assert_eq!(
        delivery.event().event,
        TaskEvent::State(Change::Set("running".to_owned()))
    );
    delivery.ack().await.unwrap();
}

/// The blocking mirror: receive with a deadline, acknowledge by blocking,
/// flush the acknowledgements of dropped deliveries.
pub fn blocking_group_recv_ack_and_flush(store: &redis_pydict::blocking::Store, prefix: &str) {
    let d = store
        .dict::<String, u32>(&format!("{prefix}blocking-group"))
        .unwrap()
        .with_durable_log(100);
    let mut sub = d.subscribe_group("g", "me").unwrap();
    assert!(sub.try_recv().is_none());
    assert!(sub.recv_timeout(Duration::from_millis(100)).is_none());
    d.set("a", &1).unwrap();
    d.set("b", &2).unwrap();
    let a = sub.recv_timeout(WAIT).unwrap().unwrap();
    assert_eq!((a.change.clone(), a.deliveries()), (Change::Set(1), 1));
    a.ack_blocking().unwrap();
    let b = sub.next().unwrap().unwrap();
    assert_eq!(b.change, Change::Set(2));
    drop(b);
    sub.flush_acks().unwrap();
    // Nothing pending: a returning consumer gets nothing back.
    drop(sub);
    let mut again = d.subscribe_group("g", "me").unwrap();
    assert!(again.recv_timeout(Duration::from_millis(500)).is_none());
}

/// The blocking mirror of consumer removal: refused while changes are
/// pending, handed over by `retire_consumer`, then removed; on a view too.
pub fn blocking_consumer_removal(store: &redis_pydict::blocking::Store, prefix: &str) {
    let d = store
        .dict::<String, u32>(&format!("{prefix}blocking-removal"))
        .unwrap()
        .with_durable_log(100);
    let options = GroupOptions::new().claim_idle(Duration::from_secs(2));
    let mut gone = d.subscribe_group_with("g", "gone", &options).unwrap();
    d.set("a", &1).unwrap();
    let held = gone.recv_timeout(WAIT).unwrap().unwrap();
    held.release();
    drop(gone);
    let e = d.remove_group_consumer("g", "gone").unwrap_err();
    assert!(
        matches!(e, Error::ConsumerHasPending { pending: 1, .. }),
        "{e}"
    );
    let mut live = d.subscribe_group_with("g", "live", &options).unwrap();
    assert_eq!(live.retire_consumer("gone").unwrap(), 1);
    let again = live.recv_timeout(WAIT).unwrap().unwrap();
    assert_eq!(
        (again.change.clone(), again.deliveries()),
        (Change::Set(1), 2)
    );
    again.ack_blocking().unwrap();
    assert!(!d.remove_group_consumer("g", "gone").unwrap());
    drop(live);
    assert!(d.remove_group_consumer("g", "live").unwrap());
    assert!(d.destroy_group("g").unwrap());
    assert!(!d.destroy_group("g").unwrap());
    let tasks = Task::view(store, &format!("{prefix}blocking-removal-view"))
        .unwrap()
        .with_durable_log(100);
    let mut worker = tasks.subscribe_group("g", "w").unwrap();
    tasks.state.set(&"done".to_owned()).unwrap();
    worker
        .recv_timeout(WAIT)
        .unwrap()
        .unwrap()
        .ack_blocking()
        .unwrap();
    drop(worker);
    assert!(tasks.remove_group_consumer("g", "w").unwrap());
    assert!(tasks.destroy_group("g").unwrap());
}
