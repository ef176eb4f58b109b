use redis_pydict::RedisDict;

#[derive(RedisDict)]
struct Nothing {
    #[redis_dict(skip)]
    cache: Vec<u8>,
}

fn main() {}
