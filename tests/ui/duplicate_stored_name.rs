use redis_pydict::RedisDict;

#[derive(RedisDict)]
#[redis_dict(rename_all = "kebab-case")]
struct Config {
    max_conn: u32,
    #[redis_dict(rename = "max-conn")]
    connection_limit: u32,
    #[redis_dict(rename = "label")]
    name: String,
    label: String,
}

fn main() {}
