use redis_pydict::RedisDict;

#[derive(RedisDict)]
#[redis_dict(prefix = "cfg", namespace = "x")]
struct Config {
    #[redis_dict(renamed = "t")]
    threshold: f64,
    #[redis_dict(default, prefix = "p")]
    verbose: bool,
}

fn main() {}
