// The derive's error is the only one: the stub it leaves keeps the trait
// implemented and the view and event types named, so code using them raises
// nothing more.
use redis_pydict::{RedisDict, Store};

#[derive(RedisDict)]
struct Config {
    #[redis_dict(ttl = "soon")]
    threshold: f64,
}

#[allow(dead_code)]
async fn open(store: &Store) -> redis_pydict::Result<ConfigView> {
    Config::view(store, "prod")
}

#[allow(dead_code)]
fn describe(event: &ConfigEvent) -> &'static str {
    let _ = event;
    "a change"
}

fn main() {}
