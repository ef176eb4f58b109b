//! The library under a least-privilege ACL user confined to one namespace,
//! `app`: exactly the rules the README documents (`APP_RULES`), no more.
//! Every operation of dicts, views, subscriptions and the durable log works,
//! and the server's ACL LOG stays empty (nothing was even attempted that the
//! rules deny, such as `CONFIG GET`). Then what happens when a permission is
//! missing: the error names the namespace and NOPERM, for plain and durable
//! subscriptions alike, and a subscription whose permission is revoked
//! while it runs ends with such an error instead of retrying forever.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use redis::aio::MultiplexedConnection;
use redis_pydict::{Change, Error, GroupOptions, RedisDict, StartFrom, Store, Subscription};
use redis_pydict_test::RedisServer;

/// The ACL rules of a user that may use namespace `app` and nothing else
/// (the README's "ACL" section shows them).
use redis_pydict_test::acl::APP_RULES;

/// The README's `ACL SETUSER app ...` block holds exactly `APP_RULES`
/// (the rules these tests prove enough), so the two cannot drift apart.
#[test]
fn the_readme_documents_exactly_the_tested_rules() {
    let readme = include_str!("../README.md");
    let block = readme
        .split("```text\nACL SETUSER app on >PASSWORD ")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the README's ACL SETUSER block");
    let mut documented: Vec<&str> = block.split_whitespace().collect();
    let mut tested = APP_RULES.to_vec();
    documented.sort_unstable();
    tested.sort_unstable();
    assert_eq!(documented, tested);
}

const WAIT: Duration = Duration::from_secs(10);

async fn admin(server: &RedisServer) -> MultiplexedConnection {
    redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// The server's version, e.g. `[7, 0, 15]`.
async fn server_version(admin: &mut MultiplexedConnection) -> Vec<u32> {
    redis_pydict_test::acl::redis_version(&server_info(admin).await)
}

async fn server_info(admin: &mut MultiplexedConnection) -> String {
    redis::cmd("INFO")
        .arg("server")
        .query_async(admin)
        .await
        .unwrap()
}

/// Creates (or redefines) user `name` with password `pass` and `rules`
/// (plus, on Redis 7.2 and later, `+client|setinfo`, which redis-rs sends
/// when it connects and which older servers do not know), then empties the
/// ACL LOG, so that what a test finds there came after its rules.
async fn set_user(admin: &mut MultiplexedConnection, name: &str, rules: &[&str]) {
    let version = server_version(admin).await;
    let mut rules = rules.to_vec();
    if version[..2] >= [7, 2][..] {
        rules.push("+client|setinfo");
    }
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg(name)
        .arg("reset")
        .arg("on")
        .arg(format!(">{name}-pass"))
        .arg(rules)
        .query_async(admin)
        .await
        .unwrap();
    let _: () = redis::cmd("ACL")
        .arg("LOG")
        .arg("RESET")
        .query_async(admin)
        .await
        .unwrap();
}

fn user_url(server: &RedisServer, name: &str) -> String {
    format!("redis://{name}:{name}-pass@127.0.0.1:{}/", server.port())
}

/// The ACL LOG's entries (see `redis_pydict_test::acl::denials`).
async fn acl_log(admin: &mut MultiplexedConnection) -> Vec<String> {
    let entries: Vec<std::collections::HashMap<String, redis::Value>> = redis::cmd("ACL")
        .arg("LOG")
        .query_async(admin)
        .await
        .unwrap();
    redis_pydict_test::acl::denials(&entries, &server_info(admin).await)
}

async fn next<T: std::fmt::Debug>(sub: &mut Subscription<T>) -> T {
    match tokio::time::timeout(WAIT, sub.next()).await {
        Ok(Some(Ok(item))) => item,
        other => panic!("expected an item, got {other:?}"),
    }
}

#[derive(RedisDict, Debug, Clone, PartialEq)]
struct Job {
    state: String,
    #[redis_dict(default)]
    tries: u32,
}

#[tokio::test]
async fn everything_works_under_exactly_the_documented_rules() {
    let server = RedisServer::start();
    let mut admin = admin(&server).await;
    set_user(&mut admin, "app", APP_RULES).await;

    let store = Store::connect(&user_url(&server, "app")).await.unwrap();
    store.ping().await.unwrap();
    let d = store
        .dict::<String, u32>("app")
        .unwrap()
        .with_durable_log(1000);
    let mut all = d.subscribe("*").await.unwrap();
    let mut one = d.subscribe_key("a").await.unwrap();
    let mut durable = d.subscribe_durable(StartFrom::Beginning).await.unwrap();

    // Dict operations, each kind of write and read.
    d.set("a", &1).await.unwrap();
    assert_eq!(d.get("a").await.unwrap(), Some(1));
    d.set_many([("b".to_owned(), 2), ("c".to_owned(), 3)])
        .await
        .unwrap();
    assert_eq!(
        d.get_many(["a", "b", "x"]).await.unwrap(),
        vec![Some(1), Some(2), None]
    );
    assert!(d.set_if_absent("d", &4).await.unwrap());
    assert_eq!(
        d.update_with("a", |v| v.unwrap_or(0) + 10).await.unwrap(),
        11
    );
    d.set_with_ttl("t", &5, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(d.expire("b", Duration::from_secs(60)).await.unwrap());
    assert!(d.persist("b").await.unwrap());
    assert!(d.ttl("t").await.is_ok());
    assert!(d.contains("c").await.unwrap());
    assert_eq!(d.remove("d").await.unwrap(), Some(4));
    assert!(d.delete("c").await.unwrap());
    assert_eq!(d.len().await.unwrap(), 3);
    let mut keys: Vec<String> = d.keys().try_collect().await.unwrap();
    keys.sort();
    assert_eq!(keys, ["a", "b", "t"]);
    let matching: Vec<(String, u32)> = d.items_matching("a*").try_collect().await.unwrap();
    assert_eq!(matching, [("a".to_owned(), 11)]);
    assert_eq!(d.to_map().await.unwrap().len(), 3);
    d.repair().await.unwrap();
    // A stored value that does not decode: the optimistic update gives up
    // (and releases its WATCH).
    let _: () = redis::cmd("SET")
        .arg("{app}:bad")
        .arg(b"\xff".as_slice())
        .query_async(&mut admin)
        .await
        .unwrap();
    assert!(d.update_with("bad", |v| v.unwrap_or(0)).await.is_err());
    let _: () = redis::cmd("DEL")
        .arg("{app}:bad")
        .query_async(&mut admin)
        .await
        .unwrap();

    // Plain and durable subscriptions saw the writes.
    assert_eq!(next(&mut all).await.change, Change::Set(1));
    assert_eq!(next(&mut one).await.change, Change::Set(1));
    let (first_id, first) = next(&mut durable).await;
    assert_eq!(first.change, Change::Set(1));
    let mut resumed = d
        .subscribe_durable(StartFrom::After(first_id))
        .await
        .unwrap();
    assert_eq!(next(&mut resumed).await.1.change, Change::Set(2));
    let mut from_now = d.subscribe_durable(StartFrom::Now).await.unwrap();
    d.set("z", &26).await.unwrap();
    assert_eq!(next(&mut from_now).await.1.change, Change::Set(26));
    assert_eq!(d.clear().await.unwrap(), 4);

    // A view of namespace `app`: fields, whole struct, subscriptions.
    let job = Job::view(&store, "app").unwrap();
    let mut job_events = job.subscribe().await.unwrap();
    let mut state_events = job.state.subscribe().await.unwrap();
    job.save(&Job {
        state: "queued".into(),
        tries: 0,
    })
    .await
    .unwrap();
    job.tries.update(|t| *t += 1).await.unwrap();
    job.state.set(&"running".into()).await.unwrap();
    assert_eq!(
        job.load().await.unwrap(),
        Job {
            state: "running".into(),
            tries: 1
        }
    );
    assert_eq!(job.state.take().await.unwrap().as_deref(), Some("running"));
    assert!(!job.state.exists().await.unwrap());
    assert!(matches!(
        next(&mut job_events).await.event,
        JobEvent::State(_) | JobEvent::Tries(_)
    ));
    assert_eq!(
        next(&mut state_events).await.change,
        Change::Set("queued".to_owned())
    );

    // A live view: load with its sequence number, events, read-your-writes.
    job.state.set(&"live".into()).await.unwrap();
    let mut live = job.live().await.unwrap();
    assert_eq!(live.get().state, "live");
    live.set(&job.tries, &5).await.unwrap();
    assert_eq!(live.get().tries, 5);
    job.state.set(&"seen".into()).await.unwrap();
    while live.get().state != "seen" {
        tokio::time::timeout(WAIT, live.changed())
            .await
            .unwrap()
            .unwrap();
    }
    assert!(live.status().is_fresh());

    let denied = acl_log(&mut admin).await;
    assert!(
        denied.is_empty(),
        "the rules are enough: ACL LOG {denied:#?}"
    );

    // The rules confine the user to `app`.
    let other = store.dict::<String, u32>("other").unwrap();
    let e = other.set("a", &1).await.unwrap_err().to_string();
    assert!(e.to_lowercase().contains("no permissions"), "{e}");
    let e = other.subscribe("*").await.unwrap_err().to_string();
    assert!(
        e.contains("\"other\"") && e.to_lowercase().contains("no permissions"),
        "{e}"
    );
}

/// Only a store that asked for expiry events sends `CONFIG`: subscribing
/// under a user without it leaves no trace in the ACL LOG.
#[tokio::test]
async fn subscribing_sends_no_config_command_unless_expiry_events_were_asked_for() {
    let server = RedisServer::start();
    let mut admin = admin(&server).await;
    set_user(&mut admin, "app", APP_RULES).await;
    let store = Store::connect(&user_url(&server, "app")).await.unwrap();
    let d = store.dict::<String, u32>("app").unwrap();
    let _sub = d.subscribe("*").await.unwrap();
    let _key = d.subscribe_key("k").await.unwrap();
    let denied = acl_log(&mut admin).await;
    assert!(denied.is_empty(), "no CONFIG GET: {denied:#?}");
    let mut conn = admin;
    let calls: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(!calls.contains("cmdstat_config"), "{calls}");
}

/// A user without the stream commands: the durable subscription yields one
/// `Err` naming the namespace and NOPERM, then ends.
#[tokio::test]
async fn durable_subscription_without_permission_is_an_error_item() {
    let server = RedisServer::start();
    let mut admin = admin(&server).await;
    let rules: Vec<&str> = APP_RULES
        .iter()
        .copied()
        .filter(|r| !matches!(*r, "+xrange" | "+xread" | "+xrevrange"))
        .collect();
    set_user(&mut admin, "app", &rules).await;
    let store = Store::connect(&user_url(&server, "app")).await.unwrap();
    let d = store
        .dict::<String, u32>("app")
        .unwrap()
        .with_durable_log(100);
    d.set("a", &1).await.unwrap();
    let mut sub = d.subscribe_durable(StartFrom::Beginning).await.unwrap();
    match tokio::time::timeout(WAIT, sub.next()).await {
        Ok(Some(Err(e))) => {
            let text = e.to_string();
            assert!(
                text.contains("\"app\"") && text.to_lowercase().contains("no permissions"),
                "{text}"
            );
            assert!(!e.is_connection_error());
        }
        other => panic!("expected an error item, got {other:?}"),
    }
    match tokio::time::timeout(WAIT, sub.next()).await {
        Ok(None) => {}
        other => panic!("expected the end, got {other:?}"),
    }
}

/// A plain subscription whose channel permission is revoked while it runs:
/// the server drops it, resubscribing is refused, and the stream yields an
/// `Err` naming the namespace and NOPERM, then ends.
#[tokio::test]
async fn revoked_channel_permission_ends_a_subscription_with_an_error_item() {
    let server = RedisServer::start();
    let mut admin = admin(&server).await;
    set_user(&mut admin, "app", APP_RULES).await;
    let store = Store::connect(&user_url(&server, "app")).await.unwrap();
    let d = store.dict::<String, u32>("app").unwrap();
    let mut sub = d.subscribe("*").await.unwrap();
    d.set("a", &1).await.unwrap();
    assert_eq!(next(&mut sub).await.change, Change::Set(1));
    let rules: Vec<&str> = APP_RULES
        .iter()
        .copied()
        .filter(|r| !r.starts_with('&'))
        .collect();
    set_user(&mut admin, "app", &rules).await;
    let mut saw_gap = false;
    loop {
        match tokio::time::timeout(WAIT, sub.next()).await {
            Ok(Some(Ok(event))) => {
                // A gap may come first if a reconnect happened before the revoke.
                assert_eq!(event.change, Change::Gap, "{event:?}");
                saw_gap = true;
            }
            Ok(Some(Err(e))) => {
                let text = e.to_string();
                assert!(
                    text.contains("\"app\"") && text.to_lowercase().contains("no permissions"),
                    "{text}"
                );
                break;
            }
            other => panic!("expected an error item, got {other:?} (gap seen: {saw_gap})"),
        }
    }
    match tokio::time::timeout(WAIT, sub.next()).await {
        Ok(None) => {}
        other => panic!("expected the end, got {other:?}"),
    }
}

/// What needs more than `APP_RULES` (README, "ACL"): a pattern subscription
/// other than `"*"` needs its literal pattern channel, and expiry events
/// need `CONFIG GET` and the keyspace channel of each pattern subscribed to
/// (here the server already has `notify-keyspace-events Kx`, so no
/// `CONFIG SET`).
#[tokio::test]
async fn pattern_and_expiry_subscriptions_need_only_their_documented_extra_rules() {
    let server = RedisServer::start_with(&["--notify-keyspace-events", "Kx"]);
    let mut admin = admin(&server).await;
    let mut rules = APP_RULES.to_vec();
    rules.extend([
        "&{app}#ev:job:*",
        "+config|get",
        "&__keyspace@0__:{app}:*",
        "&__keyspace@0__:{app}:job:*",
    ]);
    set_user(&mut admin, "app", &rules).await;
    let store = Store::builder(&user_url(&server, "app"))
        .enable_expiry_events(true)
        .connect()
        .await
        .unwrap();
    let d = store.dict::<String, u32>("app").unwrap();
    let mut jobs = d.subscribe("job:*").await.unwrap();
    let mut all = d.subscribe("*").await.unwrap();
    d.set("other", &0).await.unwrap();
    d.set("job:1", &1).await.unwrap();
    assert_eq!(next(&mut jobs).await.change, Change::Set(1));
    d.set_with_ttl("brief", &2, Duration::from_millis(50))
        .await
        .unwrap();
    assert_eq!(next(&mut all).await.change, Change::Set(0));
    assert_eq!(next(&mut all).await.change, Change::Set(1));
    assert_eq!(next(&mut all).await.change, Change::Set(2));
    // Redis reports an expiry when it notices it: ask for the key to hurry it.
    let _: Option<u32> = d.get("brief").await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _: Option<u32> = d.get("brief").await.unwrap();
    let expired = next(&mut all).await;
    assert_eq!(
        (expired.key.as_deref(), expired.change),
        (Some("brief"), Change::Expired)
    );
    let denied = acl_log(&mut admin).await;
    assert!(denied.is_empty(), "the extra rules are enough: {denied:#?}");
}

/// What a consumer group member needs beyond `APP_RULES` (README, "ACL"):
/// joining (and making) the group, reading it, acknowledging, finding and
/// claiming idle changes. Parking writes `{app}#dead`, inside `~{app}*`.
const GROUP_RULES: &[&str] = &[
    "+xgroup|create",
    "+xreadgroup",
    "+xack",
    "+xpending",
    "+xclaim",
    "+xinfo|groups",
    "+xinfo|stream",
];

/// User `app` under exactly `rules`, with an empty ACL LOG: the admin
/// connection and dict `app` with a durable log, as `app` uses it.
async fn group_member(
    server: &RedisServer,
    rules: &[&str],
) -> (MultiplexedConnection, redis_pydict::Dict<String, u32>) {
    let mut admin = admin(server).await;
    set_user(&mut admin, "app", rules).await;
    let store = Store::connect(&user_url(server, "app")).await.unwrap();
    let d = store
        .dict::<String, u32>("app")
        .unwrap()
        .with_durable_log(100);
    (admin, d)
}

/// What removing a consumer needs beyond `APP_RULES` + `GROUP_RULES`
/// (`remove_group_consumer`, `retire_consumer`; README, "ACL").
const REMOVAL_RULES: &[&str] = &["+xinfo|consumers", "+xgroup|delconsumer", "+xgroup|destroy"];

/// Under exactly `APP_RULES` + `GROUP_RULES` + `REMOVAL_RULES`, removing an
/// idle consumer, retiring one that holds a change and destroying a group
/// work, and the ACL LOG stays empty; without `+xgroup|delconsumer`, removal
/// is a clear error naming the namespace and NOPERM, and the consumer stays.
#[tokio::test]
async fn removing_group_consumers_works_under_the_documented_rules() {
    let server = RedisServer::start();
    let mut rules = APP_RULES.to_vec();
    rules.extend(GROUP_RULES);
    rules.extend(REMOVAL_RULES);
    let (mut admin, d) = group_member(&server, &rules).await;
    let options = GroupOptions::new().claim_idle(Duration::from_secs(2));
    let mut gone = d.subscribe_group_with("g", "gone", &options).await.unwrap();
    d.set("a", &1).await.unwrap();
    let held = tokio::time::timeout(WAIT, gone.next())
        .await
        .unwrap()
        .unwrap();
    held.unwrap().release();
    drop(gone);
    let e = d.remove_group_consumer("g", "gone").await.unwrap_err();
    assert!(matches!(e, Error::ConsumerHasPending { .. }), "{e}");
    let mut live = d.subscribe_group_with("g", "live", &options).await.unwrap();
    assert_eq!(live.retire_consumer("gone").await.unwrap(), 1);
    let again = tokio::time::timeout(WAIT, live.next())
        .await
        .unwrap()
        .unwrap();
    again.unwrap().ack().await.unwrap();
    drop(live);
    assert!(d.remove_group_consumer("g", "live").await.unwrap());
    drop(d.subscribe_group("doomed", "x").await.unwrap()); // creates it
    assert!(d.destroy_group("doomed").await.unwrap());
    let denied = acl_log(&mut admin).await;
    assert!(
        denied.is_empty(),
        "the rules are enough: ACL LOG {denied:#?}"
    );

    let without: Vec<&str> = rules
        .iter()
        .copied()
        .filter(|r| *r != "+xgroup|delconsumer")
        .collect();
    set_user(&mut admin, "app", &without).await;
    let mut me = d.subscribe_group("g", "me").await.unwrap();
    d.set("b", &2).await.unwrap();
    let b = tokio::time::timeout(WAIT, me.next())
        .await
        .unwrap()
        .unwrap();
    b.unwrap().ack().await.unwrap();
    drop(me);
    let e = d.remove_group_consumer("g", "me").await.unwrap_err();
    let text = e.to_string();
    // Denied inside the script: Redis says "can't run this command".
    assert!(
        text.contains("\"app\"") && text.contains("can't run this command"),
        "{text}"
    );
    let listed: Vec<Vec<redis::Value>> = redis::cmd("XINFO")
        .arg("CONSUMERS")
        .arg("{app}#log")
        .arg("g")
        .query_async(&mut admin)
        .await
        .unwrap();
    assert_eq!(listed.len(), 1, "the consumer stays: {listed:?}");
}

/// Under exactly `APP_RULES` + `GROUP_RULES`, every path of a group
/// consumer works (delivery, explicit and dropped acknowledgements, a claim
/// after a release, parking an undecodable change) and the ACL LOG stays
/// empty.
#[tokio::test]
async fn group_consumers_work_under_exactly_the_documented_rules() {
    let server = RedisServer::start();
    let mut rules = APP_RULES.to_vec();
    rules.extend(GROUP_RULES);
    let (mut admin, d) = group_member(&server, &rules).await;
    let options = GroupOptions::new().claim_idle(Duration::from_millis(200));
    let mut sub = d.subscribe_group_with("g", "me", &options).await.unwrap();
    d.set("a", &1).await.unwrap();
    d.set("b", &2).await.unwrap();
    let _: String = redis::cmd("XADD")
        .arg("{app}#log")
        .arg("*")
        .arg("e")
        .arg("garbage")
        .query_async(&mut admin)
        .await
        .unwrap();
    let a = tokio::time::timeout(WAIT, sub.next())
        .await
        .unwrap()
        .unwrap();
    let a = a.unwrap();
    assert_eq!(a.change, Change::Set(1));
    a.release(); // claimed again after 200 ms
    let b = tokio::time::timeout(WAIT, sub.next())
        .await
        .unwrap()
        .unwrap();
    drop(b.unwrap()); // acknowledged in the background
    let parked = tokio::time::timeout(WAIT, sub.next())
        .await
        .unwrap()
        .unwrap();
    let parked = parked.unwrap_err();
    assert!(matches!(parked, Error::Parked { .. }), "{parked}");
    let again = tokio::time::timeout(WAIT, sub.next())
        .await
        .unwrap()
        .unwrap();
    let again = again.unwrap();
    assert_eq!(
        (again.change.clone(), again.deliveries()),
        (Change::Set(1), 2)
    );
    again.ack().await.unwrap();
    sub.flush_acks().await.unwrap();
    let denied = acl_log(&mut admin).await;
    assert!(
        denied.is_empty(),
        "the rules are enough: ACL LOG {denied:#?}"
    );
}

/// Each group permission missing gives a clear error naming the namespace
/// and NOPERM: joining without `XGROUP CREATE` fails; reading without
/// `XREADGROUP` (or the `XINFO GROUPS`/`XINFO STREAM` of the trim check)
/// is an `Err` item that ends the stream; acknowledging without
/// `XACK` is an `Err` from `ack()` (the change stays pending).
#[tokio::test]
async fn group_consumers_without_a_permission_get_clear_errors() {
    let server = RedisServer::start();
    let mut admin = admin(&server).await;
    let without = |missing: &str| -> Vec<&str> {
        APP_RULES
            .iter()
            .chain(GROUP_RULES)
            .copied()
            .filter(|r| *r != missing)
            .collect()
    };
    let is_noperm = |e: &Error| {
        let text = e.to_string();
        text.contains("\"app\"") && text.to_lowercase().contains("no permissions")
    };
    let url = user_url(&server, "app");

    set_user(&mut admin, "app", &without("+xgroup|create")).await;
    let store = Store::connect(&url).await.unwrap();
    let d = store
        .dict::<String, u32>("app")
        .unwrap()
        .with_durable_log(100);
    let e = d.subscribe_group("g", "me").await.unwrap_err();
    assert!(is_noperm(&e), "{e}");

    set_user(&mut admin, "app", &without("+xreadgroup")).await;
    let mut sub = d.subscribe_group("g", "me").await.unwrap();
    match tokio::time::timeout(WAIT, sub.next()).await {
        Ok(Some(Err(e))) => assert!(is_noperm(&e), "{e}"),
        other => panic!("expected an error item, got {other:?}"),
    }
    match tokio::time::timeout(WAIT, sub.next()).await {
        Ok(None) => {}
        other => panic!("expected the end, got {other:?}"),
    }

    // The trim check of each read (XINFO in the read's transaction).
    for missing in ["+xinfo|groups", "+xinfo|stream"] {
        set_user(&mut admin, "app", &without(missing)).await;
        let mut sub = d.subscribe_group("g", "me").await.unwrap();
        match tokio::time::timeout(WAIT, sub.next()).await {
            Ok(Some(Err(e))) => assert!(is_noperm(&e), "{missing}: {e}"),
            other => panic!("{missing}: expected an error item, got {other:?}"),
        }
        match tokio::time::timeout(WAIT, sub.next()).await {
            Ok(None) => {}
            other => panic!("{missing}: expected the end, got {other:?}"),
        }
    }

    set_user(&mut admin, "app", &without("+xack")).await;
    let mut sub = d.subscribe_group("g2", "me").await.unwrap();
    d.set("a", &1).await.unwrap();
    let delivery = match tokio::time::timeout(WAIT, sub.next()).await {
        Ok(Some(Ok(delivery))) => delivery,
        other => panic!("expected a delivery, got {other:?}"),
    };
    let e = delivery.ack().await.unwrap_err();
    assert!(is_noperm(&e), "{e}");
    // ... and reported on the stream, which goes on.
    match tokio::time::timeout(WAIT, sub.next()).await {
        Ok(Some(Err(e))) => assert!(is_noperm(&e), "{e}"),
        other => panic!("expected an error item, got {other:?}"),
    }
}

/// Under exactly `APP_RULES` + `+client|tracking`, a near cache fills, hits,
/// is invalidated by another writer and stays trusted, and the ACL LOG stays
/// empty; without `+client|tracking`, `cached()` is a clear error naming
/// the namespace and the missing permission instead of a cache that would never be invalidated.
#[tokio::test]
async fn near_cache_works_under_the_documented_rules_and_says_what_is_missing() {
    let server = RedisServer::start();
    let mut admin = admin(&server).await;
    let mut rules = APP_RULES.to_vec();
    rules.push("+client|tracking");
    set_user(&mut admin, "app", &rules).await;
    let store = Store::connect(&user_url(&server, "app")).await.unwrap();
    let d = store.dict::<String, u32>("app").unwrap();
    d.set("a", &1).await.unwrap();
    let cached = d.cached(100).await.unwrap();
    assert_eq!(cached.get("a").await.unwrap(), Some(1));
    assert_eq!(cached.get("a").await.unwrap(), Some(1));
    d.set("a", &2).await.unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while cached.get("a").await.unwrap() != Some(2) {
        assert!(tokio::time::Instant::now() < deadline, "invalidated");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let status = cached.status();
    assert!(status.trusted && status.hits >= 1, "{status:?}");
    let denied = acl_log(&mut admin).await;
    assert!(
        denied.is_empty(),
        "the rules are enough: ACL LOG {denied:#?}"
    );

    set_user(&mut admin, "app", APP_RULES).await;
    let store = Store::connect(&user_url(&server, "app")).await.unwrap();
    let d = store.dict::<String, u32>("app").unwrap();
    let err = d.cached(100).await.map(|_| ()).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("client|tracking") && message.contains("\"app\""),
        "{message}"
    );
}

/// `tracing` output at `WARN` and above, captured while the guard lives
/// (on this thread: the tests below run on a current-thread runtime).
struct Warnings(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Warnings {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_warnings() -> (
    std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    tracing::subscriber::DefaultGuard,
) {
    let captured = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_writer(move || Warnings(writer.clone()))
        .finish();
    (captured, tracing::subscriber::set_default(subscriber))
}

fn text(captured: &std::sync::Mutex<Vec<u8>>) -> String {
    String::from_utf8_lossy(&captured.lock().unwrap()).into_owned()
}

/// Dict `app` of a store asking for expiry events, under user `app` with
/// `APP_RULES`, the keyspace channels of `{app}` and `extra` rules; and an
/// admin connection.
async fn expiry_dict(
    server: &RedisServer,
    extra: &[&str],
) -> (MultiplexedConnection, redis_pydict::Dict<String, u32>) {
    let mut admin = admin(server).await;
    let mut rules = APP_RULES.to_vec();
    rules.push("&__keyspace@0__:{app}:*");
    rules.extend(extra);
    set_user(&mut admin, "app", &rules).await;
    let store = Store::builder(&user_url(server, "app"))
        .enable_expiry_events(true)
        .connect()
        .await
        .unwrap();
    (admin, store.dict::<String, u32>("app").unwrap())
}

/// Expiry events asked for, a server that does not report expired keys
/// (`notify-keyspace-events` empty, the default) and a user that may read
/// but not change the setting: subscribing fails with a clear error naming
/// what is missing and what to do, instead of never reporting an expiry.
#[tokio::test]
async fn expiry_events_the_server_lacks_and_the_user_may_not_switch_on_are_a_clear_error() {
    let server = RedisServer::start();
    let (mut admin, d) = expiry_dict(&server, &["+config|get"]).await;
    for err in [
        d.subscribe("*").await.unwrap_err(),
        d.subscribe_key("k").await.unwrap_err(),
    ] {
        let message = err.to_string();
        let Error::ExpiryEventsOff {
            ref current,
            missing,
            ref wanted,
            ..
        } = err
        else {
            panic!("expected ExpiryEventsOff, got {err:?}");
        };
        assert_eq!(current, "");
        assert!(missing.contains('K') && missing.contains('x'), "{missing}");
        assert!(wanted.contains('K') && wanted.contains('x'), "{wanted}");
        for needed in ["notify-keyspace-events", "+config|set", "operator"] {
            assert!(message.contains(needed), "{needed} in: {message}");
        }
    }
    // Nothing was changed on the server.
    let flags: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("notify-keyspace-events")
        .query_async(&mut admin)
        .await
        .unwrap();
    assert_eq!(flags[1], "");
    // Once an operator switches them on, the same user subscribes and
    // expiries arrive.
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("notify-keyspace-events")
        .arg("Kx")
        .query_async(&mut admin)
        .await
        .unwrap();
    let mut all = d.subscribe("*").await.unwrap();
    d.set_with_ttl("brief", &1, Duration::from_millis(50))
        .await
        .unwrap();
    assert_eq!(next(&mut all).await.change, Change::Set(1));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _: Option<u32> = d.get("brief").await.unwrap();
    let expired = next(&mut all).await;
    assert_eq!(
        (expired.key.as_deref(), expired.change),
        (Some("brief"), Change::Expired)
    );
}

/// A user that may not run `CONFIG` at all, on a server whose operator
/// switched expiry notifications on (`notify-keyspace-events Kx`): the
/// setting cannot be verified, so the subscription listens for expiries
/// anyway, and they arrive; a `tracing` warning says it could not verify.
#[tokio::test]
async fn expiry_events_set_by_the_operator_arrive_for_a_user_without_config() {
    let (warnings, _guard) = capture_warnings();
    let server = RedisServer::start_with(&["--notify-keyspace-events", "Kx"]);
    let (_admin, d) = expiry_dict(&server, &[]).await;
    let mut all = d.subscribe("*").await.unwrap();
    let mut one = d.subscribe_key("brief").await.unwrap();
    let warned = text(&warnings);
    assert!(
        warned.contains("WARN") && warned.contains("CONFIG GET") && warned.contains("+config|get"),
        "{warned}"
    );
    d.set_with_ttl("brief", &1, Duration::from_millis(50))
        .await
        .unwrap();
    assert_eq!(next(&mut all).await.change, Change::Set(1));
    assert_eq!(next(&mut one).await.change, Change::Set(1));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _: Option<u32> = d.get("brief").await.unwrap();
    assert_eq!(next(&mut all).await.change, Change::Expired);
    assert_eq!(next(&mut one).await.change, Change::Expired);
}

/// The same user on a server without expiry notifications: nothing can be
/// verified nor switched on, so subscribing succeeds (other events arrive)
/// and the one thing that says expiries may not arrive is the `tracing`
/// warning, which names what to do.
#[tokio::test]
async fn unverifiable_expiry_events_are_a_warning_not_silence() {
    let (warnings, _guard) = capture_warnings();
    let server = RedisServer::start();
    let (_admin, d) = expiry_dict(&server, &[]).await;
    let mut all = d.subscribe("*").await.unwrap();
    let warned = text(&warnings);
    for needed in ["CONFIG GET", "notify-keyspace-events", "+config|get"] {
        assert!(warned.contains(needed), "{needed} in: {warned}");
    }
    d.set("k", &1).await.unwrap();
    assert_eq!(next(&mut all).await.change, Change::Set(1));
}
