//! One regression test per mistake of the Python original (design.md, 1-5
//! and 8): run on one server by `tests/dict_regressions.rs` and, but for the
//! `server_only` one, on a cluster by `tests/cluster.rs`.

use std::collections::{BTreeMap, HashMap};

use futures::{StreamExt, TryStreamExt};
use redis_pydict::Store;
use redis_pydict_test::RedisServer;
use serde::{Deserialize, Serialize};

use crate::support::{self, Ctx};

/// Every case of this file, listed once (see the runners in
/// `tests/support/mod.rs`): expanded on a server per case by the
/// single-server test file and on the shared cluster by `tests/cluster.rs`.
macro_rules! cases {
    ($runner:ident) => {
        $runner! { regressions:
            #[tokio::test] shared namespaces_are_isolated_for_len_iteration_and_clear;
            #[tokio::test] shared keys_with_separators_and_specials_round_trip;
            #[tokio::test] server_only len_iteration_and_clear_never_scan_the_database;
            #[tokio::test] exclusive items_batch_reads_and_skip_vanished_entries;
            #[tokio::test] shared values_and_keys_round_trip_without_loss;
        }
    };
}
pub(crate) use cases;

pub async fn fill(store: &Store, ns: &str, n: usize) {
    let d = store.dict::<String, String>(ns).unwrap();
    let pairs: Vec<(String, String)> = (0..n)
        .map(|i| (format!("k{i}"), format!("{ns}-{i}")))
        .collect();
    d.set_many(pairs).await.unwrap();
}

async fn sorted_keys(store: &Store, ns: &str) -> Vec<String> {
    let d = store.dict::<String, String>(ns).unwrap();
    let mut keys: Vec<String> = d.keys().try_collect().await.unwrap();
    keys.sort();
    keys
}

/// Mistakes 1 and 2: a namespace with glob characters, or one that is a prefix
/// of another, must see and clear only its own entries.
pub async fn namespaces_are_isolated_for_len_iteration_and_clear(ctx: &Ctx) {
    let store = &ctx.store;
    let namespaces = ["f*", "foo", "foo&&bar", "fox", "f?o", "[f]oo", "f\\"].map(|ns| ctx.ns(ns));
    for (i, ns) in namespaces.iter().enumerate() {
        fill(store, ns, 3 + i).await;
    }
    for (i, ns) in namespaces.iter().enumerate() {
        let d = store.dict::<String, String>(ns).unwrap();
        assert_eq!(d.len().await.unwrap(), (3 + i) as u64, "len of {ns}");
        let items: Vec<(String, String)> = d.items().try_collect().await.unwrap();
        assert_eq!(items.len(), 3 + i, "items of {ns}");
        assert!(
            items.iter().all(|(_, v)| v.starts_with(&format!("{ns}-"))),
            "{ns} saw {items:?}"
        );
        let matching: Vec<String> = d.keys_matching("k*").try_collect().await.unwrap();
        assert_eq!(matching.len(), 3 + i, "keys_matching of {ns}");
    }
    // Repair scans the keyspace: it too must stay inside the namespace.
    let report = store
        .dict::<String, String>(&namespaces[0])
        .unwrap()
        .repair()
        .await
        .unwrap();
    assert_eq!((report.added, report.removed, report.live), (0, 0, 3));

    assert_eq!(
        store
            .dict::<String, String>(&namespaces[0])
            .unwrap()
            .clear()
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        store
            .dict::<String, String>(&namespaces[1])
            .unwrap()
            .clear()
            .await
            .unwrap(),
        4
    );
    for (i, ns) in namespaces.iter().enumerate().skip(2) {
        assert_eq!(
            sorted_keys(store, ns).await.len(),
            3 + i,
            "{ns} survived the others' clear"
        );
    }
    let (plain, overlapping) = (ctx.ns("foo"), ctx.ns("foo&&bar"));
    assert_eq!(
        support::keyspace_members(&mut ctx.raw(&overlapping).await, &overlapping)
            .await
            .len(),
        5
    );
    assert!(
        support::keyspace_members(&mut ctx.raw(&plain).await, &plain)
            .await
            .is_empty()
    );
}

/// Mistake 3: keys containing the separator and other specials come back intact.
pub async fn keys_with_separators_and_specials_round_trip(ctx: &Ctx) {
    let d = ctx
        .store
        .dict::<String, u32>(&ctx.ns("ns:with:colons"))
        .unwrap();
    let keys = [
        "a:b",
        "a}:b",
        "{x}",
        "&&",
        "*",
        "k?[]\\",
        "with space",
        "ünïcødé ✓",
        ":",
        "",
        "#keys",
    ];
    for (i, key) in keys.iter().enumerate() {
        d.set(*key, &(i as u32)).await.unwrap();
    }
    let map = d.to_map().await.unwrap();
    assert_eq!(map.len(), keys.len());
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(map.get(*key), Some(&(i as u32)), "key {key:?}");
        assert_eq!(d.get(*key).await.unwrap(), Some(i as u32), "get {key:?}");
    }
    // A glob metacharacter in a key is matched literally when escaped.
    let star: Vec<String> = d
        .keys_matching(&redis_pydict::escape_glob("*"))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(star, ["*"]);
}

/// Mistake 4: len, iteration and clear touch the namespace index, never SCAN
/// (or KEYS) the database, which here holds 200,000 other keys. Server only:
/// it fills the whole database with DEBUG POPULATE. (How fast `len` is among
/// a million other keys is the benchmark's `len` row.)
pub async fn len_iteration_and_clear_never_scan_the_database() {
    let server = RedisServer::start_with(&["--enable-debug-command", "yes"]);
    let store = Store::connect(&server.url()).await.unwrap();
    let mut raw = support::raw(&server).await;
    let _: () = redis::cmd("DEBUG")
        .arg("POPULATE")
        .arg(200_000)
        .query_async(&mut raw)
        .await
        .unwrap();
    fill(&store, "small", 1000).await;
    let d = store.dict::<String, String>("small").unwrap();
    // SCAN and KEYS calls of the server so far, from INFO commandstats.
    async fn walks(raw: &mut redis::aio::MultiplexedConnection) -> u64 {
        support::command_calls(raw, "scan").await + support::command_calls(raw, "keys").await
    }
    let before = walks(&mut raw).await;
    assert_eq!(d.len().await.unwrap(), 1000);
    assert_eq!(walks(&mut raw).await, before, "len walked the keyspace");
    assert_eq!(d.items().try_collect::<Vec<_>>().await.unwrap().len(), 1000);
    assert_eq!(d.keys().try_collect::<Vec<_>>().await.unwrap().len(), 1000);
    assert_eq!(
        walks(&mut raw).await,
        before,
        "iteration walked the keyspace"
    );
    assert_eq!(
        d.keys_matching("k1*")
            .try_collect::<Vec<_>>()
            .await
            .unwrap()
            .len(),
        111
    );
    assert_eq!(
        walks(&mut raw).await,
        before,
        "keys_matching walked the keyspace"
    );
    assert_eq!(d.clear().await.unwrap(), 1000);
    assert_eq!(d.len().await.unwrap(), 0);
    assert_eq!(walks(&mut raw).await, before, "clear walked the keyspace");
    let dbsize: u64 = redis::cmd("DBSIZE").query_async(&mut raw).await.unwrap();
    // What clear leaves: the namespace's sequence number, which never goes
    // back (WIRE.md), beside the 200,000 other keys.
    let seq: Option<u64> = redis::cmd("GET")
        .arg("{small}#seq")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(seq.is_some_and(|n| n > 1000), "{seq:?}");
    assert_eq!(dbsize, 200_001, "the other keys are untouched");
}

/// Mistake 5: items() reads values in MGET batches, not one GET per key;
/// values() of an empty dict is empty; entries deleted between listing and
/// reading are skipped, not errors.
///
/// Counts the commands run by the namespace's server and flushes its
/// database: on a shared cluster, run it with the cluster to itself.
pub async fn items_batch_reads_and_skip_vanished_entries(ctx: &Ctx) {
    let store = ctx.builder().page_size(100).connect().await.unwrap();
    let big = ctx.ns("big");
    let mut raw = ctx.raw(&big).await;
    let empty = store.dict::<String, String>(&ctx.ns("empty")).unwrap();
    assert!(empty
        .values()
        .try_collect::<Vec<_>>()
        .await
        .unwrap()
        .is_empty());
    assert!(empty
        .items()
        .try_collect::<Vec<_>>()
        .await
        .unwrap()
        .is_empty());
    assert!(empty.to_map().await.unwrap().is_empty());

    fill(&store, &big, 2500).await;
    let d = store.dict::<String, String>(&big).unwrap();
    let gets_before = support::command_calls(&mut raw, "get").await;
    let mgets_before = support::command_calls(&mut raw, "mget").await;
    assert_eq!(
        d.values().try_collect::<Vec<_>>().await.unwrap().len(),
        2500
    );
    assert_eq!(
        support::command_calls(&mut raw, "get").await,
        gets_before,
        "no GET per key"
    );
    let mgets = support::command_calls(&mut raw, "mget").await - mgets_before;
    assert!(
        (20..=60).contains(&mgets),
        "about 2500/100 MGET batches, got {mgets}"
    );

    // Start iterating, then delete every entry behind the library's back.
    let mut items = Box::pin(d.items());
    let first = items.next().await.unwrap().unwrap();
    assert!(first.0.starts_with('k'));
    let _: () = redis::cmd("FLUSHDB").query_async(&mut raw).await.unwrap();
    let rest: Vec<_> = items.collect().await;
    assert!(
        rest.iter().all(Result::is_ok),
        "vanished entries are skipped: {:?}",
        rest.iter().find(|r| r.is_err())
    );
    assert!(
        rest.len() < 2499,
        "entries deleted before they were read are not yielded"
    );
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Shape {
    Unit,
    Circle(f64),
    Rect { w: u32, h: u32 },
}

/// Mistake 8: values and keys round-trip exactly: tuples stay tuples, integer
/// map keys stay integers, integer dict keys come back as integers.
pub async fn values_and_keys_round_trip_without_loss(ctx: &Ctx) {
    let store = &ctx.store;
    let tuples = store
        .dict::<String, (u8, String, f64, Option<bool>)>(&ctx.ns("tuples"))
        .unwrap();
    let t = (7, "seven".to_owned(), 7.25, None);
    tuples.set("t", &t).await.unwrap();
    assert_eq!(tuples.get("t").await.unwrap(), Some(t));

    let maps = store
        .dict::<String, HashMap<u32, Vec<Shape>>>(&ctx.ns("maps"))
        .unwrap();
    let m: HashMap<u32, Vec<Shape>> = [
        (1, vec![Shape::Unit, Shape::Circle(0.5)]),
        (2, vec![Shape::Rect { w: 1, h: 2 }]),
    ]
    .into();
    maps.set("m", &m).await.unwrap();
    assert_eq!(maps.get("m").await.unwrap(), Some(m));

    let ints = store.dict::<i64, String>(&ctx.ns("ints")).unwrap();
    ints.set_many([
        (-5i64, "minus five".to_owned()),
        (0, "zero".into()),
        (i64::MAX, "max".into()),
    ])
    .await
    .unwrap();
    let back: BTreeMap<i64, String> = ints.to_btree_map().await.unwrap();
    assert_eq!(back.keys().copied().collect::<Vec<_>>(), [-5, 0, i64::MAX]);
    assert_eq!(ints.get(&-5).await.unwrap().as_deref(), Some("minus five"));

    let bytes = store.dict::<u8, Vec<u8>>(&ctx.ns("bytes")).unwrap();
    bytes.set(&1, &vec![0, 255, 10]).await.unwrap();
    assert_eq!(bytes.get(&1).await.unwrap(), Some(vec![0, 255, 10]));
}
