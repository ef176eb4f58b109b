//! Faults on the connection path (see main.rs).
