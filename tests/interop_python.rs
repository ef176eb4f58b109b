//! The wire format between languages: the Python reference implementation
//! (`interop/python/redis_pydict_ref.py`, on redis-py and cbor2) against this
//! library on a private server, in both directions: values, index (`len`,
//! items), events, the durable log and its discoverability (`{ns}#meta`).
//!
//! Python comes from `REDIS_PYDICT_PYTHON` (set by `.ci/run`) or, by default,
//! `target/interop-venv/bin/python`; without it, or without the pinned
//! packages, these tests fail saying how to set it up (never skip).

mod support;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use futures::StreamExt;
use redis_pydict::{Change, StartFrom};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value as Json};
use tokio::process::Command;

const WAIT: Duration = Duration::from_secs(10);

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Python interpreter with `redis` and `cbor2`, or a panic saying how to
/// get one (checked once per test binary).
fn python() -> PathBuf {
    static CHECKED: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    CHECKED.get_or_init(checked_python).clone()
}

fn checked_python() -> PathBuf {
    let python = std::env::var_os("REDIS_PYDICT_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/interop-venv/bin/python"));
    let setup = "set it up with `python3 -m venv target/interop-venv && \
                 target/interop-venv/bin/pip install -r interop/python/requirements.txt` \
                 (what .ci/run does), or point REDIS_PYDICT_PYTHON at a Python that has them";
    let ok = std::process::Command::new(&python)
        .args(["-c", "import redis, cbor2"])
        .output()
        .unwrap_or_else(|e| panic!("no Python at {}: {e}; {setup}", python.display()));
    assert!(
        ok.status.success(),
        "{} cannot import redis and cbor2 ({}); {setup}",
        python.display(),
        String::from_utf8_lossy(&ok.stderr)
            .trim()
            .lines()
            .last()
            .unwrap_or_default()
    );
    python
}

fn reference(url: &str, ns: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(python());
    cmd.arg(root().join("interop/python/redis_pydict_ref.py"))
        .arg(url)
        .arg(ns)
        .args(args)
        .kill_on_drop(true);
    cmd
}

/// Runs the reference implementation to completion; its stdout as JSON lines.
async fn py(url: &str, ns: &str, args: &[&str]) -> Vec<Json> {
    let out = tokio::time::timeout(WAIT, reference(url, ns, args).output())
        .await
        .expect("python finishes")
        .expect("python runs");
    assert!(
        out.status.success(),
        "python {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Point {
    x: i32,
    y: i32,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Shape {
    Circle { r: f64 },
    Square(u32),
    Empty,
}

#[tokio::test]
async fn the_python_reference_reads_every_golden_vector() {
    let out = std::process::Command::new(python())
        .arg(root().join("interop/python/redis_pydict_ref.py"))
        .arg("check-vectors")
        .arg(root().join("wire/vectors"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn rust_writer_python_reader() {
    let server = redis_pydict_test::RedisServer::start();
    let url = server.url();
    let store = redis_pydict::Store::builder(&url)
        .origin("rust")
        .connect()
        .await
        .unwrap();
    let points = store
        .dict::<String, Point>("shared")
        .unwrap()
        .with_durable_log(1000);
    let shapes = store.dict::<String, Shape>("shared").unwrap();
    let raw = store.dict::<String, ciborium::Value>("shared").unwrap();

    // A Python subscriber, ready before the writes; its lines come over a channel.
    let mut child = std::process::Command::new(python())
        .arg(root().join("interop/python/redis_pydict_ref.py"))
        .args([url.as_str(), "shared", "subscribe", "*", "5"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let ready = tokio::time::timeout(WAIT, lines.recv()).await.unwrap();
    assert_eq!(ready.as_deref(), Some("\"ready\""));

    points.set("a", &Point { x: 1, y: -2 }).await.unwrap();
    shapes.set("s", &Shape::Circle { r: 1.5 }).await.unwrap();
    shapes.set("q", &Shape::Square(4)).await.unwrap();
    let bytes = ciborium::Value::Bytes(vec![0, 255]);
    raw.set("b", &bytes).await.unwrap();
    points.delete("a").await.unwrap();

    let mut events = Vec::new();
    while events.len() < 5 {
        let line = tokio::time::timeout(WAIT, lines.recv()).await;
        let line = line.expect("python sees the event").expect("a line");
        events.push(serde_json::from_str::<Json>(&line).unwrap());
    }
    let event = |op: &str, key: &str, value: Option<Json>, seq: u64| {
        let mut e = json!({"v": 1, "op": op, "key": key, "origin": "rust", "seq": seq});
        if let Some(value) = value {
            e["value"] = value;
        }
        e
    };
    assert_eq!(
        events,
        vec![
            event("set", "a", Some(json!({"x": 1, "y": -2})), 1),
            event("set", "s", Some(json!({"Circle": {"r": 1.5}})), 2),
            event("set", "q", Some(json!({"Square": 4})), 3),
            event("set", "b", Some(json!({"$bytes": "00ff"})), 4),
            event("del", "a", None, 5),
        ]
    );
    assert!(child.wait().unwrap().success());

    // Values, index, the declared log and the log itself.
    let dump = py(&url, "shared", &["dump"]).await.remove(0);
    assert_eq!(dump["len"], json!(3));
    assert_eq!(
        dump["items"],
        json!({"s": {"Circle": {"r": 1.5}}, "q": {"Square": 4}, "b": {"$bytes": "00ff"}})
    );
    assert_eq!(dump["declared_log"], json!(1000));
    let logged: Vec<&Json> = dump["log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e[1])
        .collect();
    // Only the first write went through the dict with a log; every later
    // one appended too, because the namespace declares its log.
    assert_eq!(logged, events.iter().collect::<Vec<_>>());
    // Resuming after the second entry yields the rest; after a trimmed id, a gap.
    let second = dump["log"][1][0].as_str().unwrap().to_owned();
    let rest = py(&url, "shared", &["dump", &second]).await.remove(0);
    assert_eq!(
        (rest["gap"].clone(), rest["log"].as_array().unwrap().len()),
        (json!(false), 3)
    );
    let gone = py(&url, "shared", &["dump", "1-0"]).await.remove(0);
    assert_eq!(
        (gone["gap"].clone(), gone["log"].as_array().unwrap().len()),
        (json!(true), 5)
    );
}

#[tokio::test]
async fn python_writer_rust_reader() {
    let (server, store) = support::start().await;
    let url = server.url();
    let logged = store
        .dict::<String, Point>("shared")
        .unwrap()
        .with_durable_log(1000);
    let points = store.dict::<String, Point>("shared").unwrap();
    logged.set("seed", &Point { x: 0, y: 0 }).await.unwrap();
    let mut live = points.subscribe("*").await.unwrap();
    let mut durable = points
        .subscribe_durable(StartFrom::Beginning)
        .await
        .unwrap();
    let (_, seed) = durable.next().await.unwrap().unwrap();
    assert_eq!(seed.key.as_deref(), Some("seed"));

    // A plain Python writer: no log of its own, yet it appends (the namespace declares one).
    py(&url, "shared", &["set", "a", r#"{"x": 1, "y": -2}"#]).await;
    py(&url, "shared", &["set", "b", r#"{"y": 4, "x": 3}"#]).await;
    assert_eq!(
        py(&url, "shared", &["delete", "seed"]).await,
        vec![json!(true)]
    );
    assert_eq!(
        py(&url, "shared", &["delete", "seed"]).await,
        vec![json!(false)]
    );

    assert_eq!(points.get("a").await.unwrap(), Some(Point { x: 1, y: -2 }));
    assert_eq!(points.len().await.unwrap(), 2);
    let mut map: Vec<(String, Point)> = points.to_map().await.unwrap().into_iter().collect();
    map.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        map,
        vec![
            ("a".into(), Point { x: 1, y: -2 }),
            ("b".into(), Point { x: 3, y: 4 })
        ]
    );
    // The Python writer numbers its changes after the Rust one's (seq).
    let expected = [
        (Some("a"), Change::Set(Point { x: 1, y: -2 }), 2),
        (Some("b"), Change::Set(Point { x: 3, y: 4 }), 3),
        (Some("seed"), Change::Deleted, 4),
    ];
    for (key, change, seq) in expected {
        let (_, from_log) = tokio::time::timeout(WAIT, durable.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let live = tokio::time::timeout(WAIT, live.next()).await.unwrap();
        for event in [live.unwrap().unwrap(), from_log] {
            assert_eq!(
                (event.key.as_deref(), event.origin.as_deref()),
                (key, Some("python"))
            );
            assert_eq!(event.change, change);
            assert_eq!(event.seq, Some(seq));
        }
    }
    // A value Python writes from bytes Rust wrote: a bignum as u128.
    let big = store.dict::<String, u128>("big").unwrap();
    py(&url, "big", &["set-hex", "n", "c249010000000000000000"]).await;
    assert_eq!(big.get("n").await.unwrap(), Some(1u128 << 64));
}

#[tokio::test]
async fn a_python_writer_with_a_log_is_discovered_by_rust_writers() {
    let (server, store) = support::start().await;
    let url = server.url();
    let plain = store.dict::<String, u32>("py-log").unwrap();
    assert_eq!(plain.durable_log_declared().await.unwrap(), None);
    py(&url, "py-log", &["set", "a", "1", "--log", "50"]).await;
    assert_eq!(plain.durable_log_declared().await.unwrap(), Some(50));
    plain.set("b", &2).await.unwrap();
    let mut durable = plain.subscribe_durable(StartFrom::Beginning).await.unwrap();
    for (key, value) in [("a", 1), ("b", 2)] {
        let (_, event) = tokio::time::timeout(WAIT, durable.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(
            (event.key.as_deref(), event.change),
            (Some(key), Change::Set(value))
        );
    }
}

#[tokio::test]
async fn the_python_writer_refuses_foreign_data_and_changes_nothing() {
    let (server, _store) = support::start().await;
    let url = server.url();
    let mut raw = support::raw(&server).await;
    let () = redis::cmd("SET")
        .arg("{foreign}#keys")
        .arg("not a zset")
        .query_async(&mut raw)
        .await
        .unwrap();
    let out = reference(&url, "foreign", &["set", "a", "1"])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("PYDICTTYPE string {foreign}#keys"),
        "{stderr}"
    );
    assert!(support::keyspace_members(&mut raw, "foreign")
        .await
        .is_empty());
}
