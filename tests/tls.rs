//! `rediss://` connections (TLS via rustls) to a real TLS-enabled redis-server.
//!
//! This test binary is built with both rustls crypto providers enabled (ring,
//! which redis-pydict uses, and aws-lc-rs, see the root Cargo.toml), as in an
//! application that also depends on rustls with its default features. There
//! `rustls::ClientConfig::builder()`, which redis-rs calls, panics unless a
//! process-wide provider is installed: the store installs one.

use redis_pydict::Store;
use redis_pydict_test::{free_port, RedisServer};

// One test function: the process-wide crypto provider is installed once,
// so the check that none is installed must come before any connection.
#[tokio::test]
async fn rediss_url_with_private_root_certificate() {
    // The situation of an application with two providers: no default, and
    // building a TLS config without one panics.
    assert!(rustls::crypto::CryptoProvider::get_default().is_none());
    let ambiguous = std::panic::catch_unwind(rustls::ClientConfig::builder);
    assert!(
        ambiguous.is_err(),
        "this binary must enable two rustls providers to test anything"
    );

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
    // The store installed a provider (ring) as the process default.
    assert!(rustls::crypto::CryptoProvider::get_default().is_some());
    d.set("k", &"over tls".into()).await.unwrap();
    assert_eq!(d.get("k").await.unwrap().as_deref(), Some("over tls"));
    assert_eq!(
        d.update_with("k", |v| v.unwrap_or_default() + "!")
            .await
            .unwrap(),
        "over tls!"
    );

    // A caller's own client, built with TLS settings: they are kept (and a
    // provider already installed is used as it is).
    let certs = redis::TlsCertificates {
        client_tls: None,
        root_cert: Some(cert_pem.clone().into_bytes()),
    };
    let client = redis::Client::build_with_tls(url.as_str(), certs).unwrap();
    let own = Store::from_client(client).await.unwrap();
    assert_eq!(own.url(), format!("rediss://127.0.0.1:{tls_port}/0"));
    let d = own.dict::<String, String>("secure").unwrap();
    assert_eq!(d.get("k").await.unwrap().as_deref(), Some("over tls!"));

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
