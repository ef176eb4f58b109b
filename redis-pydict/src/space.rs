//! `Space`: the untyped core under `Dict` and derived views. It works on key
//! texts and encoded CBOR values and owns the whole write path: every mutation
//! changes the entries, keeps the namespace index in step and publishes its
//! event in one atomic unit, one round trip.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use redis::RedisError;

use crate::connection::StoreConnection;
use crate::error::{Error, Result};
use crate::event::{self, Op};
use crate::namespace::Namespace;
use crate::scripts::{self, WriteScript};
pub(crate) use crate::status::{RepairReport, Ttl};
use crate::store::Store;

/// `set_many` batches sent before waiting for the first one's reply. On a
/// cluster they share the namespace's slot, so they go down one connection
/// in order too; but redis-rs retries a request that met a redirection or a
/// `TRYAGAIN` (a failover, a slot migration) on its own, so a later batch
/// may be applied before an earlier one there: a batch that shares a key
/// with a batch still in flight waits until none is (see [`InFlightKeys`]).
const BATCHES_IN_FLIGHT: usize = 4;

/// How many keys every write script declares after its entries (see
/// [`Space::shared_keys`]).
const SHARED_KEYS: usize = 4;

/// How a write treats an existing entry's time-to-live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SetMode {
    /// Plain write: the entry ends without a TTL (or with the one given).
    Set,
    /// Write only entries that do not exist.
    IfAbsent,
    /// Keep whatever TTL the entry has (used by read-modify-write updates).
    KeepTtl,
}

impl SetMode {
    fn wire(self) -> &'static str {
        match self {
            SetMode::Set => "set",
            SetMode::IfAbsent => "nx",
            SetMode::KeepTtl => "keepttl",
        }
    }
}

/// One change decided by an optimistic update: write this encoded value at
/// this key, keeping the entry's TTL.
pub(crate) type Write = (String, Vec<u8>);

/// Entries to write with one time-to-live (see [`Space::set_groups`]).
pub(crate) type TtlGroup<'a> = (Option<Duration>, Vec<(&'a str, &'a [u8])>);

/// An untyped namespace handle.
#[derive(Clone)]
pub(crate) struct Space {
    store: Store,
    ns: Arc<Namespace>,
    notifications: bool,
    origin: Option<Arc<str>>,
    /// Approximate cap of the durable change log, when it is on.
    log_maxlen: Option<u64>,
    /// Whether subscriptions drop events carrying this space's own origin.
    skip_own_events: bool,
    /// Whether events carry the entry's previous value (`"prev"`).
    previous_values: bool,
}

impl Space {
    /// A handle on `ns` with the store's event settings (a dict may override them).
    pub(crate) fn new(store: Store, ns: Namespace) -> Self {
        let settings = store.settings();
        Space {
            notifications: settings.notifications,
            origin: settings.origin.clone(),
            store,
            ns: Arc::new(ns),
            log_maxlen: None,
            skip_own_events: false,
            previous_values: false,
        }
    }

    pub(crate) fn namespace(&self) -> &Namespace {
        &self.ns
    }

    pub(crate) fn page_size(&self) -> usize {
        self.store.settings().page_size
    }

    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    pub(crate) fn set_notifications(&mut self, on: bool) {
        self.notifications = on;
    }

    pub(crate) fn set_origin(&mut self, origin: Option<String>) {
        self.origin = origin.map(Into::into);
    }

    pub(crate) fn set_skip_own_events(&mut self, skip: bool) {
        self.skip_own_events = skip;
    }

    /// The origin whose events subscriptions should drop, if any.
    pub(crate) fn skipped_origin(&self) -> Option<String> {
        self.skip_own_events
            .then(|| self.origin.as_deref().map(str::to_owned))
            .flatten()
    }

    pub(crate) fn set_previous_values(&mut self, on: bool) {
        self.previous_values = on;
    }

    pub(crate) fn previous_values(&self) -> bool {
        self.previous_values
    }

    pub(crate) fn set_log_maxlen(&mut self, maxlen: Option<u64>) {
        self.log_maxlen = maxlen;
    }

    pub(crate) fn log_maxlen(&self) -> Option<u64> {
        self.log_maxlen
    }

    pub(crate) fn notifications(&self) -> bool {
        self.notifications
    }

    pub(crate) fn origin(&self) -> Option<&str> {
        self.origin.as_deref()
    }

    pub(crate) fn conn(&self) -> StoreConnection {
        self.store.connection()
    }

    /// Wraps a redis-rs error with the operation and namespace. A write
    /// script's wrong-type refusal becomes [`Error::WrongType`]; a pipeline
    /// error listing many failed commands is cut to the first one and a count.
    pub(crate) fn fail(&self, operation: &'static str) -> impl Fn(RedisError) -> Error + '_ {
        move |source| self.redis_error(operation, source)
    }

    fn redis_error(&self, operation: &'static str, source: RedisError) -> Error {
        let namespace = self.ns.name().to_owned();
        let Some(failures) = source.clone().into_server_errors() else {
            return Error::Redis {
                operation,
                namespace,
                source,
            };
        };
        let wrong_type = failures.iter().find_map(|(_, e)| {
            (e.code() == scripts::WRONG_TYPE_CODE)
                .then(|| e.details().and_then(scripts::wrong_type_detail))
                .flatten()
        });
        if let Some((found, key)) = wrong_type {
            return self.wrong_type(operation, key, found.to_owned());
        }
        let bad_meta = failures.iter().find_map(|(_, e)| {
            (e.code() == scripts::BAD_META_CODE)
                .then(|| e.details())
                .flatten()
                .and_then(|detail| detail.strip_prefix(self.ns.meta_key()))
                .map(|value| value.strip_prefix(' ').unwrap_or(value))
        });
        if let Some(value) = bad_meta {
            return Error::InvalidMetadata {
                namespace,
                key: self.ns.meta_key().to_owned(),
                field: crate::meta::LOG_MAXLEN_FIELD,
                value: value.to_owned(),
            };
        }
        if failures.len() > 1 {
            // Bounded: the first failure and how many there were, not one
            // line per failed command.
            if let Some((index, first)) = failures.first() {
                let kind = first
                    .kind()
                    .map_or(redis::ErrorKind::Extension, redis::ErrorKind::Server);
                let detail = format!(
                    "{} commands failed; the first (index {index}): {first}",
                    failures.len()
                );
                return Error::Redis {
                    operation,
                    namespace,
                    source: RedisError::from((kind, "several commands failed", detail)),
                };
            }
        }
        Error::Redis {
            operation,
            namespace,
            source,
        }
    }

    /// Refuses values over the size limit, naming the key.
    pub(crate) fn check_size(&self, key: &str, value: &[u8]) -> Result<()> {
        let limit = self.store.settings().max_value_size;
        if value.len() > limit {
            return Err(Error::ValueTooLarge {
                namespace: self.ns.name().to_owned(),
                key: key.to_owned(),
                size: value.len(),
                limit,
            });
        }
        Ok(())
    }

    /// The event payload for a change. Built even with notifications off
    /// and no durable log configured: the namespace may declare a log
    /// (`{ns}#meta`), which the write script then appends to.
    fn payload(
        &self,
        op: Op,
        key: Option<&str>,
        value: Option<&[u8]>,
        ttl_ms: Option<u64>,
    ) -> Vec<u8> {
        event::payload(op, key, self.origin.as_deref(), value, ttl_ms)
    }

    // ----- reads -------------------------------------------------------------

    pub(crate) async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let redis_key = self.ns.entry_key(key);
        let got = redis::cmd("GET")
            .arg(&redis_key)
            .query_async(&mut self.conn())
            .await;
        match got {
            Err(e) if e.code() == Some("WRONGTYPE") => Err(self.foreign(&redis_key, "get").await),
            got => got.map_err(self.fail("get")),
        }
    }

    /// The error for a key of the namespace holding the wrong type, naming
    /// the type it holds (asked with TYPE).
    pub(crate) async fn foreign(&self, redis_key: &str, operation: &'static str) -> Error {
        let found: redis::RedisResult<String> = redis::cmd("TYPE")
            .arg(redis_key)
            .query_async(&mut self.conn())
            .await;
        match found {
            Ok(found) => self.wrong_type(operation, redis_key, found),
            Err(e) => self.redis_error(operation, e),
        }
    }

    /// [`Error::WrongType`] for a key of the namespace holding `found`.
    pub(crate) fn wrong_type(
        &self,
        operation: &'static str,
        redis_key: &str,
        found: String,
    ) -> Error {
        let (role, expected) = self.role_of(redis_key);
        Error::WrongType {
            operation,
            namespace: self.ns.name().to_owned(),
            role,
            key: redis_key.to_owned(),
            found,
            expected,
        }
    }

    /// What a key of the namespace is to the library, and the Redis type it
    /// needs there.
    fn role_of(&self, redis_key: &str) -> (&'static str, &'static str) {
        if redis_key == self.ns.index_key() {
            ("index", "zset")
        } else if redis_key == self.ns.log_key() {
            ("durable log", "stream")
        } else if redis_key == self.ns.seq_key() {
            (
                "sequence number",
                "string holding a decimal integer below 2^53 - 2^32",
            )
        } else if redis_key == self.ns.meta_key() {
            ("namespace metadata", "hash")
        } else {
            ("entry", "string")
        }
    }

    /// Values of several entries in one MGET round trip, `None` where absent.
    /// MGET answers nil for a key holding a non-string value too: only when
    /// it answered nil for some keys, their types are asked (one pipelined
    /// TYPE each, a second round trip), and foreign data is
    /// [`Error::WrongType`], as for [`Space::get`].
    pub(crate) async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let redis_keys: Vec<String> = keys.iter().map(|k| self.ns.entry_key(k)).collect();
        let values: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
            .arg(&redis_keys)
            .query_async(&mut self.conn())
            .await
            .map_err(self.fail("get_many"))?;
        self.refuse_foreign_nils("get_many", &redis_keys, &values)
            .await?;
        Ok(values)
    }

    /// After an MGET of `redis_keys` that read `values`: when some are nil
    /// (absent, or holding a non-string value, which MGET reads as nil too),
    /// asks their types (one pipelined TYPE each, one round trip) and refuses
    /// foreign data with [`Error::WrongType`]. No round trip when none is nil.
    async fn refuse_foreign_nils(
        &self,
        operation: &'static str,
        redis_keys: &[String],
        values: &[Option<Vec<u8>>],
    ) -> Result<()> {
        let nil: Vec<&String> = redis_keys
            .iter()
            .zip(values)
            .filter_map(|(key, value)| value.is_none().then_some(key))
            .collect();
        if nil.is_empty() {
            return Ok(());
        }
        let mut types = redis::pipe();
        for key in &nil {
            types.cmd("TYPE").arg(key.as_str());
        }
        let found: Vec<String> = types
            .query_async(&mut self.conn())
            .await
            .map_err(self.fail(operation))?;
        // "string": written between the two reads, so absent when read.
        self.refuse_foreign(operation, nil.into_iter().zip(found))
    }

    /// [`Error::WrongType`] for the first of `(Redis key, TYPE)` pairs of
    /// entries whose type is neither `string` nor `none` (foreign data).
    pub(crate) fn refuse_foreign<'k>(
        &self,
        operation: &'static str,
        types: impl IntoIterator<Item = (&'k String, String)>,
    ) -> Result<()> {
        for (redis_key, found) in types {
            if found != "string" && found != "none" {
                return Err(self.wrong_type(operation, redis_key, found));
            }
        }
        Ok(())
    }

    /// The namespace's sequence number and the values of several entries,
    /// read in one atomic unit (`None` where absent): the values are the
    /// state after exactly the changes numbered up to the returned one. A
    /// foreign `{ns}#seq`, or an entry holding foreign data, is
    /// [`Error::WrongType`] (the latter checked as in [`Space::get_many`]).
    pub(crate) async fn get_many_with_seq(
        &self,
        keys: &[&str],
    ) -> Result<(u64, Vec<Option<Vec<u8>>>)> {
        let redis_keys: Vec<String> = keys.iter().map(|k| self.ns.entry_key(k)).collect();
        let mut invocation = scripts::LOAD.key(self.ns.seq_key());
        for key in &redis_keys {
            invocation.key(key);
        }
        let (seq, values): (String, Vec<Option<Vec<u8>>>) = invocation
            .invoke_async(&mut self.conn())
            .await
            .map_err(self.fail("load"))?;
        let seq = seq.parse().map_err(|_| Error::WrongType {
            operation: "load",
            namespace: self.ns.name().to_owned(),
            role: "sequence number",
            key: self.ns.seq_key().to_owned(),
            found: format!("string {seq:?}"),
            expected: "string holding a decimal integer",
        })?;
        self.refuse_foreign_nils("load", &redis_keys, &values)
            .await?;
        Ok((seq, values))
    }

    pub(crate) async fn contains(&self, key: &str) -> Result<bool> {
        redis::cmd("EXISTS")
            .arg(self.ns.entry_key(key))
            .query_async(&mut self.conn())
            .await
            .map_err(self.fail("contains"))
    }

    pub(crate) async fn len(&self) -> Result<u64> {
        scripts::LEN
            .key(self.ns.index_key())
            .invoke_async(&mut self.conn())
            .await
            .map_err(self.fail("len"))
    }

    pub(crate) async fn ttl(&self, key: &str) -> Result<Ttl> {
        let ms: i64 = redis::cmd("PTTL")
            .arg(self.ns.entry_key(key))
            .query_async(&mut self.conn())
            .await
            .map_err(self.fail("ttl"))?;
        Ok(match ms {
            -2 => Ttl::Missing,
            ms if ms < 0 => Ttl::Persistent,
            ms => Ttl::Expires(Duration::from_millis(ms as u64)),
        })
    }

    // ----- the write path ----------------------------------------------------

    /// The keys every write script declares after its entry keys, so that
    /// they are checked to be in the script's slot before it runs (a
    /// cluster refuses a script touching an undeclared key that is not on
    /// the node, e.g. during a slot migration): the sequence number, the
    /// durable log, the namespace metadata and the index (see
    /// `scripts::PRELUDE`).
    fn shared_keys(&self) -> [&str; SHARED_KEYS] {
        [
            self.ns.seq_key(),
            self.ns.log_key(),
            self.ns.meta_key(),
            self.ns.index_key(),
        ]
    }

    /// The three arguments every write script starts with: publish mode
    /// (see `scripts::PRELUDE`: '0' none, '1' PUBLISH, 's' sharded where the
    /// server has it; then 'p' for previous values, 'b' for batches), log key ('' when the durable log is off) and log cap.
    fn common_args(&self) -> [Vec<u8>; 3] {
        let settings = self.store.settings();
        let mut publish = if !self.notifications {
            b"0".to_vec()
        } else if self.store.is_cluster() && settings.sharded_events {
            b"s".to_vec()
        } else {
            b"1".to_vec()
        };
        if self.previous_values {
            publish.push(b'p');
        }
        if publish[0] == b's' && settings.batched_events {
            publish.push(b'b');
        }
        match self.log_maxlen {
            Some(maxlen) => [
                publish,
                self.ns.log_key().as_bytes().to_vec(),
                maxlen.to_string().into_bytes(),
            ],
            None => [publish, Vec::new(), b"0".to_vec()],
        }
    }

    /// Runs one of the write scripts (EVALSHA, loading it when the server lacks it).
    async fn run_script<T: redis::FromRedisValue>(
        &self,
        script: &WriteScript,
        keys: Vec<String>,
        args: Vec<Vec<u8>>,
        operation: &'static str,
    ) -> Result<T> {
        script
            .script
            .key(keys)
            .arg(args)
            .invoke_async(&mut self.conn())
            .await
            .map_err(self.fail(operation))
    }

    /// Sends an EVALSHA command built by [`Space::plain_cmd`]; when the
    /// server lacks the script (a restart or SCRIPT FLUSH), loads both plain
    /// scripts and sends
    /// the command again. A NOSCRIPT reply means nothing ran, so the resend
    /// cannot apply anything twice.
    async fn eval_plain(&self, cmd: &redis::Cmd, operation: &'static str) -> Result<u64> {
        let mut conn = self.conn();
        match cmd.query_async(&mut conn).await {
            Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                for script in [&scripts::PLAIN_ONE, &scripts::PLAIN] {
                    redis::cmd("SCRIPT")
                        .arg("LOAD")
                        .arg(&script.source)
                        .query_async::<()>(&mut conn)
                        .await
                        .map_err(self.fail(operation))?;
                }
                cmd.query_async(&mut conn)
                    .await
                    .map_err(self.fail(operation))
            }
            done => done.map_err(self.fail(operation)),
        }
    }

    /// Keys and arguments of the SET script for `entries`.
    fn set_invocation(
        &self,
        mode: SetMode,
        groups: &[TtlGroup<'_>],
    ) -> Result<(Vec<String>, Vec<Vec<u8>>)> {
        let count: usize = groups.iter().map(|(_, entries)| entries.len()).sum();
        let mut keys = Vec::with_capacity(count + 1);
        let mut args = Vec::with_capacity(4 + count * 5);
        args.extend(self.common_args());
        args.push(mode.wire().as_bytes().to_vec());
        for (ttl, entries) in groups {
            for (key, value) in entries {
                let ttl_ms = match ttl {
                    Some(ttl) => ttl_millis(key, *ttl)?,
                    None => 0,
                };
                self.check_size(key, value)?;
                keys.push(self.ns.entry_key(key));
                args.push(key.as_bytes().to_vec());
                args.push(value.to_vec());
                args.push(self.ns.key_channel(key).into_bytes());
                args.push(self.payload(Op::Set, Some(key), Some(value), None));
                args.push(ttl_ms.to_string().into_bytes());
            }
        }
        keys.extend(self.shared_keys().map(str::to_owned));
        Ok((keys, args))
    }

    /// Writes `entries` atomically (one script call). Returns how many were written
    /// (with `IfAbsent`, existing entries are skipped). A key holding a
    /// non-string value, or a wrong-typed index or log, fails the call before
    /// anything is written.
    pub(crate) async fn set(
        &self,
        mode: SetMode,
        ttl: Option<Duration>,
        entries: &[(&str, &[u8])],
    ) -> Result<u64> {
        if entries.is_empty() {
            return Ok(0);
        }
        if mode == SetMode::Set && ttl.is_none() {
            // The common case: the plain script (no clock, no pruning).
            let cmd = self.plain_cmd(entries)?;
            return self.eval_plain(&cmd, "set").await;
        }
        let (keys, args) = self.set_invocation(mode, &[(ttl, entries.to_vec())])?;
        self.run_script(&scripts::SET, keys, args, "set").await
    }

    /// Writes groups of entries, each group with its own TTL, in one atomic
    /// script call. Used by derived views' `save`, whose fields may declare
    /// different TTLs.
    pub(crate) async fn set_groups(&self, groups: &[TtlGroup<'_>]) -> Result<()> {
        if groups.iter().all(|(_, entries)| entries.is_empty()) {
            return Ok(());
        }
        let (keys, args) = self.set_invocation(SetMode::Set, groups)?;
        self.run_script::<u64>(&scripts::SET, keys, args, "set")
            .await
            .map(drop)
    }

    /// Keys and arguments of the DEL script.
    fn del_invocation(&self, take: bool, keys: &[&str]) -> (Vec<String>, Vec<Vec<u8>>) {
        let mut redis_keys = Vec::with_capacity(keys.len() + 1);
        let mut args = Vec::with_capacity(4 + keys.len() * 3);
        args.extend(self.common_args());
        args.push(if take {
            b"take".to_vec()
        } else {
            b"del".to_vec()
        });
        for key in keys {
            redis_keys.push(self.ns.entry_key(key));
            args.push(key.as_bytes().to_vec());
            args.push(self.ns.key_channel(key).into_bytes());
            args.push(self.payload(Op::Del, Some(key), None, None));
        }
        redis_keys.extend(self.shared_keys().map(str::to_owned));
        (redis_keys, args)
    }

    /// Deletes entries atomically; per key, whether it existed.
    pub(crate) async fn delete(&self, keys: &[&str]) -> Result<Vec<bool>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let (redis_keys, args) = self.del_invocation(false, keys);
        let flags: Vec<i64> = self
            .run_script(&scripts::DEL, redis_keys, args, "delete")
            .await?;
        Ok(flags.into_iter().map(|n| n == 1).collect())
    }

    /// Removes entries atomically and returns their old values.
    pub(crate) async fn take(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let (redis_keys, args) = self.del_invocation(true, keys);
        self.run_script(&scripts::DEL, redis_keys, args, "remove")
            .await
    }

    /// Sets (`Some`) or removes (`None`) an entry's TTL. False if the entry is absent.
    pub(crate) async fn expire(&self, key: &str, ttl: Option<Duration>) -> Result<bool> {
        let ttl_ms = match ttl {
            Some(ttl) => Some(ttl_millis(key, ttl)?),
            None => None,
        };
        let payload = self.payload(Op::Expire, Some(key), None, ttl_ms);
        let ttl_arg = ttl_ms.map_or(-1, |ms| ms as i64);
        let operation = if ttl.is_some() { "expire" } else { "persist" };
        let existed: i64 = scripts::EXPIRE
            .script
            .key(self.ns.entry_key(key))
            .key(&self.shared_keys())
            .arg(&self.common_args())
            .arg(key)
            .arg(ttl_arg)
            .arg(self.ns.key_channel(key))
            .arg(payload)
            .invoke_async(&mut self.conn())
            .await
            .map_err(self.fail(operation))?;
        Ok(existed == 1)
    }

    /// Removes every indexed entry and the index, `max_batch` entries per
    /// atomic script call (so a large namespace never holds the server for
    /// long); the clear event goes out with the call that empties the index.
    /// Returns how many entries existed. A batch meeting an indexed key that
    /// holds a non-string value fails whole (nothing of it removed); when
    /// earlier batches were applied the error is [`Error::PartlyApplied`].
    ///
    /// The first call is sent alone and may end the clear (a namespace of
    /// up to `max_batch` entries: one call, one round trip). When it leaves
    /// `left` members, `ceil(left / max_batch) - 1` part-way calls (which
    /// never emit the clear event) and then one call that may end the clear
    /// are sent, up to [`BATCHES_IN_FLIGHT`] at a time: each takes the first
    /// members of the index when it runs, so calls applied one after the
    /// other take disjoint parts of it, in whatever order they arrive. Only
    /// one call that may end the clear is ever outstanding, and no call is
    /// sent after it until its reply: so exactly one clear event goes out,
    /// by the call that leaves the index empty. Entries written meanwhile
    /// (the index not empty after that last call) start another round. When
    /// a call fails, no further call is sent, those in flight are awaited,
    /// and the error counts the calls and entries that were applied.
    pub(crate) async fn clear(&self) -> Result<u64> {
        let limit = self.store.settings().max_batch.max(1) as u64;
        let payload = self.payload(Op::Clear, None, None, None);
        let (del_head, del_rest) = event::del_payload_frame(self.origin.as_deref());
        let common = self.common_args();
        let prefix = self.ns.entry_prefix();
        let channel = self.ns.event_channel();
        let key_channel = self.ns.key_channel_prefix();
        let call = |may_end: bool| {
            let mut invocation = scripts::CLEAR.script.prepare_invoke();
            invocation
                .key(&self.shared_keys())
                .arg(&common)
                .arg(prefix)
                .arg(channel)
                .arg(&payload)
                .arg(limit)
                .arg(key_channel)
                .arg(&del_head)
                .arg(&del_rest)
                .arg(if may_end { "1" } else { "0" });
            async move {
                let done: Result<(u64, u64)> = invocation
                    .invoke_async(&mut self.conn())
                    .await
                    .map_err(self.fail("clear"));
                done
            }
        };
        let mut sent: u64 = 0;
        let (mut applied_batches, mut applied_entries) = (0u64, 0u64);
        // Part-way calls to send before the next call that may end the clear.
        let mut ahead: u64 = 0;
        loop {
            let mut failure: Option<(u64, Error)> = None;
            let mut in_flight = futures::stream::FuturesOrdered::new();
            // Members left after this round's last call.
            let mut left_after = None;
            let mut settle =
                |(number, may_end, done): (u64, bool, Result<(u64, u64)>),
                 failure: &mut Option<(u64, Error)>| match done {
                    Ok((removed, left)) => {
                        applied_batches += 1;
                        applied_entries += removed;
                        if may_end {
                            left_after = Some(left);
                        }
                    }
                    Err(e) => {
                        if failure.as_ref().is_none_or(|(first, _)| number < *first) {
                            *failure = Some((number, e));
                        }
                    }
                };
            for i in 0..=ahead {
                if failure.is_some() {
                    break;
                }
                let may_end = i == ahead;
                sent += 1;
                let number = sent;
                let done = call(may_end);
                in_flight.push_back(async move { (number, may_end, done.await) });
                if in_flight.len() >= BATCHES_IN_FLIGHT {
                    if let Some(done) = in_flight.next().await {
                        settle(done, &mut failure);
                    }
                }
            }
            while let Some(done) = in_flight.next().await {
                settle(done, &mut failure);
            }
            match (failure, left_after) {
                (Some((1, e)), _) if sent <= 1 => return Err(e),
                (Some((number, e)), _) => {
                    return Err(self.partly_applied(
                        "clear",
                        number,
                        applied_batches,
                        applied_entries,
                        e,
                    ))
                }
                (None, Some(0)) => return Ok(applied_entries),
                (None, Some(left)) => ahead = left.div_ceil(limit) - 1,
                // Unreachable: without a failure every call has replied.
                (None, None) => ahead = 0,
            }
        }
    }

    fn partly_applied(
        &self,
        operation: &'static str,
        failed_batch: u64,
        applied_batches: u64,
        applied_entries: u64,
        source: Error,
    ) -> Error {
        Error::PartlyApplied {
            operation,
            namespace: self.ns.name().to_owned(),
            failed_batch,
            applied_batches,
            applied_entries,
            source: Box::new(source),
        }
    }

    /// Writes many entries, batch by batch as `batches` yields them (each
    /// batch one atomic PLAIN script call, so no call holds the server for
    /// long), without TTL (existing TTLs are cleared). A few batches are in
    /// flight at once (on a cluster, only batches without a key in common:
    /// see [`BATCHES_IN_FLIGHT`]); the next batch is only taken from
    /// `batches` (and so encoded) when there is room, so memory stays bounded
    /// by a few batches whatever the input size. Batches are applied in
    /// order. When one fails (or the input yields an error), no further batch
    /// is sent, those already in flight are awaited, and unless it was the
    /// first and only one sent the error is [`Error::PartlyApplied`], counting
    /// the batches and entries that were applied.
    pub(crate) async fn set_many<I>(&self, batches: I) -> Result<()>
    where
        I: Iterator<Item = Result<Vec<(String, Vec<u8>)>>>,
    {
        // On a cluster, the keys of the batches in flight (see BATCHES_IN_FLIGHT).
        let mut keys_in_flight = self.store.is_cluster().then(InFlightKeys::default);
        let mut in_flight = futures::stream::FuturesOrdered::new();
        let mut sent: u64 = 0;
        let (mut applied_batches, mut applied_entries) = (0u64, 0u64);
        let mut failure: Option<(u64, Error)> = None;
        let mut settle = |(number, entries, done): (u64, u64, Result<u64>),
                          failure: &mut Option<(u64, Error)>| match done {
            Ok(_) => {
                applied_batches += 1;
                applied_entries += entries;
            }
            Err(e) => {
                if failure.as_ref().is_none_or(|(first, _)| number < *first) {
                    *failure = Some((number, e));
                }
            }
        };
        for batch in batches {
            let number = sent + 1;
            let mut batch_keys = Vec::new();
            let cmd = batch.and_then(|entries| {
                if keys_in_flight.is_some() {
                    batch_keys = entries.iter().map(|(key, _)| key_hash(key)).collect();
                }
                self.plain_cmd(&entries)
                    .map(|cmd| (cmd, entries.len() as u64))
            });
            let (cmd, entries) = match cmd {
                Ok(built) => built,
                Err(e) => {
                    failure = Some((number, e));
                    break;
                }
            };
            if entries == 0 {
                continue;
            }
            if let Some(keys) = keys_in_flight.as_mut() {
                if !keys.add(number, &batch_keys) {
                    // Drain the window: no key may be in two batches in flight.
                    while let Some(done) = in_flight.next().await {
                        let (finished, _, _): &(u64, u64, Result<u64>) = &done;
                        keys.remove(*finished);
                        settle(done, &mut failure);
                    }
                    if failure.is_some() {
                        break;
                    }
                    keys.add(number, &batch_keys);
                }
            }
            sent = number;
            in_flight.push_back(async move {
                let done = self.eval_plain(&cmd, "set_many").await;
                (number, entries, done)
            });
            if in_flight.len() >= BATCHES_IN_FLIGHT {
                if let Some(done) = in_flight.next().await {
                    if let Some(keys) = keys_in_flight.as_mut() {
                        keys.remove(done.0);
                    }
                    settle(done, &mut failure);
                }
                if failure.is_some() {
                    break;
                }
            }
        }
        while let Some(done) = in_flight.next().await {
            settle(done, &mut failure);
        }
        crate::observe::batch_size(applied_entries);
        match failure {
            None => Ok(()),
            Some((1, e)) if sent <= 1 => Err(e),
            Some((number, e)) => {
                Err(self.partly_applied("set_many", number, applied_batches, applied_entries, e))
            }
        }
    }

    /// The EVALSHA command of the PLAIN script (or, for one entry, PLAIN_ONE) writing `entries` without TTL
    /// (MSET, ZADD with score `inf`, per entry its PUBLISH and log append;
    /// every key's type checked first). The path of `set` and of each batch
    /// of `set_many`. Refuses values over the size limit. Per entry only
    /// its Redis key and its value are sent: the script derives the member,
    /// channel and event payload (see `scripts::PLAIN_BODY`). Built straight
    /// into one command (redis-rs copies each argument into it).
    fn plain_cmd<K: AsRef<str>, V: AsRef<[u8]>>(&self, entries: &[(K, V)]) -> Result<redis::Cmd> {
        let ns = &self.ns;
        let mut bytes = 0;
        for (key, value) in entries {
            let (key, value) = (key.as_ref(), value.as_ref());
            self.check_size(key, value)?;
            bytes += key.len() + value.len();
        }
        // One entry: almost every `set`.
        if let [(key, value)] = entries {
            return Ok(self.plain_one_cmd(key.as_ref(), value.as_ref()));
        }
        let n = entries.len();
        let prefix = ns.entry_prefix();
        let channel = if self.notifications {
            ns.key_channel_prefix()
        } else {
            ""
        };
        let (head, middle) = event::set_payload_frame(self.origin.as_deref());
        let mut cmd = redis::Cmd::with_capacity(
            10 + 2 * n,
            256 + bytes + n * (prefix.len() + 32) + middle.len(),
        );
        let script = &scripts::PLAIN;
        cmd.arg("EVALSHA")
            .arg(script.script.get_hash())
            .arg(n + SHARED_KEYS);
        let mut scratch: Vec<u8> = Vec::with_capacity(128);
        for (key, _) in entries {
            cmd.arg(joined(&mut scratch, prefix, key.as_ref()));
        }
        for key in self.shared_keys() {
            cmd.arg(key);
        }
        for arg in self.common_args() {
            cmd.arg(arg);
        }
        cmd.arg(prefix.len()).arg(channel).arg(head).arg(middle);
        for (_, value) in entries {
            cmd.arg(value.as_ref());
        }
        Ok(cmd)
    }

    /// The EVALSHA command of the single-entry script (`scripts::PLAIN_ONE_BODY`)
    /// writing one entry without TTL: the client builds the member, channel
    /// and the event up to the value, the script adds the value, `"seq"` and
    /// (when asked) `"prev"`, and appends to the space's own log if it has
    /// one.
    fn plain_one_cmd(&self, key: &str, value: &[u8]) -> redis::Cmd {
        let ns = &self.ns;
        let extra = if self.previous_values { 2 } else { 1 };
        let prefix = event::set_payload_prefix(self.origin.as_deref(), key, extra);
        let channel = if self.notifications {
            ns.key_channel(key)
        } else {
            String::new()
        };
        let mut cmd = redis::Cmd::with_capacity(
            14,
            180 + 3 * key.len() + prefix.len() + value.len() + ns.entry_prefix().len(),
        );
        let mut scratch: Vec<u8> = Vec::with_capacity(ns.entry_prefix().len() + key.len());
        cmd.arg("EVALSHA")
            .arg(scripts::PLAIN_ONE.script.get_hash())
            .arg(1 + SHARED_KEYS)
            .arg(joined(&mut scratch, ns.entry_prefix(), key));
        for shared in self.shared_keys() {
            cmd.arg(shared);
        }
        // The own log's cap as the general scripts get it, or '' without one.
        let [mode, _, maxlen] = self.common_args();
        let own_log_cap: &[u8] = if self.log_maxlen.is_some() {
            &maxlen
        } else {
            b""
        };
        cmd.arg(mode)
            .arg(key)
            .arg(channel)
            .arg(prefix)
            .arg(value)
            .arg(own_log_cap);
        cmd
    }

    /// Optimistic read-modify-write of `keys`: read them, let `decide` choose
    /// the changes, apply them only if no other writer touched the keys
    /// meanwhile; otherwise read and decide again. On one server: WATCH/MULTI
    /// on a dedicated connection. On a cluster, where the shared connection
    /// cannot hold WATCH state and a failover could drop it, a script applies
    /// the changes only if every key still holds the value that was read.
    pub(crate) async fn update_with<R>(
        &self,
        keys: &[&str],
        decide: impl FnMut(Vec<Option<Vec<u8>>>) -> Result<(Vec<Write>, R)>,
    ) -> Result<R> {
        if self.store.is_cluster() {
            self.update_comparing(keys, decide).await
        } else {
            self.update_watching(keys, decide).await
        }
    }

    /// `update_with` by WATCH/MULTI on a dedicated connection.
    async fn update_watching<R>(
        &self,
        keys: &[&str],
        mut decide: impl FnMut(Vec<Option<Vec<u8>>>) -> Result<(Vec<Write>, R)>,
    ) -> Result<R> {
        let fail = self.fail("update_with");
        let redis_keys: Vec<String> = keys.iter().map(|k| self.ns.entry_key(k)).collect();
        let mut conn = self.store.dedicated().await.map_err(&fail)?;
        for attempt in 0..self.store.settings().max_update_attempts {
            crate::observe::attempt(attempt);
            let (current, types) = self
                .store
                .watch_and_read(&mut conn, &redis_keys)
                .await
                .map_err(&fail)?;
            // MGET reads a foreign (non-string) entry as nil: refused before
            // `decide` could see it as absent.
            let decided = self
                .refuse_foreign("update_with", redis_keys.iter().zip(types))
                .and_then(|()| decide(current));
            let (changes, result) = match decided {
                Ok(decided) => decided,
                Err(e) => {
                    let _: redis::RedisResult<()> =
                        redis::cmd("UNWATCH").query_async(&mut conn).await;
                    return Err(e);
                }
            };
            let sets: Vec<(&str, &[u8])> = changes
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_slice()))
                .collect();
            let mut tx = redis::pipe();
            tx.atomic();
            if !sets.is_empty() {
                let (k, a) = self.set_invocation(SetMode::KeepTtl, &[(None, sets)])?;
                tx.cmd("EVAL")
                    .arg(&scripts::SET.source)
                    .arg(k.len())
                    .arg(k)
                    .arg(a)
                    .ignore();
            }
            let outcome: Option<()> = match tx.query_async(&mut conn).await {
                Ok(outcome) => outcome,
                Err(e) => {
                    if e.is_connection_dropped() {
                        // The idle pooled connections most likely died with it.
                        self.store.forget_idle();
                    }
                    return Err(fail(e));
                }
            };
            if outcome.is_some() {
                self.store.give_back(conn);
                return Ok(result);
            }
            crate::observe::cas_conflict("update_with", attempt, keys);
            tokio::task::yield_now().await;
        }
        Err(self.contention(keys))
    }

    /// `update_with` by compare-and-set in one script (see [`Space::update_with`]).
    async fn update_comparing<R>(
        &self,
        keys: &[&str],
        mut decide: impl FnMut(Vec<Option<Vec<u8>>>) -> Result<(Vec<Write>, R)>,
    ) -> Result<R> {
        let fail = self.fail("update_with");
        let mut redis_keys: Vec<String> = keys.iter().map(|k| self.ns.entry_key(k)).collect();
        let current_keys = redis_keys.clone();
        redis_keys.extend(self.shared_keys().map(str::to_owned));
        for attempt in 0..self.store.settings().max_update_attempts {
            crate::observe::attempt(attempt);
            // With each key's TYPE, in the same round trip: MGET reads a
            // foreign (non-string) entry as nil, refused before `decide`
            // could see it as absent.
            let mut read = redis::pipe();
            crate::store::read_with_types(&mut read, &current_keys);
            let (current, types) = read
                .query_async(&mut self.conn())
                .await
                .and_then(crate::store::read_with_types_reply)
                .map_err(&fail)?;
            self.refuse_foreign("update_with", current_keys.iter().zip(types))?;
            let mut args: Vec<Vec<u8>> = self.common_args().into();
            args.push(keys.len().to_string().into_bytes());
            for value in &current {
                match value {
                    Some(bytes) => args.extend([b"1".to_vec(), bytes.clone()]),
                    None => args.extend([b"0".to_vec(), Vec::new()]),
                }
            }
            let (changes, result) = decide(current)?;
            args.push(self.ns.entry_prefix().as_bytes().to_vec());
            for (key, value) in &changes {
                self.check_size(key, value)?;
                args.push(key.as_bytes().to_vec());
                args.push(value.clone());
                args.push(self.ns.key_channel(key).into_bytes());
                args.push(self.payload(Op::Set, Some(key), Some(value), None));
            }
            let written: i64 = scripts::CAS
                .script
                .key(&redis_keys)
                .arg(args)
                .invoke_async(&mut self.conn())
                .await
                .map_err(&fail)?;
            if written == 1 {
                return Ok(result);
            }
            crate::observe::cas_conflict("update_with", attempt, keys);
            tokio::task::yield_now().await;
        }
        Err(self.contention(keys))
    }

    fn contention(&self, keys: &[&str]) -> Error {
        Error::Contention {
            namespace: self.ns.name().to_owned(),
            key: keys.join(", "),
            attempts: self.store.settings().max_update_attempts,
        }
    }

    /// Rebuilds the index from a SCAN of `{ns}:*`: adds entries written by other
    /// means, drops members whose entry is gone, fixes expiry scores.
    pub(crate) async fn repair(&self) -> Result<RepairReport> {
        let fail = self.fail("repair");
        let mut conn = self.conn();
        let mut report = RepairReport::default();
        // Pass 1: every string key of the namespace in the keyspace.
        let pattern = self.ns.scan_pattern();
        let mut cursor: u64 = 0;
        loop {
            // On a cluster, SCAN the master of the namespace's slot: it holds all of it.
            let scan = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .clone();
            let (next, found): (u64, Vec<String>) = conn
                .query_on_node_of(&scan, self.ns.index_key())
                .await
                .map_err(&fail)?;
            let members: Vec<&str> = found.iter().filter_map(|k| self.ns.member_of(k)).collect();
            let (added, removed) = self.repair_members(&mut conn, &members).await?;
            report.added += added;
            report.removed += removed;
            if next == 0 {
                break;
            }
            cursor = next;
        }
        // Pass 2: every index member, to drop the ones whose entry is gone.
        let mut cursor: u64 = 0;
        loop {
            let (next, flat): (u64, Vec<String>) = redis::cmd("ZSCAN")
                .arg(self.ns.index_key())
                .arg(cursor)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .map_err(&fail)?;
            let members: Vec<&str> = flat.iter().step_by(2).map(String::as_str).collect();
            let (_, removed) = self.repair_members(&mut conn, &members).await?;
            report.removed += removed;
            if next == 0 {
                break;
            }
            cursor = next;
        }
        report.live = self.len().await?;
        Ok(report)
    }

    async fn repair_members(
        &self,
        conn: &mut StoreConnection,
        members: &[&str],
    ) -> Result<(u64, u64)> {
        if members.is_empty() {
            return Ok((0, 0));
        }
        let (added, removed): (u64, u64) = scripts::REPAIR
            .script
            .key(&self.shared_keys())
            .arg(&self.common_args())
            .arg(self.ns.entry_prefix())
            .arg(members)
            .invoke_async(conn)
            .await
            .map_err(self.fail("repair"))?;
        Ok((added, removed))
    }
}

/// `a` followed by `b`, in `buf` (reused from call to call).
/// The keys of the `set_many` batches in flight on a cluster, as hashes
/// (a collision only makes a batch wait when it need not).
#[derive(Default)]
struct InFlightKeys {
    /// Per key hash, how many batches in flight hold it.
    held: std::collections::HashMap<u64, u32>,
    /// Per batch in flight, its number and key hashes.
    batches: Vec<(u64, Vec<u64>)>,
}

impl InFlightKeys {
    /// Records batch `number` unless one of its keys is in a batch in
    /// flight (then false, and nothing recorded).
    fn add(&mut self, number: u64, keys: &[u64]) -> bool {
        if keys.iter().any(|k| self.held.contains_key(k)) {
            return false;
        }
        for &k in keys {
            *self.held.entry(k).or_default() += 1;
        }
        self.batches.push((number, keys.to_vec()));
        true
    }

    /// Forgets batch `number` (its reply came).
    fn remove(&mut self, number: u64) {
        let Some(at) = self.batches.iter().position(|(n, _)| *n == number) else {
            return;
        };
        let (_, keys) = self.batches.swap_remove(at);
        for k in keys {
            if let std::collections::hash_map::Entry::Occupied(mut held) = self.held.entry(k) {
                *held.get_mut() -= 1;
                if *held.get() == 0 {
                    held.remove();
                }
            }
        }
    }
}

/// A key's hash for [`InFlightKeys`].
fn key_hash(key: &str) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault};
    BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default().hash_one(key)
}

pub(crate) fn joined<'b>(buf: &'b mut Vec<u8>, a: &str, b: &str) -> &'b [u8] {
    buf.clear();
    buf.extend_from_slice(a.as_bytes());
    buf.extend_from_slice(b.as_bytes());
    buf
}

/// The longest TTL accepted, in ms: Redis adds a TTL to the current time
/// and refuses sums past `i64::MAX` ms; half of it leaves room for any clock.
const MAX_TTL_MS: u128 = i64::MAX as u128 / 2;

/// Milliseconds of a TTL, refusing zero and values Redis cannot hold.
pub(crate) fn ttl_millis(key: &str, ttl: Duration) -> Result<u64> {
    let ms = ttl.as_millis();
    let reason = if ms == 0 {
        "must be at least 1 ms"
    } else if ms > MAX_TTL_MS {
        "too large: Redis holds expiry times up to about 146 million years (2^62 ms)"
    } else {
        return Ok(ms as u64);
    };
    Err(Error::InvalidTtl {
        key: key.to_owned(),
        ttl,
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis_pydict_test::RedisServer;

    /// The event payloads in `space`'s durable log, oldest first.
    async fn logged_payloads(
        raw: &mut redis::aio::MultiplexedConnection,
        space: &Space,
    ) -> Vec<Vec<u8>> {
        let log: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
            .arg(space.ns.log_key())
            .arg("-")
            .arg("+")
            .query_async(raw)
            .await
            .unwrap();
        log.ids.iter().map(|id| id.get("e").unwrap()).collect()
    }

    /// The payload the PLAIN and PLAIN_ONE scripts assemble (head, the key's CBOR text
    /// header, key, middle, value) is byte for byte the one
    /// `event::write_payload` builds, for every text header length form,
    /// non-ASCII and empty keys, empty and long values, origin absent and
    /// present, through `set` (one entry) and `set_many` (a batch), with the
    /// `"seq"` field the scripts append (consecutive numbers, a batch's
    /// events numbered in order); the published payload, channel, entry and
    /// index member agree too.
    #[tokio::test]
    async fn plain_script_payload_is_write_payload() {
        let server = RedisServer::start();
        let store = Store::connect(&server.url()).await.unwrap();
        let keys: Vec<String> = vec![
            "k".into(),
            String::new(),
            "é✓🦀".into(),
            "a".repeat(23),
            "b".repeat(24),
            "ü".repeat(127),
            "c".repeat(255),
            "d".repeat(256),
            "e".repeat(65_535),
            "f".repeat(65_536),
        ];
        let values: Vec<Vec<u8>> = vec![
            Vec::new(),
            vec![0x60],
            vec![0xf6],
            b"\x00\xff binary".to_vec(),
            vec![7; 300],
            vec![8; 70_000],
        ];
        let client = redis::Client::open(server.url()).unwrap();
        let mut raw = client.get_multiplexed_async_connection().await.unwrap();
        let mut pubsub = client.get_async_pubsub().await.unwrap();
        let origins = [None, Some("p1".to_owned()), Some("ørigin-".repeat(40))];
        for (round, origin) in origins.into_iter().enumerate() {
            // Single sets go through a space without a log of its own, so
            // through PLAIN_ONE, which appends to the log the namespace
            // declares; the batch through PLAIN with the dict's own log.
            let mut single = store.space("payloads").unwrap();
            single.set_origin(origin.clone());
            let mut space = single.clone();
            space.set_log_maxlen(Some(1_000_000));
            let _: () = redis::cmd("HSET")
                .arg(space.ns.meta_key())
                .arg("log_maxlen")
                .arg(1_000_000)
                .query_async(&mut raw)
                .await
                .unwrap();
            pubsub
                .psubscribe(format!("{}*", space.ns.key_channel_prefix()))
                .await
                .unwrap();
            let mut messages = pubsub.on_message();
            let entries: Vec<(&str, &[u8])> = keys
                .iter()
                .enumerate()
                .map(|(i, k)| (k.as_str(), values[i % values.len()].as_slice()))
                .collect();
            // One entry per `set`, then all in one `set_many` batch.
            for entry in &entries {
                single.set(SetMode::Set, None, &[*entry]).await.unwrap();
            }
            let batch: Vec<(String, Vec<u8>)> = entries
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.to_vec()))
                .collect();
            space.set_many(std::iter::once(Ok(batch))).await.unwrap();
            let logged = logged_payloads(&mut raw, &space).await;
            let expected: Vec<Vec<u8>> = entries
                .iter()
                .chain(&entries)
                .enumerate()
                .map(|(i, (k, v))| {
                    let payload =
                        event::payload(Op::Set, Some(k), origin.as_deref(), Some(v), None);
                    // Each change takes the namespace's next sequence number.
                    event::with_seq(payload, (round * 2 * entries.len() + i + 1) as u64)
                })
                .collect();
            assert_eq!(logged.len(), expected.len());
            for (i, (got, want)) in logged.iter().zip(&expected).enumerate() {
                assert!(got == want, "origin {origin:?}, event {i}: payloads differ");
            }
            for (i, ((k, _), want)) in entries.iter().chain(&entries).zip(&expected).enumerate() {
                let msg = messages.next().await.unwrap();
                assert_eq!(
                    msg.get_channel_name(),
                    space.ns.key_channel(k),
                    "message {i}"
                );
                assert!(msg.get_payload_bytes() == want.as_slice(), "message {i}");
            }
            drop(messages);
            pubsub
                .punsubscribe(format!("{}*", space.ns.key_channel_prefix()))
                .await
                .unwrap();
            for (k, v) in &entries {
                let stored: Vec<u8> = redis::cmd("GET")
                    .arg(space.ns.entry_key(k))
                    .query_async(&mut raw)
                    .await
                    .unwrap();
                assert!(stored == *v);
                let score: Option<f64> = redis::cmd("ZSCORE")
                    .arg(space.ns.index_key())
                    .arg(*k)
                    .query_async(&mut raw)
                    .await
                    .unwrap();
                assert_eq!(score, Some(f64::INFINITY));
            }
            let _: () = redis::cmd("DEL")
                .arg(space.ns.log_key())
                .query_async(&mut raw)
                .await
                .unwrap();
        }
    }

    /// A single `set` by a space with a log of its own goes through
    /// PLAIN_ONE and does what PLAIN does for it: appends the same payload,
    /// declares the log's cap in `{ns}#meta` (replacing another cap, even a
    /// malformed one, unchecked), and refuses a log key of another type
    /// before writing anything.
    #[tokio::test]
    async fn a_single_set_with_its_own_log_does_what_a_batch_does() {
        let server = RedisServer::start();
        let store = Store::connect(&server.url()).await.unwrap();
        let client = redis::Client::open(server.url()).unwrap();
        let mut raw = client.get_multiplexed_async_connection().await.unwrap();
        let mut space = store.space("own-log").unwrap();
        space.set_log_maxlen(Some(5_000));
        let declared = |raw: &mut redis::aio::MultiplexedConnection| {
            let mut raw = raw.clone();
            let meta = space.ns.meta_key().to_owned();
            async move {
                redis::cmd("HGET")
                    .arg(meta)
                    .arg("log_maxlen")
                    .query_async::<Option<String>>(&mut raw)
                    .await
                    .unwrap()
            }
        };
        let hset_cap = |raw: &mut redis::aio::MultiplexedConnection, cap: &str| {
            let mut raw = raw.clone();
            let meta = space.ns.meta_key().to_owned();
            let cap = cap.to_owned();
            async move {
                let _: () = redis::cmd("HSET")
                    .arg(meta)
                    .arg("log_maxlen")
                    .arg(cap)
                    .query_async(&mut raw)
                    .await
                    .unwrap();
            }
        };

        // No metadata yet, another cap, a malformed one: each single set
        // declares its own, as the batch after them does.
        for (key, value, cap_before) in
            [("a", 1u8, None), ("b", 2, Some("7")), ("c", 3, Some("abc"))]
        {
            if let Some(cap) = cap_before {
                hset_cap(&mut raw, cap).await;
            }
            space
                .set(SetMode::Set, None, &[(key, &[value][..])])
                .await
                .unwrap();
            assert_eq!(declared(&mut raw).await.as_deref(), Some("5000"), "{key}");
        }
        hset_cap(&mut raw, "abc").await;
        let batch = vec![("d".to_owned(), vec![4]), ("e".to_owned(), vec![5])];
        space.set_many(std::iter::once(Ok(batch))).await.unwrap();
        assert_eq!(declared(&mut raw).await.as_deref(), Some("5000"));
        let want: Vec<Vec<u8>> = [("a", 1u8), ("b", 2), ("c", 3), ("d", 4), ("e", 5)]
            .iter()
            .enumerate()
            .map(|(i, (k, v))| {
                let payload = event::payload(Op::Set, Some(k), None, Some(&[*v]), None);
                event::with_seq(payload, i as u64 + 1)
            })
            .collect();
        assert_eq!(logged_payloads(&mut raw, &space).await, want);

        // A log key of another type: refused, and nothing written.
        let _: () = redis::cmd("DEL")
            .arg(space.ns.log_key())
            .query_async(&mut raw)
            .await
            .unwrap();
        let _: () = redis::cmd("SET")
            .arg(space.ns.log_key())
            .arg("foreign")
            .query_async(&mut raw)
            .await
            .unwrap();
        let err = space
            .set(SetMode::Set, None, &[("f", &b"\x06"[..])])
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::WrongType {
                    role: "durable log",
                    ..
                }
            ),
            "{err}"
        );
        let (seq, entry): (u64, Option<Vec<u8>>) = redis::pipe()
            .get(space.ns.seq_key())
            .get(space.ns.entry_key("f"))
            .query_async(&mut raw)
            .await
            .unwrap();
        assert_eq!((seq, entry), (5, None));
    }

    /// The `"seq"` field the PLAIN script appends to each event of a batch
    /// (it reuses the number's CBOR head and high bytes across a run of
    /// numbers) is byte for byte `event::with_seq`'s across every form of
    /// the number: batches starting just below 24, 256, 65,536, 2^24 and
    /// 2^32 and near 2^53 - 2^32 (the scripts compute with Lua's doubles,
    /// exact below 2^53, and refuse a counter from 2^53 - 2^32 on), and one
    /// batch of 1,300 entries that crosses 65,536 in its second thousand.
    #[tokio::test]
    async fn batch_seq_numbers_are_encoded_in_every_form() {
        let server = RedisServer::start();
        let store = Store::connect(&server.url()).await.unwrap();
        let client = redis::Client::open(server.url()).unwrap();
        let mut raw = client.get_multiplexed_async_connection().await.unwrap();
        let mut space = store.space("seq-forms").unwrap();
        space.set_log_maxlen(Some(1_000_000));
        let starts: [(u64, usize); 7] = [
            (0, 30),
            (250, 20),
            (65_530, 20),
            (65_000, 1_300),
            (16_777_210, 20),
            (4_294_967_290, 20),
            ((1 << 53) - (1 << 32) - 21, 20),
        ];
        for (start, n) in starts {
            let _: () = redis::pipe()
                .cmd("DEL")
                .arg(space.ns.log_key())
                .cmd("SET")
                .arg(space.ns.seq_key())
                .arg(start)
                .query_async(&mut raw)
                .await
                .unwrap();
            let batch: Vec<(String, Vec<u8>)> = (0..n)
                .map(|i| (format!("k{i}"), vec![i as u8; 3]))
                .collect();
            space
                .set_many(std::iter::once(Ok(batch.clone())))
                .await
                .unwrap();
            let logged = logged_payloads(&mut raw, &space).await;
            assert_eq!(logged.len(), n, "from {start}");
            for (i, (got, (k, v))) in logged.iter().zip(&batch).enumerate() {
                let want = event::with_seq(
                    event::payload(Op::Set, Some(k), None, Some(v), None),
                    start + i as u64 + 1,
                );
                assert!(*got == want, "from {start}, event {i}: payloads differ");
            }
        }
        // Counters at or above 2^53 - 2^32 are refused (a unit's changes
        // could take them past 2^53 - 1), and stay as they were.
        let limit = (1u64 << 53) - (1 << 32);
        for (counter, n) in [
            (limit, 1),
            (limit, 20),
            ((1 << 53) - 1, 20),
            (99_999_999_999_999_999, 1),
        ] {
            let _: () = redis::cmd("SET")
                .arg(space.ns.seq_key())
                .arg(counter)
                .query_async(&mut raw)
                .await
                .unwrap();
            let err = if n == 1 {
                // A space without a log of its own: through PLAIN_ONE.
                let one = store.space("seq-forms").unwrap();
                one.set(SetMode::Set, None, &[("k", &[1][..])])
                    .await
                    .unwrap_err()
            } else {
                let batch = (0..n).map(|i| (format!("k{i}"), vec![1])).collect();
                space
                    .set_many(std::iter::once(Ok(batch)))
                    .await
                    .unwrap_err()
            };
            assert!(
                matches!(
                    err,
                    Error::WrongType {
                        role: "sequence number",
                        ..
                    }
                ),
                "{counter}: {err}"
            );
            let now: u64 = redis::cmd("GET")
                .arg(space.ns.seq_key())
                .query_async(&mut raw)
                .await
                .unwrap();
            assert_eq!(now, counter);
        }
    }
}
