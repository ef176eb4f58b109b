//! View subscriptions of `#[derive(RedisDict)]` structs against a real
//! redis-server: the generated `<Struct>Event` enum, typed per field, from
//! every kind of write, with the writer's origin; durable replay; the
//! blocking mirror.

use std::fmt::Debug;
use std::time::Duration;

use futures::StreamExt;
use redis_pydict::{
    blocking, Change, Error, LogId, RedisDict, StartFrom, Store, Subscription, ViewEvent,
};
use redis_pydict_test::RedisServer;
use serde::{Deserialize, Serialize};

#[derive(RedisDict, Debug, Clone, PartialEq)]
#[redis_dict(prefix = "cfg")]
struct Config {
    threshold: f64,
    workers: Vec<String>,
    #[redis_dict(rename = "max-conn", default)]
    max_conn: u32,
    label: Option<String>,
    #[redis_dict(skip)]
    scratch: Vec<u8>,
}

fn config() -> Config {
    Config {
        threshold: 0.25,
        workers: vec!["w1".into()],
        max_conn: 8,
        label: Some("ünï".into()),
        scratch: Vec::new(),
    }
}

/// How long to wait for an event that must come.
const WAIT: Duration = Duration::from_secs(5);
/// How long to wait for an event that must not come.
const QUIET: Duration = Duration::from_millis(300);

async fn connect(server: &RedisServer, origin: &str) -> Store {
    Store::builder(&server.url())
        .origin(origin)
        .connect()
        .await
        .expect("connect")
}

/// An item with its `ViewEvent`s as plain `(origin, event)` pairs, which
/// tests can build (`ViewEvent` is `#[non_exhaustive]`).
trait Plain {
    type Out;
    fn plain(self) -> Self::Out;
}

impl<E> Plain for ViewEvent<E> {
    type Out = (Option<String>, E);
    fn plain(self) -> Self::Out {
        (self.origin, self.event)
    }
}

impl<V> Plain for redis_pydict::Event<String, V> {
    type Out = Self;
    fn plain(self) -> Self {
        self
    }
}

impl<E> Plain for (LogId, ViewEvent<E>) {
    type Out = (LogId, (Option<String>, E));
    fn plain(self) -> Self::Out {
        (self.0, self.1.plain())
    }
}

async fn next<E: Plain>(sub: &mut Subscription<E>) -> E::Out {
    match tokio::time::timeout(WAIT, sub.next()).await {
        Ok(Some(Ok(event))) => event.plain(),
        Ok(Some(Err(e))) => panic!("error item: {e}"),
        Ok(None) => panic!("the subscription ended"),
        Err(_) => panic!("no event within {WAIT:?}"),
    }
}

async fn nothing_more<E: Debug>(sub: &mut Subscription<E>) {
    if let Ok(item) = tokio::time::timeout(QUIET, sub.next()).await {
        panic!("unexpected item: {item:?}");
    }
}

fn ev(origin: Option<&str>, event: ConfigEvent) -> (Option<String>, ConfigEvent) {
    (origin.map(str::to_owned), event)
}

fn by(origin: &str, event: ConfigEvent) -> (Option<String>, ConfigEvent) {
    ev(Some(origin), event)
}

#[test]
fn the_event_enum_has_the_usual_traits_when_its_fields_do() {
    fn usual<T: Debug + Clone + PartialEq + Send + Sync + 'static>() {}
    usual::<ConfigEvent>();
    usual::<ViewEvent<ConfigEvent>>();
    let event = ConfigEvent::MaxConn(Change::Set(3));
    assert_eq!(event.clone(), event);
    assert_ne!(event, ConfigEvent::MaxConn(Change::Deleted));
    assert_ne!(ConfigEvent::Cleared, ConfigEvent::Gap);
    assert_eq!(format!("{event:?}"), "MaxConn(Set(3))");
    assert_eq!(format!("{:?}", ConfigEvent::Gap), "Gap");
}

#[tokio::test]
async fn field_writes_arrive_typed_with_their_origin() {
    let server = RedisServer::start();
    let store = connect(&server, "writer").await;
    let cfg = Config::view(&store, "prod").unwrap();
    let mut sub = cfg.subscribe().await.unwrap();

    cfg.threshold.set(&0.5).await.unwrap();
    assert_eq!(
        next(&mut sub).await,
        by("writer", ConfigEvent::Threshold(Change::Set(0.5)))
    );
    cfg.workers.set(&vec!["w1".into()]).await.unwrap();
    cfg.workers.update(|w| w.push("w2".into())).await.unwrap();
    assert_eq!(
        next(&mut sub).await,
        by(
            "writer",
            ConfigEvent::Workers(Change::Set(vec!["w1".into()]))
        )
    );
    assert_eq!(
        next(&mut sub).await,
        by(
            "writer",
            ConfigEvent::Workers(Change::Set(vec!["w1".into(), "w2".into()]))
        )
    );
    // A renamed field is found by its stored name; `None` is a value of an Option.
    cfg.max_conn.update(|m| *m += 5).await.unwrap();
    cfg.label.set(&None).await.unwrap();
    cfg.label.set(&Some("ünï 🚀".into())).await.unwrap();
    assert_eq!(
        next(&mut sub).await,
        by("writer", ConfigEvent::MaxConn(Change::Set(5)))
    );
    assert_eq!(
        next(&mut sub).await,
        by("writer", ConfigEvent::Label(Change::Set(None)))
    );
    assert_eq!(
        next(&mut sub).await,
        by(
            "writer",
            ConfigEvent::Label(Change::Set(Some("ünï 🚀".into())))
        )
    );
    // Deletions; deleting what is not there changes nothing and says nothing.
    assert!(cfg.max_conn.delete().await.unwrap());
    assert!(!cfg.max_conn.delete().await.unwrap());
    assert_eq!(cfg.threshold.take().await.unwrap(), Some(0.5));
    assert!(cfg.threshold.set_if_absent(&0.75).await.unwrap());
    assert!(!cfg.threshold.set_if_absent(&0.9).await.unwrap());
    assert_eq!(
        next(&mut sub).await,
        by("writer", ConfigEvent::MaxConn(Change::Deleted))
    );
    assert_eq!(
        next(&mut sub).await,
        by("writer", ConfigEvent::Threshold(Change::Deleted))
    );
    assert_eq!(
        next(&mut sub).await,
        by("writer", ConfigEvent::Threshold(Change::Set(0.75)))
    );
    nothing_more(&mut sub).await;

    // Another process (another store, another origin) is seen the same way;
    // a view can set its own origin.
    let other = connect(&server, "other").await;
    let theirs = Config::view(&other, "prod")
        .unwrap()
        .with_origin("their-view");
    assert_eq!(theirs.origin(), Some("their-view"));
    theirs.threshold.set(&1.5).await.unwrap();
    assert_eq!(
        next(&mut sub).await,
        by("their-view", ConfigEvent::Threshold(Change::Set(1.5)))
    );
}

#[tokio::test]
async fn save_update_and_clear() {
    let server = RedisServer::start();
    let store = connect(&server, "w").await;
    let cfg = Config::view(&store, "prod").unwrap();
    let mut sub = cfg.subscribe().await.unwrap();

    // save: one event per stored field (not `scratch`), in schema order.
    let mut value = config();
    cfg.save(&value).await.unwrap();
    for expected in [
        ConfigEvent::Threshold(Change::Set(0.25)),
        ConfigEvent::Workers(Change::Set(vec!["w1".into()])),
        ConfigEvent::MaxConn(Change::Set(8)),
        ConfigEvent::Label(Change::Set(Some("ünï".into()))),
    ] {
        assert_eq!(next(&mut sub).await, by("w", expected));
    }
    nothing_more(&mut sub).await;

    // Saving again publishes again (a save is a write of every field).
    value.max_conn = 9;
    cfg.save(&value).await.unwrap();
    for _ in 0..4 {
        next(&mut sub).await;
    }

    // update: one event per field that changed.
    cfg.update(|c: &mut Config| {
        c.max_conn += 1;
        c.label = None;
    })
    .await
    .unwrap();
    assert_eq!(
        next(&mut sub).await,
        by("w", ConfigEvent::MaxConn(Change::Set(10)))
    );
    assert_eq!(
        next(&mut sub).await,
        by("w", ConfigEvent::Label(Change::Set(None)))
    );
    nothing_more(&mut sub).await;

    // The view's clear deletes its fields: one `Deleted` per stored field.
    assert_eq!(cfg.clear().await.unwrap(), 4);
    for expected in [
        ConfigEvent::Threshold(Change::Deleted),
        ConfigEvent::Workers(Change::Deleted),
        ConfigEvent::MaxConn(Change::Deleted),
        ConfigEvent::Label(Change::Deleted),
    ] {
        assert_eq!(next(&mut sub).await, by("w", expected));
    }

    // Clearing the namespace as a dict is one `Cleared`.
    cfg.threshold.set(&2.0).await.unwrap();
    next(&mut sub).await;
    cfg.dict::<ciborium::Value>().clear().await.unwrap();
    assert_eq!(next(&mut sub).await, by("w", ConfigEvent::Cleared));
    nothing_more(&mut sub).await;
}

#[tokio::test]
async fn ttl_changes_and_expiries() {
    let server = RedisServer::start();
    let store = Store::builder(&server.url())
        .enable_expiry_events(true)
        .connect()
        .await
        .unwrap();
    let cfg = Config::view(&store, "prod").unwrap();
    let mut sub = cfg.subscribe().await.unwrap();

    cfg.label.set(&Some("x".into())).await.unwrap();
    assert!(cfg.label.expire(Duration::from_secs(30)).await.unwrap());
    assert!(cfg.label.persist().await.unwrap());
    assert_eq!(
        next(&mut sub).await,
        ev(None, ConfigEvent::Label(Change::Set(Some("x".into()))))
    );
    assert_eq!(
        next(&mut sub).await,
        ev(
            None,
            ConfigEvent::Label(Change::TtlChanged(Some(Duration::from_secs(30))))
        )
    );
    assert_eq!(
        next(&mut sub).await,
        ev(None, ConfigEvent::Label(Change::TtlChanged(None)))
    );

    // A field that runs out: its value, then (when Redis notices) `Expired`.
    cfg.max_conn
        .set_with_ttl(&1, Duration::from_millis(100))
        .await
        .unwrap();
    assert_eq!(
        next(&mut sub).await,
        ev(None, ConfigEvent::MaxConn(Change::Set(1)))
    );
    assert_eq!(
        next(&mut sub).await,
        ev(None, ConfigEvent::MaxConn(Change::Expired))
    );
    nothing_more(&mut sub).await;
}

#[tokio::test]
async fn keys_that_are_not_fields_are_ignored() {
    let server = RedisServer::start();
    let store = connect(&server, "w").await;
    let cfg = Config::view(&store, "prod").unwrap();
    let mut sub = cfg.subscribe().await.unwrap();

    // Other entries of the namespace (a skipped field's name, the Rust name of
    // a renamed field, anything else), and another instance's fields.
    let raw = cfg.dict::<u32>();
    for key in ["other", "scratch", "max_conn", "threshold2", "thresh*"] {
        raw.set(key, &1).await.unwrap();
    }
    raw.remove("other").await.unwrap();
    let staging = Config::view(&store, "staging").unwrap();
    staging.threshold.set(&9.0).await.unwrap();
    nothing_more(&mut sub).await;

    // A field written as a plain dict entry is a field change all the same.
    raw.set("max-conn", &3).await.unwrap();
    assert_eq!(
        next(&mut sub).await,
        by("w", ConfigEvent::MaxConn(Change::Set(3)))
    );
}

#[tokio::test]
async fn an_undecodable_value_is_an_error_naming_the_field_and_the_stream_goes_on() {
    let server = RedisServer::start();
    let store = connect(&server, "w").await;
    let cfg = Config::view(&store, "prod").unwrap();
    let mut sub = cfg.subscribe().await.unwrap();

    cfg.dict::<String>()
        .set("max-conn", &"lots".to_owned())
        .await
        .unwrap();
    let item = tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("an item")
        .expect("the stream goes on");
    let err = item.expect_err("\"lots\" is no u32");
    assert!(
        matches!(&err, Error::Decode { key, expected: "u32", .. } if key == "max-conn"),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains("\"max-conn\"") && message.contains("field `max_conn` of Config"),
        "{message}"
    );

    cfg.max_conn.set(&4).await.unwrap();
    assert_eq!(
        next(&mut sub).await,
        by("w", ConfigEvent::MaxConn(Change::Set(4)))
    );
}

#[tokio::test]
async fn own_events_can_be_skipped() {
    let server = RedisServer::start();
    let mine = connect(&server, "me").await;
    let theirs = connect(&server, "them").await;
    let cfg = Config::view(&mine, "prod")
        .unwrap()
        .with_skip_own_events(true);
    let other = Config::view(&theirs, "prod").unwrap();
    let mut sub = cfg.subscribe().await.unwrap();
    let mut field_sub = cfg.threshold.subscribe().await.unwrap();

    cfg.threshold.set(&1.0).await.unwrap();
    other.threshold.set(&2.0).await.unwrap();
    cfg.threshold.set(&3.0).await.unwrap();
    assert_eq!(
        next(&mut sub).await,
        by("them", ConfigEvent::Threshold(Change::Set(2.0)))
    );
    nothing_more(&mut sub).await;
    // The rebuilt view's field handles skip them too.
    let event = next(&mut field_sub).await;
    assert_eq!(
        (event.origin.as_deref(), event.change),
        (Some("them"), Change::Set(2.0))
    );
    nothing_more(&mut field_sub).await;
}

#[tokio::test]
async fn a_dropped_connection_is_a_gap_and_events_go_on() {
    let server = RedisServer::start();
    let store = connect(&server, "w").await;
    let cfg = Config::view(&store, "prod").unwrap();
    let mut sub = cfg.subscribe().await.unwrap();
    cfg.threshold.set(&1.0).await.unwrap();
    next(&mut sub).await;

    let mut raw = redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let killed: u64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(killed >= 1);
    assert_eq!(next(&mut sub).await, ev(None, ConfigEvent::Gap));

    // Resubscribed once the gap is reported: later writes arrive.
    cfg.threshold.set(&2.0).await.unwrap();
    assert_eq!(
        next(&mut sub).await,
        by("w", ConfigEvent::Threshold(Change::Set(2.0)))
    );
}

#[tokio::test]
async fn durable_view_subscriptions_replay_from_an_id() {
    let server = RedisServer::start();
    let store = connect(&server, "w").await;
    let plain = Config::view(&store, "prod").unwrap();
    assert_eq!(plain.durable_log(), None);
    let cfg = plain.with_durable_log(1000);
    assert_eq!(cfg.durable_log(), Some(1000));
    // Only writes through a durable view (or dict) are logged.
    plain.label.set(&None).await.unwrap();

    cfg.threshold.set(&1.0).await.unwrap();
    cfg.workers.set(&vec!["a".into()]).await.unwrap();
    // In the log but not a field: skipped by the view's subscription.
    cfg.dict::<u32>()
        .with_durable_log(1000)
        .set("other", &1)
        .await
        .unwrap();
    cfg.max_conn.set(&3).await.unwrap();
    cfg.threshold.set(&2.0).await.unwrap();
    let expected = [
        ConfigEvent::Threshold(Change::Set(1.0)),
        ConfigEvent::Workers(Change::Set(vec!["a".into()])),
        ConfigEvent::MaxConn(Change::Set(3)),
        ConfigEvent::Threshold(Change::Set(2.0)),
    ];

    let mut all = cfg.subscribe_durable(StartFrom::Beginning).await.unwrap();
    let mut ids: Vec<LogId> = Vec::new();
    for want in &expected {
        let (id, event) = next(&mut all).await;
        assert_eq!(event, by("w", want.clone()));
        assert!(
            ids.last().is_none_or(|last| *last < id),
            "{ids:?} then {id}"
        );
        ids.push(id);
    }
    nothing_more(&mut all).await;

    // Resume after the second change: the last two, with the same ids.
    let mut resumed = cfg
        .subscribe_durable(StartFrom::After(ids[1]))
        .await
        .unwrap();
    for (want, id) in expected[2..].iter().zip(&ids[2..]) {
        assert_eq!(next(&mut resumed).await, (*id, by("w", want.clone())));
    }
    // Then live, in both.
    cfg.label.set(&Some("live".into())).await.unwrap();
    let live = by("w", ConfigEvent::Label(Change::Set(Some("live".into()))));
    let (id, event) = next(&mut resumed).await;
    assert_eq!(event, live);
    assert!(id > ids[3]);
    assert_eq!(next(&mut all).await, (id, live));

    // From now: only what comes after.
    let mut from_now = cfg.subscribe_durable(StartFrom::Now).await.unwrap();
    cfg.dict::<u32>()
        .with_durable_log(1000)
        .clear()
        .await
        .unwrap();
    assert_eq!(next(&mut from_now).await.1, by("w", ConfigEvent::Cleared));
    nothing_more(&mut from_now).await;
}

#[test]
fn blocking_view_subscriptions() {
    let server = RedisServer::start();
    let store = blocking::Store::connect_with(Store::builder(&server.url()).origin("b")).unwrap();
    let cfg = Config::view(&store, "prod").unwrap().with_durable_log(100);
    let mut sub = cfg.subscribe().unwrap();
    assert!(sub.try_recv().is_none());

    cfg.threshold.set(&0.5).unwrap();
    cfg.max_conn.update(|m| *m += 1).unwrap();
    let first = sub.recv_timeout(WAIT).expect("an event").unwrap().plain();
    assert_eq!(first, by("b", ConfigEvent::Threshold(Change::Set(0.5))));
    let second = sub.next().expect("an event").unwrap().plain();
    assert_eq!(second, by("b", ConfigEvent::MaxConn(Change::Set(1))));
    assert!(sub.recv_timeout(QUIET).is_none());

    cfg.save(&config()).unwrap();
    let saved: Vec<ConfigEvent> = (0..4)
        .map(|_| sub.recv_timeout(WAIT).expect("an event").unwrap().event)
        .collect();
    assert_eq!(saved[2], ConfigEvent::MaxConn(Change::Set(8)));

    // The durable log has all six changes, with ids to resume from.
    let mut durable = cfg.subscribe_durable(StartFrom::Beginning).unwrap();
    let logged: Vec<(LogId, (Option<String>, ConfigEvent))> = (0..6)
        .map(|_| {
            durable
                .recv_timeout(WAIT)
                .expect("a change")
                .unwrap()
                .plain()
        })
        .collect();
    assert_eq!(logged[0].1, first);
    assert_eq!(logged[1].1, second);
    let mut resumed = cfg
        .subscribe_durable(StartFrom::After(logged[4].0))
        .unwrap();
    assert_eq!(
        resumed
            .recv_timeout(WAIT)
            .expect("a change")
            .unwrap()
            .plain(),
        logged[5]
    );
    assert!(resumed.recv_timeout(QUIET).is_none());
}

/// A field type without Debug, Clone or PartialEq: the derive still works,
/// and the event enum simply lacks those traits.
#[derive(Serialize, Deserialize)]
struct Opaque {
    n: u32,
}

#[derive(RedisDict)]
struct Holder {
    opaque: Opaque,
    count: u64,
}

/// A generic struct, with a type parameter only a skipped field uses.
#[derive(RedisDict)]
struct Pair<A, U: Default> {
    left: A,
    #[redis_dict(variant = "Lapse")]
    gap: u64,
    #[redis_dict(skip)]
    #[allow(dead_code)]
    scratch: U,
}

#[tokio::test]
async fn event_enums_of_unusual_structs() {
    let server = RedisServer::start();
    let store = connect(&server, "w").await;

    let holder = Holder::view(&store, "h").unwrap();
    let mut sub = holder.subscribe().await.unwrap();
    holder.opaque.set(&Opaque { n: 5 }).await.unwrap();
    holder.count.set(&6).await.unwrap();
    match next(&mut sub).await.1 {
        HolderEvent::Opaque(Change::Set(Opaque { n })) => assert_eq!(n, 5),
        _ => panic!("not the opaque field's change"),
    }
    assert!(matches!(
        next(&mut sub).await.1,
        HolderEvent::Count(Change::Set(6))
    ));

    let pair = Pair::<String, Vec<u8>>::view(&store, "p").unwrap();
    let mut sub = pair.subscribe().await.unwrap();
    pair.left.set(&"l".to_owned()).await.unwrap();
    pair.gap.set(&7).await.unwrap();
    pair.dict::<u8>().clear().await.unwrap();
    let events: Vec<PairEvent<String, Vec<u8>>> = vec![
        next(&mut sub).await.1,
        next(&mut sub).await.1,
        next(&mut sub).await.1,
    ];
    assert_eq!(
        events,
        [
            PairEvent::Left(Change::Set("l".into())),
            PairEvent::Lapse(Change::Set(7)),
            PairEvent::Cleared,
        ]
    );
}
