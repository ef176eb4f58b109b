//! Faults on the write path (see main.rs): foreign data (a key holding a
//! hash, list, ... where the library expects an entry, an index or a log)
//! is never overwritten or deleted and a write that meets it changes
//! nothing; a full server fails a bulk write with a bounded message that
//! says how much was applied; `set_many` streams its input in bounded memory;
//! over a slow link `clear` keeps several calls in flight.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use redis::aio::MultiplexedConnection;

use crate::raw;
use redis_pydict::{Dict, Error, RedisDict, Store};
use redis_pydict_test::{RedisCluster, RedisServer};

type D = Dict<String, u64>;

async fn cmd<T: redis::FromRedisValue>(conn: &mut MultiplexedConnection, args: &[&str]) -> T {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c.query_async(conn).await.unwrap()
}

/// Everything in the database: per key its type, DUMP and whether it has a
/// TTL; and how many PUBLISH and XADD calls the server has run. Equal
/// snapshots before and after an operation mean it changed nothing and
/// emitted no event.
#[derive(Debug, PartialEq)]
struct Snapshot {
    keys: BTreeMap<String, (String, Vec<u8>, bool)>,
    events: (u64, u64),
}

async fn snapshot(conn: &mut MultiplexedConnection) -> Snapshot {
    let names: Vec<String> = cmd(conn, &["KEYS", "*"]).await;
    let mut keys = BTreeMap::new();
    for name in names {
        let kind: String = cmd(conn, &["TYPE", &name]).await;
        let dump: Vec<u8> = cmd(conn, &["DUMP", &name]).await;
        let pttl: i64 = cmd(conn, &["PTTL", &name]).await;
        keys.insert(name, (kind, dump, pttl >= 0));
    }
    let info: String = cmd(conn, &["INFO", "commandstats"]).await;
    let calls = |name: &str| -> u64 {
        let needle = format!("cmdstat_{name}:calls=");
        info.lines()
            .find_map(|line| line.strip_prefix(&needle))
            .map_or(0, |rest| rest.split(',').next().unwrap().parse().unwrap())
    };
    Snapshot {
        keys,
        events: (calls("publish"), calls("xadd")),
    }
}

/// Every write operation of a dict on `key`, by name.
const OPERATIONS: &[&str] = &[
    "set",
    "set_with_ttl",
    "set_if_absent",
    "set_many",
    "delete",
    "remove",
    "expire",
    "persist",
    "clear",
    "update_with",
    "repair",
];

/// Runs the write operation `op` on `key` (`set_many` also writes a fresh key
/// in the same batch, which must not be written either).
async fn write(d: &D, op: &str, key: &str) -> Result<(), Error> {
    match op {
        "set" => d.set(key, &7).await,
        "set_with_ttl" => d.set_with_ttl(key, &7, Duration::from_secs(60)).await,
        "set_if_absent" => d.set_if_absent(key, &7).await.map(drop),
        "set_many" => d.set_many([("fresh", 7u64), (key, 7u64)]).await,
        "delete" => d.delete(key).await.map(drop),
        "remove" => d.remove(key).await.map(drop),
        "expire" => d.expire(key, Duration::from_secs(60)).await.map(drop),
        "persist" => d.persist(key).await.map(drop),
        "clear" => d.clear().await.map(drop),
        "update_with" => d.update_with(key, |n| n.unwrap_or(0) + 1).await.map(drop),
        "repair" => d.repair().await.map(drop),
        other => panic!("unknown operation {other}"),
    }
}

/// Asserts `result` is the wrong-type error for `key` holding `found`.
fn assert_wrong_type(result: Result<(), Error>, op: &str, role: &str, key: &str, found: &str) {
    match result {
        Err(Error::WrongType {
            role: r,
            key: k,
            found: f,
            ..
        }) if r == role && k == key && f == found => {}
        other => {
            panic!("{op}: expected the {role} {key} holding a {found} to be refused, got {other:?}")
        }
    }
}

/// A namespace with two entries, `a` and `b`.
async fn seeded(store: &Store, ns: &str, log: bool) -> D {
    let mut d: D = store.dict(ns).unwrap();
    if log {
        d = d.with_durable_log(100);
    }
    d.set("a", &1).await.unwrap();
    d.set_with_ttl("b", &2, Duration::from_secs(600))
        .await
        .unwrap();
    d
}

/// Defect 7: with the index (or the durable log, or the namespace metadata,
/// with and without a log of the dict's own) holding a string, every
/// write operation fails naming it, and nothing at all changed: no entry
/// written or deleted, no TTL changed, no event published or logged. (Before
/// the fix, `set` wrote the entry and returned a pipeline error.)
async fn wrong_typed_auxiliary_keys(url: &str, store: &Store) {
    let mut conn = raw(url).await;
    let auxiliary = [
        ("keys", false),
        ("log", true),
        ("meta", false),
        ("meta", true),
    ];
    for (aux, log) in auxiliary {
        for op in OPERATIONS {
            let ns = format!("aux-{aux}-{log}-{op}");
            let d = seeded(store, &ns, log).await;
            let aux_key = format!("{{{ns}}}#{aux}");
            let _: () = cmd(&mut conn, &["DEL", &aux_key]).await;
            let _: () = cmd(&mut conn, &["SET", &aux_key, "not yours"]).await;
            let before = snapshot(&mut conn).await;
            let role = match aux {
                "keys" => "index",
                "log" => "durable log",
                _ => "namespace metadata",
            };
            // Both an existing and a fresh entry key.
            for key in ["a", "new"] {
                let result = write(&d, op, key).await;
                assert_wrong_type(result, op, role, &aux_key, "string");
                assert_eq!(
                    snapshot(&mut conn).await,
                    before,
                    "{op} on {key} with a wrong-typed {role} changed something"
                );
            }
            let message = write(&d, op, "a").await.unwrap_err().to_string();
            assert!(
                message.contains(&aux_key)
                    && message.contains("string")
                    && message.contains("nothing was changed"),
                "{op}: {message}"
            );
        }
    }
}

#[tokio::test]
async fn wrong_typed_index_or_log_fails_every_write_and_changes_nothing() {
    let server = RedisServer::start();
    let store = Store::connect(&server.url()).await.unwrap();
    wrong_typed_auxiliary_keys(&server.url(), &store).await;
}

/// Defects 5 and 7: an entry key holding foreign data (a hash written by
/// another program) is never overwritten, deleted or given a TTL by any
/// write; the error names the key and its type, and nothing changed, not
/// even the other entries of the same atomic call. (Before the fix,
/// `update_with` replaced the hash on a single server and `set` replaced it
/// everywhere.)
async fn wrong_typed_entries(url: &str, store: &Store) {
    let mut conn = raw(url).await;
    for op in OPERATIONS {
        let ns = format!("foreign-{op}");
        let d = seeded(store, &ns, true).await;
        let hash_key = format!("{{{ns}}}:h");
        let _: () = cmd(&mut conn, &["HSET", &hash_key, "field", "precious"]).await;
        if *op == "clear" {
            // clear touches indexed entries only.
            let _: () = cmd(&mut conn, &["ZADD", &format!("{{{ns}}}#keys"), "inf", "h"]).await;
        }
        let before = snapshot(&mut conn).await;
        let result = write(&d, op, "h").await;
        let precious: Option<String> = cmd(&mut conn, &["HGET", &hash_key, "field"]).await;
        assert_eq!(
            precious.as_deref(),
            Some("precious"),
            "{op} destroyed the hash"
        );
        if *op == "repair" {
            // repair writes no entry: it leaves the hash alone and keeps it
            // out of the index.
            result.unwrap();
            continue;
        }
        assert_wrong_type(result, op, "entry", &hash_key, "hash");
        assert_eq!(
            snapshot(&mut conn).await,
            before,
            "{op} on a foreign hash changed something"
        );
    }
}

#[tokio::test]
async fn foreign_entries_are_never_overwritten_and_writes_change_nothing() {
    let server = RedisServer::start();
    let store = Store::connect(&server.url()).await.unwrap();
    wrong_typed_entries(&server.url(), &store).await;
}

/// The cluster path (its own scripts: compare-and-set instead of
/// WATCH/MULTI) behaves the same for defects 5 and 7.
#[tokio::test]
async fn cluster_refuses_wrong_typed_keys_the_same_way() {
    let cluster = RedisCluster::start();
    let urls = cluster.urls();
    let refs: Vec<&str> = urls.iter().map(String::as_str).collect();
    let store = Store::connect_cluster(&refs[..]).await.unwrap();
    // A raw connection to the master of each namespace's slot: the
    // snapshot reads that node (each namespace lives in one slot).
    for op in OPERATIONS {
        let ns = format!("cl-foreign-{op}");
        let port = cluster.master_for_key(&format!("{{{ns}}}"));
        let url = format!("redis://127.0.0.1:{port}");
        let mut conn = raw(&url).await;
        let d = seeded(&store, &ns, true).await;
        let hash_key = format!("{{{ns}}}:h");
        let _: () = cmd(&mut conn, &["HSET", &hash_key, "field", "precious"]).await;
        if *op == "clear" {
            let _: () = cmd(&mut conn, &["ZADD", &format!("{{{ns}}}#keys"), "inf", "h"]).await;
        }
        let before = snapshot(&mut conn).await;
        let result = write(&d, op, "h").await;
        let precious: Option<String> = cmd(&mut conn, &["HGET", &hash_key, "field"]).await;
        assert_eq!(
            precious.as_deref(),
            Some("precious"),
            "cluster {op} destroyed the hash"
        );
        if *op == "repair" {
            result.unwrap();
            continue;
        }
        assert_wrong_type(result, op, "entry", &hash_key, "hash");
        assert_eq!(
            snapshot(&mut conn).await,
            before,
            "cluster {op} changed something"
        );
    }
    for op in ["set", "set_many", "update_with", "delete", "clear"] {
        let ns = format!("cl-aux-{op}");
        let port = cluster.master_for_key(&format!("{{{ns}}}"));
        let mut conn = raw(&format!("redis://127.0.0.1:{port}")).await;
        let d = seeded(&store, &ns, false).await;
        let index = format!("{{{ns}}}#keys");
        let _: () = cmd(&mut conn, &["DEL", &index]).await;
        let _: () = cmd(&mut conn, &["SET", &index, "not yours"]).await;
        let before = snapshot(&mut conn).await;
        assert_wrong_type(write(&d, op, "a").await, op, "index", &index, "string");
        assert_eq!(
            snapshot(&mut conn).await,
            before,
            "cluster {op} changed something"
        );
    }
}

/// Iteration follows one rule with `get`: an entry holding a non-string
/// value is an `Err` item naming the key and its type, and the stream goes
/// on to the other entries. (Before, `items()` skipped it silently.)
#[tokio::test]
async fn iteration_reports_foreign_entries_and_goes_on() {
    let server = RedisServer::start();
    let store = Store::connect(&server.url()).await.unwrap();
    let mut conn = raw(&server.url()).await;
    let d: D = store.dict("iter-foreign").unwrap();
    d.set_many((0..50u64).map(|i| (format!("k{i}"), i)))
        .await
        .unwrap();
    let _: () = cmd(&mut conn, &["DEL", "{iter-foreign}:k7"]).await;
    let _: () = cmd(&mut conn, &["RPUSH", "{iter-foreign}:k7", "x"]).await;
    let items: Vec<_> = d.items().collect().await;
    assert_eq!(items.len(), 50);
    let errors: Vec<String> = items
        .iter()
        .filter_map(|item| item.as_ref().err().map(ToString::to_string))
        .collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("{iter-foreign}:k7") && errors[0].contains("list"),
        "{}",
        errors[0]
    );
    let values: Vec<_> = d.values().collect().await;
    assert_eq!(values.iter().filter(|v| v.is_err()).count(), 1);
    assert_eq!(values.iter().filter(|v| v.is_ok()).count(), 49);
    // get says the same.
    let got = d.get("k7").await.unwrap_err();
    assert!(
        matches!(&got, Error::WrongType { found, .. } if found == "list"),
        "{got}"
    );
}

/// A TTL too large for Redis is refused for the right reason.
#[tokio::test]
async fn oversized_ttl_says_too_large() {
    let server = RedisServer::start();
    let store = Store::connect(&server.url()).await.unwrap();
    let d: D = store.dict("ttl").unwrap();
    let err = d
        .set_with_ttl("k", &1, Duration::from_secs(u64::MAX))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("too large") && !err.contains("at least"),
        "{err}"
    );
    let err = d
        .set_with_ttl("k", &1, Duration::ZERO)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("at least 1 ms"), "{err}");
    assert_eq!(d.get("k").await.unwrap(), None);
}

/// Defect 8: a bulk write at OOM (`maxmemory 2mb`, `noeviction`) fails with a
/// message of bounded size (before: 809 KB for 10,000 entries), and a
/// multi-batch write says how much of it was applied, which is exactly what
/// the server holds.
#[tokio::test]
async fn out_of_memory_bulk_write_has_a_bounded_message_and_says_what_applied() {
    let server =
        RedisServer::start_with(&["--maxmemory", "2mb", "--maxmemory-policy", "noeviction"]);
    let mut conn = raw(&server.url()).await;
    let value = "x".repeat(1000);

    // One batch of 10,000 entries: atomic, nothing written, short message.
    let store = Store::builder(&server.url())
        .max_batch(10_000)
        .connect()
        .await
        .unwrap();
    let d: Dict<String, String> = store.dict("oom-one").unwrap();
    let err = d
        .set_many((0..10_000).map(|i| (format!("k{i}"), &value)))
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(message.len() < 1000, "{} bytes: {message}", message.len());
    assert!(message.contains("OOM"), "{message}");
    assert!(!matches!(err, Error::PartlyApplied { .. }), "{err}");
    assert_eq!(
        d.len().await.unwrap(),
        0,
        "an atomic call wrote part of itself"
    );

    // 1,500 entries in batches of 100: some batches fit, then OOM.
    let store = Store::builder(&server.url())
        .max_batch(100)
        .connect()
        .await
        .unwrap();
    let d: Dict<String, String> = store.dict("oom-many").unwrap();
    let err = d
        .set_many((0..1_500).map(|i| (format!("k{i}"), &value)))
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(message.len() < 1000, "{} bytes: {message}", message.len());
    let Error::PartlyApplied {
        failed_batch,
        applied_batches,
        applied_entries,
        ref source,
        ..
    } = err
    else {
        panic!("expected PartlyApplied, got {err}");
    };
    assert!(source.to_string().contains("OOM"), "{source}");
    assert!(applied_batches > 0 && failed_batch > 1, "{message}");
    assert_eq!(applied_entries, applied_batches * 100, "{message}");
    let indexed: u64 = cmd(&mut conn, &["ZCARD", "{oom-many}#keys"]).await;
    assert_eq!(
        indexed, applied_entries,
        "the error must count what the server holds: {message}"
    );
    let keys: Vec<String> = cmd(&mut conn, &["KEYS", "{oom-many}:*"]).await;
    assert_eq!(keys.len() as u64, applied_entries);
    assert!(
        message.contains(&format!("applied ({applied_entries} entries)")),
        "{message}"
    );

    // A single `set` (its own script, which takes the sequence number
    // first) says OOM too, never that a key has the wrong type, and writes
    // nothing. The failed batch's request buffer is freed by now, which can
    // bring the server back under its limit (Redis 6.2 does): the limit is
    // set to half of what it holds, so every write is refused.
    let info: String = cmd(&mut conn, &["INFO", "memory"]).await;
    let used: u64 = info
        .lines()
        .find_map(|line| line.strip_prefix("used_memory:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("INFO memory has used_memory");
    let half = (used / 2).to_string();
    let _: () = cmd(&mut conn, &["CONFIG", "SET", "maxmemory", &half]).await;
    let before = snapshot(&mut conn).await;
    for dict in [&d, &store.dict::<String, String>("oom-fresh").unwrap()] {
        let err = dict.set("one-more", &value).await.unwrap_err();
        assert!(err.to_string().contains("OOM"), "{err}");
        assert!(!matches!(err, Error::WrongType { .. }), "{err}");
    }
    assert_eq!(snapshot(&mut conn).await.keys, before.keys);
}

/// Defect 11 and the semantics of a failure in a later batch: batches before
/// it stay applied, the input after it is not read, and the error says how
/// much was applied.
#[tokio::test]
async fn later_batch_failure_leaves_earlier_batches_and_reads_no_further() {
    let server = RedisServer::start();
    let store = Store::builder(&server.url())
        .max_batch(10)
        .max_value_size(64)
        .connect()
        .await
        .unwrap();
    let d: Dict<String, Vec<u8>> = store.dict("later").unwrap();
    let consumed = std::sync::atomic::AtomicUsize::new(0);
    let pairs = (0..100).map(|i| {
        consumed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // Entry 25 (in batch 3) is over the size limit.
        let value = if i == 25 {
            vec![1u8; 100]
        } else {
            vec![1u8; 4]
        };
        (format!("k{i}"), value)
    });
    let err = d.set_many(pairs).await.unwrap_err();
    let message = err.to_string();
    match &err {
        Error::PartlyApplied {
            failed_batch: 3,
            applied_batches: 2,
            applied_entries: 20,
            source,
            ..
        } if matches!(**source, Error::ValueTooLarge { .. }) => {}
        other => panic!("{other}"),
    }
    assert!(
        message.contains("2 batches applied (20 entries)"),
        "{message}"
    );
    assert_eq!(d.len().await.unwrap(), 20);
    assert!(d.contains("k19").await.unwrap() && !d.contains("k20").await.unwrap());
    assert_eq!(
        consumed.into_inner(),
        30,
        "the input after the failing batch must not be read"
    );

    // A foreign hash in batch 3: that batch is refused whole; batches
    // already in flight behind it still apply and are counted.
    let mut conn = raw(&server.url()).await;
    let _: () = cmd(&mut conn, &["HSET", "{later2}:k25", "f", "v"]).await;
    let d: Dict<String, Vec<u8>> = store.dict("later2").unwrap();
    let err = d
        .set_many((0..50).map(|i| (format!("k{i}"), vec![1u8; 4])))
        .await
        .unwrap_err();
    let Error::PartlyApplied {
        failed_batch: 3,
        applied_entries,
        ref source,
        ..
    } = err
    else {
        panic!("{err}");
    };
    assert!(matches!(**source, Error::WrongType { .. }), "{source}");
    assert_eq!(d.len().await.unwrap(), applied_entries);
    for i in (20..30).filter(|&i| i != 25) {
        assert!(
            !d.contains(&format!("k{i}")).await.unwrap(),
            "k{i} of the refused batch was written"
        );
    }
}

/// The process's peak resident memory in KiB (VmHWM), or `None` off Linux.
fn peak_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

const CHILD_ENV: &str = "REDIS_PYDICT_MEMORY_CHILD_URL";

/// Defect 11: `set_many` streams its input. 40,000 entries of 2 KiB
/// (about 80 MiB of values, twice that with their events) from a lazy
/// generator grow the process's peak memory by far less than the input
/// (before the fix every value was encoded before the first batch went out:
/// +114 MB for 1,000,000 small entries). Measured in a child process (this
/// test binary again, running only this test), so other tests' memory does
/// not count.
#[tokio::test]
async fn set_many_streams_in_bounded_memory() {
    if let Ok(url) = std::env::var(CHILD_ENV) {
        let store = Store::builder(&url).max_batch(500).connect().await.unwrap();
        let d: Dict<u64, String> = store.dict("stream").unwrap();
        let before = peak_kib().unwrap();
        d.set_many((0..40_000u64).map(|i| (i, format!("{i:>2048}"))))
            .await
            .unwrap();
        let after = peak_kib().unwrap();
        println!("PEAK_GROWTH_KIB={}", after - before);
        assert_eq!(d.len().await.unwrap(), 40_000);
        return;
    }
    let Some(_) = peak_kib() else {
        panic!("/proc/self/status has no VmHWM: this test needs Linux");
    };
    let server = RedisServer::start();
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .args([
            "write::set_many_streams_in_bounded_memory",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, server.url())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let growth: u64 = stdout
        .lines()
        .find_map(|l| l.split_once("PEAK_GROWTH_KIB=").map(|(_, n)| n))
        .unwrap_or_else(|| panic!("no figure from the child: {stdout}"))
        .trim()
        .parse()
        .unwrap();
    // The input is ~80 MiB of values (plus as much again in events); a few
    // batches of 500 are a few MiB each.
    assert!(
        growth < 40 * 1024,
        "peak memory grew by {growth} KiB for 80 MiB of input"
    );
    println!("set_many of 40,000 x 2 KiB: peak memory +{growth} KiB");
}

#[derive(RedisDict, Debug, Default)]
struct Counter {
    #[redis_dict(default)]
    hits: u64,
    #[redis_dict(default)]
    label: String,
}

/// Defect 5 through derived views: a field update, a whole-view update,
/// a save and a field set never replace a foreign hash at a field's key.
#[tokio::test]
async fn view_writes_never_overwrite_a_foreign_hash() {
    let server = RedisServer::start();
    let store = Store::connect(&server.url()).await.unwrap();
    let mut conn = raw(&server.url()).await;
    let view = Counter::view(&store, "view-foreign").unwrap();
    let hash_key = "{view-foreign}:hits";
    let _: () = cmd(&mut conn, &["HSET", hash_key, "field", "precious"]).await;
    let before = snapshot(&mut conn).await;
    let results = [
        (
            "field update",
            view.hits.update(|n| *n += 1).await.map(drop),
        ),
        ("field set", view.hits.set(&1).await),
        ("view update", view.update(|c| c.hits += 1).await.map(drop)),
        (
            "view save",
            view.save(&Counter {
                hits: 1,
                label: "x".into(),
            })
            .await,
        ),
    ];
    for (what, result) in results {
        assert_wrong_type(result, what, "entry", hash_key, "hash");
        assert_eq!(
            snapshot(&mut conn).await,
            before,
            "{what} changed something"
        );
    }
}

/// A TCP proxy to the server on `upstream` that passes requests on at once
/// and holds every chunk of reply for `delay` before passing it on, in
/// order: a server `delay` away. Returns the proxy's port; it lives as long
/// as the test's runtime.
async fn slow_link(upstream: u16, delay: Duration) -> u16 {
    use tokio::net::{TcpListener, TcpStream};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let server = TcpStream::connect(("127.0.0.1", upstream)).await.unwrap();
            let (from_client, to_client) = client.into_split();
            let (from_server, to_server) = server.into_split();
            let (requests, mut requests_rx) = tokio::sync::mpsc::unbounded_channel();
            let (replies, mut replies_rx) = tokio::sync::mpsc::unbounded_channel();
            tokio::spawn(pump(from_client, requests, Duration::ZERO));
            tokio::spawn(pump(from_server, replies, delay));
            tokio::spawn(async move {
                while let Some((due, bytes)) = requests_rx.recv().await {
                    if !send_at(&to_server, due, &bytes).await {
                        break;
                    }
                }
            });
            tokio::spawn(async move {
                while let Some((due, bytes)) = replies_rx.recv().await {
                    if !send_at(&to_client, due, &bytes).await {
                        break;
                    }
                }
            });
        }
    });
    port
}

/// Chunk due times of [`slow_link`].
type Chunks = tokio::sync::mpsc::UnboundedSender<(tokio::time::Instant, Vec<u8>)>;

/// Reads `from` until it closes, sending each chunk with the time it is due.
async fn pump(from: tokio::net::tcp::OwnedReadHalf, to: Chunks, delay: Duration) {
    let mut buf = vec![0u8; 64 * 1024];
    while from.readable().await.is_ok() {
        match from.try_read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                let due = tokio::time::Instant::now() + delay;
                if to.send((due, buf[..n].to_vec())).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
    }
}

/// Writes `bytes` to `to` once `due`; false when the peer is gone.
async fn send_at(
    to: &tokio::net::tcp::OwnedWriteHalf,
    due: tokio::time::Instant,
    bytes: &[u8],
) -> bool {
    tokio::time::sleep_until(due).await;
    let mut at = 0;
    while at < bytes.len() {
        if to.writable().await.is_err() {
            return false;
        }
        match to.try_write(&bytes[at..]) {
            Ok(n) => at += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return false,
        }
    }
    true
}

/// `clear` keeps several script calls in flight: over a link that holds
/// every reply 100 ms, a clear of 20 batches (which one call at a time
/// would take 20 round trips, at least 2 s) takes well under that; and it
/// still removes everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_keeps_several_calls_in_flight() {
    let server = RedisServer::start();
    let delay = Duration::from_millis(100);
    let port = slow_link(server.port(), delay).await;
    let store = Store::builder(&format!("redis://127.0.0.1:{port}"))
        .max_batch(50)
        .connect()
        .await
        .unwrap();
    let d: Dict<u32, u32> = store.dict("slow-clear").unwrap();
    d.set_many((0..1000).map(|i| (i, i))).await.unwrap();
    // Loads the CLEAR script, so that the clear timed is its calls alone.
    let warm: Dict<u32, u32> = store.dict("slow-clear-warm").unwrap();
    warm.clear().await.unwrap();
    let started = std::time::Instant::now();
    assert_eq!(d.clear().await.unwrap(), 1000);
    let took = started.elapsed();
    assert!(
        took < delay * 14,
        "{took:?} for 20 calls over a {delay:?} link: one call at a time"
    );
    assert_eq!(d.len().await.unwrap(), 0);
}
