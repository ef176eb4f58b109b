//! TTLs, atomic operations, concurrency, repair, events and the blocking API,
//! each case on a server of its own. The cases and their list are in
//! `cases/behaviour.rs` (also run on a cluster by `cluster.rs`).

mod support;
mod cases {
    pub mod behaviour;
}

use support::on_a_server;

cases::behaviour::cases!(on_a_server);
