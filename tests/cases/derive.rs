//! End-to-end tests of `#[derive(RedisDict)]` views: run on one server by
//! `tests/derive.rs` and on a cluster by `tests/cluster.rs`.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use redis_pydict::{Dict, Error, RedisDict, Ttl};
use serde::{Deserialize, Serialize};

use crate::support::Ctx;

const WAIT: Duration = Duration::from_secs(10);

/// Every case of this file, listed once (see the runners in
/// `tests/support/mod.rs`): expanded on a server per case by the
/// single-server test file and on the shared cluster by `tests/cluster.rs`.
macro_rules! cases {
    ($runner:ident) => {
        $runner! { derive:
            #[tokio::test] shared field_round_trips_for_every_kind_of_value;
            #[tokio::test] shared load_rules_for_missing_fields;
            #[tokio::test] shared declared_ttls_apply_to_set_and_save;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            shared load_never_sees_a_mix_of_two_saves;
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            shared concurrent_whole_struct_updates_lose_nothing;
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            shared concurrent_field_updates_lose_nothing;
            #[tokio::test] shared schema_evolution_adds_and_drops_fields;
            #[tokio::test] shared views_on_different_instances_are_isolated;
            #[tokio::test] shared fields_are_entries_of_a_generic_dict;
            #[tokio::test] shared writes_publish_the_same_events_as_a_dict;
            #[tokio::test] shared generic_structs;
            #[tokio::test] shared crate_attribute_and_view_handles;
            #[tokio::test] shared field_subscriptions_are_typed;
            #[tokio::test] shared update_writes_only_what_changed;
            #[tokio::test] shared view_events_carry_previous_values;
            #[test] blocking blocking_view_carries_previous_values;
            #[tokio::test] shared field_take_and_updates_meet_bad_data_clearly;
        }
    };
}
pub(crate) use cases;

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Point {
    x: i32,
    y: i32,
    tags: Vec<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
enum Shape {
    Circle { r: f64 },
    Square(u32),
    Empty,
}

#[derive(RedisDict, Debug, Clone, PartialEq)]
struct Everything {
    flag: bool,
    small: u8,
    signed: i64,
    big: u128,
    ratio: f64,
    letter: char,
    text: String,
    list: Vec<String>,
    map: HashMap<String, u32>,
    int_map: BTreeMap<u32, String>,
    point: Point,
    shape: Shape,
    shapes: Vec<Shape>,
    maybe: Option<String>,
    tuple: (u8, String, bool),
    #[redis_dict(rename = "größe ✓ 🚀")]
    size: u32,
    unicode: String,
}

fn everything() -> Everything {
    Everything {
        flag: true,
        small: 255,
        signed: -9_007_199_254_740_993,
        big: u128::MAX - 1,
        ratio: -0.125,
        letter: 'λ',
        text: "a:b&&c*?[x] {y}".into(),
        list: vec!["one".into(), String::new(), "three".into()],
        map: HashMap::from([("a".into(), 1), ("ß".into(), 2)]),
        int_map: BTreeMap::from([(7, "seven".into()), (0, "zero".into())]),
        point: Point {
            x: -1,
            y: 2,
            tags: vec!["p".into()],
        },
        shape: Shape::Circle { r: 1.5 },
        shapes: vec![Shape::Square(3), Shape::Empty, Shape::Circle { r: 0.0 }],
        maybe: Some("here".into()),
        tuple: (9, "nine".into(), false),
        size: 42,
        unicode: "日本語 — ünïcødé 🦀".into(),
    }
}

/// Checks set / get / exists / delete of one field handle.
async fn round_trip<T>(field: &redis_pydict::Field<T>, value: T)
where
    T: Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let name = field.name();
    assert_eq!(field.get().await.unwrap(), None, "{name} before set");
    assert!(!field.exists().await.unwrap(), "{name}");
    field.set(&value).await.unwrap();
    assert!(field.exists().await.unwrap(), "{name}");
    assert_eq!(field.get().await.unwrap().as_ref(), Some(&value), "{name}");
    assert!(field.delete().await.unwrap(), "{name}");
    assert!(!field.delete().await.unwrap(), "{name}");
    assert!(!field.exists().await.unwrap(), "{name}");
    assert_eq!(field.get().await.unwrap(), None, "{name} after delete");
    field.set(&value).await.unwrap();
}

pub async fn field_round_trips_for_every_kind_of_value(ctx: &Ctx) {
    let store = &ctx.store;
    let view = Everything::view(store, &ctx.ns("ünïcødé instance 🚀")).unwrap();
    let v = everything();
    round_trip(&view.flag, v.flag).await;
    round_trip(&view.small, v.small).await;
    round_trip(&view.signed, v.signed).await;
    round_trip(&view.big, v.big).await;
    round_trip(&view.ratio, v.ratio).await;
    round_trip(&view.letter, v.letter).await;
    round_trip(&view.text, v.text.clone()).await;
    round_trip(&view.list, v.list.clone()).await;
    round_trip(&view.map, v.map.clone()).await;
    round_trip(&view.int_map, v.int_map.clone()).await;
    round_trip(&view.point, v.point.clone()).await;
    round_trip(&view.shape, v.shape.clone()).await;
    round_trip(&view.shapes, v.shapes.clone()).await;
    round_trip(&view.maybe, v.maybe.clone()).await;
    view.maybe.delete().await.unwrap();
    round_trip(&view.maybe, None).await;
    view.maybe.set(&v.maybe).await.unwrap();
    round_trip(&view.tuple, v.tuple.clone()).await;
    round_trip(&view.size, v.size).await;
    round_trip(&view.unicode, v.unicode.clone()).await;

    // Every field is now set: the whole struct loads as written field by field.
    assert_eq!(view.load().await.unwrap(), v);
    assert_eq!(view.size.key(), "größe ✓ 🚀");
    let keys: Vec<String> = store
        .dict::<String, ciborium::Value>(&ctx.ns("ünïcødé instance 🚀"))
        .unwrap()
        .keys()
        .map(Result::unwrap)
        .collect()
        .await;
    assert!(keys.contains(&"größe ✓ 🚀".to_string()), "{keys:?}");
    assert_eq!(keys.len(), 17);

    // And a saved struct reads back field by field.
    let mut w = everything();
    w.shape = Shape::Square(1);
    w.maybe = None;
    w.unicode = "другой".into();
    view.save(&w).await.unwrap();
    assert_eq!(view.shape.get().await.unwrap(), Some(Shape::Square(1)));
    assert_eq!(view.maybe.get().await.unwrap(), Some(None));
    assert_eq!(view.load().await.unwrap(), w);
}

#[derive(RedisDict, Debug, Clone, PartialEq)]
struct Rules {
    required: u32,
    optional: Option<String>,
    #[redis_dict(default)]
    defaulted: Vec<u8>,
    #[redis_dict(default = "five")]
    computed: u8,
    #[redis_dict(skip)]
    scratch: String,
    #[redis_dict(skip, default = "scratch_default")]
    scratch2: String,
}

fn five() -> u8 {
    5
}

fn scratch_default() -> String {
    "fresh".into()
}

pub async fn load_rules_for_missing_fields(ctx: &Ctx) {
    let store = &ctx.store;
    let view = Rules::view(store, &ctx.ns("rules")).unwrap();

    assert_eq!(view.try_load().await.unwrap(), None);
    match view.load().await {
        Err(Error::MissingField {
            field,
            key,
            namespace,
            type_name,
        }) => {
            assert_eq!((field, key.as_str()), ("required", "required"));
            assert_eq!(namespace, ctx.ns("rules"));
            assert_eq!(type_name, "Rules");
        }
        other => panic!("expected MissingField, got {other:?}"),
    }
    let message = view.load().await.unwrap_err().to_string();
    assert!(message.contains("`required`"), "{message}");

    // Only the required field: the others follow their rules.
    view.required.set(&7).await.unwrap();
    let loaded = view.load().await.unwrap();
    assert_eq!(
        loaded,
        Rules {
            required: 7,
            optional: None,
            defaulted: Vec::new(),
            computed: 5,
            scratch: String::new(),
            scratch2: "fresh".into(),
        }
    );
    assert_eq!(view.try_load().await.unwrap(), Some(loaded.clone()));

    // Only an optional field stored: try_load finds something, load still fails.
    view.required.delete().await.unwrap();
    view.optional.set(&Some("x".into())).await.unwrap();
    assert!(matches!(
        view.try_load().await,
        Err(Error::MissingField {
            field: "required",
            ..
        })
    ));

    // skip fields are never stored.
    let mut full = loaded;
    full.scratch = "not stored".into();
    view.save(&full).await.unwrap();
    let raw: Dict<String, ciborium::Value> = view.dict();
    assert_eq!(raw.len().await.unwrap(), 4);
    assert!(!raw.contains("scratch").await.unwrap());
    assert_eq!(view.load().await.unwrap().scratch, "");
    assert_eq!(Rules::SCHEMA.skipped(), ["scratch", "scratch2"]);

    // Field update on a missing value follows the same rules.
    view.clear().await.unwrap();
    assert!(matches!(
        view.required.update(|n| *n += 1).await,
        Err(Error::MissingField { .. })
    ));
    view.computed.update(|n| *n += 1).await.unwrap();
    assert_eq!(view.computed.get().await.unwrap(), Some(6));
    view.optional
        .update(|o| assert!(o.is_none()))
        .await
        .unwrap();
    assert_eq!(
        view.required
            .update_with(|n| n.unwrap_or(10) + 1)
            .await
            .unwrap(),
        11
    );
}

#[derive(RedisDict, Debug, Clone, PartialEq)]
#[redis_dict(prefix = "ttl")]
struct Session {
    user: String,
    #[redis_dict(ttl = "30s")]
    token: String,
    #[redis_dict(ttl = "2m", default)]
    hits: u64,
}

pub async fn declared_ttls_apply_to_set_and_save(ctx: &Ctx) {
    let store = &ctx.store;
    let view = Session::view(store, &ctx.ns("s1")).unwrap();
    let expires_within = |ttl: Ttl, max: Duration| match ttl {
        Ttl::Expires(left) => left <= max && left > max - Duration::from_secs(5),
        _ => false,
    };

    view.save(&Session {
        user: "ann".into(),
        token: "t".into(),
        hits: 1,
    })
    .await
    .unwrap();
    assert_eq!(view.user.ttl().await.unwrap(), Ttl::Persistent);
    assert!(expires_within(
        view.token.ttl().await.unwrap(),
        Duration::from_secs(30)
    ));
    assert!(expires_within(
        view.hits.ttl().await.unwrap(),
        Duration::from_secs(120)
    ));

    view.token
        .set_with_ttl(&"u".into(), Duration::from_secs(500))
        .await
        .unwrap();
    assert!(expires_within(
        view.token.ttl().await.unwrap(),
        Duration::from_secs(500)
    ));
    view.token.set(&"v".into()).await.unwrap();
    assert!(expires_within(
        view.token.ttl().await.unwrap(),
        Duration::from_secs(30)
    ));
    // Updates keep the TTL the key has.
    view.hits.update(|h| *h += 1).await.unwrap();
    assert!(expires_within(
        view.hits.ttl().await.unwrap(),
        Duration::from_secs(120)
    ));
    view.update(|s| s.user.push('!')).await.unwrap();
    assert!(expires_within(
        view.token.ttl().await.unwrap(),
        Duration::from_secs(30)
    ));
    assert!(view.token.persist().await.unwrap());
    assert_eq!(view.token.ttl().await.unwrap(), Ttl::Persistent);
    assert!(view.user.expire(Duration::from_millis(50)).await.unwrap());
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert_eq!(view.user.get().await.unwrap(), None);
    assert!(view.load().await.is_err());
    assert_eq!(view.dict::<ciborium::Value>().len().await.unwrap(), 2);
    assert_eq!(
        Session::SCHEMA.field("hits").unwrap().ttl(),
        Some(Duration::from_secs(120))
    );
}

#[derive(RedisDict, Debug, Clone, PartialEq)]
struct Snapshot {
    label: String,
    a: u64,
    b: Vec<u64>,
    c: Option<String>,
    d: (i32, i32),
}

fn snapshot(seed: u64) -> Snapshot {
    Snapshot {
        label: format!("value-{seed}"),
        a: seed,
        b: vec![seed; 3],
        c: Some(seed.to_string()),
        d: (seed as i32, -(seed as i32)),
    }
}

pub async fn load_never_sees_a_mix_of_two_saves(ctx: &Ctx) {
    let a = snapshot(1);
    let b = snapshot(2);
    let writer_store = ctx.connect().await;
    let reader_store = ctx.connect().await;
    let writer = Snapshot::view(&writer_store, &ctx.ns("consistent")).unwrap();
    let reader = Snapshot::view(&reader_store, &ctx.ns("consistent")).unwrap();
    writer.save(&a).await.unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let saver = tokio::spawn({
        let (a, b, stop) = (a.clone(), b.clone(), stop.clone());
        async move {
            let mut saves = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let value = if saves.is_multiple_of(2) { &b } else { &a };
                writer.save(value).await.unwrap();
                saves += 1;
            }
            saves
        }
    });
    let (mut seen_a, mut seen_b) = (0, 0);
    for _ in 0..400 {
        let loaded = reader.load().await.unwrap();
        if loaded == a {
            seen_a += 1;
        } else if loaded == b {
            seen_b += 1;
        } else {
            panic!("load returned a mix of A and B: {loaded:?}");
        }
    }
    stop.store(true, Ordering::Relaxed);
    let saves = saver.await.unwrap();
    assert!(saves > 10, "the saver ran only {saves} times");
    assert!(seen_a + seen_b == 400);
}

#[derive(RedisDict, Debug, Clone, PartialEq)]
struct Counters {
    hits: u64,
    total: i64,
    #[redis_dict(default)]
    log: Vec<u8>,
}

pub async fn concurrent_whole_struct_updates_lose_nothing(ctx: &Ctx) {
    let store = &ctx.store;
    Counters::view(store, &ctx.ns("race"))
        .unwrap()
        .save(&Counters {
            hits: 0,
            total: 0,
            log: Vec::new(),
        })
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for task in 0..8 {
        // Half the tasks share the store, half have their own.
        let store = if task % 2 == 0 {
            store.clone()
        } else {
            ctx.connect().await
        };
        let race = ctx.ns("race");
        tasks.push(tokio::spawn(async move {
            let view = Counters::view(&store, &race).unwrap();
            for _ in 0..200 {
                view.update(|c: &mut Counters| {
                    c.hits += 1;
                    c.total -= 2;
                })
                .await
                .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let end = Counters::view(store, &ctx.ns("race"))
        .unwrap()
        .load()
        .await
        .unwrap();
    assert_eq!((end.hits, end.total), (1600, -3200));
}

pub async fn concurrent_field_updates_lose_nothing(ctx: &Ctx) {
    let store = &ctx.store;
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let view = Counters::view(store, &ctx.ns("field-race")).unwrap();
        tasks.push(tokio::spawn(async move {
            for i in 0..100u8 {
                view.log.update(|log| log.push(i)).await.unwrap();
                view.hits.update_with(|h| h.unwrap_or(0) + 1).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let view = Counters::view(store, &ctx.ns("field-race")).unwrap();
    assert_eq!(view.log.get().await.unwrap().unwrap().len(), 400);
    assert_eq!(view.hits.get().await.unwrap(), Some(400));
}

mod v1 {
    use redis_pydict::RedisDict;

    #[derive(RedisDict, Debug, Clone, PartialEq)]
    #[redis_dict(prefix = "app")]
    pub struct Settings {
        pub name: String,
        pub count: u32,
        pub legacy: String,
    }
}

mod v2 {
    use redis_pydict::RedisDict;

    /// V1 plus an `Option` field and two `default` fields, without `legacy`.
    #[derive(RedisDict, Debug, Clone, PartialEq)]
    #[redis_dict(prefix = "app")]
    pub struct Settings {
        pub name: String,
        pub count: u32,
        pub note: Option<String>,
        #[redis_dict(default)]
        pub retries: u32,
        #[redis_dict(default = "default_level")]
        pub level: String,
    }

    fn default_level() -> String {
        "info".into()
    }
}

mod v3 {
    use redis_pydict::RedisDict;

    /// `count` changed type.
    #[derive(RedisDict, Debug)]
    #[redis_dict(prefix = "app")]
    pub struct Settings {
        pub name: String,
        pub count: Vec<String>,
    }
}

pub async fn schema_evolution_adds_and_drops_fields(ctx: &Ctx) {
    let store = &ctx.store;
    v1::Settings::view(store, &ctx.ns("prod"))
        .unwrap()
        .save(&v1::Settings {
            name: "svc".into(),
            count: 3,
            legacy: "old".into(),
        })
        .await
        .unwrap();

    let view = v2::Settings::view(store, &ctx.ns("prod")).unwrap();
    let loaded = view.load().await.unwrap();
    assert_eq!(
        loaded,
        v2::Settings {
            name: "svc".into(),
            count: 3,
            note: None,
            retries: 0,
            level: "info".into(),
        }
    );
    // Saving V2 leaves the dropped field's key alone; V1 still loads.
    let mut next = loaded;
    next.note = Some("added".into());
    next.count = 4;
    view.save(&next).await.unwrap();
    assert_eq!(view.load().await.unwrap(), next);
    let old = v1::Settings::view(store, &ctx.ns("prod"))
        .unwrap()
        .load()
        .await
        .unwrap();
    assert_eq!((old.count, old.legacy.as_str()), (4, "old"));

    // A field whose stored type changed is an error naming the field.
    let err = v3::Settings::view(store, &ctx.ns("prod"))
        .unwrap()
        .load()
        .await
        .unwrap_err();
    match &err {
        Error::Decode { key, namespace, .. } => {
            assert_eq!(
                (key.as_str(), namespace.as_str()),
                ("count", format!("app:{}", ctx.ns("prod")).as_str())
            );
        }
        other => panic!("expected a decode error, got {other:?}"),
    }
    assert!(err.to_string().contains("\"count\""), "{err}");
    let err = v3::Settings::view(store, &ctx.ns("prod"))
        .unwrap()
        .count
        .get()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("\"count\""), "{err}");
}

#[derive(RedisDict, Debug, Clone, PartialEq)]
#[redis_dict(prefix = "config", rename_all = "kebab-case")]
struct Config {
    threshold: f64,
    max_conn: u32,
    #[redis_dict(rename = "Workers")]
    workers: Vec<String>,
}

pub async fn views_on_different_instances_are_isolated(ctx: &Ctx) {
    let store = &ctx.store;
    let prod = Config::view(store, &ctx.ns("prod")).unwrap();
    let dev = Config::view(store, &ctx.ns("dev")).unwrap();
    assert_eq!(
        prod.namespace().name(),
        format!("config:{}", ctx.ns("prod"))
    );
    assert_eq!(prod.max_conn.key(), "max-conn");
    assert_eq!(
        Config::SCHEMA.keys().collect::<Vec<_>>(),
        ["threshold", "max-conn", "Workers"]
    );

    prod.threshold.set(&0.75).await.unwrap();
    assert_eq!(dev.threshold.get().await.unwrap(), None);
    let value = Config {
        threshold: 0.1,
        max_conn: 8,
        workers: vec!["w1".into()],
    };
    dev.save(&value).await.unwrap();
    // prod holds only `threshold`: something is stored, but not enough.
    assert!(matches!(
        prod.try_load().await,
        Err(Error::MissingField {
            field: "max_conn",
            ..
        })
    ));
    assert!(prod.load().await.is_err());
    assert_eq!(dev.load().await.unwrap(), value);
    assert_eq!(prod.clear().await.unwrap(), 1);
    assert_eq!(dev.load().await.unwrap(), value);
    assert_eq!(prod.try_load().await.unwrap(), None);

    // A prefix overlap is not an overlap: "prod" and "prod:x" are apart.
    let nested = Config::view(store, &ctx.ns("dev:x")).unwrap();
    assert_eq!(nested.try_load().await.unwrap(), None);

    // Bad instance names fail before any I/O.
    assert!(matches!(
        Config::view(store, ""),
        Err(Error::InvalidNamespace { .. })
    ));
    assert!(matches!(
        Config::view(store, "a{b}"),
        Err(Error::InvalidNamespace { .. })
    ));
}

pub async fn fields_are_entries_of_a_generic_dict(ctx: &Ctx) {
    let store = &ctx.store;
    let view = Config::view(store, &ctx.ns("shared")).unwrap();
    view.save(&Config {
        threshold: 0.5,
        max_conn: 16,
        workers: vec!["a".into(), "b".into()],
    })
    .await
    .unwrap();

    let dict: Dict<String, ciborium::Value> =
        store.dict(&format!("config:{}", ctx.ns("shared"))).unwrap();
    assert_eq!(dict.len().await.unwrap(), 3);
    let map = dict.to_btree_map().await.unwrap();
    assert_eq!(
        map.keys().map(String::as_str).collect::<Vec<_>>(),
        ["Workers", "max-conn", "threshold"]
    );
    assert_eq!(map["max-conn"], ciborium::Value::Integer(16.into()));
    assert_eq!(map["threshold"], ciborium::Value::Float(0.5));

    // Written through the dict, read through the view, and back.
    let typed: Dict<String, u32> = store.dict(&format!("config:{}", ctx.ns("shared"))).unwrap();
    typed.set("max-conn", &99).await.unwrap();
    assert_eq!(view.max_conn.get().await.unwrap(), Some(99));
    view.max_conn.set(&100).await.unwrap();
    assert_eq!(typed.get("max-conn").await.unwrap(), Some(100));

    // clear() removes only the struct's fields.
    typed.set("unrelated", &1).await.unwrap();
    assert_eq!(view.clear().await.unwrap(), 3);
    assert_eq!(dict.len().await.unwrap(), 1);
    assert!(dict.contains("unrelated").await.unwrap());
}

pub async fn writes_publish_the_same_events_as_a_dict(ctx: &Ctx) {
    // Classic PUBLISH to per-key channels, which a plain PSUBSCRIBE sees.
    let classic = ctx.builder().sharded_events(false).connect().await.unwrap();
    let store = &classic;
    let view = Config::view(store, &ctx.ns("events")).unwrap();
    let events = format!("config:{}", ctx.ns("events"));
    let mut pubsub = ctx.pubsub().await;
    pubsub
        .psubscribe(format!("{{{}}}#ev:*", redis_pydict::escape_glob(&events)))
        .await
        .unwrap();
    let mut messages = pubsub.into_on_message();

    async fn next(
        messages: &mut (impl futures::Stream<Item = redis::Msg> + Unpin),
    ) -> (String, BTreeMap<String, ciborium::Value>) {
        let message = tokio::time::timeout(Duration::from_secs(5), messages.next())
            .await
            .expect("event within 5 s")
            .expect("stream open");
        let payload: ciborium::Value = ciborium::from_reader(message.get_payload_bytes()).unwrap();
        let map = payload
            .as_map()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.as_text().unwrap().to_owned(), v.clone()))
            .collect();
        (message.get_channel_name().to_owned(), map)
    }

    view.max_conn.set(&7).await.unwrap();
    let (channel, event) = next(&mut messages).await;
    assert_eq!(channel, format!("{{{events}}}#ev:max-conn"));
    assert_eq!(event["op"], ciborium::Value::Text("set".into()));
    assert_eq!(event["value"], ciborium::Value::Integer(7.into()));

    view.save(&Config {
        threshold: 1.0,
        max_conn: 7,
        workers: Vec::new(),
    })
    .await
    .unwrap();
    let mut keys = Vec::new();
    for _ in 0..3 {
        let (_, event) = next(&mut messages).await;
        keys.push(event["key"].as_text().unwrap().to_owned());
    }
    keys.sort();
    assert_eq!(keys, ["Workers", "max-conn", "threshold"]);

    // A whole-struct update writes (and announces) only what changed.
    view.update(|c: &mut Config| c.workers.push("w".into()))
        .await
        .unwrap();
    view.threshold.delete().await.unwrap();
    let (_, event) = next(&mut messages).await;
    assert_eq!(event["key"], ciborium::Value::Text("Workers".into()));
    let (_, event) = next(&mut messages).await;
    assert_eq!(
        (&event["op"], &event["key"]),
        (
            &ciborium::Value::Text("del".into()),
            &ciborium::Value::Text("threshold".into())
        )
    );
}

#[derive(RedisDict, Debug, Clone, PartialEq)]
struct Pair<A, B: Clone>
where
    A: Clone,
{
    left: A,
    right: Vec<B>,
    #[redis_dict(default)]
    count: u32,
    #[redis_dict(skip)]
    cache: Option<B>,
}

/// A struct using `M` as its own parameter: the view's mode parameter moves aside.
#[derive(RedisDict, Debug, Clone, PartialEq)]
struct Tagged<M> {
    r#type: String,
    meta: M,
}

pub async fn generic_structs(ctx: &Ctx) {
    let store = &ctx.store;
    let strings = Pair::<String, u64>::view(store, &ctx.ns("pair-1")).unwrap();
    let value = Pair {
        left: "left".to_string(),
        right: vec![1u64, 2],
        count: 3,
        cache: Some(9),
    };
    strings.save(&value).await.unwrap();
    let loaded = strings.load().await.unwrap();
    assert_eq!(
        (loaded.left.as_str(), loaded.right.as_slice(), loaded.count),
        ("left", &[1, 2][..], 3)
    );
    assert_eq!(loaded.cache, None);

    let points: PairView<u8, Point> = Pair::view(store, &ctx.ns("pair-2")).unwrap();
    points.left.set(&1).await.unwrap();
    points
        .right
        .set(&vec![Point {
            x: 1,
            y: 2,
            tags: Vec::new(),
        }])
        .await
        .unwrap();
    let loaded = points.load().await.unwrap();
    assert_eq!((loaded.left, loaded.count, loaded.right.len()), (1, 0, 1));

    let tagged = Tagged::<Point>::view(store, &ctx.ns("tagged")).unwrap();
    assert_eq!(tagged.r#type.key(), "type");
    tagged.r#type.set(&"kind".into()).await.unwrap();
    tagged
        .meta
        .set(&Point {
            x: 0,
            y: 0,
            tags: vec!["t".into()],
        })
        .await
        .unwrap();
    assert_eq!(tagged.load().await.unwrap().r#type, "kind");
}

mod reexport {
    pub use redis_pydict as rp;
}

/// `crate = "..."` points generated code at a re-export of the runtime crate.
#[derive(reexport::rp::RedisDict, Debug, PartialEq)]
#[redis_dict(crate = "crate::cases::derive::reexport::rp")]
struct ViaReexport {
    value: u8,
}

pub async fn crate_attribute_and_view_handles(ctx: &Ctx) {
    let store = &ctx.store;
    let view = ViaReexport::view(store, &ctx.ns("reexport")).unwrap();
    view.value.set(&1).await.unwrap();
    assert_eq!(view.load().await.unwrap(), ViaReexport { value: 1 });

    // Views and handles are cheap clones sharing the namespace.
    let copy = view.clone();
    let handle = view.value.clone();
    assert!(!handle.set_if_absent(&5).await.unwrap());
    assert_eq!(handle.take().await.unwrap(), Some(1));
    assert_eq!(copy.try_load().await.unwrap(), None);
    assert!(handle.set_if_absent(&5).await.unwrap());
    let debug = format!("{view:?} {handle:?}");
    assert!(
        debug.contains("reexport") && debug.contains("value"),
        "{debug}"
    );
    assert_eq!(handle.spec().rust_type(), "u8");
    assert_eq!(view.schema().type_name(), "ViaReexport");
}

pub async fn field_subscriptions_are_typed(ctx: &Ctx) {
    use redis_pydict::Change;

    let writer_store = ctx.connect().await;
    let reader_store = ctx.connect().await;
    let reader = Config::view(&reader_store, &ctx.ns("watched")).unwrap();
    let writer = Config::view(&writer_store, &ctx.ns("watched")).unwrap();
    let mut changes = reader.workers.subscribe().await.unwrap();

    writer.threshold.set(&0.5).await.unwrap(); // another field: not seen
    writer.workers.set(&vec!["w1".into()]).await.unwrap();
    writer
        .workers
        .update(|w| w.push("w2".into()))
        .await
        .unwrap();
    writer.workers.delete().await.unwrap();
    let mut seen = Vec::new();
    for _ in 0..3 {
        let event = tokio::time::timeout(Duration::from_secs(5), changes.next())
            .await
            .expect("event within 5 s")
            .expect("stream open")
            .unwrap();
        assert_eq!(event.key.as_deref(), Some("Workers"));
        seen.push(event.change);
    }
    assert_eq!(
        seen,
        [
            Change::Set(vec!["w1".to_string()]),
            Change::Set(vec!["w1".to_string(), "w2".to_string()]),
            Change::Deleted,
        ]
    );
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Inner {
    by_id: HashMap<u32, Vec<f32>>,
    names: std::collections::HashSet<String>,
}

#[derive(RedisDict, Debug, Clone, PartialEq)]
struct Counted {
    count: u32,
    limits: HashMap<String, u32>,
    inner: Inner,
    nan: f64,
    zero: f64,
}

/// Issue 10, bug 2: `update` writes only the fields that changed, for every
/// serde type: a `HashMap` (or a `HashSet` or a nested struct of them) that
/// `f` did not touch is not rewritten although it encodes in another order
/// after every read, nor is a `NaN`; a `0.0` that became `-0.0` is a change.
pub async fn update_writes_only_what_changed(ctx: &Ctx) {
    let view = Counted::view(&ctx.store, &ctx.ns("counted")).unwrap();
    view.save(&Counted {
        count: 0,
        limits: (0..8).map(|i| (format!("limit-{i}"), i)).collect(),
        inner: Inner {
            by_id: (0..8).map(|i| (i, vec![i as f32, f32::NAN])).collect(),
            names: (0..8).map(|i| format!("name-{i}")).collect(),
        },
        nan: f64::NAN,
        zero: 0.0,
    })
    .await
    .unwrap();
    let mut changes = view.subscribe().await.unwrap();

    for _ in 0..5 {
        view.update(|s: &mut Counted| s.count += 1).await.unwrap();
    }
    view.limits.update(|_| ()).await.unwrap();
    view.inner.update(|_| ()).await.unwrap();
    view.nan.update(|_| ()).await.unwrap();
    view.zero.update(|z| *z = -0.0).await.unwrap();
    view.update(|s: &mut Counted| s.zero = 0.0).await.unwrap();
    view.limits
        .update(|l| *l.entry("limit-0".into()).or_default() += 1)
        .await
        .unwrap();
    view.count.set(&999).await.unwrap(); // the end marker

    let mut seen = Vec::new();
    loop {
        let item = tokio::time::timeout(Duration::from_secs(5), changes.next())
            .await
            .expect("an event within 5 s")
            .expect("the subscription goes on")
            .unwrap();
        match item.event {
            CountedEvent::Count(redis_pydict::Change::Set(999)) => break,
            CountedEvent::Count(redis_pydict::Change::Set(n)) => seen.push(format!("count={n}")),
            CountedEvent::Zero(redis_pydict::Change::Set(z)) => seen.push(format!(
                "zero={}",
                if z.is_sign_negative() { "-0" } else { "+0" }
            )),
            CountedEvent::Limits(redis_pydict::Change::Set(l)) => {
                seen.push(format!("limit-0={}", l["limit-0"]))
            }
            other => seen.push(format!("{other:?}")),
        }
    }
    assert_eq!(
        seen,
        [
            "count=1",
            "count=2",
            "count=3",
            "count=4",
            "count=5",
            "zero=-0",
            "zero=+0",
            "limit-0=1"
        ]
    );
    let end = view.load().await.unwrap();
    assert_eq!(
        (end.count, end.limits.len(), end.inner.names.len()),
        (999, 8, 8)
    );
    assert!(end.nan.is_nan());
}

/// Issue 13 item 5: a view asked for previous values puts each field's value
/// before the change into its events, for every write (field set and update,
/// save, whole-struct update, field delete and expire, clear), in live and
/// durable subscriptions and in the field's own subscription; a view not
/// asked (the default) writes events whose previous value is `Unknown`.
pub async fn view_events_carry_previous_values(ctx: &Ctx) {
    use redis_pydict::{Change, Previous, StartFrom, ViewEvent};
    use ConfigEvent::{MaxConn, Threshold, Workers};

    let plain = Config::view(&ctx.store, &ctx.ns("prev"))
        .unwrap()
        .with_durable_log(1000);
    let view = plain.with_previous_values(true);
    assert!(view.previous_values() && !plain.previous_values());
    let mut live = plain.subscribe().await.unwrap();
    let mut field = plain.max_conn.subscribe().await.unwrap();

    view.max_conn.set(&1).await.unwrap();
    view.save(&Config {
        threshold: 0.5,
        max_conn: 2,
        workers: vec!["a".into()],
    })
    .await
    .unwrap();
    view.update(|c: &mut Config| c.max_conn = 3).await.unwrap();
    view.workers.delete().await.unwrap();
    plain.threshold.set(&0.75).await.unwrap();
    view.threshold.update(|t| *t = 1.0).await.unwrap();
    view.threshold
        .expire(Duration::from_secs(600))
        .await
        .unwrap();
    assert_eq!(view.clear().await.unwrap(), 2);

    use Previous::{Absent, Unknown, Value};
    let ev = |event, previous| ViewEvent::new(None, event).with_previous(previous);
    let expected = vec![
        ev(MaxConn(Change::Set(1)), Absent),
        ev(Threshold(Change::Set(0.5)), Absent),
        ev(MaxConn(Change::Set(2)), Value(MaxConn(Change::Set(1)))),
        ev(Workers(Change::Set(vec!["a".into()])), Absent),
        ev(MaxConn(Change::Set(3)), Value(MaxConn(Change::Set(2)))),
        ev(
            Workers(Change::Deleted),
            Value(Workers(Change::Set(vec!["a".into()]))),
        ),
        ev(Threshold(Change::Set(0.75)), Unknown),
        ev(
            Threshold(Change::Set(1.0)),
            Value(Threshold(Change::Set(0.75))),
        ),
        ev(
            Threshold(Change::TtlChanged(Some(Duration::from_secs(600)))),
            Value(Threshold(Change::Set(1.0))),
        ),
        ev(
            Threshold(Change::Deleted),
            Value(Threshold(Change::Set(1.0))),
        ),
        ev(MaxConn(Change::Deleted), Value(MaxConn(Change::Set(3)))),
    ];
    // `save` writes its fields in one atomic unit: their order among
    // themselves is not promised, so the three are compared as a set.
    let in_order = |mut got: Vec<ViewEvent<ConfigEvent>>| {
        let saved = got[1..4].to_vec();
        assert!(
            expected[1..4].iter().all(|e| saved.contains(e)),
            "save: {saved:#?}"
        );
        got[1..4].clone_from_slice(&expected[1..4]);
        assert_eq!(got, expected);
    };
    let mut got = Vec::new();
    for _ in 0..expected.len() {
        let item = tokio::time::timeout(WAIT, live.next()).await;
        got.push(item.expect("an event").expect("open").unwrap());
    }
    in_order(got);
    let extra = tokio::time::timeout(Duration::from_millis(300), live.next()).await;
    assert!(extra.is_err(), "unexpected event: {extra:?}");

    // The durable log carries the same previous values.
    let mut log = plain.subscribe_durable(StartFrom::Beginning).await.unwrap();
    let mut got = Vec::new();
    for _ in 0..expected.len() {
        let item = tokio::time::timeout(WAIT, log.next()).await;
        got.push(item.expect("an event").expect("open").unwrap().1);
    }
    in_order(got);

    // The field's own subscription types them as the field's type.
    let mut seen = Vec::new();
    for _ in 0..4 {
        let item = tokio::time::timeout(WAIT, field.next()).await;
        let event = item.expect("an event").expect("open").unwrap();
        seen.push((event.change, event.previous));
    }
    assert_eq!(
        seen,
        [
            (Change::Set(1), Absent),
            (Change::Set(2), Value(1)),
            (Change::Set(3), Value(2)),
            (Change::Deleted, Value(3)),
        ]
    );
}

/// The blocking mirror: `with_previous_values` on a blocking view.
pub fn blocking_view_carries_previous_values(store: &redis_pydict::blocking::Store, prefix: &str) {
    use redis_pydict::{Change, Previous, ViewEvent};

    let plain = Config::view(store, &format!("{prefix}blocking-prev")).unwrap();
    let view = plain.with_previous_values(true);
    assert!(view.previous_values() && !plain.previous_values());
    let mut sub = plain.subscribe().unwrap();
    plain.max_conn.set(&1).unwrap();
    view.max_conn.set(&2).unwrap();
    view.max_conn.update(|n| *n = 3).unwrap();
    view.clear().unwrap();
    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(sub.recv_timeout(WAIT).unwrap().unwrap());
    }
    let ev = |event, previous| ViewEvent::new(None, event).with_previous(previous);
    let max_conn = ConfigEvent::MaxConn;
    assert_eq!(
        got,
        [
            ev(max_conn(Change::Set(1)), Previous::Unknown),
            ev(
                max_conn(Change::Set(2)),
                Previous::Value(max_conn(Change::Set(1)))
            ),
            ev(
                max_conn(Change::Set(3)),
                Previous::Value(max_conn(Change::Set(2)))
            ),
            ev(
                max_conn(Change::Deleted),
                Previous::Value(max_conn(Change::Set(3)))
            ),
        ]
    );
}

/// A field's `take` of a value that does not decode removes it and says so
/// (`Error::Removed`, operation `take`); `update` and `update_with` on a
/// field key holding foreign data fail with `WrongType` before their closure
/// runs, leaving the data as it was.
pub async fn field_take_and_updates_meet_bad_data_clearly(ctx: &Ctx) {
    let ns = ctx.ns("bad-data");
    let view = Config::view(&ctx.store, &ns).unwrap();
    let dict_ns = format!("config:{ns}");
    let text: Dict<String, String> = ctx.store.dict(&dict_ns).unwrap();
    text.set("max-conn", &"many".into()).await.unwrap();
    let err = view.max_conn.take().await.unwrap_err();
    let Error::Removed {
        operation, ref key, ..
    } = err
    else {
        panic!("expected Error::Removed, got {err:?}");
    };
    assert_eq!((operation, key.as_str()), ("take", "max-conn"));
    assert!(err.was_applied(), "{err}");
    assert!(!view.max_conn.exists().await.unwrap());

    let entry = format!("{{{dict_ns}}}:max-conn");
    let mut raw = ctx.raw(&dict_ns).await;
    let _: () = redis::cmd("RPUSH")
        .arg(&entry)
        .arg("a")
        .query_async(&mut raw)
        .await
        .unwrap();
    let mut calls = 0;
    let err = view
        .max_conn
        .update_with(|v| {
            calls += 1;
            v.unwrap_or(0) + 1
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::WrongType { found, .. } if found == "list"),
        "{err}"
    );
    let err = view
        .max_conn
        .update(|v| calls += *v as usize)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::WrongType { .. }), "{err}");
    assert_eq!(calls, 0, "no closure saw the list as absent");
    let kept: Vec<String> = redis::cmd("LRANGE")
        .arg(&entry)
        .arg(0)
        .arg(-1)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(kept, ["a"]);
}
