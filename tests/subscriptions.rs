//! Change subscriptions: per key, per pattern, typed, durable, and surviving
//! killed connections, slow readers and server restarts, each on a server of
//! its own. The cases and their list are in `cases/subscriptions.rs` (also
//! run on a cluster by `cluster.rs`, but for the server-only ones).

mod support;
mod cases {
    pub mod subscriptions;
}

use support::on_a_server;

cases::subscriptions::cases!(on_a_server);
