//! Faults on the write path (see main.rs).
