//! Faults on the subscription path (see main.rs).
