use redis_pydict::RedisDict;

#[derive(RedisDict)]
union Bits {
    int: u32,
    float: f32,
}

fn main() {}
