//! Derived views on the blocking API: the same generated struct, in mode
//! `Blocking`, against a real redis-server.

use std::time::Duration;

use redis_pydict::{blocking, Blocking, Error, RedisDict, Ttl};
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
    let cfg: ConfigView<Blocking> = Config::blocking_view(&store, "prod").unwrap();
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

    let dict = cfg.dict::<ciborium::Value>().unwrap();
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
    let sync_view = Config::blocking_view(&store, "both").unwrap();
    sync_view.save(&config()).unwrap();

    let async_view = Config::view(store.as_async(), "both").unwrap();
    let loaded = store.block_on(async_view.load()).unwrap();
    assert_eq!(loaded, config());
    store.block_on(async_view.threshold.set(&9.0)).unwrap();
    assert_eq!(sync_view.threshold.get().unwrap(), Some(9.0));
}

#[test]
fn blocking_updates_from_threads_lose_nothing() {
    let server = RedisServer::start();
    let store = blocking::Store::connect(&server.url()).unwrap();
    let view = Config::blocking_view(&store, "threads").unwrap();
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
    let view = Config::blocking_view(&store, "sub").unwrap();
    let mut changes = view.heartbeat.subscribe().unwrap();
    view.label.set(&None).unwrap();
    view.heartbeat.set(&5).unwrap();
    let event = changes.next().unwrap().unwrap();
    assert_eq!(event.key.as_deref(), Some("heartbeat"));
    assert_eq!(event.change, redis_pydict::Change::Set(5));
}
