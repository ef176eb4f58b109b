//! `rediss://` connections (TLS via rustls) to a real TLS-enabled redis-server.

use redis_pydict::Store;
use redis_pydict_test::{free_port, RedisServer};

#[tokio::test]
async fn rediss_url_with_private_root_certificate() {
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap();
    let cert_pem = certified.cert.pem();
    let key_pem = certified.signing_key.serialize_pem();
    let dir = std::env::temp_dir().join(format!("redis-pydict-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, &cert_pem).unwrap();
    std::fs::write(&key_path, &key_pem).unwrap();
    let tls_port = free_port().unwrap().to_string();
    let _server = RedisServer::start_with(&[
        "--tls-port",
        &tls_port,
        "--tls-cert-file",
        cert_path.to_str().unwrap(),
        "--tls-key-file",
        key_path.to_str().unwrap(),
        "--tls-auth-clients",
        "no",
    ]);
    let url = format!("rediss://127.0.0.1:{tls_port}/");

    let store = Store::builder(&url)
        .tls_root_certificate(cert_pem.as_bytes())
        .connect()
        .await
        .unwrap();
    let d = store.dict::<String, String>("secure").unwrap();
    d.set("k", &"over tls".into()).await.unwrap();
    assert_eq!(d.get("k").await.unwrap().as_deref(), Some("over tls"));
    assert_eq!(
        d.update_with("k", |v| v.unwrap_or_default() + "!")
            .await
            .unwrap(),
        "over tls!"
    );

    // Without the root certificate the server is not trusted: a clear error, no panic.
    let err = Store::builder(&url)
        .reconnect(
            0,
            std::time::Duration::from_millis(10),
            std::time::Duration::from_millis(10),
        )
        .connect()
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("cannot connect to rediss://127.0.0.1"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
