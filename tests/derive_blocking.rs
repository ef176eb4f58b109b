//! Derived views on the blocking API: the same generated struct, in mode
//! `Blocking`, against a real redis-server.

use std::time::Duration;

use redis_pydict::blocking::{self, Blocking};
use redis_pydict::{Change, Error, RedisDict, StartFrom, Ttl};
use redis_pydict_test::RedisServer;

#[derive(RedisDict, Debug, Clone, PartialEq)]
#[redis_dict(prefix = "cfg")]
struct Config {
    threshold: f64,
    workers: Vec<String>,
    #[redis_dict(default)]
    verbose: bool,
    label: Option<String>,
    #[redis_dict(ttl = "1m", default)]
    heartbeat: u64,
}

fn config() -> Config {
    Config {
        threshold: 0.75,
        workers: vec!["w1".into(), "w2".into()],
        verbose: true,
        label: Some("ünï".into()),
        heartbeat: 3,
    }
}

#[test]
fn blocking_fields_and_whole_struct() {
    let server = RedisServer::start();
    let store = blocking::Store::connect(&server.url()).unwrap();
    let cfg: ConfigView<Blocking> = Config::view(&store, "prod").unwrap();
    assert_eq!(cfg.namespace().name(), "cfg:prod");

    assert_eq!(cfg.try_load().unwrap(), None);
    assert!(matches!(
        cfg.load(),
        Err(Error::MissingField {
            field: "threshold",
            ..
        })
    ));
    cfg.threshold.set(&0.5).unwrap();
    assert_eq!(cfg.threshold.get().unwrap(), Some(0.5));
    assert!(cfg.threshold.exists().unwrap());
    cfg.workers.update(|w| w.push("w3".into())).unwrap_err();
    cfg.workers.set(&Vec::new()).unwrap();
    cfg.workers.update(|w| w.push("w3".into())).unwrap();
    let loaded = cfg.load().unwrap();
    assert_eq!(loaded.workers, ["w3"]);
    assert_eq!(
        (loaded.verbose, loaded.label, loaded.heartbeat),
        (false, None, 0)
    );

    let value = config();
    cfg.save(&value).unwrap();
    assert_eq!(cfg.load().unwrap(), value);
    assert!(
        matches!(cfg.heartbeat.ttl().unwrap(), Ttl::Expires(left) if left <= Duration::from_secs(60))
    );
    cfg.update(|c: &mut Config| c.heartbeat += 10).unwrap();
    assert_eq!(cfg.heartbeat.get().unwrap(), Some(13));
    assert_eq!(
        cfg.heartbeat.update_with(|h| h.unwrap_or(0) * 2).unwrap(),
        26
    );

    let dict = cfg.dict::<ciborium::Value>();
    assert_eq!(dict.len().unwrap(), 5);
    assert!(cfg.label.delete().unwrap());
    assert_eq!(cfg.label.take().unwrap(), None);
    assert!(!cfg.verbose.set_if_absent(&false).unwrap());
    assert!(cfg.threshold.expire(Duration::from_secs(100)).unwrap());
    assert!(cfg.threshold.persist().unwrap());
    cfg.threshold
        .set_with_ttl(&1.0, Duration::from_secs(10))
        .unwrap();
    assert_eq!(cfg.clear().unwrap(), 4);
    assert_eq!(dict.len().unwrap(), 0);
}

#[test]
fn blocking_and_async_views_share_the_data() {
    let server = RedisServer::start();
    let store = blocking::Store::connect(&server.url()).unwrap();
    let sync_view = Config::view(&store, "both").unwrap();
    sync_view.save(&config()).unwrap();

    let async_view = Config::view(store.as_async(), "both").unwrap();
    let loaded = store.block_on(async_view.load()).unwrap().unwrap();
    assert_eq!(loaded, config());
    store
        .block_on(async_view.threshold.set(&9.0))
        .unwrap()
        .unwrap();
    assert_eq!(sync_view.threshold.get().unwrap(), Some(9.0));
}

#[test]
fn blocking_updates_from_threads_lose_nothing() {
    let server = RedisServer::start();
    let store = blocking::Store::connect(&server.url()).unwrap();
    let view = Config::view(&store, "threads").unwrap();
    view.save(&config()).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let view = view.clone();
            std::thread::spawn(move || {
                for _ in 0..50 {
                    view.update(|c: &mut Config| {
                        c.heartbeat += 1;
                        c.threshold += 1.0;
                    })
                    .unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let end = view.load().unwrap();
    assert_eq!((end.heartbeat, end.threshold), (203, 200.75));
}

#[test]
fn blocking_field_subscriptions() {
    let server = RedisServer::start();
    let store = blocking::Store::connect(&server.url()).unwrap();
    let view = Config::view(&store, "sub").unwrap();
    let mut changes = view.heartbeat.subscribe().unwrap();
    view.label.set(&None).unwrap();
    view.heartbeat.set(&5).unwrap();
    let event = changes.next().unwrap().unwrap();
    assert_eq!(event.key.as_deref(), Some("heartbeat"));
    assert_eq!(event.change, Change::Set(5));
}

/// Issue 10, bug 3: a blocking view's field handles and dict are the async
/// ones wrapped, so they keep the view's settings (they used to rebuild a
/// dict from the store by name, losing origin, durable log and skip-own-events).
#[test]
fn blocking_views_keep_their_settings() {
    let server = RedisServer::start();
    let store = blocking::Store::connect(&server.url()).unwrap();
    let mine = Config::view(&store, "settings")
        .unwrap()
        .with_origin("me")
        .with_skip_own_events(true)
        .with_durable_log(100);
    let theirs = Config::view(&store, "settings")
        .unwrap()
        .with_origin("them");

    // A field subscription of a view skipping its own events sees only theirs.
    let mut changes = mine.heartbeat.subscribe().unwrap();
    mine.heartbeat.set(&1).unwrap();
    theirs.heartbeat.set(&2).unwrap();
    let event = changes
        .recv_timeout(Duration::from_secs(5))
        .unwrap()
        .unwrap();
    assert_eq!(
        (event.origin.as_deref(), event.change),
        (Some("them"), Change::Set(2))
    );
    assert!(changes.recv_timeout(Duration::from_millis(200)).is_none());

    // The view's dict writes with the view's origin, into its durable log.
    let dict = mine.dict::<u64>();
    assert_eq!((dict.origin(), dict.durable_log()), (Some("me"), Some(100)));
    dict.set("heartbeat", &3).unwrap();
    let reader = Config::view(&store, "settings").unwrap();
    let mut log = reader.subscribe_durable(StartFrom::Beginning).unwrap();
    let origins: Vec<Option<String>> = (0..3)
        .map(|_| {
            log.recv_timeout(Duration::from_secs(5))
                .unwrap()
                .unwrap()
                .1
                .origin
        })
        .collect();
    // The view's write and the dict's went to the log, and so did theirs:
    // the view's first logged write declared the log in `{settings}#meta`,
    // which every writer of the namespace honours (WIRE.md §8).
    assert_eq!(
        origins,
        [
            Some("me".to_owned()),
            Some("them".to_owned()),
            Some("me".to_owned())
        ]
    );
    assert!(log.recv_timeout(Duration::from_millis(200)).is_none());

    // Whole-struct subscriptions skip the view's own writes too.
    let mut all = mine.subscribe().unwrap();
    mine.threshold.set(&1.0).unwrap();
    theirs.threshold.set(&2.0).unwrap();
    let item = all.recv_timeout(Duration::from_secs(5)).unwrap().unwrap();
    assert_eq!(item.origin.as_deref(), Some("them"));
    assert!(matches!(item.event, ConfigEvent::Threshold(Change::Set(t)) if t == 2.0));
}

/// Issue 9, defect 10: a blocking call on a thread of an async runtime is a
/// clear error, never tokio's "Cannot start a runtime from within a runtime"
/// panic; so is every call on a store made outside, and dropping it there is fine.
#[test]
fn blocking_calls_inside_an_async_runtime_are_errors_not_panics() {
    let server = RedisServer::start();
    let url = server.url();
    let store = blocking::Store::connect(&url).unwrap();
    let view = Config::view(&store, "inside").unwrap();
    let dict = store.dict::<String, u32>("inside").unwrap();
    let mut changes = dict.subscribe("*").unwrap();
    let mut items = dict.items();

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let refused = |result: Result<(), Error>, operation: &str| match result {
            Err(Error::BlockingInAsync { operation: op }) => {
                assert_eq!(op, operation);
                let message = Error::BlockingInAsync { operation: op }.to_string();
                assert!(message.contains("async API"), "{message}");
            }
            other => panic!("{operation}: {other:?}"),
        };
        refused(blocking::Store::connect(&url).map(drop), "Store::connect");
        refused(store.ping(), "Store::ping");
        refused(dict.set("a", &1), "Dict::set");
        refused(view.threshold.set(&1.0), "Field::set");
        refused(view.load().map(drop), "View::load");
        refused(store.block_on(async {}), "Store::block_on");
        assert!(matches!(
            changes.recv(),
            Some(Err(Error::BlockingInAsync { .. }))
        ));
        assert!(matches!(
            items.next(),
            Some(Err(Error::BlockingInAsync { .. }))
        ));
        assert!(items.next().is_none());
        // The async twin works there, and dropping the blocking handles too.
        store
            .as_async()
            .dict::<String, u32>("inside")
            .unwrap()
            .set("b", &2)
            .await
            .unwrap();
        drop((store, view, dict, changes));
    });
    // Nothing was written by the refused calls (seen through a store over
    // the caller's own client, the blocking twin of `Store::from_client`).
    let client = redis::Client::open(server.url()).unwrap();
    let check = blocking::Store::from_client(client).unwrap();
    let dict = check.dict::<String, u32>("inside").unwrap();
    assert_eq!(
        dict.to_btree_map().unwrap().into_iter().collect::<Vec<_>>(),
        [("b".to_owned(), 2)]
    );
}
