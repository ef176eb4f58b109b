use redis_pydict::RedisDict;

#[derive(RedisDict)]
enum State {
    On,
    Off { reason: String },
}

fn main() {}
