use redis_pydict::RedisDict;

#[derive(RedisDict)]
#[redis_dict(prefix = "a{b}", rename_all = "Title Case", crate = "not a path")]
#[redis_dict(prefix = "again")]
struct Config {
    #[redis_dict(rename = "x", rename = "y")]
    one: u32,
    #[redis_dict(skip, rename = "z")]
    two: u32,
    #[redis_dict(skip = true)]
    three: u32,
    #[redis_dict(default = "not a path!")]
    four: u32,
    #[redis_dict(rename = "")]
    five: u32,
    #[redis_dict]
    six: u32,
}

fn main() {}
