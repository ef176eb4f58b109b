//! The `redis-pydict` binary over TLS (`rediss://` with `--tls-ca`) to a
//! TLS-only redis-server with a private certificate: set, get, dump,
//! restore and watch work; an untrusted certificate is one line, exit 4,
//! and no password.

use std::process::Stdio;
use std::time::{Duration, Instant};

use redis_pydict_test::{free_port, RedisServer};

mod common;

/// (exit code, stdout, stderr) of the binary with `args` and `stdin`.
fn run(args: &[&str], stdin: &[u8]) -> (i32, String, String) {
    common::output(common::command(args), stdin)
}

fn ok(args: &[&str], stdin: &[u8]) -> String {
    let (code, out, err) = run(args, stdin);
    assert_eq!(code, 0, "{args:?} failed: {err}");
    assert!(err.is_empty(), "{args:?} wrote to stderr: {err}");
    out
}

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn every_data_command_over_tls_and_an_untrusted_certificate() {
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap();
    let stranger = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let dir = std::env::temp_dir().join(format!("redis-pydict-cli-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key, wrong) = (
        dir.join("cert.pem"),
        dir.join("key.pem"),
        dir.join("wrong.pem"),
    );
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    std::fs::write(&wrong, stranger.cert.pem()).unwrap();
    let tls_port = free_port().unwrap().to_string();
    let _server = RedisServer::start_with(&[
        "--tls-port",
        &tls_port,
        "--tls-cert-file",
        cert.to_str().unwrap(),
        "--tls-key-file",
        key.to_str().unwrap(),
        "--tls-auth-clients",
        "no",
    ]);
    let url = format!("rediss://127.0.0.1:{tls_port}/");
    let ca = cert.to_str().unwrap();
    let tls = |args: &[&str]| -> Vec<String> {
        let mut all = vec![
            "--url".to_owned(),
            url.clone(),
            "--tls-ca".to_owned(),
            ca.to_owned(),
        ];
        all.extend(args.iter().map(|a| a.to_string()));
        all
    };

    ok(&args(&tls(&["set", "sec", "k", r#"{"a":1}"#])), b"");
    assert_eq!(ok(&args(&tls(&["get", "sec", "k"])), b""), "{\"a\":1}\n");
    let dump = ok(&args(&tls(&["dump", "sec"])), b"");
    assert!(dump.contains(r#""entries":1"#), "{dump}");
    let restored = ok(&args(&tls(&["restore", "copy"])), dump.as_bytes());
    assert!(restored.contains(r#""restored":1"#), "{restored}");
    assert_eq!(ok(&args(&tls(&["get", "copy", "k"])), b""), "{\"a\":1}\n");

    // watch over TLS: poke until the subscription sees a write.
    let watch = tls(&["watch", "sec", "--count", "1"]);
    let mut child = common::command(&args(&watch))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "watch over TLS saw nothing in 10 s"
        );
        ok(&args(&tls(&["set", "sec", "w", "1"])), b"");
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(r#""key":"w""#));

    // A CA that did not sign the server's certificate: one line, exit 4,
    // no password.
    let secret_url = format!("rediss://default:s3cret@127.0.0.1:{tls_port}/");
    let (code, out, err) = run(
        &[
            "--url",
            &secret_url,
            "--tls-ca",
            wrong.to_str().unwrap(),
            "get",
            "sec",
            "k",
        ],
        b"",
    );
    assert_eq!(code, 4, "{err}");
    assert!(out.is_empty(), "{out}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("redis-pydict: ") && !err.contains("s3cret"),
        "{err}"
    );
    assert!(
        err.contains("cannot connect") && err.contains("certificate"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
