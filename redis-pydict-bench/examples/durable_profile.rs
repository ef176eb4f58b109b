//! A fixed workload for profiling the durable subscriber by instruction
//! counts (timings are meaningless on a loaded machine):
//!
//! ```text
//! cargo build --release -p redis-pydict-bench --example durable_profile
//! durable_profile redis://127.0.0.1:PORT/0 fill 100000   # writes the log
//! valgrind --tool=callgrind durable_profile redis://127.0.0.1:PORT/0 read 100000
//! ```
//!
//! `fill` writes `n` entries (events off, durable log on) with `set_many`;
//! `read` reads `n` changes from the start of the log through
//! `subscribe_durable` and decodes them: run it under callgrind (or `perf
//! stat`) and compare the totals before and after a change to the reader.

use redis_pydict::{Change, StartFrom, Store};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, Clone)]
struct Session {
    user_id: u64,
    name: String,
    email: String,
    roles: Vec<String>,
    last_seen: u64,
    active: bool,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, mode, n] = args.as_slice() else {
        return Err("usage: durable_profile URL fill|read N".into());
    };
    let n: usize = n.parse()?;
    let store = Store::connect(url).await?;
    let dict = store
        .dict::<String, Session>("profile-durable")?
        .with_notifications(false)
        .with_durable_log(10_000_000);
    match mode.as_str() {
        "fill" => {
            let entries: Vec<(String, Session)> = (0..n)
                .map(|i| {
                    let session = Session {
                        user_id: 1_000_000 + i as u64,
                        name: format!("user-{i:06}"),
                        email: format!("user-{i:06}@example.com"),
                        roles: vec!["reader".into(), "ops".into()],
                        last_seen: 1_732_000_000_000 + i as u64,
                        active: i % 3 != 0,
                    };
                    (format!("session:{i:06}"), session)
                })
                .collect();
            dict.set_many(entries.iter().map(|(k, v)| (k, v))).await?;
        }
        "read" => {
            let mut sub = dict.subscribe_durable(StartFrom::Beginning).await?;
            let mut seen = 0;
            while seen < n {
                let (_, event) = sub.recv().await.ok_or("the subscription ended")??;
                if let Change::Set(value) = event.change {
                    std::hint::black_box(value);
                    seen += 1;
                }
            }
            println!("read {seen} changes");
        }
        _ => return Err("mode: fill or read".into()),
    }
    Ok(())
}
