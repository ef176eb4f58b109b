//! End-to-end tests of `#[derive(RedisDict)]` views, each on a redis-server of
//! its own. The cases and their list are in `cases/derive.rs` (also run on a
//! cluster by `cluster.rs`).

mod support;
mod cases {
    pub mod derive;
}

use support::on_a_server;

cases::derive::cases!(on_a_server);
