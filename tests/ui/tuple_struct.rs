use redis_pydict::RedisDict;

#[derive(RedisDict)]
struct Point(i32, i32);

fn main() {}
