//! What the library reports about entries and the namespace index:
//! [`Ttl`] (an entry's time-to-live state) and [`RepairReport`] (what
//! [`crate::Dict::repair`] changed).

use std::time::Duration;

/// The time-to-live state of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ttl {
    /// No such entry.
    Missing,
    /// The entry exists and does not expire.
    Persistent,
    /// The entry expires after this long.
    Expires(Duration),
}

/// What [`crate::Dict::repair`] did to the namespace index.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RepairReport {
    /// Entries found in the keyspace that the index lacked.
    pub added: u64,
    /// Index members whose entry no longer exists (or holds a non-string value).
    pub removed: u64,
    /// Live entries in the index afterwards.
    pub live: u64,
}
