#[derive(RedisDict)]
#[redis_dict(prefix = "config")]
pub struct Config {
    pub threshold: f64,
    #[redis_dict(rename = "max-conn", default)]
    pub max_conn: u32,
    #[redis_dict(ttl = "30s")]
    pub label: Option<String>,
    #[redis_dict(skip)]
    cache: Vec<u8>,
}
