//! The near cache (`Dict::cached`): hits without I/O, eviction, invalidation
//! by library and foreign writers (events off, raw SET/DEL/EXPIRE), FLUSHALL,
//! a killed tracking connection, TTLs, bad data, a concurrent stress test and
//! the blocking mirror: run on one server by `tests/cache.rs` and, but for the
//! `server_only` ones, on a cluster by `tests/cluster.rs`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis_pydict::{CachedDict, Error, FlushCause, CACHE_CLIENT_NAME};
use redis_pydict_test::RedisServer;
use serde::Serialize;

use crate::support::{self, Ctx};

/// Every case of this file, listed once (see the runners in `tests/support/mod.rs`).
macro_rules! cases {
    ($runner:ident) => {
        $runner! { cache:
            #[tokio::test] exclusive hits_do_no_io_and_misses_fill;
            #[tokio::test] shared eviction_at_capacity;
            #[tokio::test] shared another_store_writing_with_events_off_invalidates;
            #[tokio::test] shared foreign_set_del_expire_invalidate;
            #[tokio::test] shared writes_through_the_handle_are_read_back;
            #[tokio::test] shared an_entry_never_outlives_its_ttl;
            #[tokio::test] shared bad_capacity_foreign_type_and_undecodable_values_are_errors;
            #[tokio::test] exclusive flushall_flushes_the_cache;
            #[tokio::test] exclusive killed_tracking_connection_flushes_reports_and_recovers;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            shared concurrent_writers_and_cached_readers_converge;
            #[tokio::test] server_only hits_are_served_while_the_server_is_stopped;
            #[tokio::test] server_only server_restart_flushes_and_the_cache_recovers;
            #[tokio::test] server_only a_silent_tracking_connection_is_caught_by_the_heartbeat;
            #[test] blocking blocking_cached_get_invalidation_and_waits;
        }
    };
}
pub(crate) use cases;

const WAIT: Duration = Duration::from_secs(10);

/// The CBOR encoding of `value`, as the library writes it.
fn cbor<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(value, &mut out).unwrap();
    out
}

/// Raw `SET {ns}:key <cbor>` behind the library's back (no index, no event).
async fn raw_set<T: Serialize>(raw: &mut MultiplexedConnection, ns: &str, key: &str, value: &T) {
    redis::cmd("SET")
        .arg(format!("{{{ns}}}:{key}"))
        .arg(cbor(value))
        .query_async::<()>(raw)
        .await
        .unwrap();
}

/// Reads `key` through the cache until it returns `want` (the invalidation
/// arrives asynchronously), failing after [`WAIT`].
async fn until_cached_is<V>(cached: &CachedDict<String, V>, key: &str, want: Option<V>)
where
    V: serde::Serialize
        + serde::de::DeserializeOwned
        + Clone
        + Send
        + PartialEq
        + std::fmt::Debug
        + 'static,
{
    let deadline = Instant::now() + WAIT;
    loop {
        let got = cached.get(key).await.unwrap();
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{key}: still {got:?}, expected {want:?}; {:?}",
            cached.status()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits for a flush after `seen`, returning the new count.
async fn flushed_after<V>(cached: &CachedDict<String, V>, seen: u64) -> u64 {
    tokio::time::timeout(WAIT, cached.wait_for_flush(seen))
        .await
        .unwrap_or_else(|_| panic!("no flush reported: {:?}", cached.status()))
}

/// Hits are served from memory: the server's GET count does not move over
/// a thousand hits; a miss reads once and fills.
pub async fn hits_do_no_io_and_misses_fill(ctx: &Ctx) {
    let ns = ctx.ns("hits");
    let d = ctx.store.dict::<String, String>(&ns).unwrap();
    d.set("a", &"alpha".into()).await.unwrap();
    let cached = d.cached(100).await.unwrap();
    let mut raw = ctx.raw(&ns).await;

    assert_eq!(cached.get("a").await.unwrap(), Some("alpha".into()));
    assert_eq!(cached.get("missing").await.unwrap(), None);
    let gets_before = support::command_calls(&mut raw, "get").await;
    for _ in 0..1000 {
        assert_eq!(cached.get("a").await.unwrap(), Some("alpha".into()));
        assert_eq!(cached.get("missing").await.unwrap(), None);
        assert!(cached.contains("a").await.unwrap());
    }
    let gets_after = support::command_calls(&mut raw, "get").await;
    assert_eq!(gets_after, gets_before, "hits sent GETs to the server");
    let status = cached.status();
    assert_eq!((status.misses, status.hits), (2, 3000), "{status:?}");
    assert_eq!(status.entries, 2, "the absence is cached too");
    assert!(status.trusted);
    assert_eq!(status.flushes, 0);
}

/// The least recently used entry goes first; evictions are counted.
pub async fn eviction_at_capacity(ctx: &Ctx) {
    let d = ctx.store.dict::<String, u32>(&ctx.ns("lru")).unwrap();
    for i in 0..5 {
        d.set(&format!("k{i}"), &i).await.unwrap();
    }
    let cached = d.cached(3).await.unwrap();
    for i in 0..3 {
        assert_eq!(cached.get(&format!("k{i}")).await.unwrap(), Some(i));
    }
    // k0 is used again: k1 is now the least recently used.
    assert_eq!(cached.get("k0").await.unwrap(), Some(0));
    assert_eq!(cached.get("k3").await.unwrap(), Some(3)); // evicts k1
    assert_eq!(cached.get("k4").await.unwrap(), Some(4)); // evicts k2
    let status = cached.status();
    assert_eq!(
        (status.entries, status.capacity, status.evictions),
        (3, 3, 2)
    );
    let misses = status.misses;
    assert_eq!(cached.get("k0").await.unwrap(), Some(0));
    assert_eq!(cached.status().misses, misses, "k0 stayed");
    assert_eq!(cached.get("k1").await.unwrap(), Some(1));
    assert_eq!(cached.status().misses, misses + 1, "k1 was evicted");
}

/// Another store (another process, for all the cache knows) writing through
/// the library with change events switched off still invalidates.
pub async fn another_store_writing_with_events_off_invalidates(ctx: &Ctx) {
    let ns = ctx.ns("other");
    let reader = ctx.store.dict::<String, u32>(&ns).unwrap();
    let writer_store = ctx.builder().notifications(false).connect().await.unwrap();
    let writer = writer_store.dict::<String, u32>(&ns).unwrap();
    writer.set("n", &1).await.unwrap();
    let cached = reader.cached(10).await.unwrap();
    assert_eq!(cached.get("n").await.unwrap(), Some(1));
    assert_eq!(cached.get("n").await.unwrap(), Some(1));

    writer.set("n", &2).await.unwrap();
    until_cached_is(&cached, "n", Some(2)).await;
    writer
        .update_with("n", |n| n.unwrap_or(0) + 10)
        .await
        .unwrap();
    until_cached_is(&cached, "n", Some(12)).await;
    writer.delete("n").await.unwrap();
    until_cached_is(&cached, "n", None).await;
    writer.set("n", &3).await.unwrap(); // a cached absence is invalidated too
    until_cached_is(&cached, "n", Some(3)).await;
    assert!(cached.status().invalidations >= 4, "{:?}", cached.status());
}

/// Raw redis-rs writes (as `redis-cli` would make them: no index, no
/// event) invalidate: SET, DEL, EXPIRE.
pub async fn foreign_set_del_expire_invalidate(ctx: &Ctx) {
    let ns = ctx.ns("foreign");
    let d = ctx.store.dict::<String, String>(&ns).unwrap();
    let mut raw = ctx.raw(&ns).await;
    raw_set(&mut raw, &ns, "k", &"one").await;
    let cached = d.cached(10).await.unwrap();
    assert_eq!(cached.get("k").await.unwrap(), Some("one".into()));

    raw_set(&mut raw, &ns, "k", &"two").await;
    until_cached_is(&cached, "k", Some("two".into())).await;

    let _: () = redis::cmd("DEL")
        .arg(format!("{{{ns}}}:k"))
        .query_async(&mut raw)
        .await
        .unwrap();
    until_cached_is(&cached, "k", None).await;

    raw_set(&mut raw, &ns, "k", &"three").await;
    until_cached_is(&cached, "k", Some("three".into())).await;
    let _: () = redis::cmd("PEXPIRE")
        .arg(format!("{{{ns}}}:k"))
        .arg(200)
        .query_async(&mut raw)
        .await
        .unwrap();
    // Gone within the TTL plus delivery, whether the server's expiry
    // invalidation or the cached deadline ends it first.
    until_cached_is(&cached, "k", None).await;
}

/// Writes through the handle: once they return, reads see them.
pub async fn writes_through_the_handle_are_read_back(ctx: &Ctx) {
    let d = ctx.store.dict::<String, u32>(&ctx.ns("ryw")).unwrap();
    let cached = d.cached(10).await.unwrap();
    for i in 0..50 {
        cached.set("k", &i).await.unwrap();
        assert_eq!(cached.get("k").await.unwrap(), Some(i));
        assert_eq!(d.get("k").await.unwrap(), Some(i));
    }
    assert!(cached.delete("k").await.unwrap());
    assert_eq!(cached.get("k").await.unwrap(), None);
    cached.set("k", &7).await.unwrap();
    assert_eq!(cached.remove("k").await.unwrap(), Some(7));
    assert_eq!(cached.get("k").await.unwrap(), None);
    assert_eq!(d.get("k").await.unwrap(), None);
    assert_eq!(cached.len().await.unwrap(), 0);
}

/// A cached entry is gone once its TTL has passed, even read right away.
pub async fn an_entry_never_outlives_its_ttl(ctx: &Ctx) {
    let d = ctx.store.dict::<String, u32>(&ctx.ns("ttl")).unwrap();
    let cached = d.cached(10).await.unwrap();
    // Redis keeps a key readable through the millisecond its expiry falls
    // in (it is expired once the server's ms clock is past that ms), which
    // can end up to 1 ms after `read_at` + TTL: that is the bound a read of
    // the server itself keeps, and the cache must keep it too. Several
    // rounds: where in its millisecond each write lands varies.
    for round in 0..6 {
        let key = format!("t{round}");
        d.set_with_ttl(&key, &1, Duration::from_millis(100))
            .await
            .unwrap();
        let read_at = Instant::now();
        assert_eq!(cached.get(&key).await.unwrap(), Some(1));
        // Hit until the deadline, never after: a read asked for (not
        // answered: its reply may take a while) from then on must miss.
        loop {
            let asked = read_at.elapsed();
            let got = cached.get(&key).await.unwrap();
            if got.is_none() {
                break;
            }
            assert!(
                asked < Duration::from_millis(101),
                "served {got:?} to a read asked {asked:?} after the first, past its 100 ms TTL and the server's last ms"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    cached
        .set_with_ttl("w", &2, Duration::from_millis(100))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(cached.get("w").await.unwrap(), None);
}

/// Bad input is a clear error, never a panic or a cached wrong value.
pub async fn bad_capacity_foreign_type_and_undecodable_values_are_errors(ctx: &Ctx) {
    let ns = ctx.ns("bad");
    let d = ctx.store.dict::<String, u32>(&ns).unwrap();
    match d.cached(0).await {
        Err(Error::Config(message)) => assert!(message.contains("capacity"), "{message}"),
        other => panic!("expected a config error, got {other:?}"),
    }
    let cached = d.cached(10).await.unwrap();
    let mut raw = ctx.raw(&ns).await;
    let _: () = redis::cmd("RPUSH")
        .arg(format!("{{{ns}}}:list"))
        .arg("x")
        .query_async(&mut raw)
        .await
        .unwrap();
    raw_set(&mut raw, &ns, "text", &"not a number").await;
    for _ in 0..2 {
        match cached.get("list").await {
            Err(Error::WrongType { key, found, .. }) => {
                assert!(key.ends_with(":list"), "{key}");
                assert_eq!(found, "list");
            }
            other => panic!("expected WrongType, got {other:?}"),
        }
        match cached.get("text").await {
            Err(Error::Decode { key, .. }) => assert_eq!(key, "text"),
            other => panic!("expected Decode, got {other:?}"),
        }
    }
    let status = cached.status();
    assert_eq!(status.entries, 0, "nothing bad was cached: {status:?}");
    // (A busy machine may hold up a heartbeat, which flushes as `Unresponsive`.)
    assert!(
        !matches!(
            status.last_flush,
            Some(FlushCause::ConnectionLost | FlushCause::Redirected)
        ),
        "a wrong type or an undecodable value is no connection loss: {status:?}"
    );
    raw_set(&mut raw, &ns, "text", &5u32).await;
    until_cached_is(&cached, "text", Some(5)).await;
}

/// FLUSHALL sends a null invalidation: the cache flushes and says why.
pub async fn flushall_flushes_the_cache(ctx: &Ctx) {
    let ns = ctx.ns("flushall");
    let d = ctx.store.dict::<String, u32>(&ns).unwrap();
    d.set("a", &1).await.unwrap();
    let cached = d.cached(10).await.unwrap();
    assert_eq!(cached.get("a").await.unwrap(), Some(1));
    let seen = cached.status().flushes;
    let mut raw = ctx.raw(&ns).await;
    let _: () = redis::cmd("FLUSHALL").query_async(&mut raw).await.unwrap();
    flushed_after(&cached, seen).await;
    let status = cached.status();
    assert_eq!(status.last_flush, Some(FlushCause::ServerFlushed));
    assert!(status.trusted);
    assert_eq!(cached.get("a").await.unwrap(), None);
    d.set("a", &2).await.unwrap();
    until_cached_is(&cached, "a", Some(2)).await;
}

/// `CLIENT KILL` of the tracking connection: the flush is reported, reads
/// stay correct while it is down (uncached), and once tracking is back the
/// cache is trusted and invalidated again.
pub async fn killed_tracking_connection_flushes_reports_and_recovers(ctx: &Ctx) {
    let ns = ctx.ns("killed");
    let d = ctx.store.dict::<String, u32>(&ns).unwrap();
    let mut raw = ctx.raw(&ns).await;
    d.set("a", &1).await.unwrap();
    let cached = d.cached(10).await.unwrap();
    for round in 0..3u32 {
        assert_eq!(cached.get("a").await.unwrap(), Some(round + 1));
        let seen = cached.status().flushes;
        let killed: u64 = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("SKIPME")
            .arg("yes")
            .arg("ID")
            .arg(tracking_client_id(&mut raw).await)
            .query_async(&mut raw)
            .await
            .unwrap();
        assert_eq!(killed, 1);
        flushed_after(&cached, seen).await;
        assert_eq!(cached.status().last_flush, Some(FlushCause::ConnectionLost));
        // A foreign write while tracking may be down is never missed.
        raw_set(&mut raw, &ns, "a", &(round + 2)).await;
        assert_eq!(cached.get("a").await.unwrap(), Some(round + 2));
        tokio::time::timeout(WAIT, cached.wait_trusted())
            .await
            .expect("tracking re-enabled");
        assert_eq!(cached.get("a").await.unwrap(), Some(round + 2));
        raw_set(&mut raw, &ns, "b", &100).await;
        assert_eq!(cached.get("b").await.unwrap(), Some(100));
        raw_set(&mut raw, &ns, "b", &101).await;
        until_cached_is(&cached, "b", Some(101)).await;
    }
}

/// The id of the (one) near-cache tracking connection of this node.
async fn tracking_client_id(raw: &mut MultiplexedConnection) -> u64 {
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(raw)
        .await
        .unwrap();
    let ids: Vec<u64> = list
        .lines()
        .filter(|line| line.contains(&format!(" name={CACHE_CLIENT_NAME} ")))
        .map(|line| {
            line.split(' ')
                .find_map(|f| f.strip_prefix("id="))
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(ids.len(), 1, "one tracking connection: {list}");
    ids[0]
}

/// Writers (through the library with and without events, and raw SETs) and
/// cached readers at once; after the writers stop, and a marker write shows
/// every earlier invalidation has arrived, every cached read equals the
/// server's value.
pub async fn concurrent_writers_and_cached_readers_converge(ctx: &Ctx) {
    const KEYS: u32 = 8;
    let ns = ctx.ns("stress");
    let d = ctx.store.dict::<String, u32>(&ns).unwrap();
    let quiet_store = ctx.builder().notifications(false).connect().await.unwrap();
    let quiet = quiet_store.dict::<String, u32>(&ns).unwrap();
    let cached = d.cached(KEYS as usize).await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for writer in 0..3u32 {
        let (d, quiet, stop) = (d.clone(), quiet.clone(), stop.clone());
        let writer_cache = cached.clone();
        let mut raw = ctx.raw(&ns).await;
        let ns = ns.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let key = format!("k{}", i % KEYS);
                let value = i * 3 + writer;
                match writer {
                    0 if i.is_multiple_of(2) => d.set(&key, &value).await.unwrap(),
                    0 => writer_cache.set(&key, &value).await.unwrap(),
                    1 => quiet.set(&key, &value).await.unwrap(),
                    _ if i.is_multiple_of(5) => {
                        let _: () = redis::cmd("DEL")
                            .arg(format!("{{{ns}}}:{key}"))
                            .query_async(&mut raw)
                            .await
                            .unwrap();
                    }
                    _ => raw_set(&mut raw, &ns, &key, &value).await,
                }
                i += 1;
            }
        }));
    }
    for _ in 0..3 {
        let (cached, stop) = (cached.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = 0u32;
            while !stop.load(Ordering::Relaxed) {
                cached.get(&format!("k{}", i % KEYS)).await.unwrap();
                i += 1;
                if i.is_multiple_of(64) {
                    tokio::task::yield_now().await;
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    // The marker: once its invalidation has arrived, so have all before it.
    let mut raw = ctx.raw(&ns).await;
    raw_set(&mut raw, &ns, "marker", &1).await;
    assert_eq!(cached.get("marker").await.unwrap(), Some(1));
    raw_set(&mut raw, &ns, "marker", &2).await;
    until_cached_is(&cached, "marker", Some(2)).await;
    for k in 0..KEYS {
        let key = format!("k{k}");
        let server = d.get(&key).await.unwrap();
        assert_eq!(cached.get(&key).await.unwrap(), server, "{key}");
        assert_eq!(cached.get(&key).await.unwrap(), server, "{key} (again)");
    }
    let status = cached.status();
    assert!(status.hits > 0 && status.invalidations > 0, "{status:?}");
}

/// A hit needs no server at all: with the server stopped (SIGSTOP), cached
/// reads still answer at once.
pub async fn hits_are_served_while_the_server_is_stopped() {
    let server = RedisServer::start();
    let ctx = Ctx::on_server(&server).await;
    let d = ctx.store.dict::<String, String>("stopped").unwrap();
    d.set("a", &"alpha".into()).await.unwrap();
    let cached = d.cached(10).await.unwrap();
    assert_eq!(cached.get("a").await.unwrap(), Some("alpha".into()));
    let pid = server.pid().expect("the server runs").to_string();
    signal("-STOP", &pid);
    let hit = tokio::time::timeout(Duration::from_secs(2), cached.get("a")).await;
    signal("-CONT", &pid);
    assert_eq!(
        hit.expect("a hit waits for nothing").unwrap(),
        Some("alpha".into())
    );
}

/// A tracking connection that stops answering without being closed (here:
/// the server paused with SIGSTOP, as a network partition would look) is
/// declared lost by the heartbeat: the cache flushes and stops serving hits,
/// then recovers once the server answers again.
pub async fn a_silent_tracking_connection_is_caught_by_the_heartbeat() {
    let server = RedisServer::start();
    let ctx = Ctx::on_server(&server).await;
    let d = ctx.store.dict::<String, u32>("silent").unwrap();
    d.set("a", &1).await.unwrap();
    let cached = d.cached(10).await.unwrap();
    assert_eq!(cached.get("a").await.unwrap(), Some(1));
    let seen = cached.status().flushes;
    let pid = server.pid().expect("the server runs").to_string();
    signal("-STOP", &pid);
    let paused = Instant::now();
    let flushed = tokio::time::timeout(WAIT, cached.wait_for_flush(seen)).await;
    let detected = paused.elapsed();
    signal("-CONT", &pid);
    flushed.expect("the heartbeat noticed the silent connection");
    assert!(detected < Duration::from_secs(6), "took {detected:?}");
    let status = cached.status();
    assert_eq!(status.last_flush, Some(FlushCause::Unresponsive));
    tokio::time::timeout(WAIT, cached.wait_trusted())
        .await
        .expect("tracking re-enabled once the server answers");
    d.set("a", &2).await.unwrap();
    until_cached_is(&cached, "a", Some(2)).await;
}

fn signal(which: &str, pid: &str) {
    let status = std::process::Command::new("kill")
        .args([which, pid])
        .status()
        .unwrap();
    assert!(status.success(), "kill {which} {pid}");
}

/// A server restart (an empty server comes back) flushes the cache; once
/// tracking is back, reads are correct and cached again.
pub async fn server_restart_flushes_and_the_cache_recovers() {
    let mut server = RedisServer::start();
    let ctx = Ctx::on_server(&server).await;
    let d = ctx.store.dict::<String, u32>("restart").unwrap();
    d.set("a", &1).await.unwrap();
    let cached = d.cached(10).await.unwrap();
    assert_eq!(cached.get("a").await.unwrap(), Some(1));
    let seen = cached.status().flushes;
    server.restart();
    flushed_after(&cached, seen).await;
    assert_eq!(cached.get("a").await.ok().flatten(), None);
    tokio::time::timeout(WAIT, cached.wait_trusted())
        .await
        .expect("tracking re-enabled after the restart");
    support::eventually(WAIT, || d.set("a", &2)).await;
    until_cached_is(&cached, "a", Some(2)).await;
    let hits = cached.status().hits;
    assert_eq!(cached.get("a").await.unwrap(), Some(2));
    assert_eq!(cached.status().hits, hits + 1);
}

/// The blocking mirror: get (hit and miss), invalidation, and the waits
/// with a timeout.
pub fn blocking_cached_get_invalidation_and_waits(
    store: &redis_pydict::blocking::Store,
    prefix: &str,
) {
    let ns = format!("{prefix}blocking");
    let d = store.dict::<String, u32>(&ns).unwrap();
    d.set("a", &1).unwrap();
    let cached = d.cached(10).unwrap();
    assert_eq!(cached.get("a").unwrap(), Some(1));
    assert_eq!(cached.get("a").unwrap(), Some(1));
    assert_eq!((cached.status().misses, cached.status().hits), (1, 1));
    assert!(cached.wait_trusted(Duration::from_millis(10)).unwrap());
    let seen = cached.status().flushes;
    assert_eq!(
        cached
            .wait_for_flush(seen, Duration::from_millis(50))
            .unwrap(),
        None
    );
    cached.flush();
    assert_eq!(
        cached
            .wait_for_flush(seen, Duration::from_millis(50))
            .unwrap(),
        Some(seen + 1)
    );
    assert_eq!(cached.status().last_flush, Some(FlushCause::Requested));
    // Another writer, events off.
    let quiet = d.clone().with_notifications(false);
    quiet.set("a", &2).unwrap();
    let deadline = Instant::now() + WAIT;
    while cached.get("a").unwrap() != Some(2) {
        assert!(Instant::now() < deadline, "{:?}", cached.status());
        std::thread::sleep(Duration::from_millis(10));
    }
    cached.set("b", &3).unwrap();
    assert_eq!(cached.get("b").unwrap(), Some(3));
    assert!(cached.delete("b").unwrap());
    assert_eq!(cached.get("b").unwrap(), None);
}
