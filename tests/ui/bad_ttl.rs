use redis_pydict::RedisDict;

#[derive(RedisDict)]
struct Session {
    #[redis_dict(ttl = "3 parsecs")]
    token: String,
    #[redis_dict(ttl = "0s")]
    nonce: u64,
    #[redis_dict(ttl = "1500us")]
    hint: u8,
    #[redis_dict(ttl = 30)]
    user: String,
}

fn main() {}
