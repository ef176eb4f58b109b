//! The Python redis-pydict README's examples, ported, each on a server of its
//! own. The cases and their list are in `cases/python_readme.rs` (also run on
//! a cluster by `cluster.rs`).

mod support;
mod cases {
    pub mod python_readme;
}

use support::on_a_server;

cases::python_readme::cases!(on_a_server);
