//! The one error type of the crate.

/// Everything that can go wrong in redis-pydict. Each variant names what was
/// wrong (the namespace, the key, the expected type) so the message alone says
/// where to look.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The namespace breaks the wire-format rules (empty, over 256 bytes, or
    /// containing `{` or `}`). Raised before any I/O.
    #[error("invalid namespace {namespace:?}: {reason}")]
    InvalidNamespace {
        /// The rejected namespace.
        namespace: String,
        /// Which rule it breaks.
        reason: &'static str,
    },

    /// A key stored in Redis is not the canonical text form of the dict's key type
    /// (e.g. `"007"` or `"x"` in a `Dict<u32, _>`).
    #[error("key {key:?} in namespace {namespace:?} is not a valid {expected}: {reason}")]
    InvalidKey {
        /// The namespace holding the key.
        namespace: String,
        /// The key text as stored.
        key: String,
        /// The key type that was requested.
        expected: &'static str,
        /// Why it does not parse.
        reason: String,
    },

    /// A stored value does not decode as the requested type.
    #[error(
        "value of key {key:?} in namespace {namespace:?} does not decode as {expected}: {reason}"
    )]
    Decode {
        /// The namespace holding the key.
        namespace: String,
        /// The key whose value failed to decode.
        key: String,
        /// The Rust type that was requested.
        expected: &'static str,
        /// What the CBOR decoder reported.
        reason: String,
    },

    /// Bytes given as a raw value ([`crate::RawCbor`]) are not exactly one
    /// well-formed CBOR item.
    #[error("not one well-formed CBOR item: {reason}")]
    InvalidCbor {
        /// What the CBOR decoder reported.
        reason: String,
    },

    /// A field of a derived struct has no stored value, is not an `Option` and
    /// has no `#[redis_dict(default)]`, so the struct cannot be loaded.
    #[error("field `{field}` of {type_name} (key {key:?}) is missing in namespace {namespace:?} and has no default; make it an Option or mark it #[redis_dict(default)]")]
    MissingField {
        /// The namespace of the struct instance.
        namespace: String,
        /// The struct being loaded.
        type_name: &'static str,
        /// The Rust name of the field.
        field: &'static str,
        /// The key it is stored under.
        key: String,
    },

    /// A value could not be encoded as CBOR (e.g. a map with non-serializable keys).
    #[error(
        "value for key {key:?} in namespace {namespace:?} cannot be encoded as CBOR: {reason}"
    )]
    Encode {
        /// The namespace being written.
        namespace: String,
        /// The key being written.
        key: String,
        /// What the encoder reported.
        reason: String,
    },

    /// An encoded value is larger than the store's `max_value_size`; nothing was written.
    #[error("value for key {key:?} in namespace {namespace:?} is {size} bytes, over the limit of {limit} bytes; nothing was written")]
    ValueTooLarge {
        /// The namespace being written.
        namespace: String,
        /// The key being written.
        key: String,
        /// The encoded size in bytes.
        size: usize,
        /// The configured limit in bytes.
        limit: usize,
    },

    /// A time-to-live that Redis cannot represent (under 1 ms, or too large
    /// for Redis to hold as an expiry time); nothing was written.
    #[error("invalid time-to-live {ttl:?} for key {key:?}: {reason}; nothing was written")]
    InvalidTtl {
        /// The key being written.
        key: String,
        /// The rejected duration.
        ttl: std::time::Duration,
        /// Why it is refused (too small or too large).
        reason: &'static str,
    },

    /// A key holds a Redis type the operation cannot work on: an entry
    /// holding a hash, list, set... (foreign data, e.g. written with
    /// redis-cli), or the namespace index `{ns}#keys` / durable log
    /// `{ns}#log` / metadata `{ns}#meta` holding something other than a
    /// sorted set / stream / hash. The
    /// library never overwrites or deletes such a key; a write that meets one
    /// changes nothing at all.
    #[error("{operation} on namespace {namespace:?}: {role} {key:?} holds a Redis {found}, not a {expected}; nothing was changed")]
    WrongType {
        /// The operation that met the key (`set`, `update_with`, `iterate`, ...).
        operation: &'static str,
        /// The namespace being worked on.
        namespace: String,
        /// What the key is to the library: `entry`, `index`, `durable log`,
        /// `sequence number` or `namespace metadata`.
        role: &'static str,
        /// The Redis key.
        key: String,
        /// The Redis type it holds (`hash`, `list`, `set`, `zset`, `stream`, `string`).
        found: String,
        /// The Redis type the library needs there.
        expected: &'static str,
    },

    /// The namespace metadata `{ns}#meta` holds a field the library cannot
    /// use: `log_maxlen` that is not a positive decimal integer (foreign
    /// data). Writes to the namespace fail, changing nothing, until it is
    /// fixed or deleted.
    #[error("namespace {namespace:?}: metadata {key:?} field {field} holds {value:?}, not a positive decimal integer; nothing was changed")]
    InvalidMetadata {
        /// The namespace.
        namespace: String,
        /// The Redis key of the metadata (`{ns}#meta`).
        key: String,
        /// The field (`log_maxlen`).
        field: &'static str,
        /// What it holds.
        value: String,
    },

    /// A write sent as several atomic batches (`set_many` over `max_batch`
    /// entries, `clear` of a large namespace) failed part-way. Every batch is
    /// atomic; the batches and entries counted here were applied, the failed
    /// batch was not, nor anything after it that was not already in flight.
    #[error("{operation} on namespace {namespace:?} failed at batch {failed_batch}; {applied_batches} {batches_word} applied ({applied_entries} {entries_word}) before it stopped: {source}",
        batches_word = if *applied_batches == 1 { "batch" } else { "batches" },
        entries_word = if *applied_entries == 1 { "entry" } else { "entries" })]
    PartlyApplied {
        /// The operation (`set_many`, `clear`).
        operation: &'static str,
        /// The namespace being written.
        namespace: String,
        /// The 1-based number of the batch that failed.
        failed_batch: u64,
        /// Batches applied in full (each one is atomic).
        applied_batches: u64,
        /// Entries written (`set_many`) or removed (`clear`) by those batches.
        applied_entries: u64,
        /// Why the failed batch failed.
        #[source]
        source: Box<Error>,
    },

    /// A removal that returns the old value ([`crate::Dict::remove`], a view
    /// field's `take`, their blocking and near-cached forms) WAS applied: the
    /// entry is gone from Redis (and its event published), but its old value
    /// does not decode as the requested type (foreign or outdated data). The
    /// old value's bytes, exactly as stored, are kept in `value`, so nothing is
    /// lost; `source` is the [`Error::Decode`] that stopped it. Not to be
    /// retried as if nothing happened: [`Error::outcome_unknown`] is false and
    /// [`Error::was_applied`] is true.
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = redis_pydict_test::RedisServer::start();
    /// # let store = redis_pydict::Store::connect(&server.url()).await?;
    /// let words = store.dict::<String, String>("words")?;
    /// store.dict::<String, u32>("words")?.set("n", &7).await?; // not a String
    /// match words.remove("n").await {
    ///     Err(redis_pydict::Error::Removed { value, .. }) => {
    ///         // Removed all the same: the stored CBOR is handed back.
    ///         assert_eq!(value, [0x07]);
    ///     }
    ///     other => panic!("{other:?}"),
    /// }
    /// assert!(!words.contains("n").await?);
    /// # Ok(()) }
    /// ```
    #[error("{operation} on namespace {namespace:?} removed key {key:?} (applied: the entry is gone), but its old value could not be returned: {source}")]
    Removed {
        /// The operation (`remove`, `take`).
        operation: &'static str,
        /// The namespace written.
        namespace: String,
        /// The key removed.
        key: String,
        /// The removed value's bytes, exactly as they were stored.
        value: Vec<u8>,
        /// Why it could not be returned (an [`Error::Decode`]).
        #[source]
        source: Box<Error>,
    },

    /// An optimistic update (`update_with`) lost the race to other writers too many
    /// times in a row; nothing was written by this call.
    #[error("update of {key:?} in namespace {namespace:?} gave up after {attempts} attempts, each interrupted by a concurrent write")]
    Contention {
        /// The namespace being updated.
        namespace: String,
        /// The key (or keys) being updated.
        key: String,
        /// How many attempts were made.
        attempts: u32,
    },

    /// Expiry events were asked for
    /// ([`crate::StoreBuilder::enable_expiry_events`]), but the server does
    /// not report expired keys (its `notify-keyspace-events` lacks `K`, or
    /// `x`/`A`) and it refused to switch them on (`CONFIG SET`, e.g. a user
    /// without `+config|set`): subscribing would silently miss every
    /// expiry, so it fails. Fix it on the server (an operator runs `CONFIG
    /// SET notify-keyspace-events` with `wanted`, or sets it in `redis.conf`),
    /// or grant the user `+config|set`; or turn expiry events off.
    #[error("expiry events were asked for (enable_expiry_events), but the server's notify-keyspace-events is {current:?}, which lacks {missing}, and switching them on was refused ({source}); have an operator set notify-keyspace-events to {wanted:?} (CONFIG SET or redis.conf), or allow this user +config|set")]
    ExpiryEventsOff {
        /// The server's `notify-keyspace-events` flags.
        current: String,
        /// The flags it lacks, described.
        missing: &'static str,
        /// The flags it needs (the current ones plus `K` and `x`).
        wanted: String,
        /// The server's refusal of `CONFIG SET`.
        #[source]
        source: redis::RedisError,
    },

    /// The connection URL or a builder setting is unusable.
    #[error("invalid configuration: {0}")]
    Config(String),

    /// Redis could not be reached or answered with an error.
    #[error("redis error during {operation} on namespace {namespace:?}: {source}")]
    Redis {
        /// The operation that failed (`get`, `set`, `len`, ...).
        operation: &'static str,
        /// The namespace it worked on (empty for store-level operations).
        namespace: String,
        /// The underlying redis-rs error.
        #[source]
        source: redis::RedisError,
    },

    /// Connecting to the server failed.
    #[error("cannot connect to {url}: {source}")]
    Connect {
        /// The URL, with any password replaced by `***`.
        url: String,
        /// The underlying redis-rs error.
        #[source]
        source: redis::RedisError,
    },

    /// A text given as a durable-log id is not one (see [`crate::LogId`]).
    #[error(transparent)]
    InvalidLogId(#[from] crate::durable::ParseLogIdError),

    /// A change of the durable log that a consumer group could not deliver
    /// (it does not decode, or it was delivered
    /// [`crate::GroupOptions::max_deliveries`] times without being
    /// acknowledged) was parked: copied to the dead-letter stream
    /// `{ns}#dead` and acknowledged, so that it no longer holds the group up.
    #[error("log entry {id} of namespace {namespace:?} was parked in {dead_key:?} by consumer group {group:?} after {deliveries} {deliveries_word} and acknowledged: {reason}",
        deliveries_word = if *deliveries == 1 { "delivery" } else { "deliveries" })]
    Parked {
        /// The namespace whose log holds the change.
        namespace: String,
        /// The consumer group.
        group: String,
        /// The change's id in the log (the `log_id` field of its copy).
        id: crate::LogId,
        /// How many times the group had delivered it (read it, for a change
        /// that does not decode).
        deliveries: u64,
        /// The dead-letter stream holding its copy.
        dead_key: String,
        /// Why it was parked.
        reason: String,
    },

    /// A consumer of a group was not removed because changes delivered to
    /// it are still unacknowledged (`XGROUP DELCONSUMER` would drop them
    /// from the group: they would never be handled). Nothing was changed.
    #[error("consumer {consumer:?} of group {group:?} of namespace {namespace:?} was not removed: it holds {pending} unacknowledged {changes_word}, which removing it would lose. Hand them to a live consumer with GroupSubscription::retire_consumer, or remove it once the others have claimed them (after their claim_idle)",
        changes_word = if *pending == 1 { "change" } else { "changes" })]
    ConsumerHasPending {
        /// The namespace whose log the group reads.
        namespace: String,
        /// The consumer group.
        group: String,
        /// The consumer that was not removed.
        consumer: String,
        /// How many changes it holds unacknowledged.
        pending: u64,
    },

    /// A call of the blocking API was made on a thread of an async (tokio)
    /// runtime, where blocking would stall the runtime; nothing was done.
    #[error("blocking call {operation} made on a thread of an async runtime, where it would stall the runtime; nothing was done. Use the async API there (`as_async()` of the blocking handle gives it), or make blocking calls on a thread of your own (std::thread::spawn; tokio's spawn_blocking threads belong to the runtime too)")]
    BlockingInAsync {
        /// The blocking call refused (`Store::connect`, `Dict::get`, ...).
        operation: &'static str,
    },

    /// The blocking API could not start its runtime.
    #[error("cannot start the blocking runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

/// Shorthand for `Result<T, redis_pydict::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// True when the error comes from the connection to Redis (refused, reset,
    /// timed out) rather than from the data: retrying later may succeed.
    /// Whether a retry is *safe* is [`Error::outcome_unknown`]'s question.
    pub fn is_connection_error(&self) -> bool {
        match self {
            Error::Redis { source, .. } | Error::Connect { source, .. } => {
                source.is_io_error()
                    || source.is_connection_dropped()
                    || source.is_connection_refusal()
                    || source.is_timeout()
                    || reply_cut_short(source)
            }
            _ => false,
        }
    }

    /// True when the error says the request WAS applied, in full, although
    /// the call failed afterwards: [`Error::Removed`] (the entry was
    /// removed, its old value could not be returned). Such an error must not
    /// be handled as "nothing happened". (A partly applied write is
    /// [`Error::PartlyApplied`], which says what was applied.)
    pub fn was_applied(&self) -> bool {
        matches!(self, Error::Removed { .. })
    }

    /// True when the request may have been applied although it returned this
    /// error: it was sent and no reply came back (a response timeout, the
    /// connection dropped while waiting, a reply that could not be read).
    /// False when it was certainly not applied: invalid input, an encoding or
    /// size error, the server could not be reached, Redis answered with an
    /// error, an optimistic update gave up ([`Error::Contention`]).
    ///
    /// When true, re-read before acting again: an idempotent write (`set`,
    /// `remove`, `set_many`) may simply be retried; a read-modify-write
    /// (`update`, `update_with`) must not be blindly repeated, since it may
    /// have been applied once already. The classification errs on the side
    /// of "unknown": an error that could follow a request that reached the
    /// server (e.g. a cluster redirection after a timed-out attempt) counts
    /// as unknown.
    pub fn outcome_unknown(&self) -> bool {
        match self {
            Error::Redis { source, .. } => may_have_been_applied(source),
            // The batches counted as applied were; the failed one (and so
            // the call's end state) is as certain as its own error.
            Error::PartlyApplied { source, .. } => source.outcome_unknown(),
            _ => false,
        }
    }
}

/// Whether a redis-rs error is a reply that ended mid-frame: the connection
/// dropped while a reply was arriving, which redis-rs reports as a parse error
/// ("Unexpected end of input") rather than an I/O error.
fn reply_cut_short(error: &redis::RedisError) -> bool {
    error.kind() == redis::ErrorKind::Parse && error.to_string().contains("end of input")
}

/// Whether the request behind a redis-rs error may have reached the server
/// and run there.
fn may_have_been_applied(error: &redis::RedisError) -> bool {
    use redis::{ErrorKind, RetryMethod};
    match error.kind() {
        // Sent, or maybe sent, and no readable reply: timeouts, a connection
        // that dropped while the request was in flight. Errors of connecting
        // (refused, no such socket, no permission) mean nothing was sent.
        ErrorKind::Io => {
            !(error.is_connection_refusal() || matches!(error.retry_method(), RetryMethod::NoRetry))
        }
        // A reply came back but could not be read, or was not of the expected
        // type: the command ran.
        ErrorKind::Parse | ErrorKind::UnexpectedReturnType => true,
        // An error reply. Final ones (syntax, WRONGTYPE, NOPERM, OOM,
        // EXECABORT, a script error) mean nothing was applied. Ones a cluster
        // client retries by itself (MOVED, ASK, TRYAGAIN, CLUSTERDOWN,
        // READONLY, LOADING) may be the last of several attempts, an earlier
        // one of which may have timed out after reaching a server.
        ErrorKind::Server(_) => !matches!(error.retry_method(), RetryMethod::NoRetry),
        // Refused before sending: authentication, client configuration,
        // no connection to any cluster node, an unknown error code.
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redis_error(source: redis::RedisError) -> Error {
        Error::Redis {
            operation: "set",
            namespace: "ns".into(),
            source,
        }
    }

    fn io(kind: std::io::ErrorKind) -> Error {
        redis_error(std::io::Error::from(kind).into())
    }

    #[test]
    fn a_reply_cut_short_is_a_connection_error_of_unknown_outcome() {
        // What redis-rs reports when the connection drops mid-reply (seen by
        // the soak program under CLIENT KILL).
        let cut = redis::ParsingError::from(
            "Parse error at 0\nUnexpected end of input\nUnexpected `163` expected 379 more elements"
                .to_string(),
        );
        let cut = redis_error(cut.into());
        assert!(cut.is_connection_error(), "{cut}");
        assert!(cut.outcome_unknown(), "{cut}");
        let odd =
            redis_error(redis::ParsingError::from("unexpected MGET reply".to_string()).into());
        assert!(!odd.is_connection_error(), "{odd}");
    }

    #[test]
    fn outcome_unknown_only_where_the_request_may_have_run() {
        use std::io::ErrorKind as K;
        for kind in [
            K::TimedOut,
            K::BrokenPipe,
            K::ConnectionReset,
            K::UnexpectedEof,
        ] {
            assert!(io(kind).outcome_unknown(), "{kind:?}");
            assert!(io(kind).is_connection_error(), "{kind:?}");
        }
        for kind in [K::ConnectionRefused, K::NotFound, K::PermissionDenied] {
            assert!(!io(kind).outcome_unknown(), "{kind:?}");
        }
        let reply = redis::make_extension_error("WRONGTYPE".into(), Some("no".into()));
        assert!(!redis_error(reply).outcome_unknown());
        let auth: redis::RedisError = (redis::ErrorKind::AuthenticationFailed, "bad").into();
        assert!(!redis_error(auth).outcome_unknown());
        let type_error: redis::RedisError = (redis::ErrorKind::UnexpectedReturnType, "x").into();
        assert!(redis_error(type_error).outcome_unknown());
        let connect = Error::Connect {
            url: "redis://h".into(),
            source: std::io::Error::from(K::TimedOut).into(),
        };
        assert!(!connect.outcome_unknown());
        let contention = Error::Contention {
            namespace: "ns".into(),
            key: "k".into(),
            attempts: 3,
        };
        assert!(!contention.outcome_unknown());
    }
}
