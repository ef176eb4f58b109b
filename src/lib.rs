//! The root package of the redis-pydict workspace owns its examples and
//! end-to-end tests. This library exists only so that `cargo test` compiles
//! and runs every Rust code block of the README as a doctest, each against a
//! private `redis-server` started by `redis_pydict_test`.

/// The README's code blocks, as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
