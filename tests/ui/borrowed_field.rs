use std::borrow::Cow;

use redis_pydict::RedisDict;

#[derive(RedisDict)]
struct Labels {
    name: &'static str,
    alias: Cow<'static, str>,
    count: u32,
}

fn main() {}
