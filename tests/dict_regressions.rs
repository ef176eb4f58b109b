//! One regression test per mistake of the Python original (design.md, 1-5 and
//! 8), each on a server of its own. The cases and their list are in
//! `cases/regressions.rs` (also run on a cluster by `cluster.rs`).

mod support;
mod cases {
    pub mod regressions;
}

use support::on_a_server;

cases::regressions::cases!(on_a_server);
