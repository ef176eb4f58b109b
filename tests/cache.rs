//! The near cache (`Dict::cached`), each case on a server of its own. The
//! cases and their list are in `cases/cache.rs` (also run on a cluster by
//! `cluster.rs`, but for the server-only ones).

mod support;
mod cases {
    pub mod cache;
}

use support::on_a_server;

cases::cache::cases!(on_a_server);
