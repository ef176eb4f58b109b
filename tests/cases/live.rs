//! Live views (`View::live`): a local snapshot kept current from the change
//! events, never backwards (the `seq` ordering token), never silently stale
//! (gaps reload and say so), read-your-writes; run on one server by
//! `tests/live.rs` and, but for the `server_only` ones, on a cluster by
//! `tests/cluster.rs`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use redis_pydict::{Change, Error, Live, LiveStatus, RedisDict};
use redis_pydict_test::RedisServer;

use crate::support::{self, Ctx};

/// Every case of this file, listed once (see the runners in `tests/support/mod.rs`).
macro_rules! cases {
    ($runner:ident) => {
        $runner! { live:
            #[tokio::test] shared reads_are_local_and_follow_other_writers;
            #[tokio::test] shared read_your_writes_through_the_handle;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            shared counter_is_never_seen_decreasing;
            #[tokio::test] shared every_write_takes_the_next_number;
            #[tokio::test] shared dropping_every_handle_unsubscribes;
            #[tokio::test] shared late_event_older_than_the_snapshot_is_ignored;
            #[tokio::test] exclusive gap_reload_is_reported_and_the_snapshot_is_right_after_it;
            #[tokio::test] shared foreign_seq_key_is_refused_and_changes_nothing;
            #[tokio::test] shared events_without_seq_make_the_handle_reload;
            #[tokio::test] shared a_change_not_received_is_noticed_by_the_next_number;
            #[tokio::test] shared previous_format_namespace_and_payloads_still_work;
            #[tokio::test] shared undecodable_field_is_reported_and_the_last_good_value_stays;
            #[tokio::test] shared expired_field_leaves_the_snapshot_with_expiry_events;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            exclusive converges_under_writers_and_killed_connections;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            server_only converges_under_writers_killed_connections_and_a_restart;
            #[test] blocking blocking_live_get_and_wait_changed;
        }
    };
}
pub(crate) use cases;

const WAIT: Duration = Duration::from_secs(15);

#[derive(RedisDict, Debug, Clone, PartialEq)]
#[redis_dict(prefix = "live")]
pub struct Settings {
    pub threshold: f64,
    #[redis_dict(default)]
    pub name: String,
    #[redis_dict(default)]
    pub hits: u64,
    pub label: Option<String>,
}

#[derive(RedisDict, Debug, Clone, PartialEq, Default)]
#[redis_dict(prefix = "conv")]
pub struct Four {
    #[redis_dict(default)]
    pub a: u64,
    #[redis_dict(default)]
    pub b: u64,
    #[redis_dict(default)]
    pub c: u64,
    #[redis_dict(default)]
    pub d: u64,
}

#[derive(RedisDict, Debug, Clone, PartialEq)]
#[redis_dict(prefix = "mono")]
pub struct Counter {
    #[redis_dict(default)]
    pub n: u64,
}

/// Waits (up to [`WAIT`]) until `check` holds for the live snapshot.
async fn until<T: RedisDict>(live: &mut Live<T>, what: &str, check: impl Fn(&T) -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check(&live.get()) {
        match tokio::time::timeout_at(deadline, live.changed()).await {
            Ok(changed) => changed.unwrap(),
            Err(_) => panic!(
                "{what}: not seen within {WAIT:?}; status {:?}",
                live.status()
            ),
        }
    }
}

/// Waits (up to [`WAIT`]) for the status to say `Invalid`; its error.
async fn reported_invalid<T: RedisDict>(live: &mut Live<T>) -> Arc<Error> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let LiveStatus::Invalid { error, .. } = live.status() {
            return error;
        }
        match tokio::time::timeout_at(deadline, live.changed()).await {
            Ok(changed) => changed.unwrap(),
            Err(_) => panic!("not reported within {WAIT:?}; status {:?}", live.status()),
        }
    }
}

fn start_settings() -> Settings {
    Settings {
        threshold: 0.5,
        name: "first".into(),
        hits: 0,
        label: None,
    }
}

/// Reads are local (no command reaches the server), and writes of another
/// store show up, each waking `changed`.
pub async fn reads_are_local_and_follow_other_writers(ctx: &Ctx) {
    let ns = ctx.ns("local");
    let cfg = Settings::view(&ctx.store, &ns).unwrap();
    cfg.save(&start_settings()).await.unwrap();
    let mut live = cfg.live().await.unwrap();
    assert_eq!(*live.get(), start_settings());
    assert!(live.status().is_fresh());

    let mut raw = ctx.raw(cfg.namespace().name()).await;
    let calls = |raw: &mut redis::aio::MultiplexedConnection| {
        let mut raw = raw.clone();
        async move {
            let info: String = redis::cmd("INFO")
                .arg("stats")
                .query_async(&mut raw)
                .await
                .unwrap();
            info.lines()
                .find_map(|l| l.strip_prefix("total_commands_processed:"))
                .unwrap()
                .trim()
                .parse::<u64>()
                .unwrap()
        }
    };
    let before = calls(&mut raw).await;
    for _ in 0..100_000 {
        assert_eq!(live.get().threshold, 0.5);
    }
    // Only our two INFO calls (and other cases' commands on a shared cluster
    // node, which may add some): never one per read.
    assert!(calls(&mut raw).await - before < 1_000);

    let other = ctx.connect().await;
    let theirs = Settings::view(&other, &ns).unwrap();
    theirs.threshold.set(&0.9).await.unwrap();
    until(&mut live, "threshold 0.9", |s| s.threshold == 0.9).await;
    theirs.label.set(&Some("x".into())).await.unwrap();
    until(&mut live, "label x", |s| s.label.as_deref() == Some("x")).await;
    theirs
        .update(|s: &mut Settings| s.name = "second".into())
        .await
        .unwrap();
    until(&mut live, "name second", |s| s.name == "second").await;
    assert_eq!(*live.get(), theirs.load().await.unwrap());
    assert!(live.status().is_fresh());
}

/// Every write through the handle is in the snapshot when it returns.
pub async fn read_your_writes_through_the_handle(ctx: &Ctx) {
    let cfg = Settings::view(&ctx.store, &ctx.ns("ryw")).unwrap();
    cfg.save(&start_settings()).await.unwrap();
    let live = cfg.live().await.unwrap();
    for i in 0..50u64 {
        live.set(&cfg.hits, &i).await.unwrap();
        assert_eq!(live.get().hits, i);
        let mut next = (*live.get()).clone();
        next.name = format!("n{i}");
        live.save(&next).await.unwrap();
        assert_eq!(*live.get(), next);
        let got = live
            .update(|s: &mut Settings| {
                s.threshold += 1.0;
                s.threshold
            })
            .await
            .unwrap();
        assert_eq!(live.get().threshold, got);
    }
    // A write made elsewhere, then `sync`: in the snapshot on return.
    cfg.dict::<String>()
        .set("name", &"direct".into())
        .await
        .unwrap();
    live.sync().await.unwrap();
    assert_eq!(live.get().name, "direct");
    // A field of another namespace is refused, nothing written.
    let elsewhere = Settings::view(&ctx.store, &ctx.ns("ryw-other")).unwrap();
    let refused = live.set(&elsewhere.hits, &7).await.unwrap_err();
    assert!(matches!(refused, Error::Config(_)), "{refused}");
    assert_eq!(elsewhere.hits.get().await.unwrap(), None);
}

/// A counter incremented (`update_with`) by another store is never observed
/// decreasing, by live views started while the increments run (the initial
/// load races with events published just before it).
pub async fn counter_is_never_seen_decreasing(ctx: &Ctx) {
    const TOTAL: u64 = 2_000;
    let ns = ctx.ns("mono");
    let writer_store = ctx.connect().await;
    let writer = tokio::spawn(async move {
        let view = Counter::view(&writer_store, &ns).unwrap();
        for _ in 0..TOTAL {
            view.n.update_with(|n| n.unwrap_or(0) + 1).await.unwrap();
        }
    });
    let cfg = Counter::view(&ctx.store, &ctx.ns("mono")).unwrap();
    let mut watchers = Vec::new();
    // Live views started one after another while the writer runs.
    while !writer.is_finished() && watchers.len() < 8 {
        let mut live = cfg.live().await.unwrap();
        watchers.push(tokio::spawn(async move {
            let (mut last_n, mut last_seq, mut seen) = (live.get().n, live.seq(), 0u64);
            let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
            while last_n < TOTAL {
                tokio::time::timeout_at(deadline, live.changed())
                    .await
                    .expect("the counter reached its total in time")
                    .unwrap();
                let (n, seq) = (live.get().n, live.seq());
                assert!(n >= last_n, "went backwards: {last_n} then {n}");
                assert!(seq >= last_seq, "seq went backwards: {last_seq} then {seq}");
                (last_n, last_seq, seen) = (n, seq, seen + 1);
            }
            seen
        }));
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    // And a reader polling without waiting, as a hot path does.
    let poller = {
        let live = cfg.live().await.unwrap();
        tokio::spawn(async move {
            let mut last = 0;
            while last < TOTAL {
                let n = live.get().n;
                assert!(n >= last, "went backwards: {last} then {n}");
                last = n;
                tokio::task::yield_now().await;
            }
        })
    };
    writer.await.unwrap();
    assert!(
        watchers.len() >= 2,
        "live views started during the increments"
    );
    for watcher in watchers {
        let seen = watcher.await.unwrap();
        assert!(seen >= 1);
    }
    tokio::time::timeout(WAIT, poller).await.unwrap().unwrap();
    assert_eq!(cfg.load().await.unwrap().n, TOTAL);
}

/// Kills the live view's pub/sub connection while the server holds off
/// scripts (`CLIENT PAUSE ... WRITE`): the reload is seen pending
/// (`Reloading`), then lands, and the snapshot has what was written while
/// no event could arrive (a write with events off).
pub async fn gap_reload_is_reported_and_the_snapshot_is_right_after_it(ctx: &Ctx) {
    let ns = ctx.ns("gap");
    let cfg = Settings::view(&ctx.store, &ns).unwrap();
    cfg.save(&start_settings()).await.unwrap();
    let mut live = cfg.live().await.unwrap();
    let synced = live.status().synced_at();
    // Written silently: only a reload can show it.
    let silent = cfg.with_notifications(false);
    silent.threshold.set(&2.5).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(live.get().threshold, 0.5, "no event was published");

    let mut raw = ctx.raw(cfg.namespace().name()).await;
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(1_500)
        .arg("WRITE")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(support::kill_pubsub(ctx).await >= 1);
    let deadline = Instant::now() + Duration::from_millis(1_400);
    let mut reported = None;
    while Instant::now() < deadline {
        if let LiveStatus::Reloading { since, synced_at } = live.status() {
            reported = Some((since, synced_at));
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (since, synced_at) = reported.expect("the status said Reloading");
    assert_eq!(synced_at, synced);
    assert!(since >= synced);
    assert!(!live.fresh_within(Duration::from_millis(10)).await);
    tokio::time::timeout(WAIT, live.fresh())
        .await
        .unwrap()
        .unwrap();
    let status = live.status();
    assert!(status.is_fresh(), "{status:?}");
    assert!(status.synced_at() > synced);
    assert_eq!(live.get().threshold, 2.5);
    assert_eq!(*live.get(), cfg.load().await.unwrap());
    // Events flow again.
    cfg.hits.set(&9).await.unwrap();
    until(&mut live, "hits 9", |s| s.hits == 9).await;
}

/// A `{ns}#seq` that is not the library's counter: writes and `live()` are
/// refused with `WrongType` naming it, and nothing is changed.
pub async fn foreign_seq_key_is_refused_and_changes_nothing(ctx: &Ctx) {
    let cfg = Settings::view(&ctx.store, &ctx.ns("foreign")).unwrap();
    cfg.save(&start_settings()).await.unwrap();
    let seq_key = cfg.namespace().seq_key().to_owned();
    let mut raw = ctx.raw(cfg.namespace().name()).await;
    // The same namespace as a plain dict: its `set` takes the single-entry
    // script, which checks `{ns}#seq` its own way (INCRBY, put back).
    let dict = ctx
        .store
        .dict::<String, f64>(cfg.namespace().name())
        .unwrap();
    // "007": digits, but not what INCRBY accepts (it would fail after the
    // writes of a unit that checked only for digits).
    for foreign in ["hash", "negative", "leading zero", "text"] {
        let _: () = redis::cmd("DEL")
            .arg(&seq_key)
            .query_async(&mut raw)
            .await
            .unwrap();
        let mut write = match foreign {
            "hash" => redis::cmd("HSET"),
            _ => redis::cmd("SET"),
        };
        write.arg(&seq_key);
        match foreign {
            "hash" => write.arg("f").arg("v"),
            "negative" => write.arg("-5"),
            "leading zero" => write.arg("007"),
            _ => write.arg("not a number"),
        };
        let _: () = write.query_async(&mut raw).await.unwrap();
        let refused = cfg.threshold.set(&9.0).await.unwrap_err();
        match &refused {
            Error::WrongType { key, role, .. } => {
                assert_eq!((key.as_str(), *role), (seq_key.as_str(), "sequence number"))
            }
            other => panic!("{foreign}: expected WrongType, got {other}"),
        }
        assert!(refused.to_string().contains(&seq_key), "{refused}");
        let refused = cfg.save(&start_settings()).await.unwrap_err();
        assert!(matches!(refused, Error::WrongType { .. }), "{refused}");
        let refused = cfg.live().await.unwrap_err();
        assert!(matches!(refused, Error::WrongType { .. }), "{refused}");
        let refused = dict.set("threshold", &9.0).await.unwrap_err();
        match &refused {
            Error::WrongType { key, .. } => assert_eq!(key, &seq_key, "{foreign}"),
            other => panic!("{foreign}: dict set: expected WrongType, got {other}"),
        }
        if let Some(was) = match foreign {
            "negative" => Some("-5"),
            "leading zero" => Some("007"),
            _ => None,
        } {
            let kept: String = redis::cmd("GET")
                .arg(&seq_key)
                .query_async(&mut raw)
                .await
                .unwrap();
            assert_eq!(kept, was, "a refused write leaves the counter as it was");
        }
        assert_eq!(
            cfg.load().await.unwrap(),
            start_settings(),
            "nothing changed"
        );
    }
    let kept: String = redis::cmd("GET")
        .arg(&seq_key)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(kept, "not a number", "the foreign key is left alone");
    let _: () = redis::cmd("DEL")
        .arg(&seq_key)
        .query_async(&mut raw)
        .await
        .unwrap();
    cfg.threshold.set(&9.0).await.unwrap();
    assert_eq!(cfg.live().await.unwrap().get().threshold, 9.0);

    // A field's key holding foreign data: load and live() refuse it (the
    // atomic read sees it as nil) rather than take the field as missing.
    let label = cfg.namespace().entry_key(cfg.label.key());
    let _: () = redis::cmd("DEL")
        .arg(&label)
        .query_async(&mut raw)
        .await
        .unwrap();
    let _: () = redis::cmd("RPUSH")
        .arg(&label)
        .arg("x")
        .query_async(&mut raw)
        .await
        .unwrap();
    for refused in [
        cfg.live().await.map(drop).unwrap_err(),
        cfg.load().await.map(drop).unwrap_err(),
    ] {
        match &refused {
            Error::WrongType { key, found, .. } => {
                assert_eq!((key.as_str(), found.as_str()), (label.as_str(), "list"))
            }
            other => panic!("expected WrongType, got {other}"),
        }
    }
}

/// CBOR of a text.
fn text(out: &mut Vec<u8>, t: &str) {
    assert!(t.len() < 24);
    out.push(0x60 | t.len() as u8);
    out.extend_from_slice(t.as_bytes());
}

/// A `set` event payload as a writer from before `seq` wrote it.
fn old_set_payload(key: &str, value: &[u8]) -> Vec<u8> {
    let mut p = vec![0xa5];
    text(&mut p, "v");
    p.push(0x01);
    text(&mut p, "op");
    text(&mut p, "set");
    text(&mut p, "key");
    text(&mut p, key);
    text(&mut p, "origin");
    p.push(0xf6);
    text(&mut p, "value");
    p.extend_from_slice(value);
    p
}

fn cbor<T: serde::Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(value, &mut out).unwrap();
    out
}

/// Every kind of write numbers its events with the namespace's next
/// sequence numbers, a batch's events consecutively, in its atomic unit;
/// a write that changes nothing takes none; `{ns}#seq` holds the last one.
pub async fn every_write_takes_the_next_number(ctx: &Ctx) {
    let store = ctx.connect().await;
    let d = store.dict::<String, u32>(&ctx.ns("numbers")).unwrap();
    let mut sub = d.subscribe("*").await.unwrap();
    d.set("a", &1).await.unwrap();
    d.set_many([("b", 2), ("c", 3), ("d", 4)]).await.unwrap();
    d.set_with_ttl("e", &5, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(d.set_if_absent("f", &6).await.unwrap());
    assert!(!d.set_if_absent("f", &7).await.unwrap()); // no change, no number
    d.update_with("a", |v| v.unwrap_or(0) + 10).await.unwrap();
    assert!(d.expire("b", Duration::from_secs(60)).await.unwrap());
    assert!(d.persist("b").await.unwrap());
    assert!(d.delete("c").await.unwrap());
    assert!(!d.delete("c").await.unwrap()); // no change, no number
    assert_eq!(d.remove("d").await.unwrap(), Some(4));
    d.clear().await.unwrap();
    let mut numbers = Vec::new();
    while numbers.len() < 12 {
        let event = tokio::time::timeout(WAIT, sub.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        numbers.push(event.seq.expect("every library event carries seq"));
    }
    assert_eq!(numbers, (1..=12).collect::<Vec<u64>>());
    let mut raw = ctx.raw(d.namespace().name()).await;
    let last: u64 = redis::cmd("GET")
        .arg(d.namespace().seq_key())
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(last, 12, "clear keeps the counter");
}

/// The handle's task and subscription live as long as a clone of the
/// handle: dropping the last one unsubscribes.
pub async fn dropping_every_handle_unsubscribes(ctx: &Ctx) {
    let cfg = Settings::view(&ctx.store, &ctx.ns("drop")).unwrap();
    cfg.save(&start_settings()).await.unwrap();
    let channel = cfg.namespace().key_channel("hits");
    let mut raw = ctx.raw(cfg.namespace().name()).await;
    let subscribers = |raw: &mut redis::aio::MultiplexedConnection| {
        let (mut raw, channel) = (raw.clone(), channel.clone());
        async move {
            let (_, n): (String, u64) = redis::cmd("PUBSUB")
                .arg("NUMSUB")
                .arg(&channel)
                .query_async(&mut raw)
                .await
                .unwrap();
            n
        }
    };
    let live = cfg.live().await.unwrap();
    let clone = live.clone();
    assert_eq!(subscribers(&mut raw).await, 1);
    drop(live);
    cfg.hits.set(&1).await.unwrap();
    let mut clone = clone;
    until(&mut clone, "hits 1 through the clone", |s| s.hits == 1).await;
    assert_eq!(subscribers(&mut raw).await, 1, "a clone still follows");
    drop(clone);
    support::eventually(WAIT, || {
        let count = subscribers(&mut raw);
        async move {
            match count.await {
                0 => Ok(()),
                n => Err(format!("{n} subscribers left")),
            }
        }
    })
    .await;
}

/// The classic race, made deterministic: an event published before the
/// snapshot's state but delivered after it (here: published again, late,
/// with its old number) is ignored; the snapshot does not go back.
pub async fn late_event_older_than_the_snapshot_is_ignored(ctx: &Ctx) {
    let cfg = Settings::view(&ctx.store, &ctx.ns("late")).unwrap();
    cfg.save(&start_settings()).await.unwrap();
    let mut early = cfg.subscribe().await.unwrap();
    cfg.hits.set(&1).await.unwrap();
    let first = tokio::time::timeout(WAIT, early.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let old_seq = first.seq.expect("library events carry seq");
    cfg.hits.set(&2).await.unwrap();
    let mut live = cfg.live().await.unwrap();
    assert_eq!((live.get().hits, live.seq()), (2, old_seq + 1));
    // The event of `hits = 1`, delivered now.
    let mut late = old_set_payload("hits", &cbor(&1u64));
    late[0] += 1;
    text(&mut late, "seq");
    late.extend_from_slice(&cbor(&old_seq));
    let mut raw = ctx.raw(cfg.namespace().name()).await;
    let _: () = redis::cmd("PUBLISH")
        .arg(cfg.namespace().key_channel("hits"))
        .arg(late)
        .query_async(&mut raw)
        .await
        .unwrap();
    // A later change on another field, to know the late one was handled.
    cfg.name.set(&"after".into()).await.unwrap();
    until(&mut live, "name after", |s| s.name == "after").await;
    assert_eq!(live.get().hits, 2, "the late, older event was ignored");
    assert_eq!(live.seq(), old_seq + 2);
}

/// An event without `"seq"` (a writer older than the field) cannot be
/// ordered: the handle reloads (documented), so the snapshot shows what
/// Redis holds, not what the event says.
pub async fn events_without_seq_make_the_handle_reload(ctx: &Ctx) {
    let cfg = Settings::view(&ctx.store, &ctx.ns("oldwriter")).unwrap();
    cfg.save(&start_settings()).await.unwrap();
    let mut live = cfg.live().await.unwrap();
    let synced = live.status().synced_at();
    let mut raw = ctx.raw(cfg.namespace().name()).await;
    // The old writer stored 3.5, then published an event saying 7.5 (the two
    // disagree on purpose: the event is not trusted, Redis is read).
    let key = cfg.namespace().entry_key("threshold");
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg(cbor(&3.5f64))
        .query_async(&mut raw)
        .await
        .unwrap();
    let _: () = redis::cmd("PUBLISH")
        .arg(cfg.namespace().key_channel("threshold"))
        .arg(old_set_payload("threshold", &cbor(&7.5f64)))
        .query_async(&mut raw)
        .await
        .unwrap();
    until(&mut live, "the reload after an event without seq", |s| {
        s.threshold == 3.5
    })
    .await;
    tokio::time::timeout(WAIT, live.fresh())
        .await
        .unwrap()
        .unwrap();
    assert!(live.status().synced_at() > synced, "it reloaded");
    // Library writes (with seq) go on being applied from their events.
    cfg.hits.set(&4).await.unwrap();
    until(&mut live, "hits 4", |s| s.hits == 4).await;
    assert_eq!(live.get().threshold, 3.5);
}

/// A write with events off publishes nothing, but takes a number: the next
/// event's number skips it, and the handle reloads, so the silent change
/// shows up too (and the status says `Reloading` until it has).
pub async fn a_change_not_received_is_noticed_by_the_next_number(ctx: &Ctx) {
    let cfg = Settings::view(&ctx.store, &ctx.ns("skipped")).unwrap();
    cfg.save(&start_settings()).await.unwrap();
    let mut live = cfg.live().await.unwrap();
    let synced = live.status().synced_at();
    cfg.with_notifications(false)
        .name
        .set(&"silent".into())
        .await
        .unwrap();
    // Not a field of the struct: its event is not even received.
    cfg.dict::<u64>().set("not-a-field", &1).await.unwrap();
    cfg.hits.set(&8).await.unwrap();
    until(&mut live, "the silent write", |s| {
        s.name == "silent" && s.hits == 8
    })
    .await;
    tokio::time::timeout(WAIT, live.fresh())
        .await
        .unwrap()
        .unwrap();
    assert!(live.status().synced_at() > synced, "it reloaded");
    assert_eq!(*live.get(), cfg.load().await.unwrap());
}

/// A namespace written in the previous form (entries and index, no
/// `{ns}#seq`) loads, goes live (seq 0) and takes new writes; a payload
/// without `"seq"` is still an event (`seq: None`), and the library's
/// events carry consecutive numbers from there.
pub async fn previous_format_namespace_and_payloads_still_work(ctx: &Ctx) {
    let cfg = Settings::view(&ctx.store, &ctx.ns("previous")).unwrap();
    let ns = cfg.namespace().clone();
    let mut raw = ctx.raw(ns.name()).await;
    for (key, value) in [("threshold", cbor(&1.25f64)), ("name", cbor(&"old"))] {
        let _: () = redis::cmd("SET")
            .arg(ns.entry_key(key))
            .arg(value)
            .query_async(&mut raw)
            .await
            .unwrap();
        let _: () = redis::cmd("ZADD")
            .arg(ns.index_key())
            .arg("inf")
            .arg(key)
            .query_async(&mut raw)
            .await
            .unwrap();
    }
    let exists: bool = redis::cmd("EXISTS")
        .arg(ns.seq_key())
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(!exists);
    let expected = Settings {
        threshold: 1.25,
        name: "old".into(),
        hits: 0,
        label: None,
    };
    assert_eq!(cfg.load().await.unwrap(), expected);
    let mut live = cfg.live().await.unwrap();
    assert_eq!((live.seq(), (*live.get()).clone()), (0, expected));

    let mut events = cfg.subscribe().await.unwrap();
    let _: () = redis::cmd("PUBLISH")
        .arg(ns.key_channel("hits"))
        .arg(old_set_payload("hits", &cbor(&0u64)))
        .query_async(&mut raw)
        .await
        .unwrap();
    let old = tokio::time::timeout(WAIT, events.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(old.seq, None);
    assert!(
        matches!(old.event, SettingsEvent::Hits(Change::Set(0))),
        "{old:?}"
    );

    cfg.hits.set(&1).await.unwrap();
    cfg.dict::<u64>()
        .set_many([("hits".to_owned(), 2), ("hits".to_owned(), 3)])
        .await
        .unwrap();
    let mut seqs = Vec::new();
    while seqs.len() < 3 {
        let e = tokio::time::timeout(WAIT, events.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        seqs.push(e.seq);
    }
    assert_eq!(seqs, [Some(1), Some(2), Some(3)]);
    let counter: String = redis::cmd("GET")
        .arg(ns.seq_key())
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(counter, "3");
    until(&mut live, "hits 3", |s| s.hits == 3).await;
    assert_eq!(live.seq(), 3);
    // `clear` does not reset the counter.
    cfg.clear().await.unwrap();
    let counter: u64 = redis::cmd("GET")
        .arg(ns.seq_key())
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(counter > 3);
}

/// A field value that does not decode as its type (written by another
/// program through a dict of another type) is reported (`Invalid`, naming
/// the field); the snapshot keeps the last good value and follows the other
/// fields; a good value clears it.
pub async fn undecodable_field_is_reported_and_the_last_good_value_stays(ctx: &Ctx) {
    let cfg = Settings::view(&ctx.store, &ctx.ns("undecodable")).unwrap();
    cfg.save(&start_settings()).await.unwrap();
    let mut live = cfg.live().await.unwrap();
    cfg.dict::<String>()
        .set("threshold", &"not a float".into())
        .await
        .unwrap();
    let error = reported_invalid(&mut live).await;
    assert!(
        matches!(&*error, Error::Decode { key, .. } if key == "threshold"),
        "{error}"
    );
    assert_eq!(live.get().threshold, 0.5, "the last good value stays");
    assert!(!live.fresh_within(Duration::from_millis(50)).await);
    cfg.hits.set(&5).await.unwrap();
    until(&mut live, "hits 5", |s| s.hits == 5).await;
    assert!(!live.status().is_fresh(), "still reported");
    // A required field deleted: reported the same way (load()'s rules).
    cfg.threshold.set(&0.25).await.unwrap();
    tokio::time::timeout(WAIT, live.fresh())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(live.get().threshold, 0.25);
    cfg.threshold.delete().await.unwrap();
    let error = reported_invalid(&mut live).await;
    assert!(matches!(&*error, Error::MissingField { .. }), "{error}");
    assert_eq!(live.get().threshold, 0.25);
}

/// With expiry events on, a field whose TTL runs out leaves the snapshot
/// (an `Option` field becomes `None`). (Without them, the documented limit:
/// the value stays until the next write or reload.)
pub async fn expired_field_leaves_the_snapshot_with_expiry_events(ctx: &Ctx) {
    let store = ctx
        .builder()
        .enable_expiry_events(true)
        .connect()
        .await
        .unwrap();
    let cfg = Settings::view(&store, &ctx.ns("expiry")).unwrap();
    cfg.save(&start_settings()).await.unwrap();
    cfg.label
        .set_with_ttl(&Some("brief".into()), Duration::from_millis(300))
        .await
        .unwrap();
    let mut live = cfg.live().await.unwrap();
    assert_eq!(live.get().label.as_deref(), Some("brief"));
    until(&mut live, "label expired", |s| s.label.is_none()).await;
    tokio::time::timeout(WAIT, live.fresh())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(*live.get(), cfg.load().await.unwrap());
}

/// 4 concurrent writers (field `set`, struct `save`, `update`) while the live
/// view's pub/sub connection is killed several times (and, with `server`,
/// the server restarts once): after they stop, the snapshot equals `load()`
/// within a bounded time.
async fn converge(ctx: &Ctx, mut server: Option<&mut RedisServer>) {
    let ns = ctx.ns("converge");
    let cfg = Four::view(&ctx.store, &ns).unwrap();
    cfg.save(&Four::default()).await.unwrap();
    let mut live = cfg.live().await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4u64 {
        let store = ctx.connect().await;
        let (ns, stop) = (ns.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let view = Four::view(&store, &ns).unwrap();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                // Errors while the server restarts are expected: go on.
                let _ = match w {
                    0 => view.a.set(&i).await,
                    1 => {
                        view.save(&Four {
                            a: i,
                            b: i,
                            c: i,
                            d: i,
                        })
                        .await
                    }
                    2 => view.update(|f: &mut Four| f.c += 1).await,
                    _ => view.d.update(|d| *d += 1).await,
                };
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }));
    }
    for round in 0..4 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        if round == 2 {
            if let Some(server) = server.as_deref_mut() {
                server.restart();
                continue;
            }
        }
        // The live view resubscribes by itself: kill it once it has.
        support::eventually(WAIT, || async {
            match support::kill_pubsub(ctx).await {
                0 => Err("no pub/sub client yet"),
                _ => Ok(()),
            }
        })
        .await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.await.unwrap();
    }
    let stored = support::eventually(WAIT, || cfg.load()).await;
    assert_ne!(stored, Four::default(), "the writers wrote");
    let deadline = tokio::time::Instant::now() + WAIT;
    while !(*live.get() == stored && live.status().is_fresh()) {
        if tokio::time::timeout_at(deadline, live.changed())
            .await
            .is_err()
        {
            panic!(
                "not converged: live {:?} ({:?}), stored {stored:?}",
                live.get(),
                live.status()
            );
        }
    }
}

pub async fn converges_under_writers_and_killed_connections(ctx: &Ctx) {
    converge(ctx, None).await;
}

pub async fn converges_under_writers_killed_connections_and_a_restart() {
    let mut server = RedisServer::start();
    let ctx = Ctx::on_server(&server).await;
    converge(&ctx, Some(&mut server)).await;
}

/// The blocking mirror: `get` without I/O, `wait_changed` with a timeout,
/// read-your-writes, `wait_fresh`.
pub fn blocking_live_get_and_wait_changed(store: &redis_pydict::blocking::Store, prefix: &str) {
    let cfg = Settings::view(store, &format!("{prefix}blocking")).unwrap();
    cfg.save(&start_settings()).unwrap();
    let mut live = cfg.live().unwrap();
    assert_eq!(*live.get(), start_settings());
    assert!(
        !live.wait_changed(Duration::from_millis(100)).unwrap(),
        "nothing changed"
    );
    let other = cfg.dict::<u64>();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        other.set("hits", &3).unwrap();
    });
    let deadline = Instant::now() + WAIT;
    while live.get().hits != 3 {
        assert!(Instant::now() < deadline, "hits 3 not seen");
        live.wait_changed(Duration::from_secs(1)).unwrap();
    }
    writer.join().unwrap();
    live.set(&cfg.threshold, &0.125).unwrap();
    assert_eq!(live.get().threshold, 0.125);
    live.update(|s: &mut Settings| s.hits += 1).unwrap();
    assert_eq!(live.get().hits, 4);
    assert!(live.wait_fresh(Duration::from_secs(1)).unwrap());
    assert_eq!(*live.get(), cfg.load().unwrap());
}
