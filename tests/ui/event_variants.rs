// Every stored field is a variant of the generated `ConfigEvent`: its name
// must be an identifier, unique, and not one of the enum's own variants.
use redis_pydict::RedisDict;

#[derive(RedisDict)]
#[allow(non_snake_case)]
struct Config {
    gap: u64,
    cleared: bool,
    foo_bar: u8,
    fooBar: u8,
    _0: u8,
    #[redis_dict(variant = "not valid")]
    x: u8,
    #[redis_dict(variant = "Self")]
    y: u8,
    #[redis_dict(variant = "FooBar")]
    z: u8,
    #[redis_dict(skip, variant = "Scratch")]
    scratch: u8,
    #[redis_dict(variant = "Lapse")]
    lapse_ok: u8,
}

fn main() {}
