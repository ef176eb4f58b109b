//! The `#[derive(RedisDict)]` macro of redis-pydict. Use it through the
//! `redis_pydict` crate, which re-exports it next to the `RedisDict` trait.
//!
//! The crate is laid out like serde_derive and thiserror-impl: `ast` is a
//! typed view of the input, `attr` parses `#[redis_dict(...)]` attributes,
//! `valid` checks what parses but cannot be stored, `expand` emits the
//! code (`event` the change enum) and `fallback` a stub next to the errors,
//! which `ctxt` collects so that one compile reports them all.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod ast;
mod attr;
mod case;
mod ctxt;
mod event;
mod expand;
mod fallback;
mod valid;

use proc_macro::TokenStream;
use syn::{parse_macro_input, DeriveInput};

#[doc = include_str!("../doc/derive.md")]
#[doc = "\n# What it expands to\n\nThis input (from the derive crate's expansion test):\n\n```rust,ignore"]
#[doc = include_str!("../tests/expansion/config.input.rs")]
#[doc = "```\n\nexpands to:\n\n```rust,ignore"]
#[doc = include_str!("../tests/expansion/config.expanded.rs")]
#[doc = "```"]
#[proc_macro_derive(RedisDict, attributes(redis_dict))]
pub fn derive_redis_dict(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand::derive(&input).into()
}
