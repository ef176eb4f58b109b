//! Faults on the connection path (see main.rs): a paused server, a dead
//! server, `kill -9` and restart, `CLIENT KILL` of the store's connections,
//! wrong passwords. Each asserts what the caller is told
//! ([`Error::outcome_unknown`], no credential in any message) and what
//! actually happened on the server.

use std::time::{Duration, Instant};

use futures::StreamExt;
use redis::aio::MultiplexedConnection;

use crate::raw;
use redis_pydict::{Change, Error, Store, StoreBuilder};
use redis_pydict_test::RedisServer;

/// Sends a signal to the server process.
fn signal(server: &RedisServer, sig: &str) {
    let pid = server.pid().expect("server runs").to_string();
    let status = std::process::Command::new("kill")
        .args([sig, &pid])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill {sig} {pid}");
}

/// Fast reconnection settings, so that a dead server is reported quickly.
fn quick(builder: StoreBuilder) -> StoreBuilder {
    builder.reconnect(2, Duration::from_millis(10), Duration::from_millis(50))
}

/// The counter stored by `update_with` under `key`, read directly.
async fn counter(conn: &mut MultiplexedConnection, ns: &str, key: &str) -> u64 {
    let bytes: Option<Vec<u8>> = redis::cmd("GET")
        .arg(format!("{{{ns}}}:{key}"))
        .query_async(conn)
        .await
        .unwrap();
    bytes.map_or(0, |b| ciborium::from_reader(&b[..]).unwrap())
}

/// Fills the store's pool of dedicated connections (used by `update_with`)
/// with `n` connections: `n` concurrent updates each hold one.
async fn fill_pool(store: &Store, n: usize) {
    let d = store.dict::<String, u64>("pool").unwrap();
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let d = d.clone();
            tokio::spawn(async move {
                for _ in 0..5 {
                    d.update_with(&format!("k{i}"), |v| v.unwrap_or(0) + 1)
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

/// A request sent to a paused server times out: the error says the outcome
/// is unknown, and indeed the write is applied once the server resumes.
#[tokio::test]
async fn paused_server_timeout_is_outcome_unknown_and_applies_later() {
    let server = RedisServer::start();
    let store = Store::builder(&server.url())
        .response_timeout(Duration::from_millis(300))
        .connect()
        .await
        .unwrap();
    let d = store.dict::<String, u32>("paused").unwrap();
    d.set("warm", &0).await.unwrap();

    signal(&server, "-STOP");
    let err = d.set("k", &7).await.unwrap_err();
    signal(&server, "-CONT");

    assert!(err.is_connection_error(), "{err}");
    assert!(
        err.outcome_unknown(),
        "a timed-out write may be applied: {err}"
    );
    // The write was in the server's socket buffer: it is applied on SIGCONT.
    let mut conn = raw(&server.url()).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen: Option<Vec<u8>> = None;
    while seen.is_none() && Instant::now() < deadline {
        seen = redis::cmd("GET")
            .arg("{paused}:k")
            .query_async(&mut conn)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        seen.is_some(),
        "the timed-out set was applied after SIGCONT"
    );
    // And the store works again.
    assert_eq!(d.get("k").await.unwrap(), Some(7));
    d.set("after", &1).await.unwrap();
}

/// A dead server: every operation fails with "not applied" (nothing could be
/// sent), nothing is written, and the first operation once the server is
/// back succeeds, even after the reconnection attempts had run out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_server_is_not_applied_and_first_call_after_restart_succeeds() {
    // Persistence on, so that what was (not) written can be checked after the restart.
    let mut server = RedisServer::start_with(&["--appendonly", "yes", "--appendfsync", "always"]);
    let store = quick(Store::builder(&server.url()))
        .connect()
        .await
        .unwrap();
    let d = store.dict::<String, u32>("dead").unwrap();
    d.set("before", &1).await.unwrap();
    fill_pool(&store, 2).await;

    server.kill();
    // Let redis-rs notice and exhaust its reconnection attempts.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let errors = [
        d.set("k", &2).await.unwrap_err(),
        d.update_with("n", |v| v.unwrap_or(0) + 1)
            .await
            .unwrap_err(),
        d.set_many([("a".to_owned(), 1)]).await.unwrap_err(),
        d.remove("before").await.unwrap_err(),
    ];
    for err in &errors {
        assert!(err.is_connection_error(), "{err}");
        assert!(
            !err.outcome_unknown(),
            "nothing can be sent to a dead server: {err}"
        );
    }
    // Still down for longer than the reconnection budget; then back.
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.restart();

    // The very first operation succeeds.
    assert_eq!(d.get("before").await.unwrap(), Some(1));
    // Nothing of the failed calls was written.
    assert_eq!(d.get("k").await.unwrap(), None);
    assert_eq!(d.get("n").await.unwrap(), None);
    assert_eq!(d.get("a").await.unwrap(), None);
    assert_eq!(d.len().await.unwrap(), 1);
}

/// `kill -9` and restart: the next operation succeeds, and so do the first
/// 20 `update_with` calls, although every pooled dedicated connection died.
// Multi-threaded, as a real program's runtime is: the restart blocks this
// thread, and the store's connection tasks must see the old server go meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_and_restart_then_every_update_succeeds() {
    let mut server = RedisServer::start();
    let store = Store::connect(&server.url()).await.unwrap();
    fill_pool(&store, 8).await;
    let d = store.dict::<String, u64>("restart").unwrap();

    server.restart();

    d.set("first", &1).await.unwrap();
    for i in 1..=20 {
        let n = d
            .update_with("n", |v| v.unwrap_or(0) + 1)
            .await
            .unwrap_or_else(|e| panic!("update_with #{i} after the restart failed: {e}"));
        assert_eq!(n, i);
    }
    // And in parallel, on the pool refilled by the calls above.
    fill_pool(&store, 8).await;
}

/// `CLIENT KILL` of every normal connection (the shared one and the pooled
/// dedicated ones) while idle: the calls after it all succeed.
#[tokio::test]
async fn client_kill_of_idle_connections_then_every_call_succeeds() {
    let server = RedisServer::start();
    let store = Store::connect(&server.url()).await.unwrap();
    fill_pool(&store, 8).await;
    let d = store.dict::<String, u64>("killed").unwrap();
    let mut conn = raw(&server.url()).await;

    let killed: u64 = redis::cmd("CLIENT")
        .arg(&["KILL", "TYPE", "normal", "SKIPME", "yes"])
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(
        killed >= 9,
        "the shared connection and 8 dedicated ones: {killed}"
    );
    // Let the store's connections see their end.
    tokio::time::sleep(Duration::from_millis(100)).await;

    for i in 1..=20 {
        let n = d
            .update_with("n", |v| v.unwrap_or(0) + 1)
            .await
            .unwrap_or_else(|e| panic!("update_with #{i} after CLIENT KILL failed: {e}"));
        assert_eq!(n, i);
    }
    d.set("k", &1).await.unwrap();
}

/// `CLIENT KILL` of the store's connections while `update_with` and `set`
/// run: every call either succeeds or fails; a failure that says "not
/// applied" was not applied, and the counter is between the successes and
/// the successes plus the "outcome unknown" failures.
#[tokio::test]
async fn client_kill_during_updates_reports_outcomes_honestly() {
    let server = RedisServer::start();
    let store = quick(Store::builder(&server.url()))
        .connect()
        .await
        .unwrap();
    let d = store.dict::<String, u64>("cas").unwrap();

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let killer = {
        let stop = stop.clone();
        let mut conn = raw(&server.url()).await;
        tokio::spawn(async move {
            let mut kills = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let n: u64 = redis::cmd("CLIENT")
                    .arg(&["KILL", "TYPE", "normal", "SKIPME", "yes"])
                    .query_async(&mut conn)
                    .await
                    .unwrap();
                kills += n;
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
            kills
        })
    };
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let d = d.clone();
            tokio::spawn(async move {
                // (successes, unknown outcomes, keys of set calls "not applied")
                let (mut ok, mut unknown, mut not_applied) = (0u64, 0u64, Vec::new());
                for i in 0..60 {
                    match d.update_with("n", |v| v.unwrap_or(0) + 1).await {
                        Ok(_) => ok += 1,
                        Err(e) => {
                            assert!(e.is_connection_error(), "{e}");
                            if e.outcome_unknown() {
                                unknown += 1;
                            }
                        }
                    }
                    let key = format!("s{w}-{i}");
                    if let Err(e) = d.set(&key, &1).await {
                        assert!(e.is_connection_error(), "{e}");
                        if !e.outcome_unknown() {
                            not_applied.push(key);
                        }
                    }
                }
                (ok, unknown, not_applied)
            })
        })
        .collect();
    let (mut ok, mut unknown, mut not_applied) = (0, 0, Vec::new());
    for writer in writers {
        let (o, u, n) = writer.await.unwrap();
        ok += o;
        unknown += u;
        not_applied.extend(n);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let kills = killer.await.unwrap();
    assert!(kills > 0, "the test killed no connection");

    let mut conn = raw(&server.url()).await;
    let value = counter(&mut conn, "cas", "n").await;
    println!(
        "{kills} connections killed; update_with: {ok} ok, {unknown} failed with outcome \
         unknown ({} of them applied); set: {} failed as not applied",
        value - ok.min(value),
        not_applied.len()
    );
    assert!(
        ok <= value && value <= ok + unknown,
        "counter {value}: {ok} calls succeeded, {unknown} failed with outcome unknown"
    );
    for key in not_applied {
        let exists: bool = redis::cmd("EXISTS")
            .arg(format!("{{cas}}:{key}"))
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(!exists, "set of {key} said 'not applied' but was");
    }
    // After the storm every call succeeds.
    for _ in 0..20 {
        d.update_with("n", |v| v.unwrap_or(0) + 1).await.unwrap();
    }
    assert_eq!(counter(&mut conn, "cas", "n").await, value + 20);
}

/// No credential in any message, `Debug`, `Display` or accessor, for every
/// URL form redis-rs accepts, with right and wrong passwords, and for URLs
/// that do not parse.
#[tokio::test]
async fn credentials_never_appear_in_messages() {
    const SECRET: &str = "S3cretPass";
    let socket =
        std::env::temp_dir().join(format!("redis-pydict-auth-{}.sock", std::process::id()));
    let socket_arg = socket.to_str().unwrap().to_owned();
    let server = RedisServer::start_with(&[
        "--requirepass",
        SECRET,
        "--unixsocket",
        &socket_arg,
        "--unixsocketperm",
        "700",
    ]);
    let port = server.port();
    let sock = socket.display();
    let leaks = |text: &str| text.contains("S3cret") || text.contains("wrongPw");

    // Right passwords: the store works, and hides them.
    for url in [
        format!("redis://:{SECRET}@127.0.0.1:{port}/"),
        format!("redis://default:{SECRET}@127.0.0.1:{port}/1"),
        format!("redis+unix://{sock}?user=default&pass={SECRET}"),
        format!("unix://{sock}?pass={SECRET}&db=2"),
    ] {
        let builder = Store::builder(&url);
        assert!(!leaks(&format!("{builder:?}")), "{builder:?}");
        let store = builder
            .connect()
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        store.ping().await.unwrap();
        for shown in [store.url().to_owned(), format!("{store:?}")] {
            assert!(!leaks(&shown), "{shown}");
        }
    }

    // Wrong or unusable passwords: the errors hide them.
    let wrong = [
        format!("redis://:wrongPw{SECRET}@127.0.0.1:{port}/"),
        format!("redis://default:wrongPw@127.0.0.1:{port}/0"),
        format!("redis://default:wrong%2FPw@127.0.0.1:{port}/0"),
        format!("redis://default:wrong/Pw{SECRET}@127.0.0.1:{port}/0"),
        format!("redis://:12/wrongPw@127.0.0.1:{port}/0"),
        format!("redis+unix://{sock}?user=default&pass=wrongPw"),
        format!("unix://{sock}?password=wrongPw&pass=wrongPw"),
        format!("redis://127.0.0.1:{port}/"), // no password at all
    ];
    for url in &wrong {
        let err = quick(Store::builder(url)).connect().await.unwrap_err();
        assert!(matches!(err, Error::Connect { .. }), "{url}: {err}");
        assert!(!err.outcome_unknown(), "{err}");
        let mut texts = vec![err.to_string(), format!("{err:?}")];
        let mut source = std::error::Error::source(&err);
        while let Some(s) = source {
            texts.push(s.to_string());
            source = s.source();
        }
        for text in texts {
            assert!(!leaks(&text), "{url} -> {text}");
        }
    }
    // A cluster node list (this server is no cluster: connecting fails).
    let nodes = [
        format!("redis://:wrongPw@127.0.0.1:{port}/"),
        format!("redis://:{SECRET}@127.0.0.1:{port}/"),
    ];
    let builder = quick(Store::cluster_builder(&nodes));
    assert!(!leaks(&format!("{builder:?}")));
    let err = builder.connect().await.unwrap_err();
    for text in [err.to_string(), format!("{err:?}")] {
        assert!(!leaks(&text), "{text}");
    }
    // The message still says where it tried.
    let err = quick(Store::builder(&wrong[0]))
        .connect()
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("cannot connect to redis://:***@127.0.0.1:{port}/")),
        "{err}"
    );
    std::fs::remove_file(&socket).ok();
}

/// A store over the caller's own `redis::Client` keeps its database and
/// credentials and has every guarantee of `Store::connect`: dedicated
/// connections for `update_with`, subscriptions, recovery after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_client_keeps_the_guarantees() {
    let mut server = RedisServer::start_with(&["--requirepass", "pw"]);
    let url = format!("redis://:pw@127.0.0.1:{}/3", server.port());
    let client = redis::Client::open(url.as_str()).unwrap();
    let store = Store::from_client(client.clone()).await.unwrap();
    assert_eq!(
        store.url(),
        format!("redis://127.0.0.1:{}/3", server.port())
    );
    let d = store.dict::<String, u64>("own").unwrap();
    let mut events = d.subscribe("*").await.unwrap();

    d.set("k", &1).await.unwrap();
    assert_eq!(d.update_with("k", |v| v.unwrap_or(0) + 1).await.unwrap(), 2);
    let event = tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .expect("an event")
        .expect("stream open")
        .unwrap();
    assert_eq!(event.key.as_deref(), Some("k"));
    assert!(matches!(event.change, Change::Set(1)));
    // The data is in database 3, as the client said.
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    assert_eq!(counter(&mut conn, "own", "k").await, 2);

    fill_pool(&store, 4).await;
    server.restart();
    for i in 1..=10 {
        assert_eq!(d.update_with("n", |v| v.unwrap_or(0) + 1).await.unwrap(), i);
    }
    // The builder form takes the store's own settings.
    let store = Store::client_builder(client)
        .origin("mine")
        .connect()
        .await
        .unwrap();
    assert_eq!(store.origin(), Some("mine"));
}

/// `connect_cluster` takes any list of URLs (here a `Vec<String>`);
/// `from_cluster_client` takes the caller's own cluster client. Every dict
/// operation works on both,
/// `update_with` included. A store from a caller's cluster client cannot
/// open connections of its own (redis-rs does not tell the client's
/// credentials): subscribing fails with an error that says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_from_url_list_and_from_cluster_client() {
    let cluster = redis_pydict_test::RedisCluster::start();
    let seeds: Vec<String> = cluster.urls();

    let by_urls = Store::connect_cluster(seeds.clone()).await.unwrap();
    assert!(by_urls.is_cluster());
    let client = redis::cluster::ClusterClient::new(seeds).unwrap();
    let by_client = Store::from_cluster_client(client).await.unwrap();
    assert!(by_client.is_cluster());

    let a = by_urls.dict::<String, u64>("shared").unwrap();
    let b = by_client.dict::<String, u64>("shared").unwrap();
    let mut events = a.subscribe("*").await.unwrap();
    b.set("k", &1).await.unwrap();
    assert_eq!(a.get("k").await.unwrap(), Some(1));
    for _ in 0..5 {
        a.update_with("k", |v| v.unwrap_or(0) + 1).await.unwrap();
        b.update_with("k", |v| v.unwrap_or(0) + 1).await.unwrap();
    }
    assert_eq!(b.get("k").await.unwrap(), Some(11));
    let event = tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .expect("an event")
        .expect("stream open")
        .unwrap();
    assert!(matches!(event.change, Change::Set(1)), "{event:?}");

    let err = b.subscribe("*").await.unwrap_err().to_string();
    assert!(err.contains("from_cluster_client"), "{err}");
}
