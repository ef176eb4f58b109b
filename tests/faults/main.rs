//! Fault injection: each test breaks something on purpose (kills or pauses
//! the server, kills a connection, fills the server's memory, hands the
//! library foreign or wrong-typed data, restricts its ACL user) and asserts
//! the documented outcome: the error, nothing written or nothing lost, the
//! `Gap`, and recovery afterwards.

mod connection;
mod subscription;
mod write;

#[path = "../support/mod.rs"]
mod support;

/// A plain redis-rs connection to `url`, to look behind the library's back
/// (the suite's, with a long response timeout).
pub(crate) use support::connect_raw as raw;
