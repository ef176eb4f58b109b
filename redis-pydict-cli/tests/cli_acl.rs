//! The `redis-pydict` binary under a least-privilege ACL user confined to
//! namespace `app` with exactly the README's rules ("Least-privilege ACL",
//! the list in `tests/acl.rs`): which commands work, which need more, and
//! that a missing permission is one line, exit code 4, no password; the
//! server's ACL LOG holds only the denials expected.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use redis_pydict_test::RedisServer;

mod common;

/// The README's rules for a user of namespace `app`.
use redis_pydict_test::acl::APP_RULES;

const PASS: &str = "app-s3cret-pass";

fn admin(server: &RedisServer) -> redis::Connection {
    redis::Client::open(server.url())
        .unwrap()
        .get_connection()
        .unwrap()
}

fn set_user(admin: &mut redis::Connection, rules: &[&str]) {
    let info: String = redis::cmd("INFO").arg("server").query(admin).unwrap();
    let version: Vec<u32> = info
        .lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .unwrap()
        .trim()
        .split('.')
        .map(|n| n.parse().unwrap_or(0))
        .collect();
    let mut rules = rules.to_vec();
    if version[..2] >= [7, 2][..] {
        rules.push("+client|setinfo");
    }
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("app")
        .arg("reset")
        .arg("on")
        .arg(format!(">{PASS}"))
        .arg(rules)
        .query(admin)
        .unwrap();
}

fn command(url: &str, args: &[&str]) -> Command {
    let mut cmd = common::command(&["--url", url]);
    cmd.args(args);
    cmd
}

/// (exit code, stdout, stderr); asserts the password is nowhere.
fn run(url: &str, args: &[&str], stdin: &[u8]) -> (i32, String, String) {
    let (code, stdout, stderr) = common::output(command(url, args), stdin);
    assert!(
        !stdout.contains(PASS) && !stderr.contains(PASS),
        "{args:?} printed the password: {stdout} {stderr}"
    );
    (code, stdout, stderr)
}

fn ok(url: &str, args: &[&str], stdin: &[u8]) -> String {
    let (code, out, err) = run(url, args, stdin);
    assert_eq!(code, 0, "{args:?} failed: {err}");
    assert!(err.is_empty(), "{args:?} wrote to stderr: {err}");
    out
}

/// Runs `watch` until it exits, writing with `poke` until then.
fn watch_while(url: &str, args: &[&str], mut poke: impl FnMut()) -> String {
    let mut child: Child = command(url, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if child.try_wait().unwrap().is_some() {
            let out = child.wait_with_output().unwrap();
            let (stdout, stderr) = (
                String::from_utf8(out.stdout).unwrap(),
                String::from_utf8(out.stderr).unwrap(),
            );
            assert!(out.status.success(), "{args:?}: {stderr}");
            assert!(!stdout.contains(PASS) && !stderr.contains(PASS));
            return stdout;
        }
        assert!(Instant::now() < deadline, "{args:?} saw nothing in 10 s");
        poke();
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The ACL LOG's entries (see `redis_pydict_test::acl::denials`).
fn acl_log(admin: &mut redis::Connection) -> Vec<String> {
    let entries: Vec<std::collections::HashMap<String, redis::Value>> =
        redis::cmd("ACL").arg("LOG").query(admin).unwrap();
    let info: String = redis::cmd("INFO").arg("server").query(admin).unwrap();
    redis_pydict_test::acl::denials(&entries, &info)
}

/// One failure: exit `code`, nothing on stdout, one line on stderr.
fn fails(url: &str, args: &[&str], code: i32) -> String {
    let (got, out, err) = run(url, args, b"");
    assert_eq!(got, code, "{args:?}: exit {got}, stderr {err}");
    assert!(out.is_empty(), "{args:?} wrote to stdout: {out}");
    assert_eq!(err.lines().count(), 1, "{args:?}: not one line: {err}");
    assert!(err.starts_with("redis-pydict: "), "{err}");
    err
}

/// Extra rules `stats` needs beyond the library's (README, CLI section).
const STATS_RULES: &[&str] = &["+zrandmember", "+xlen", "+memory|usage"];

#[test]
fn every_command_under_the_documented_acl_rules() {
    let server = RedisServer::start();
    let mut admin = admin(&server);
    set_user(&mut admin, APP_RULES);
    let _: () = redis::cmd("ACL")
        .arg("LOG")
        .arg("RESET")
        .query(&mut admin)
        .unwrap();
    // Another namespace the user may not read.
    let _: () = redis::cmd("SET")
        .arg("{other}:x")
        .arg("1")
        .query(&mut admin)
        .unwrap();
    let _: () = redis::cmd("ZADD")
        .arg("{other}#keys")
        .arg("+inf")
        .arg("x")
        .query(&mut admin)
        .unwrap();
    let url = format!("redis://app:{PASS}@127.0.0.1:{}/", server.port());

    ok(&url, &["set", "app", "k1", r#"{"a":1}"#], b"");
    ok(&url, &["set", "app", "k2", "[1,2]", "--ttl", "1h"], b"");
    assert_eq!(ok(&url, &["get", "app", "k1"], b""), "{\"a\":1}\n");
    assert_eq!(
        ok(&url, &["get", "app", "k1", "--diag"], b""),
        "{\"a\": 1}\n"
    );
    let keys = ok(&url, &["keys", "app"], b"");
    assert!(keys.contains("\"k1\"") && keys.contains("\"k2\""), "{keys}");
    let items = ok(&url, &["items", "app"], b"");
    assert!(items.contains(r#"{"key":"k1","value":{"a":1}}"#), "{items}");
    let dump = ok(&url, &["dump", "app"], b"");
    assert!(dump.contains(r#""entries":2"#), "{dump}");
    ok(&url, &["del", "app", "k1"], b"");
    fails(&url, &["get", "app", "k1"], 3);
    let restored = ok(&url, &["restore", "app"], dump.as_bytes());
    assert!(restored.contains(r#""restored":2"#), "{restored}");
    assert_eq!(ok(&url, &["get", "app", "k1"], b""), "{\"a\":1}\n");
    ok(
        &url,
        &["set", "app", "k3", "3", "--log-max-len", "100"],
        b"",
    );
    let durable = ok(
        &url,
        &[
            "watch",
            "app",
            "--durable",
            "--from",
            "beginning",
            "--count",
            "1",
        ],
        b"",
    );
    assert!(durable.contains(r#""key":"k3""#), "{durable}");
    let live = watch_while(&url, &["watch", "app", "--count", "1"], || {
        ok(&url, &["set", "app", "w", "1"], b"");
    });
    assert!(live.contains(r#""key":"w""#), "{live}");
    let repaired = ok(&url, &["repair", "app"], b"");
    assert!(repaired.contains(r#""removed":0"#), "{repaired}");

    // ls: the user's namespace, and one line per namespace it may not read.
    let (code, out, err) = run(&url, &["ls"], b"");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "{\"entries\":4,\"namespace\":\"app\"}\n");
    assert_eq!(
        err,
        "redis-pydict: skipped namespace \"other\": this user may not read it (NOPERM)\n"
    );

    // stats needs more than the library's rules: it says which, in one line.
    let err = fails(&url, &["stats", "app"], 4);
    assert!(
        err.contains("zrandmember") && err.contains("NoPerm"),
        "{err}"
    );
    let denied = acl_log(&mut admin);
    assert_eq!(denied.len(), 2, "{denied:#?}");
    assert!(
        denied
            .iter()
            .all(|e| e.contains("'\"zrandmember\"'") || e.contains("'\"{other}#keys\"'")),
        "only the denials expected: {denied:#?}"
    );
    // ...and works with them.
    set_user(&mut admin, &[APP_RULES, STATS_RULES].concat());
    let stats = ok(&url, &["stats", "app"], b"");
    assert!(
        stats.contains(r#""entries":4"#) && !stats.contains(r#""log_length":null"#),
        "{stats}"
    );
    assert!(stats.contains(r#""memory_sampled":4"#), "{stats}");
    assert_eq!(acl_log(&mut admin).len(), 2, "no new denial");
}
