//! The `#[derive(RedisDict)]` macro of redis-pydict. Use it through the
//! `redis_pydict` crate, which re-exports it.
#![forbid(unsafe_code)]
