//! A user crate that depends on redis-pydict alone (not on serde, redis or
//! ciborium) can use `#[derive(RedisDict)]`: generated code reaches its
//! dependencies only through `::redis_pydict::__private`.
//!
//! The crate is written to a temporary directory and checked with the cargo
//! running this test, pinned to this workspace's Cargo.lock.

use std::path::Path;
use std::process::Command;

const MAIN_RS: &str = r#"
#![deny(warnings, missing_docs)]
//! A user of redis-pydict that knows nothing of serde.

use std::collections::HashMap;

use redis_pydict::{blocking, Change, RedisDict, StartFrom, Store, ViewEvent};

/// Shared settings.
#[derive(RedisDict, Debug)]
#[redis_dict(prefix = "app", rename_all = "camelCase")]
pub struct Settings {
    /// A number.
    pub max_conn: u32,
    /// Some names.
    pub workers: Vec<String>,
    /// Limits.
    pub limits: HashMap<String, u64>,
    /// Optional.
    pub label: Option<String>,
    /// Defaulted, with a TTL.
    #[redis_dict(default, ttl = "30s")]
    pub heartbeat: u64,
    /// Not stored.
    #[redis_dict(skip)]
    pub cache: Vec<u8>,
}

/// A generic struct.
#[derive(RedisDict)]
pub struct Pair<A, B> {
    /// Left.
    pub left: A,
    /// Right.
    pub right: Option<B>,
}

/// Opens the views.
pub async fn open(store: &Store, sync: &blocking::Store) -> redis_pydict::Result<u32> {
    let view: SettingsView = Settings::view(store, "prod")?;
    view.max_conn.set(&1).await?;
    let loaded: Settings = view.load().await?;
    view.update(|s: &mut Settings| s.max_conn += 1).await?;
    let pair: PairView<String, u8, blocking::Blocking> = Pair::view(sync, "p")?;
    pair.left.set(&"x".to_string())?;
    Ok(loaded.max_conn)
}

/// Follows the changes: the generated enums, async and blocking, live and durable.
pub async fn follow(store: &Store, sync: &blocking::Store) -> redis_pydict::Result<()> {
    let view = Settings::view(store, "prod")?.with_durable_log(100);
    let mut events = view.subscribe().await?;
    if let Some(item) = events.recv().await {
        match item? {
            ViewEvent { event: SettingsEvent::MaxConn(Change::Set(n)), origin, .. } => {
                println!("{n} by {origin:?}")
            }
            ViewEvent { event: SettingsEvent::Cleared | SettingsEvent::Gap, .. } => {}
            other => println!("{other:?}"),
        }
    }
    let mut log = view.subscribe_durable(StartFrom::Beginning).await?;
    let _: Option<redis_pydict::Result<(redis_pydict::LogId, ViewEvent<SettingsEvent>)>> =
        log.try_recv();
    let pair = Pair::<String, u8>::view(sync, "p")?.with_skip_own_events(true);
    let mut changes = pair.subscribe()?;
    let first: Option<PairEvent<String, u8>> = changes.try_recv().and_then(Result::ok).map(|e| e.event);
    let _ = first.map(|e| e == PairEvent::Right(Change::Deleted));
    Ok(())
}

fn main() {
    let _ = (open, follow);
}
"#;

#[test]
fn a_crate_depending_on_redis_pydict_alone_compiles() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("standalone-user-crate");
    std::fs::create_dir_all(dir.join("src")).unwrap();
    let manifest = format!(
        "[package]\nname = \"standalone-user\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
         [dependencies]\nredis-pydict = {{ path = {:?} }}\n\n[workspace]\n",
        workspace.join("redis-pydict")
    );
    std::fs::write(dir.join("Cargo.toml"), manifest).unwrap();
    std::fs::write(dir.join("src/main.rs"), MAIN_RS).unwrap();
    std::fs::copy(workspace.join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args(["check", "--quiet", "--all-targets"])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .env_remove("RUSTFLAGS")
        .output()
        .expect("run cargo");
    assert!(
        output.status.success(),
        "the standalone crate does not compile:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The crate really has no other dependency.
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    for other in ["serde", "redis =", "ciborium", "tokio"] {
        assert!(!manifest.contains(other), "{other} in {manifest}");
    }
}
