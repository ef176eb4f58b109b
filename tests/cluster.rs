//! redis-pydict on a Redis Cluster (3 masters, each with a replica).
//!
//! * The shared cases of the dict, subscription and derive suites (each file
//!   of `cases/` lists its cases once; the single-server tests expand the
//!   same lists) run on one cluster shared by this whole test binary, each
//!   case in namespaces of its own (prefixed with its name). A few cases act
//!   on whole nodes (command statistics, FLUSHDB, killing pub/sub clients,
//!   counting patterns): they take the cluster to themselves (`exclusive`).
//!   The `server_only` ones (a configured, restarted or DEBUG-filled server)
//!   run on a single server only.
//! * Cluster-only tests: namespaces spread over the masters, pub/sub across
//!   nodes, a master failover and a slot migration under writes. The last two
//!   change the cluster's shape, so each starts a cluster of its own.

mod support;
mod cases {
    pub mod behaviour;
    pub mod cache;
    pub mod derive;
    pub mod groups;
    pub mod live;
    pub mod python_readme;
    pub mod regressions;
    pub mod subscriptions;
}

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cases::subscriptions::{next, nothing_more, set, WAIT};
use futures::StreamExt;
use redis_pydict::{Change, StartFrom, Store};
use redis_pydict_test::{master_serving, node_url, RedisCluster};
use support::{on_the_cluster, shared_cluster as cluster, Access, Ctx};

cases::python_readme::cases!(on_the_cluster);
cases::regressions::cases!(on_the_cluster);
cases::behaviour::cases!(on_the_cluster);
cases::cache::cases!(on_the_cluster);
cases::subscriptions::cases!(on_the_cluster);
cases::derive::cases!(on_the_cluster);
cases::live::cases!(on_the_cluster);
cases::groups::cases!(on_the_cluster);

// ----- cluster-only tests ----------------------------------------------------

/// A context on the shared cluster, alongside other cases.
async fn shared(case: &str) -> Ctx {
    Ctx::on_shared_cluster(case, Access::Shared).await
}

/// The master serving each slot, from one `CLUSTER NODES`.
fn slot_owners(cluster: &RedisCluster) -> impl Fn(u16) -> u16 {
    let nodes = cluster.nodes();
    move |slot| {
        master_serving(&nodes, slot)
            .map(|n| n.port)
            .unwrap_or_else(|| panic!("no master serves slot {slot}"))
    }
}

/// 300 namespaces land on all three masters: each namespace's index and
/// entries share one slot (the `{ns}` hash tag), and the slots spread.
#[tokio::test]
async fn namespaces_spread_over_all_three_masters() {
    let ctx = shared("spread").await;
    let namespaces: Vec<String> = (0..300).map(|i| ctx.ns(&format!("tenant-{i}"))).collect();
    for (i, ns) in namespaces.iter().enumerate() {
        let d = ctx.store.dict::<String, u32>(ns).unwrap();
        d.set("k", &(i as u32)).await.unwrap();
    }
    let masters = cluster().masters();
    assert_eq!(masters.len(), 3, "{masters:?}");
    let owner = slot_owners(cluster());
    let mut conns: HashMap<u16, redis::aio::MultiplexedConnection> = HashMap::new();
    for &port in &masters {
        conns.insert(port, support::connect_raw(&node_url(port)).await);
    }
    let mut per_master: BTreeMap<u16, usize> = BTreeMap::new();
    for (i, ns) in namespaces.iter().enumerate() {
        let index = format!("{{{ns}}}#keys");
        let slot = cluster().slot_of(&index);
        assert_eq!(
            cluster().slot_of(&format!("{{{ns}}}:k")),
            slot,
            "{ns}: entry and index share a slot"
        );
        let port = owner(slot);
        // The index is on that master (a plain connection: no redirection).
        let exists: u32 = redis::cmd("EXISTS")
            .arg(&index)
            .query_async(conns.get_mut(&port).unwrap())
            .await
            .unwrap();
        assert_eq!(exists, 1, "{index} on the master of slot {slot} ({port})");
        *per_master.entry(port).or_default() += 1;
        let d = ctx.store.dict::<String, u32>(ns).unwrap();
        assert_eq!(d.get("k").await.unwrap(), Some(i as u32));
        assert_eq!(d.len().await.unwrap(), 1);
    }
    assert_eq!(
        per_master.keys().copied().collect::<Vec<_>>(),
        masters,
        "every master holds namespaces: {per_master:?}"
    );
    assert!(
        per_master.values().all(|&n| n >= 50),
        "namespaces spread over the masters: {per_master:?}"
    );
}

/// A store seeded with one node only subscribes to namespaces served by
/// other masters and sees writes made through yet another node. A plain
/// PSUBSCRIBE on that one node sees nothing of the default (sharded) writes,
/// which reach only each namespace's shard, and sees the writes of a store
/// built with `sharded_events(false)` (PUBLISH reaches every node), which
/// the library's subscriptions receive too.
#[tokio::test]
async fn subscriber_through_one_node_sees_writes_routed_to_another() {
    let ctx = shared("cross_node").await;
    let cluster = cluster();
    let owner = slot_owners(cluster);
    let masters = cluster.masters();
    // The subscriber's node: a replica (it serves no slot at all).
    let through = *cluster
        .ports()
        .iter()
        .find(|p| !masters.contains(p))
        .expect("a replica");
    let writer_node = masters[0];
    // One namespace on each master.
    let mut namespaces: BTreeMap<u16, String> = BTreeMap::new();
    for i in 0.. {
        let ns = ctx.ns(&format!("n{i}"));
        let master = owner(cluster.slot_of(&format!("{{{ns}}}")));
        namespaces.entry(master).or_insert(ns);
        if namespaces.len() == masters.len() {
            break;
        }
    }

    let subscriber = Store::connect_cluster(&[&node_url(through)]).await.unwrap();
    let writer = Store::connect_cluster(&[&node_url(writer_node)])
        .await
        .unwrap();
    let mut subs = Vec::new();
    let mut plain = redis::Client::open(node_url(through))
        .unwrap()
        .get_async_pubsub()
        .await
        .unwrap();
    for ns in namespaces.values() {
        plain
            .psubscribe(format!("{{{}}}#ev:*", redis_pydict::escape_glob(ns)))
            .await
            .unwrap();
    }
    let mut plain = plain.into_on_message();
    for ns in namespaces.values() {
        let d = subscriber.dict::<String, u32>(ns).unwrap();
        subs.push(d.subscribe("*").await.unwrap());
    }
    for (i, ns) in namespaces.values().enumerate() {
        let d = writer.dict::<String, u32>(ns).unwrap();
        d.set("k", &(i as u32)).await.unwrap();
    }
    for (i, sub) in subs.iter_mut().enumerate() {
        assert_eq!(next(sub).await, set("k", None, i as u32));
        nothing_more(sub).await;
    }
    let broadcast = tokio::time::timeout(Duration::from_millis(300), plain.next()).await;
    if cluster.major_version() >= 7 {
        assert!(
            broadcast.is_err(),
            "sharded events are not broadcast: {broadcast:?}"
        );
    } else {
        // Before Redis 7.0 there is no sharded pub/sub: every writer
        // PUBLISHes, and PUBLISH reaches every node.
        assert!(
            matches!(broadcast, Ok(Some(_))),
            "before Redis 7 events are PUBLISHed to every node: {broadcast:?}"
        );
        for _ in 1..namespaces.len() {
            tokio::time::timeout(WAIT, plain.next())
                .await
                .expect("the other namespaces' events on the plain subscriber")
                .unwrap();
        }
    }
    let classic = Store::cluster_builder(&[&node_url(writer_node)])
        .sharded_events(false)
        .connect()
        .await
        .unwrap();
    for (i, ns) in namespaces.values().enumerate() {
        let d = classic.dict::<String, u32>(ns).unwrap();
        d.set("k", &(i as u32 + 10)).await.unwrap();
    }
    for (i, sub) in subs.iter_mut().enumerate() {
        assert_eq!(next(sub).await, set("k", None, i as u32 + 10));
        nothing_more(sub).await;
    }
    let mut channels = Vec::new();
    for _ in 0..namespaces.len() {
        let msg = tokio::time::timeout(WAIT, plain.next())
            .await
            .expect("event on the plain subscriber")
            .unwrap();
        channels.push(msg.get_channel_name().to_owned());
    }
    channels.sort();
    let mut expected: Vec<String> = namespaces
        .values()
        .map(|ns| format!("{{{ns}}}#ev:k"))
        .collect();
    expected.sort();
    assert_eq!(channels, expected);
}

/// A master dies; its replica takes over. The same store goes on working
/// (reads, writes, optimistic and bulk updates), a live subscription reports
/// a gap and goes on, and a durable subscription resumes where it was.
///
/// The first operation after the failover here is a read; a store whose
/// first operation is a plain write is
/// `first_write_after_a_failover_resumes_without_restarting_the_store`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_operations_resume_and_subscriptions_report_a_gap() {
    let mut cluster = RedisCluster::start_with(RedisCluster::DEFAULT_NODE_TIMEOUT, &[]);
    let urls = cluster.urls();
    let seeds: Vec<&str> = urls.iter().map(String::as_str).collect();
    let store = Store::connect_cluster(&seeds).await.unwrap();
    let ns = "failover";
    let d = store
        .dict::<String, u32>(ns)
        .unwrap()
        .with_durable_log(10_000);
    let mut live = d.subscribe("*").await.unwrap();
    let mut durable = d.subscribe_durable(StartFrom::Beginning).await.unwrap();
    d.set("before", &1).await.unwrap();
    d.update_with("counter", |n| n.unwrap_or(0) + 1)
        .await
        .unwrap();
    assert_eq!(next(&mut live).await, set("before", None, 1));
    assert_eq!(next(&mut live).await, set("counter", None, 1));
    assert_eq!(next(&mut durable).await.1, set("before", None, 1));
    assert_eq!(next(&mut durable).await.1, set("counter", None, 1));

    let (master, promoted) = fail_over(&mut cluster, ns).await;

    // Reads resume, with nothing lost.
    let read = support::eventually(WAIT, || d.get("before")).await;
    if read != Some(1) {
        let mut raw = support::connect_raw(&node_url(promoted)).await;
        let held: Option<Vec<u8>> = redis::cmd("GET")
            .arg(format!("{{{ns}}}:before"))
            .query_async(&mut raw)
            .await
            .unwrap();
        panic!(
            "the store read {read:?} after the failover; the promoted master {promoted} holds {held:?}; the store reads {:?} now",
            d.get("before").await
        );
    }
    // The live subscription lost its connection: a gap, then events again.
    let gap = next(&mut live).await;
    assert_eq!(gap.change, Change::Gap, "{gap:?}");
    d.set("after", &2).await.unwrap();
    assert_eq!(next(&mut live).await, set("after", None, 2));
    assert_eq!(
        d.update_with("counter", |n| n.unwrap_or(0) + 1)
            .await
            .unwrap(),
        2
    );
    assert_eq!(next(&mut live).await, set("counter", None, 2));
    d.set_many([("bulk", 3)]).await.unwrap();
    assert_eq!(next(&mut live).await, set("bulk", None, 3));
    assert_eq!(d.len().await.unwrap(), 4);
    nothing_more(&mut live).await;

    // The durable one resumes from its last id on the new master: nothing
    // lost, nothing twice.
    assert_eq!(next(&mut durable).await.1, set("after", None, 2));
    assert_eq!(next(&mut durable).await.1, set("counter", None, 2));
    assert_eq!(next(&mut durable).await.1, set("bulk", None, 3));
    nothing_more(&mut durable).await;
    assert_eq!(
        cluster.master_for_key(&format!("{{{ns}}}")),
        promoted,
        "the namespace is served by the promoted replica of {master}"
    );
}

/// A near cache whose namespace's master fails over: the lost tracking
/// connection flushes the cache (reported), reads stay correct meanwhile,
/// and tracking is re-enabled on the promoted master, whose writes then
/// invalidate the cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn near_cache_follows_a_failover() {
    let mut cluster = RedisCluster::start_with(RedisCluster::DEFAULT_NODE_TIMEOUT, &[]);
    let urls = cluster.urls();
    let seeds: Vec<&str> = urls.iter().map(String::as_str).collect();
    let store = Store::connect_cluster(&seeds).await.unwrap();
    let ns = "failover-cache";
    let d = store.dict::<String, u32>(ns).unwrap();
    d.set("a", &1).await.unwrap();
    let cached = d.cached(100).await.unwrap();
    assert_eq!(cached.get("a").await.unwrap(), Some(1));
    let seen = cached.status().flushes;

    let (_master, promoted) = fail_over(&mut cluster, ns).await;

    tokio::time::timeout(WAIT, cached.wait_for_flush(seen))
        .await
        .expect("the failover flushed the cache");
    let read = support::eventually(WAIT, || cached.get("a")).await;
    assert_eq!(read, Some(1));
    tokio::time::timeout(Duration::from_secs(30), cached.wait_trusted())
        .await
        .unwrap_or_else(|_| panic!("tracking re-enabled: {:?}", cached.status()));
    // Cached again, and invalidated by a write on the promoted master.
    assert_eq!(cached.get("a").await.unwrap(), Some(1));
    let hits = cached.status().hits;
    assert_eq!(cached.get("a").await.unwrap(), Some(1));
    assert_eq!(cached.status().hits, hits + 1);
    let mut raw = support::connect_raw(&node_url(promoted)).await;
    let mut value = Vec::new();
    ciborium::into_writer(&2u32, &mut value).unwrap();
    let _: () = redis::cmd("SET")
        .arg(format!("{{{ns}}}:a"))
        .arg(value)
        .query_async(&mut raw)
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    while cached.get("a").await.unwrap() != Some(2) {
        assert!(
            std::time::Instant::now() < deadline,
            "not invalidated: {:?}",
            cached.status()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the replica of the master serving `ns` has every write, kills
/// that master and waits for the replica to take over. Returns (old master,
/// promoted replica).
async fn fail_over(cluster: &mut RedisCluster, ns: &str) -> (u16, u16) {
    let master = cluster.master_for_key(&format!("{{{ns}}}"));
    let replicas = cluster.replicas_of(master);
    assert!(
        !replicas.is_empty(),
        "master {master} has a replica to take over"
    );
    // Wait until a replica has applied the whole replication stream. (Not
    // WAIT: it waits for the calling connection's own writes only, and a
    // connection that wrote nothing gets its answer at once, whatever the
    // replicas hold: that let this test kill a master before its replica had
    // the store's writes, and then find them lost.)
    let offset = |port: u16, field: &'static str| async move {
        let mut raw = support::connect_raw(&node_url(port)).await;
        let info: String = redis::cmd("INFO")
            .arg("replication")
            .query_async(&mut raw)
            .await
            .unwrap();
        info.lines()
            .find_map(|line| line.strip_prefix(field))
            .and_then(|n| n.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    let written = offset(master, "master_repl_offset:").await;
    let mut caught_up = false;
    for _ in 0..200 {
        for &replica in &replicas {
            caught_up |= offset(replica, "slave_repl_offset:").await >= written;
        }
        if caught_up {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        caught_up,
        "a replica of {master} ({replicas:?}) has every write"
    );
    cluster.kill_node(master);
    let promoted =
        tokio::task::block_in_place(|| cluster.wait_for_failover(master, Duration::from_secs(30)));
    assert_ne!(promoted, master);
    (master, promoted)
}

/// After a failover, a store whose first operation is a write recovers like
/// one whose first operation is a read: a plain `set` and a bulk `update`
/// succeed once the replica has taken over. (Regression: these were MULTI/EXEC
/// transactions, whose MOVED redis-rs does not follow; on a cluster they are
/// now single script calls.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_write_after_a_failover_resumes_without_restarting_the_store() {
    let mut cluster = RedisCluster::start_with(RedisCluster::DEFAULT_NODE_TIMEOUT, &[]);
    let urls = cluster.urls();
    let seeds: Vec<&str> = urls.iter().map(String::as_str).collect();
    let setter = Store::connect_cluster(&seeds).await.unwrap();
    let updater = Store::connect_cluster(&seeds).await.unwrap();
    let ns = "failover-write";
    let by_set = setter.dict::<String, u32>(ns).unwrap();
    let by_update = updater.dict::<String, u32>(ns).unwrap();
    by_set.set("a", &1).await.unwrap();
    by_update.set_many([("b", 2)]).await.unwrap();
    fail_over(&mut cluster, ns).await;
    support::eventually(WAIT, || by_set.set("c", &3)).await;
    support::eventually(WAIT, || by_update.set_many([("d", 4), ("e", 5)])).await;
    let map = by_set.to_btree_map().await.unwrap();
    assert_eq!(
        map.into_iter().collect::<Vec<_>>(),
        [
            ("a".to_owned(), 1),
            ("b".to_owned(), 2),
            ("c".to_owned(), 3),
            ("d".to_owned(), 4),
            ("e".to_owned(), 5)
        ]
    );
}

/// What one writer of the migration test did.
#[derive(Default)]
struct Written {
    entries: BTreeMap<String, u64>,
    removed: Vec<String>,
    increments: u64,
    ops: u64,
}

/// One writer: sets, bulk updates, removals and optimistic increments,
/// until `stop`, then `after` more operations; every one must succeed.
async fn writer(
    d: redis_pydict::Dict<String, u64>,
    t: u64,
    stop: Arc<AtomicBool>,
    after: u64,
) -> Written {
    let mut done = Written::default();
    let mut remaining_after = after;
    for i in 0u64.. {
        if stop.load(Ordering::Relaxed) {
            if remaining_after == 0 {
                break;
            }
            remaining_after -= 1;
        }
        let key = format!("w{t}-{i}");
        d.set(&key, &i)
            .await
            .unwrap_or_else(|e| panic!("set {key}: {e}"));
        done.entries.insert(key, i);
        if i % 3 == 0 {
            d.update_with("counter", |n| n.unwrap_or(0) + 1)
                .await
                .unwrap_or_else(|e| panic!("update_with counter: {e}"));
            done.increments += 1;
        }
        if i % 5 == 0 && i / 5 < 250 {
            // Writer t owns pre-existing keys t*250 .. t*250+250.
            let key = format!("pre{}", t * 250 + i / 5);
            let old = d
                .remove(&key)
                .await
                .unwrap_or_else(|e| panic!("remove {key}: {e}"));
            assert_eq!(old, Some(t * 250 + i / 5), "{key} held its value");
            done.removed.push(key);
        }
        if i % 7 == 0 {
            let pairs = [(format!("b{t}-{i}-x"), i), (format!("b{t}-{i}-y"), i + 1)];
            d.set_many(pairs.clone())
                .await
                .unwrap_or_else(|e| panic!("update {pairs:?}: {e}"));
            done.entries.extend(pairs);
        }
        done.ops += 1;
    }
    done
}

/// A namespace's slot moves to another master (keys migrated a few at a
/// time: ASK redirections meanwhile, MOVED after) while four writers work
/// on it; every write succeeds and nothing is lost or duplicated.
/// (Regression: writes met by a migration failed with `Ask`/`TryAgain` when
/// the cluster retry budget was 5 and bulk updates were transactions.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slot_migration_during_writes_loses_nothing() {
    let cluster = Arc::new(RedisCluster::start_with(Duration::from_secs(10), &[]));
    let urls = cluster.urls();
    let seeds: Vec<&str> = urls.iter().map(String::as_str).collect();
    let store = Store::connect_cluster(&seeds).await.unwrap();
    let ns = "moving";
    let d = store.dict::<String, u64>(ns).unwrap();
    d.set_many((0..1000u64).map(|i| (format!("pre{i}"), i)))
        .await
        .unwrap();
    let slot = cluster.slot_of(&format!("{{{ns}}}"));
    let from = cluster.master_for_slot(slot);
    let to = *cluster.masters().iter().find(|&&p| p != from).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4u64)
        .map(|t| tokio::spawn(writer(d.clone(), t, stop.clone(), 100)))
        .collect();
    // Let the writers get going, then migrate 20 keys at a time.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let migration = tokio::task::spawn_blocking({
        let cluster = cluster.clone();
        move || cluster.migrate_slot(slot, to, 20, Duration::from_millis(5))
    });
    migration.await.unwrap();
    stop.store(true, Ordering::Relaxed);
    let mut expected: BTreeMap<String, u64> =
        (0..1000u64).map(|i| (format!("pre{i}"), i)).collect();
    let mut increments = 0;
    let mut ops = 0;
    for w in writers {
        let done = w.await.unwrap();
        for key in &done.removed {
            assert!(expected.remove(key).is_some(), "{key} removed once");
        }
        expected.extend(done.entries);
        increments += done.increments;
        ops += done.ops;
    }
    assert!(
        ops > 400,
        "the writers wrote during the migration: {ops} ops"
    );
    expected.insert("counter".into(), increments);

    assert_eq!(cluster.master_for_slot(slot), to, "the slot moved");
    let mut old: redis::aio::MultiplexedConnection = support::connect_raw(&node_url(from)).await;
    let left: u64 = redis::cmd("CLUSTER")
        .arg("COUNTKEYSINSLOT")
        .arg(slot)
        .query_async(&mut old)
        .await
        .unwrap();
    assert_eq!(left, 0, "no key left behind on the old master");

    assert_eq!(d.len().await.unwrap(), expected.len() as u64);
    let got = d.to_btree_map().await.unwrap();
    assert_eq!(got.len(), expected.len());
    let wrong: Vec<_> = expected
        .iter()
        .filter(|(k, v)| got.get(*k) != Some(v))
        .take(5)
        .collect();
    assert!(wrong.is_empty(), "entries lost or wrong: {wrong:?}");
    assert_eq!(got, expected);
    let mut new_owner = support::connect_raw(&node_url(to)).await;
    assert_eq!(
        support::index_members(&mut new_owner, ns).await,
        support::keyspace_members(&mut new_owner, ns).await,
        "the index is in step with the entries"
    );
}

// ----- sharded pub/sub -------------------------------------------------------

/// The hash slot of a Redis key (CRC16/XMODEM of its hash tag, mod 16384),
/// computed here to find namespaces that share a slot without asking the
/// cluster thousands of times.
fn slot(key: &str) -> u16 {
    let bytes = key.as_bytes();
    let tagged = bytes.iter().position(|&b| b == b'{').and_then(|open| {
        let close = bytes[open + 1..].iter().position(|&b| b == b'}')?;
        (close > 0).then(|| &bytes[open + 1..open + 1 + close])
    });
    let mut crc: u16 = 0;
    for &b in tagged.unwrap_or(bytes) {
        crc ^= (b as u16) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc % 16384
}

/// A plain RESP3 connection to `port`, and the pushes it receives.
async fn push_listener(
    port: u16,
) -> (
    redis::aio::MultiplexedConnection,
    tokio::sync::mpsc::UnboundedReceiver<redis::PushInfo>,
) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let config = redis::AsyncConnectionConfig::new().set_push_sender(tx);
    let conn = redis::Client::open(format!("{}?protocol=resp3", node_url(port)))
        .unwrap()
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .unwrap();
    (conn, rx)
}

/// A [`push_listener`] subscribed (SSUBSCRIBE) to the sharded `channel`.
async fn shard_listener(
    port: u16,
    channel: &str,
) -> (
    redis::aio::MultiplexedConnection,
    tokio::sync::mpsc::UnboundedReceiver<redis::PushInfo>,
) {
    let (mut conn, rx) = push_listener(port).await;
    redis::cmd("SSUBSCRIBE")
        .arg(channel)
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
    (conn, rx)
}

/// The next sharded message's (channel, op, key), skipping confirmations
/// (or the next pattern message's, on a listener that PSUBSCRIBEd).
async fn next_smessage(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<redis::PushInfo>,
) -> (String, String, Option<String>) {
    loop {
        let push = tokio::time::timeout(WAIT, rx.recv())
            .await
            .expect("a sharded message")
            .expect("connection open");
        if !matches!(
            push.kind,
            redis::PushKind::SMessage | redis::PushKind::PMessage
        ) {
            continue;
        }
        let msg = redis::Msg::from_push_info(push).unwrap();
        let event: ciborium::Value = ciborium::from_reader(msg.get_payload_bytes()).unwrap();
        let field = |name: &str| {
            event
                .as_map()
                .unwrap()
                .iter()
                .find(|(k, _)| k.as_text() == Some(name))
                .and_then(|(_, v)| v.as_text().map(str::to_owned))
        };
        return (
            msg.get_channel_name().to_owned(),
            field("op").unwrap(),
            field("key"),
        );
    }
}

/// On Redis >= 7.0 every event of a namespace goes out by SPUBLISH on
/// `{ns}#ev` from the master of its slot, the same payloads as PUBLISH
/// carries, and a library subscription listens there (PUBSUB SHARDNUMSUB).
/// Before 7.0 (no SSUBSCRIBE) every event goes out by PUBLISH on its key's
/// channel, as on one server (WIRE.md, sharded publishing).
#[tokio::test]
async fn sharded_events_carry_the_same_payloads_on_the_namespace_channel() {
    let ctx = shared("sharded_wire").await;
    let ns = ctx.ns("wire");
    let channel = format!("{{{ns}}}#ev");
    let master = cluster().master_for_key(&channel);
    if cluster().major_version() < 7 {
        return events_are_published_per_key_before_redis_7(&ctx, &ns, master).await;
    }
    let (_conn, mut rx) = shard_listener(master, &channel).await;
    let d = ctx.store.dict::<String, u32>(&ns).unwrap();
    let sub = d.subscribe("*").await.unwrap();
    let mut raw = support::connect_raw(&node_url(master)).await;
    let (_, listeners): (String, u64) = redis::cmd("PUBSUB")
        .arg("SHARDNUMSUB")
        .arg(&channel)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(listeners, 2, "this test's listener and the subscription");

    d.set("a", &1).await.unwrap();
    d.set_many([("b", 2), ("c", 3)]).await.unwrap();
    d.expire("a", Duration::from_secs(30)).await.unwrap();
    d.delete("b").await.unwrap();
    d.clear().await.unwrap();
    let some = |k: &str| Some(k.to_owned());
    for (op, key) in [
        ("set", some("a")),
        // b and c, in one message (see the test below).
        ("batch", None),
        ("expire", some("a")),
        ("del", some("b")),
        ("clear", None),
    ] {
        assert_eq!(
            next_smessage(&mut rx).await,
            (channel.clone(), op.to_owned(), key)
        );
    }
    drop(sub);
}

/// The pre-7.0 half of the test above: SSUBSCRIBE is unknown there, and a
/// store (sharded events on, the default) PUBLISHes each event to its key's
/// channel (`{ns}#ev` for a clear), where a library subscription receives it.
async fn events_are_published_per_key_before_redis_7(ctx: &Ctx, ns: &str, master: u16) {
    let mut raw = support::connect_raw(&node_url(master)).await;
    let refused = redis::cmd("SSUBSCRIBE")
        .arg(format!("{{{ns}}}#ev"))
        .query_async::<()>(&mut raw)
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("unknown command"), "{refused}");
    let (mut listener, mut rx) = push_listener(master).await;
    listener
        .psubscribe(format!("{{{}}}#ev*", redis_pydict::escape_glob(ns)))
        .await
        .unwrap();
    let d = ctx.store.dict::<String, u32>(ns).unwrap();
    let mut sub = d.subscribe("*").await.unwrap();
    d.set("a", &1).await.unwrap();
    d.set_many([("b", 2), ("c", 3)]).await.unwrap();
    d.delete("b").await.unwrap();
    d.clear().await.unwrap();
    let channel = |key: &str| format!("{{{ns}}}#ev{key}");
    let some = |k: &str| Some(k.to_owned());
    for (ch, op, key) in [
        (channel(":a"), "set", some("a")),
        (channel(":b"), "set", some("b")),
        (channel(":c"), "set", some("c")),
        (channel(":b"), "del", some("b")),
        (channel(""), "clear", None),
    ] {
        assert_eq!(next_smessage(&mut rx).await, (ch, op.to_owned(), key));
    }
    assert_eq!(next(&mut sub).await, set("a", None, 1));
    assert_eq!(next(&mut sub).await, set("b", None, 2));
    assert_eq!(next(&mut sub).await, set("c", None, 3));
}

/// The next sharded message's payload, skipping confirmations.
async fn next_spayload(rx: &mut tokio::sync::mpsc::UnboundedReceiver<redis::PushInfo>) -> Vec<u8> {
    loop {
        let push = tokio::time::timeout(WAIT, rx.recv())
            .await
            .expect("a sharded message")
            .expect("connection open");
        if push.kind == redis::PushKind::SMessage {
            return redis::Msg::from_push_info(push)
                .unwrap()
                .get_payload_bytes()
                .to_vec();
        }
    }
}

/// How many events a batch message carries (WIRE.md §6.2) and their bytes;
/// `None` for a message that is one event.
fn batch_of(payload: &[u8]) -> Option<(usize, &[u8])> {
    const HEAD: &[u8] = b"\xa4\x61v\x01\x62op\x65batch\x63key\xf6\x66events";
    let rest = payload.strip_prefix(HEAD)?;
    let (n, skip) = match rest[0] {
        b @ 0x80..=0x97 => (usize::from(b - 0x80), 1),
        0x98 => (usize::from(rest[1]), 2),
        0x99 => (usize::from(u16::from_be_bytes([rest[1], rest[2]])), 3),
        other => panic!("a batch's array head, not {other:#x}"),
    };
    Some((n, &rest[skip..]))
}

/// A [`shard_listener`] on namespace `ns`'s channel `{ns}#ev`, at the
/// master of its slot; `None` before Redis 7.0 (no sharded pub/sub).
async fn namespace_shard_listener(
    ns: &str,
) -> Option<(
    redis::aio::MultiplexedConnection,
    tokio::sync::mpsc::UnboundedReceiver<redis::PushInfo>,
)> {
    if cluster().major_version() < 7 {
        return None;
    }
    let channel = format!("{{{ns}}}#ev");
    Some(shard_listener(cluster().master_for_key(&channel), &channel).await)
}

/// How many events each of the next `messages` sharded messages carries (1
/// for a single event); a batch's events take at most 1 MiB.
async fn events_per_message(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<redis::PushInfo>,
    messages: usize,
) -> Vec<usize> {
    let mut counts = Vec::new();
    for _ in 0..messages {
        counts.push(match batch_of(&next_spayload(rx).await) {
            Some((n, events)) => {
                assert!(events.len() <= 1 << 20, "{} bytes of events", events.len());
                n
            }
            None => 1,
        });
    }
    counts
}

/// On Redis >= 7.0 a `set_many` publishes its events in batch messages
/// (WIRE.md §6.2), `StoreBuilder::batched_events` on by default: a batch
/// holds, in order, byte for byte the payloads a writer with
/// `batched_events(false)` publishes one by one (sequence numbers
/// included), at most a thousand of them; subscriptions deliver each event,
/// each in order, and filter each by its key. Before 7.0 nothing is sharded
/// and nothing is batched: the subscriptions' half still holds.
#[tokio::test]
async fn set_many_on_a_cluster_publishes_its_events_in_batches() {
    let ctx = shared("sharded_batch").await;
    let (batched_ns, single_ns) = (ctx.ns("batched"), ctx.ns("single"));
    let entries: Vec<(String, u32)> = (0..2_500).map(|i| (format!("k{i}"), i)).collect();
    let d = ctx.store.dict::<String, u32>(&batched_ns).unwrap();
    let mut all = d.subscribe("*").await.unwrap();
    let mut one = d.subscribe_key("k1234").await.unwrap();
    let mut glob = d.subscribe("k24??").await.unwrap();
    let batched_raw = namespace_shard_listener(&batched_ns).await;
    let single_raw = namespace_shard_listener(&single_ns).await;
    d.set_many(entries.clone()).await.unwrap();
    if let (Some((_b, mut batched_rx)), Some((_s, mut single_rx))) = (batched_raw, single_raw) {
        let unbatched = ctx.builder().batched_events(false).connect().await.unwrap();
        let s = unbatched.dict::<String, u32>(&single_ns).unwrap();
        s.set_many(entries.clone()).await.unwrap();
        let mut singles = Vec::new();
        for _ in &entries {
            let payload = next_spayload(&mut single_rx).await;
            assert!(
                batch_of(&payload).is_none(),
                "batched_events(false) sends single events"
            );
            singles.push(payload);
        }
        let mut at = 0;
        while at < singles.len() {
            let payload = next_spayload(&mut batched_rx).await;
            let (n, events) = batch_of(&payload).expect("set_many's events come in batches");
            assert!((2..=1_000).contains(&n), "{n} events in a batch");
            assert_eq!(
                events,
                singles[at..at + n].concat(),
                "events {at}..{}",
                at + n
            );
            at += n;
        }
        assert_eq!(at, entries.len());
    }
    for (i, (key, value)) in entries.iter().enumerate() {
        let event = next(&mut all).await;
        assert_eq!(event, set(key, None, *value));
        assert_eq!(event.seq, Some(i as u64 + 1));
    }
    nothing_more(&mut all).await;
    assert_eq!(next(&mut one).await, set("k1234", None, 1234));
    nothing_more(&mut one).await;
    for i in 2_400..2_500 {
        assert_eq!(next(&mut glob).await, set(&format!("k{i}"), None, i));
    }
    nothing_more(&mut glob).await;
}

/// A batch message grows to at most 1 MiB of events (WIRE.md §6.2): an
/// event that would take it past that starts the next one, and an event
/// larger than that goes out alone, as itself. Subscriptions get them all.
#[tokio::test]
async fn a_batch_message_holds_at_most_a_mebibyte_of_events() {
    let ctx = shared("sharded_batch_size").await;
    let ns = ctx.ns("big");
    let d = ctx.store.dict::<String, String>(&ns).unwrap();
    let mut all = d.subscribe("*").await.unwrap();
    let value = |c: char, len: usize| c.to_string().repeat(len);
    let entries = vec![
        ("a".to_owned(), value('a', 400_000)),
        ("b".to_owned(), value('b', 400_000)),
        ("c".to_owned(), value('c', 400_000)),
        ("d".to_owned(), value('d', 1_500_000)),
        ("e".to_owned(), value('e', 10)),
        ("f".to_owned(), value('f', 10)),
    ];
    let mut raw = namespace_shard_listener(&ns).await;
    d.set_many(entries.clone()).await.unwrap();
    if let Some((_conn, rx)) = raw.as_mut() {
        // a+b (c would pass 1 MiB), c alone (d would), d alone (larger), e+f.
        assert_eq!(events_per_message(rx, 4).await, [2, 1, 1, 2]);
    }
    for (key, value) in &entries {
        assert_eq!(next(&mut all).await, set(key, None, value.clone()));
    }
    nothing_more(&mut all).await;
}

/// Every unit of several events is batched, not only `set_many`'s: a
/// `clear` with previous values sends its `del` events and the `clear` in one
/// message; a `set` or a `delete` of one entry goes out alone, as itself.
#[tokio::test]
async fn every_unit_of_several_events_is_batched() {
    let ctx = shared("sharded_units").await;
    let ns = ctx.ns("units");
    let d = ctx
        .store
        .dict::<String, u32>(&ns)
        .unwrap()
        .with_previous_values(true);
    let mut all = d.subscribe("*").await.unwrap();
    let mut raw = namespace_shard_listener(&ns).await;
    d.set_many([("a", 1), ("b", 2)]).await.unwrap();
    d.set("c", &3).await.unwrap();
    d.delete("c").await.unwrap();
    d.clear().await.unwrap();
    if let Some((_conn, rx)) = raw.as_mut() {
        assert_eq!(
            events_per_message(rx, 4).await,
            [2, 1, 1, 3],
            "set_many, set, delete, clear (2 del + clear)"
        );
    }
    let mut seen = Vec::new();
    for _ in 0..7 {
        let event = next(&mut all).await;
        seen.push((event.key, event.change, event.previous, event.seq));
    }
    use redis_pydict::Previous::{Absent, Value};
    let key = |k: &str| Some(k.to_owned());
    assert_eq!(
        seen,
        [
            (key("a"), Change::Set(1), Absent, Some(1)),
            (key("b"), Change::Set(2), Absent, Some(2)),
            (key("c"), Change::Set(3), Absent, Some(3)),
            (key("c"), Change::Deleted, Value(3), Some(4)),
            (key("a"), Change::Deleted, Value(1), Some(5)),
            (key("b"), Change::Deleted, Value(2), Some(6)),
            (
                None,
                Change::Cleared,
                redis_pydict::Previous::Unknown,
                Some(7)
            ),
        ]
    );
    nothing_more(&mut all).await;
}

/// Sharded pub/sub has no patterns: a glob subscription on a cluster gets
/// every event of its namespace's channel and keeps exactly the keys its
/// glob matches, like PSUBSCRIBE on one server; key subscriptions keep their
/// keys. Nothing of another namespace arrives, neither of one in the same
/// slot (its channel is another) nor of one elsewhere.
#[tokio::test]
async fn glob_subscription_on_a_cluster_receives_exactly_its_keys() {
    let ctx = shared("sharded_glob").await;
    let ns = ctx.ns("jobs");
    let twin = (0..)
        .map(|i| ctx.ns(&format!("twin{i}")))
        .find(|t| slot(&format!("{{{t}}}")) == slot(&format!("{{{ns}}}")))
        .unwrap();
    assert_eq!(
        cluster().slot_of(&format!("{{{twin}}}")),
        cluster().slot_of(&format!("{{{ns}}}")),
        "the local slot computation agrees with the cluster"
    );
    let elsewhere = (0..)
        .map(|i| ctx.ns(&format!("far{i}")))
        .find(|t| {
            cluster().master_for_slot(slot(&format!("{{{t}}}")))
                != cluster().master_for_slot(slot(&format!("{{{ns}}}")))
        })
        .unwrap();
    let d = ctx.store.dict::<String, u32>(&ns).unwrap();
    let mut glob = d.subscribe("job:[0-9]*").await.unwrap();
    let mut escaped = d.subscribe(r"lit\*").await.unwrap();
    let mut one = d.subscribe_key("other").await.unwrap();
    for other in [&twin, &elsewhere] {
        let o = ctx.store.dict::<String, u32>(other).unwrap();
        o.set("job:1", &100).await.unwrap();
        o.set("other", &100).await.unwrap();
        o.set(r"lit*", &100).await.unwrap();
    }
    for (i, key) in [
        "job:1", "jobs:2", "job:x", "other", "job:22x", "lit*", "litX", "other2",
    ]
    .into_iter()
    .enumerate()
    {
        d.set(key, &(i as u32)).await.unwrap();
    }
    assert_eq!(next(&mut glob).await, set("job:1", None, 0));
    assert_eq!(next(&mut glob).await, set("job:22x", None, 4));
    assert_eq!(next(&mut escaped).await, set("lit*", None, 5));
    assert_eq!(next(&mut one).await, set("other", None, 3));
    d.delete("job:1").await.unwrap();
    assert_eq!(
        next(&mut glob).await,
        cases::subscriptions::change(Some("job:1"), None, Change::Deleted)
    );
    // Namespace-wide events reach every subscription.
    d.clear().await.unwrap();
    for sub in [&mut glob, &mut escaped, &mut one] {
        assert_eq!(next(sub).await.change, Change::Cleared);
        nothing_more(sub).await;
    }
}

/// Writers built in different ways meet one subscriber: a store over the
/// caller's `ClusterClient`, one from `cluster_builder` with sharded events
/// (SPUBLISH) and one with `sharded_events(false)` (PUBLISH, as older
/// versions of this crate): the subscriber listens both ways and gets every
/// event once, in each writer's order.
#[tokio::test]
async fn writers_built_differently_meet_one_subscriber() {
    let ctx = shared("mixed_writers").await;
    let ns = ctx.ns("mixed");
    let d = ctx.store.dict::<String, u32>(&ns).unwrap();
    let mut sub = d.subscribe("*").await.unwrap();
    let client = redis::cluster::ClusterClient::new(ctx.node_urls()).unwrap();
    let from_client = Store::from_cluster_client(client).await.unwrap();
    let sharded = ctx.connect().await;
    let classic = ctx.builder().sharded_events(false).connect().await.unwrap();
    for (round, store) in [&from_client, &sharded, &classic, &sharded, &from_client]
        .into_iter()
        .enumerate()
    {
        let w = store.dict::<String, u32>(&ns).unwrap();
        w.set(&format!("k{round}"), &(round as u32)).await.unwrap();
        w.set_many([(format!("m{round}"), round as u32)])
            .await
            .unwrap();
        assert_eq!(
            next(&mut sub).await,
            set(&format!("k{round}"), None, round as u32)
        );
        assert_eq!(
            next(&mut sub).await,
            set(&format!("m{round}"), None, round as u32)
        );
    }
    nothing_more(&mut sub).await;
}

/// A slot migration moves the namespace to another master: the server
/// unsubscribes the sharded channel there (SUNSUBSCRIBE), the subscription
/// reports a gap, follows the slot to its new master and goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slot_migration_yields_a_gap_and_the_subscription_follows_the_slot() {
    let cluster = Arc::new(RedisCluster::start_with(Duration::from_secs(10), &[]));
    let urls = cluster.urls();
    let seeds: Vec<&str> = urls.iter().map(String::as_str).collect();
    let store = Store::connect_cluster(&seeds).await.unwrap();
    let ns = "wandering";
    let d = store.dict::<String, u32>(ns).unwrap();
    let mut sub = d.subscribe("*").await.unwrap();
    d.set("before", &1).await.unwrap();
    assert_eq!(next(&mut sub).await, set("before", None, 1));
    let slot = cluster.slot_of(&format!("{{{ns}}}"));
    let from = cluster.master_for_slot(slot);
    let to = *cluster.masters().iter().find(|&&p| p != from).unwrap();
    tokio::task::spawn_blocking({
        let cluster = cluster.clone();
        move || cluster.migrate_slot(slot, to, 20, Duration::from_millis(5))
    })
    .await
    .unwrap();
    assert_eq!(cluster.master_for_slot(slot), to, "the slot moved");
    if cluster.major_version() >= 7 {
        // The old master unsubscribed the sharded channel.
        let gap = next(&mut sub).await;
        assert_eq!(gap.change, Change::Gap, "{gap:?}");
    }
    // (Before Redis 7.0 events are PUBLISHed, which reaches every node: the
    // subscription stays where it is and misses nothing, so no gap.)
    support::eventually(WAIT, || d.set("after", &2)).await;
    assert_eq!(next(&mut sub).await, set("after", None, 2));
    nothing_more(&mut sub).await;
}

/// On a cluster several `set_many` batches are in flight at once; a batch
/// that fails (a key of it holds foreign data of another type) is not
/// applied, the ones before it are, and the error counts exactly what the
/// server holds. A key repeated in a later batch ends with the later value.
#[tokio::test]
async fn pipelined_cluster_batches_keep_partly_applied_semantics() {
    let ctx = shared("pipelined").await;
    let store = ctx.builder().max_batch(10).connect().await.unwrap();
    let ns = ctx.ns("batches");
    let d = store.dict::<String, u32>(&ns).unwrap();
    // Later values win across batches, even with batches in flight.
    d.set_many((0..100u32).map(|i| (format!("k{}", i % 15), i)))
        .await
        .unwrap();
    let got = d.to_btree_map().await.unwrap();
    let want: BTreeMap<String, u32> = (85..100u32).map(|i| (format!("k{}", i % 15), i)).collect();
    assert_eq!(got, want);
    d.clear().await.unwrap();

    // Entry 55 (batch 6 of 10) holds a list.
    let mut raw = ctx.raw(&ns).await;
    redis::cmd("RPUSH")
        .arg(format!("{{{ns}}}:e55"))
        .arg("foreign")
        .query_async::<()>(&mut raw)
        .await
        .unwrap();
    let err = d
        .set_many((0..100u32).map(|i| (format!("e{i}"), i)))
        .await
        .unwrap_err();
    let redis_pydict::Error::PartlyApplied {
        failed_batch,
        applied_batches,
        applied_entries,
        ..
    } = &err
    else {
        panic!("expected PartlyApplied, got {err}");
    };
    assert_eq!(*failed_batch, 6, "{err}");
    assert!(*applied_batches >= 5, "{err}");
    assert_eq!(*applied_entries, applied_batches * 10, "{err}");
    let held = d.len().await.unwrap();
    assert_eq!(
        held, *applied_entries,
        "the error counts what the server holds"
    );
    for i in (50..60).filter(|&i| i != 55) {
        assert!(
            !d.contains(&format!("e{i}")).await.unwrap(),
            "batch 6 is atomic"
        );
    }
    for i in 0..50 {
        assert_eq!(d.get(&format!("e{i}")).await.unwrap(), Some(i));
    }
}

/// Sharded pub/sub under least privilege: a user with the README's rules for
/// namespace `shardapp` (on every node) plus what a cluster needs (`+cluster|slots`
/// for redis-rs's slot map, `+cluster|keyslot` to find a namespace's master)
/// and what sharded events need (`+spublish` for writers, `+ssubscribe` for
/// subscribers: the channel rule `&{shardapp}#ev` already covers the sharded
/// channel) writes, subscribes and receives its events, and no node logs a
/// denial for it.
#[tokio::test]
async fn sharded_events_work_under_the_documented_acl_rules() {
    let ctx = shared("sharded_acl").await;
    let mut rules = redis_pydict_test::acl::namespace_rules("shardapp");
    // The cluster's own.
    rules.extend(["+cluster|slots".to_owned(), "+cluster|keyslot".to_owned()]);
    let sharded = cluster().major_version() >= 7;
    if sharded {
        // Redis 6.2 knows neither command (and refuses rules naming them).
        rules.extend(["+spublish".to_owned(), "+ssubscribe".to_owned()]);
    }
    for mut admin in ctx.raw_all().await {
        redis::cmd("ACL")
            .arg("SETUSER")
            .arg("shardapp")
            .arg("reset")
            .arg("on")
            .arg(">shardapp-pass")
            .arg(&rules[..])
            .query_async::<()>(&mut admin)
            .await
            .unwrap();
    }
    let seeds: Vec<String> = cluster()
        .ports()
        .iter()
        .map(|p| format!("redis://shardapp:shardapp-pass@127.0.0.1:{p}/"))
        .collect();
    let store = Store::connect_cluster(&seeds).await.unwrap();
    let d = store.dict::<String, u32>("shardapp").unwrap();
    let mut all = d.subscribe("*").await.unwrap();
    let mut one = d.subscribe_key("k").await.unwrap();
    d.set("k", &1).await.unwrap();
    d.set_many([("a", 2), ("b", 3)]).await.unwrap();
    d.update_with("k", |n| n.unwrap_or(0) + 1).await.unwrap();
    d.delete("a").await.unwrap();
    assert_eq!(next(&mut all).await, set("k", None, 1));
    assert_eq!(next(&mut all).await, set("a", None, 2));
    assert_eq!(next(&mut all).await, set("b", None, 3));
    assert_eq!(next(&mut all).await, set("k", None, 2));
    assert_eq!(next(&mut one).await, set("k", None, 1));
    assert_eq!(next(&mut one).await, set("k", None, 2));
    assert_eq!(
        next(&mut all).await,
        cases::subscriptions::change(Some("a"), None, Change::Deleted)
    );
    d.clear().await.unwrap();
    assert_eq!(next(&mut all).await.change, Change::Cleared);
    for mut admin in ctx.raw_all().await {
        let log: Vec<redis::Value> = redis::cmd("ACL")
            .arg("LOG")
            .query_async(&mut admin)
            .await
            .unwrap();
        let denied: Vec<String> = log
            .iter()
            .map(|e| format!("{e:?}"))
            .filter(|e| e.contains("shardapp"))
            // Redis 6.2 logs redis-rs's CLIENT SETINFO (harmless, its error
            // is ignored) as denied; 7.0 refuses it as unknown first.
            .filter(|e| sharded || !e.contains("cmd=client"))
            .collect();
        assert!(denied.is_empty(), "denials: {denied:?}");
    }
}

/// On a cluster `update_with` compares inside a script (no WATCH): an entry
/// that turns foreign between the read and the script (here, written by
/// the closure itself, which runs between the two) is refused by the
/// script's type checks, before it compares or writes anything, as
/// `WrongType` naming the entry; the foreign value stays as it is.
#[tokio::test]
async fn update_with_meeting_foreign_data_written_after_its_read_is_a_wrong_type() {
    let ctx = shared("cas_foreign").await;
    let ns = ctx.ns("cas");
    let d = ctx.store.dict::<String, u32>(&ns).unwrap();
    d.set("k", &1).await.unwrap();
    let entry = format!("{{{ns}}}:k");
    let node = cluster().master_for_key(&entry);
    let mut sync = redis::Client::open(node_url(node))
        .unwrap()
        .get_connection()
        .unwrap();
    let mut calls = 0;
    let e = d
        .update_with("k", |n| {
            calls += 1;
            if calls == 1 {
                let _: () = redis::cmd("DEL").arg(&entry).query(&mut sync).unwrap();
                let _: () = redis::cmd("HSET")
                    .arg(&entry)
                    .arg("f")
                    .arg("foreign")
                    .query(&mut sync)
                    .unwrap();
            }
            n.unwrap_or(0) + 1
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&e, redis_pydict::Error::WrongType { role: "entry", key, found, .. }
            if key == &entry && found == "hash"),
        "{e}"
    );
    assert_eq!(calls, 1, "the closure ran once");
    let mut raw = ctx.raw(&ns).await;
    let kept: String = redis::cmd("HGET")
        .arg(&entry)
        .arg("f")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(kept, "foreign");
}
