use redis_pydict::RedisDict;

#[derive(RedisDict)]
struct Marker;

fn main() {}
