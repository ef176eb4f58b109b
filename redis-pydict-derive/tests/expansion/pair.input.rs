#[derive(RedisDict)]
struct Pair<A, B: Clone> {
    left: A,
    right: Vec<B>,
    #[redis_dict(default)]
    count: u32,
}
