//! The `redis-pydict` binary against private servers: every command, bad
//! input, a 100,000-entry dump -> restore round trip compared byte for
//! byte, and the same commands on a cluster.

use std::io::Write;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use redis_pydict::{RawCbor, Store};
use redis_pydict_test::{RedisCluster, RedisServer};
use serde_json::{json, Value as Json};

const BIN: &str = env!("CARGO_BIN_EXE_redis-pydict");

/// How to reach the server(s) under test.
#[derive(Clone)]
enum Target {
    Url(String),
    Cluster(Vec<String>),
}

impl Target {
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.env_remove("REDIS_URL").env_remove("REDIS_CLUSTER");
        match self {
            Target::Url(url) => cmd.env("REDIS_URL", url),
            Target::Cluster(nodes) => cmd.arg("--cluster").arg(nodes.join(",")),
        };
        cmd.args(args);
        cmd
    }

    /// Runs the binary with `stdin`; (exit code, stdout, stderr).
    fn run_with(&self, args: &[&str], stdin: &[u8]) -> (i32, String, String) {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary runs");
        let mut input = child.stdin.take().unwrap();
        let data = stdin.to_vec();
        let writer = std::thread::spawn(move || {
            let _ = input.write_all(&data);
        });
        let Output {
            status,
            stdout,
            stderr,
        } = child.wait_with_output().unwrap();
        writer.join().unwrap();
        (
            status.code().unwrap_or(-1),
            String::from_utf8(stdout).unwrap(),
            String::from_utf8(stderr).unwrap(),
        )
    }

    fn run(&self, args: &[&str]) -> (i32, String, String) {
        self.run_with(args, b"")
    }

    /// Runs a command that must succeed; its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.run(args);
        assert_eq!(code, 0, "{args:?} failed: {err}");
        assert!(err.is_empty(), "{args:?} wrote to stderr: {err}");
        out
    }

    /// Runs a command that must fail with `code`; its stderr (one line).
    fn fails(&self, args: &[&str], code: i32) -> String {
        self.fails_with(args, b"", code)
    }

    fn fails_with(&self, args: &[&str], stdin: &[u8], code: i32) -> String {
        let (got, out, err) = self.run_with(args, stdin);
        assert_eq!(got, code, "{args:?}: exit {got}, stderr {err}");
        assert!(
            out.is_empty() || code == 1,
            "{args:?} wrote to stdout: {out}"
        );
        assert_eq!(err.lines().count(), 1, "{args:?}: not one line: {err}");
        assert!(err.starts_with("redis-pydict: "), "{err}");
        err
    }

    async fn store(&self) -> Store {
        match self {
            Target::Url(url) => Store::connect(url).await.unwrap(),
            Target::Cluster(nodes) => Store::connect_cluster(nodes).await.unwrap(),
        }
    }
}

fn lines(text: &str) -> Vec<Json> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

/// Runs `watch` until it exits after `count` events, writing with `poke`
/// until then (the subscription starts at an unknown moment).
fn watch_while(target: &Target, args: &[&str], mut poke: impl FnMut()) -> Vec<Json> {
    let mut child: Child = target
        .command(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            assert!(status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            return lines(&String::from_utf8(out.stdout).unwrap());
        }
        assert!(Instant::now() < deadline, "watch saw nothing in 30 s");
        poke();
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Every command once, on `target`.
fn every_command(target: &Target, ns: &str) {
    // set / get / --diag
    target.ok(&["set", ns, "job:1", r#"{"state":"done","tries":3}"#]);
    target.ok(&[
        "set",
        ns,
        "job:2",
        r#"[1, 2.5, "x", null, -18446744073709551616]"#,
        "--ttl",
        "1h",
    ]);
    target.ok(&["set", ns, "plain", "7"]);
    assert_eq!(
        lines(&target.ok(&["get", ns, "job:1"])),
        [json!({"state":"done","tries":3})]
    );
    // JSON integers beyond i64/u64 become floats on the way in (serde_json).
    assert_eq!(
        target.ok(&["get", ns, "job:2", "--diag"]).trim(),
        r#"[1, 2.5, "x", null, -1.8446744073709552e19]"#
    );
    assert_eq!(target.ok(&["get", ns, "plain", "--diag"]).trim(), "7");
    // keys / items, streamed NDJSON
    let mut keys = lines(&target.ok(&["keys", ns]));
    keys.sort_by_key(|k| k.to_string());
    assert_eq!(keys, [json!("job:1"), json!("job:2"), json!("plain")]);
    assert_eq!(lines(&target.ok(&["keys", ns, "job:*"])).len(), 2);
    let items = lines(&target.ok(&["items", ns, "job:1"]));
    assert_eq!(
        items,
        [json!({"key":"job:1","value":{"state":"done","tries":3}})]
    );
    let pretty = target.ok(&["items", ns, "--pretty"]);
    assert!(pretty.starts_with("KEY"), "{pretty}");
    // ls
    let listed = lines(&target.ok(&["ls"]));
    assert!(
        listed.contains(&json!({"namespace": ns, "entries": 3})),
        "{listed:?}"
    );
    // stats
    let stats = &lines(&target.ok(&["stats", ns]))[0];
    assert_eq!(stats["entries"], 3);
    assert_eq!(stats["with_ttl"], 1);
    assert_eq!(stats["persistent"], 2);
    assert_eq!(stats["ttl_under_1d"], 1);
    assert_eq!(stats["memory_sampled"], 3);
    assert!(stats["memory_avg_bytes"].as_u64().unwrap() > 0);
    assert_eq!(stats["log_length"], Json::Null);
    // repair
    assert_eq!(
        lines(&target.ok(&["repair", ns])),
        [json!({"added":0,"removed":0,"live":3})]
    );
    // del through the write path: gone from the index too
    target.ok(&["del", ns, "plain"]);
    assert!(target.fails(&["del", ns, "plain"], 3).contains("not found"));
    assert!(target.fails(&["get", ns, "plain"], 3).contains("\"plain\""));
    assert_eq!(lines(&target.ok(&["keys", ns])).len(), 2);
    // watch: live events with origin, value and time
    let events = watch_while(target, &["watch", ns, "w:*", "--count", "1"], || {
        target.ok(&["set", ns, "w:1", "[true]"]);
    });
    assert_eq!(events[0]["key"], "w:1");
    assert_eq!(events[0]["op"], "set");
    assert_eq!(events[0]["origin"], "redis-pydict-cli");
    assert_eq!(events[0]["value"], json!([true]));
    assert!(events[0]["time"].as_str().unwrap().ends_with('Z'));
    // watch --durable: replay of the log, and resuming after an id
    let log_ns = format!("{ns}-log");
    target.ok(&["--log-max-len", "1000", "set", &log_ns, "a", "1"]);
    target.ok(&["set", &log_ns, "b", "2"]); // the log exists: appended too
    target.ok(&["del", &log_ns, "a"]);
    let replay = lines(&target.ok(&["watch", &log_ns, "--durable", "--count", "3"]));
    let ops: Vec<_> = replay
        .iter()
        .map(|e| (e["op"].clone(), e["key"].clone()))
        .collect();
    assert_eq!(
        ops,
        [
            (json!("set"), json!("a")),
            (json!("set"), json!("b")),
            (json!("del"), json!("a"))
        ]
    );
    let first = replay[0]["id"].as_str().unwrap();
    let resumed = lines(&target.ok(&[
        "watch",
        &log_ns,
        "--durable",
        "--from",
        first,
        "--count",
        "2",
    ]));
    assert_eq!(resumed, replay[1..]);
    let filtered = lines(&target.ok(&["watch", &log_ns, "b", "--durable", "--count", "1"]));
    assert_eq!(filtered[0]["key"], "b");
    let stats = &lines(&target.ok(&["stats", &log_ns]))[0];
    assert_eq!(stats["log_length"], 3);
    // dump -> restore into another namespace, then rerun it
    let dump = target.ok(&["dump", ns]);
    let copy = format!("{ns}-copy");
    for _ in 0..2 {
        let (code, out, err) = target.run_with(&["restore", &copy], dump.as_bytes());
        assert_eq!(code, 0, "{err}");
        assert_eq!(lines(&out), [json!({"restored": 3, "expired": 0})]);
    }
    let mut original = lines(&target.ok(&["items", ns]));
    let mut copied = lines(&target.ok(&["items", &copy]));
    original.sort_by_key(|v| v.to_string());
    copied.sort_by_key(|v| v.to_string());
    assert_eq!(original, copied);
    let stats = &lines(&target.ok(&["stats", &copy]))[0];
    assert_eq!(stats["with_ttl"], 1, "the TTL came along");
}

#[test]
fn every_command_on_one_server() {
    let server = RedisServer::start();
    every_command(&Target::Url(server.url()), "jobs");
}

#[test]
fn every_command_on_a_cluster() {
    let cluster = RedisCluster::start();
    let target = Target::Cluster(cluster.urls());
    every_command(&target, "jobs");
    // ls finds namespaces on every master.
    let names: Vec<String> = (0..12).map(|i| format!("ns{i}")).collect();
    let masters: std::collections::HashSet<u16> = names
        .iter()
        .map(|n| cluster.master_for_key(&format!("{{{n}}}#keys")))
        .collect();
    assert!(
        masters.len() > 1,
        "the namespaces should spread over the masters"
    );
    for name in &names {
        target.ok(&["set", name, "k", "1"]);
    }
    let listed = lines(&target.ok(&["ls", "ns*"]));
    assert_eq!(listed.len(), names.len(), "{listed:?}");
}

#[test]
fn bad_input_is_one_line_and_an_exit_code() {
    let mut server = RedisServer::start();
    let target = Target::Url(server.url());
    target.ok(&["set", "jobs", "a", "1"]);
    // Unknown namespace: not found (3).
    for args in [
        &["get", "nope", "a"][..],
        &["keys", "nope"],
        &["items", "nope"],
        &["dump", "nope"],
        &["stats", "nope"],
    ] {
        assert!(target
            .fails(args, 3)
            .contains("namespace \"nope\" not found"));
    }
    // Usage (2): invalid JSON, namespace, TTL, log id.
    let err = target.fails(&["set", "jobs", "b", "{bad"], 2);
    assert!(err.contains("not valid JSON"), "{err}");
    let err = target.fails(&["set", "a{b", "k", "1"], 2);
    assert!(err.contains("invalid namespace"), "{err}");
    let (code, _, _) = target.run(&["set", "jobs", "b", "1", "--ttl", "soon"]);
    assert_eq!(code, 2);
    target.fails(&["watch", "jobs", "--durable", "--from", "x-y"], 2);
    // Wrong-typed key: data error (1), naming the key and its type; nothing written.
    let mut conn = redis::Client::open(server.url())
        .unwrap()
        .get_connection()
        .unwrap();
    redis::cmd("RPUSH")
        .arg("{jobs}:list")
        .arg("x")
        .exec(&mut conn)
        .unwrap();
    let err = target.fails(&["set", "jobs", "list", "1"], 1);
    assert!(err.contains("{jobs}:list") && err.contains("list"), "{err}");
    assert!(target.fails(&["get", "jobs", "list"], 1).contains("list"));
    // A value that is not CBOR: get fails naming the key; items and dump
    // skip it, say so, and exit 1.
    redis::cmd("SET")
        .arg("{jobs}:junk")
        .arg(b"\xff\xfe")
        .exec(&mut conn)
        .unwrap();
    redis::cmd("ZADD")
        .arg("{jobs}#keys")
        .arg("+inf")
        .arg("junk")
        .exec(&mut conn)
        .unwrap();
    assert!(target
        .fails(&["get", "jobs", "junk"], 1)
        .contains("\"junk\""));
    let (code, out, err) = target.run(&["items", "jobs"]);
    assert_eq!((code, lines(&out).len()), (1, 1), "{err}");
    assert!(err.contains("\"junk\"") && err.contains("skipped"), "{err}");
    // Bad dump files: data errors (1), nothing half-read silently.
    let err = target.fails_with(&["restore", "copy"], b"not json\n", 1);
    assert!(err.contains("line 1"), "{err}");
    let header =
        r#"{"format":"redis-pydict-dump","version":1,"namespace":"jobs","match":null,"time_ms":0}"#;
    let entry = r#"{"key":"a","cbor":"AQ","ttl_ms":null}"#;
    let err = target.fails_with(
        &["restore", "copy"],
        format!("{header}\n{entry}\n").as_bytes(),
        1,
    );
    assert!(err.contains("cut short"), "{err}");
    let bad_cbor = r#"{"key":"a","cbor":"ggE","ttl_ms":null}"#;
    let err = target.fails_with(
        &["restore", "copy"],
        format!("{header}\n{bad_cbor}\n").as_bytes(),
        1,
    );
    assert!(err.contains("line 2") && err.contains("CBOR"), "{err}");
    let future = header.replace("\"version\":1", "\"version\":2");
    target.fails_with(&["restore", "copy"], format!("{future}\n").as_bytes(), 1);
    // Restore never clobbers foreign data: it stops with WrongType.
    let list_entry = r#"{"key":"list","cbor":"AQ","ttl_ms":null}"#;
    let dump = format!("{header}\n{list_entry}\n{{\"end\":true,\"entries\":1}}\n");
    let err = target.fails_with(&["restore", "jobs"], dump.as_bytes(), 1);
    assert!(
        err.contains("{jobs}:list") && err.contains("nothing was changed"),
        "{err}"
    );
    let kind: String = redis::cmd("TYPE")
        .arg("{jobs}:list")
        .query(&mut conn)
        .unwrap();
    assert_eq!(kind, "list");
    // Bad URL: usage (2); a password is never printed.
    let bad = Target::Url("redis://user:s3cret@127.0.0.1:notaport".into());
    let err = bad.fails(&["ls"], 2);
    assert!(!err.contains("s3cret"), "{err}");
    // Dead server: server error (4), password hidden.
    let port = server.port();
    server.kill();
    let dead = Target::Url(format!("redis://user:s3cret@127.0.0.1:{port}"));
    let err = dead.fails(&["get", "jobs", "a"], 4);
    assert!(
        err.contains("cannot connect") && !err.contains("s3cret"),
        "{err}"
    );
}

/// Values in encodings a decoded form would normalise, so that a byte-exact
/// comparison means something.
fn odd_value(i: u32) -> Vec<u8> {
    match i % 5 {
        0 => vec![0xfb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0], // 1.5 as an f64
        1 => [&[0x9f, 0x18, (i % 200) as u8][..], &[0xff]].concat(), // [_ n_0]
        2 => [&[0xc1, 0x1a][..], &i.to_be_bytes()].concat(), // 1(epoch)
        3 => [&[0xa1, 0x01, 0x58, 0x40][..], &[b'x'; 64]].concat(), // {1: 64 bytes}
        _ => RawCbor::encode(&format!("value-{i}")).unwrap().into_bytes(),
    }
}

#[test]
fn dump_restore_100k_entries_byte_for_byte() {
    const N: u32 = 100_000;
    let source = RedisServer::start();
    let target_server = RedisServer::start();
    let (from, to) = (Target::Url(source.url()), Target::Url(target_server.url()));
    let rt = runtime();
    rt.block_on(async {
        let raw = from.store().await.dict::<String, RawCbor>("big").unwrap();
        let entries = (0..N).map(|i| {
            let ttl = (i % 10 == 0).then(|| Duration::from_secs(3600 + u64::from(i)));
            (format!("k{i}"), RawCbor::new(odd_value(i)).unwrap(), ttl)
        });
        raw.set_many_with_ttl(entries).await.unwrap();
    });
    let started = Instant::now();
    let dump = from.ok(&["dump", "big"]);
    assert_eq!(dump.lines().count(), N as usize + 2);
    for run in 0..2 {
        // The second run proves rerunning is safe.
        let (code, out, err) = to.run_with(&["restore", "big"], dump.as_bytes());
        assert_eq!(code, 0, "run {run}: {err}");
        assert_eq!(lines(&out), [json!({"restored": N, "expired": 0})]);
    }
    eprintln!("dump + 2 restores of {N} entries: {:?}", started.elapsed());
    let mut a = redis::Client::open(source.url())
        .unwrap()
        .get_connection()
        .unwrap();
    let mut b = redis::Client::open(target_server.url())
        .unwrap()
        .get_connection()
        .unwrap();
    let keys: Vec<String> = (0..N).map(|i| format!("{{big}}:k{i}")).collect();
    for page in keys.chunks(5000) {
        let mut pipe = redis::pipe();
        for key in page {
            pipe.cmd("GET").arg(key).cmd("PTTL").arg(key);
        }
        let left: Vec<(Vec<u8>, i64)> = pipe.query(&mut a).unwrap();
        let right: Vec<(Vec<u8>, i64)> = pipe.query(&mut b).unwrap();
        for ((key, (va, ta)), (vb, tb)) in page.iter().zip(left).zip(right) {
            assert_eq!(va, vb, "{key}: values differ");
            if ta == -1 {
                assert_eq!(tb, -1, "{key}: gained a TTL");
            } else {
                // Restored TTLs are shortened by the time since the dump began.
                assert!(
                    tb > 0 && tb <= ta + 5 && ta - tb < 60_000,
                    "{key}: TTL {ta} -> {tb}"
                );
            }
        }
    }
    let index_a: u64 = redis::cmd("ZCARD").arg("{big}#keys").query(&mut a).unwrap();
    let index_b: u64 = redis::cmd("ZCARD").arg("{big}#keys").query(&mut b).unwrap();
    assert_eq!((index_a, index_b), (u64::from(N), u64::from(N)));
    let listed = lines(&to.ok(&["ls"]));
    assert_eq!(listed, [json!({"namespace": "big", "entries": N})]);
}
