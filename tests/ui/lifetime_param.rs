use redis_pydict::RedisDict;

#[derive(RedisDict)]
struct Borrowed<'a> {
    name: &'a str,
    count: u32,
}

fn main() {}
