//! Live views: a local snapshot of a derived struct kept current from the
//! change events, never backwards, never silently stale, each case on a
//! server of its own. The cases and their list are in `cases/live.rs` (also
//! run on a cluster by `cluster.rs`, but for the server-only ones).

mod support;
mod cases {
    pub mod live;
}

use support::on_a_server;

cases::live::cases!(on_a_server);
