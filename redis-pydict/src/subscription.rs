//! Change subscriptions: typed streams of the events that every write
//! publishes, over a pub/sub connection of their own that reconnects and
//! resubscribes by itself, reporting `Change::Gap` where events may be lost.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures::{Stream, StreamExt};
use redis::aio::PubSubStream;
use tokio::sync::{oneshot, Notify};

use crate::error::{Error, Result};
use crate::event::{self, RawEvent, RawKind};
use crate::namespace::Namespace;
use crate::store::Store;

/// What happened, as reported by one event.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Change<V> {
    /// The entry was written; this is its new value, carried by the event
    /// itself (no re-read, so no race with a later delete).
    Set(V),
    /// The entry was deleted or removed.
    Deleted,
    /// The entry's time-to-live ran out (only where the server reports expired
    /// keys: see [`crate::StoreBuilder::enable_expiry_events`]).
    Expired,
    /// The entry's time-to-live was set (`Some`) or removed (`None`).
    TtlChanged(Option<Duration>),
    /// The whole namespace was cleared.
    Cleared,
    /// Changes may have been missed here: the subscription lost its
    /// connection and has resubscribed, or its consumer fell more than the
    /// buffer behind and the events it had not taken were dropped (see
    /// [`crate::StoreBuilder::subscription_buffer`]), or (durable
    /// subscriptions) the log it was reading was lost or trimmed past the
    /// last change handled. Re-read what you depend on; events go on after it.
    Gap,
}

/// The value an entry had before a change, as an event reports it (see
/// [`crate::Dict::with_previous_values`]).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Previous<V> {
    /// The event does not say: its writer did not ask for previous values,
    /// or the change has none (`Cleared`, `Expired`, `Gap`).
    Unknown,
    /// There was no entry before this change.
    Absent,
    /// The entry's value before this change.
    Value(V),
}

impl<V> Previous<V> {
    /// The previous value, if the event carries one.
    pub fn value(&self) -> Option<&V> {
        match self {
            Previous::Value(v) => Some(v),
            Previous::Unknown | Previous::Absent => None,
        }
    }
}

/// One change to a namespace: which key (none for `Cleared` and `Gap`), who
/// made it (the writer's origin id, if it set one) and what changed.
///
/// Equality compares `key`, `origin`, `change` and `previous`, not `seq`: the sequence
/// number is the change's place in the namespace's history, not part of the
/// change, so an event built with [`Event::new`] in a test equals the one a
/// subscription yields. Compare `seq` yourself where order matters.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Event<K, V> {
    /// The entry concerned; `None` for `Cleared` and `Gap`.
    pub key: Option<K>,
    /// The writer's origin id, if it set one.
    pub origin: Option<String>,
    /// What changed.
    pub change: Change<V>,
    /// The namespace's sequence number of this change (see
    /// [`Namespace::seq_key`](crate::Namespace::seq_key)): it grows with every
    /// change to the namespace, so of two events the one with the larger
    /// number is the later change. `None` for events of writers older than
    /// the field, for `Expired` (a keyspace notification) and for `Gap`.
    pub seq: Option<u64>,
    /// The value the entry had before the change, when the writer carries
    /// previous values ([`crate::Dict::with_previous_values`]); otherwise
    /// [`Previous::Unknown`].
    pub previous: Previous<V>,
}

impl<K: PartialEq, V: PartialEq> PartialEq for Event<K, V> {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
            && self.origin == other.origin
            && self.change == other.change
            && self.previous == other.previous
    }
}

impl<K, V> Event<K, V> {
    /// An event as a subscription would yield it, for tests of code that
    /// consumes events (the struct is `#[non_exhaustive]`: it may gain fields).
    pub fn new(key: Option<K>, origin: Option<String>, change: Change<V>) -> Self {
        Event {
            key,
            origin,
            change,
            seq: None,
            previous: Previous::Unknown,
        }
    }

    /// The same event carrying `previous` (for tests of code that consumes events).
    pub fn with_previous(mut self, previous: Previous<V>) -> Self {
        self.previous = previous;
        self
    }
}

/// A live stream of changes. Dropping it unsubscribes.
///
/// Items are `Result`s: an event whose payload does not decode as the
/// expected type is an `Err` naming the key, and the stream goes on. After a
/// dropped connection or a server restart it reconnects by itself, yields a
/// `Change::Gap` and continues.
///
/// Client memory is bounded: a subscription buffers at most
/// [`crate::StoreBuilder::subscription_buffer`] events (and bytes of
/// payload) that its consumer has not taken yet. A plain subscription whose
/// consumer falls further behind drops what it buffered, yields
/// `Change::Gap` in its place and goes on with the events that follow; a
/// durable one stops reading the log until the consumer catches up (nothing
/// is lost: the log keeps it).
///
/// The stream ends (`None`) only after an `Err` item for an error that
/// retrying cannot cure (the ACL user lacks a permission, a key of the
/// namespace holds the wrong type of value, the server refuses the
/// credentials): that `Err` names the namespace and the cause. Connection
/// trouble is retried silently, with backoff.
#[must_use = "dropping a subscription unsubscribes"]
pub struct Subscription<T> {
    buffer: Arc<Buffer<T>>,
    task: tokio::task::AbortHandle,
}

impl<T> Drop for Subscription<T> {
    fn drop(&mut self) {
        self.buffer.lock().consumer_gone = true;
        self.buffer.space.notify_one();
        self.task.abort();
    }
}

impl<T> std::fmt::Debug for Subscription<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let queue = self.buffer.lock();
        f.debug_struct("Subscription")
            .field("pending", &queue.items.len())
            .field("pending_bytes", &queue.bytes)
            .finish()
    }
}

impl<T> Stream for Subscription<T> {
    type Item = Result<T>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut queue = self.buffer.lock();
        if let Some((item, weight)) = queue.items.pop_front() {
            queue.taken(weight);
            drop(queue);
            self.buffer.space.notify_one();
            return Poll::Ready(Some(item));
        }
        if queue.ended {
            return Poll::Ready(None);
        }
        queue.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl<T> Subscription<T> {
    /// The next item, waiting for it.
    pub async fn recv(&mut self) -> Option<Result<T>> {
        futures::future::poll_fn(|cx| self.poll_next_unpin(cx)).await
    }

    /// The next item if one is already waiting.
    pub fn try_recv(&mut self) -> Option<Result<T>> {
        let mut queue = self.buffer.lock();
        let (item, weight) = queue.items.pop_front()?;
        queue.taken(weight);
        drop(queue);
        self.buffer.space.notify_one();
        Some(item)
    }
}

/// How much a subscription may hold for its consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BufferLimit {
    /// Items (events, errors and gaps).
    pub events: usize,
    /// Bytes of event payload (as received from Redis).
    pub bytes: usize,
}

/// The queue between a subscription's reading task and its consumer.
pub(crate) struct Buffer<T> {
    queue: Mutex<Queue<T>>,
    /// Signalled when the consumer takes an item (or goes away).
    space: Notify,
}

struct Queue<T> {
    /// Each item with its weight in bytes.
    items: VecDeque<(Result<T>, usize)>,
    bytes: usize,
    limit: BufferLimit,
    /// The consumer waiting for an item.
    waker: Option<Waker>,
    /// The reading task finished: no item follows those queued.
    ended: bool,
    /// The consumer dropped the subscription.
    consumer_gone: bool,
    depth: crate::observe::Depth,
}

impl<T> Queue<T> {
    fn has_room(&self, weight: usize) -> bool {
        self.items.is_empty()
            || (self.items.len() < self.limit.events
                && self.bytes.saturating_add(weight) <= self.limit.bytes)
    }

    fn push(&mut self, item: Result<T>, weight: usize) -> Option<Waker> {
        self.items.push_back((item, weight));
        self.bytes += weight;
        self.depth.set(self.items.len());
        self.waker.take()
    }

    /// Accounts for the item of `weight` bytes just taken from the front.
    fn taken(&mut self, weight: usize) {
        self.bytes -= weight;
        self.depth.set(self.items.len());
    }
}

impl<T> Buffer<T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue<T>> {
        // A panic while holding this lock cannot leave the queue inconsistent
        // (each critical section is a few field updates): go on with it.
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The reading task's end of a subscription's buffer. Dropping it ends the
/// stream once the consumer has taken what is queued.
pub(crate) struct Feed<T> {
    buffer: Arc<Buffer<T>>,
}

impl<T> Drop for Feed<T> {
    fn drop(&mut self) {
        let waker = {
            let mut queue = self.buffer.lock();
            queue.ended = true;
            queue.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<T> Feed<T> {
    /// True once the consumer dropped the subscription.
    pub(crate) fn is_closed(&self) -> bool {
        self.buffer.lock().consumer_gone
    }

    /// Queues `item` without ever waiting. When the consumer is too far
    /// behind (the buffer is full), what it has not taken yet is dropped and
    /// `gap()` (the `Change::Gap` item, if the decoder keeps it) takes its
    /// place before `item`. False once the consumer is gone.
    pub(crate) fn push_or_gap(
        &self,
        item: Result<T>,
        weight: usize,
        gap: impl FnOnce() -> Option<Result<T>>,
    ) -> bool {
        let waker = {
            let mut queue = self.buffer.lock();
            if queue.consumer_gone {
                return false;
            }
            if !queue.has_room(weight) {
                crate::observe::gap(crate::observe::Source::Live, None, "overflow");
                queue.items.clear();
                queue.bytes = 0;
                if let Some(gap) = gap() {
                    queue.push(gap, 0);
                }
            }
            queue.push(item, weight)
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        true
    }

    /// Queues `item`, first waiting while the buffer is full (backpressure,
    /// for the durable log, where nothing may be dropped). False once the
    /// consumer is gone.
    pub(crate) async fn push_wait(&self, item: Result<T>, weight: usize) -> bool {
        loop {
            let space = self.buffer.space.notified();
            {
                let mut queue = self.buffer.lock();
                if queue.consumer_gone {
                    return false;
                }
                if queue.has_room(weight) {
                    let waker = queue.push(item, weight);
                    drop(queue);
                    if let Some(waker) = waker {
                        waker.wake();
                    }
                    return true;
                }
            }
            space.await;
        }
    }
}

impl<T> Feed<T> {
    /// Queues `items` (each with its weight) in order, as [`Feed::push_wait`]
    /// does one by one, but taking the lock and waking the consumer once for
    /// as many as there is room for. False once the consumer is gone.
    pub(crate) async fn push_all_wait(&self, items: Vec<(Result<T>, usize)>) -> bool {
        let mut items = items.into_iter().peekable();
        loop {
            let space = self.buffer.space.notified();
            let waker = {
                let mut queue = self.buffer.lock();
                if queue.consumer_gone {
                    return false;
                }
                let mut waker = None;
                while let Some((_, weight)) = items.peek() {
                    if !queue.has_room(*weight) {
                        break;
                    }
                    if let Some((item, weight)) = items.next() {
                        waker = queue.push(item, weight).or(waker);
                    }
                }
                waker
            };
            if let Some(waker) = waker {
                waker.wake();
            }
            if items.peek().is_none() {
                return true;
            }
            space.await;
        }
    }
}

/// A subscription's two ends: the consumer's stream (once its task is
/// spawned) and the task's feed.
pub(crate) fn buffer<T>(limit: BufferLimit) -> (Feed<T>, Arc<Buffer<T>>) {
    let buffer = Arc::new(Buffer {
        queue: Mutex::new(Queue {
            items: VecDeque::new(),
            bytes: 0,
            limit,
            waker: None,
            ended: false,
            consumer_gone: false,
            depth: Default::default(),
        }),
        space: Notify::new(),
    });
    (
        Feed {
            buffer: buffer.clone(),
        },
        buffer,
    )
}

impl<T> Subscription<T> {
    pub(crate) fn from_parts(buffer: Arc<Buffer<T>>, task: tokio::task::AbortHandle) -> Self {
        Subscription { buffer, task }
    }
}

/// What to listen to: exact channels and channel patterns (classic pub/sub),
/// and on a cluster the namespace's sharded channel, whose events `keys`
/// selects on the client (sharded pub/sub has no patterns).
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub channels: Vec<String>,
    pub patterns: Vec<String>,
    /// Which events of the sharded channel to keep.
    pub keys: KeyFilter,
}

/// The keys whose events a subscription keeps from the sharded channel,
/// which carries every event of the namespace. Events without a key
/// (`clear`) are always kept.
#[derive(Debug, Clone)]
pub(crate) enum KeyFilter {
    /// Keys whose event channel `{ns}#ev:<key>` matches this channel
    /// pattern: exactly what PSUBSCRIBE on one server receives (the glob is
    /// matched on the channel, not on the bare key, so that edge cases such
    /// as the empty key match alike).
    Glob {
        channel_pattern: String,
        channel_prefix: String,
    },
    /// These keys.
    Keys(std::collections::HashSet<String>),
}

impl KeyFilter {
    fn keeps(&self, key: &str) -> bool {
        match self {
            KeyFilter::Glob {
                channel_pattern,
                channel_prefix,
            } => {
                let mut channel = String::with_capacity(channel_prefix.len() + key.len());
                channel.push_str(channel_prefix);
                channel.push_str(key);
                crate::glob::matches(channel_pattern, &channel)
            }
            KeyFilter::Keys(keys) => keys.contains(key),
        }
    }
}

impl Target {
    /// Events of keys matching `pattern` (a glob on the key), and namespace-wide
    /// ones; with `expiry`, keyspace notifications of expired entries too.
    pub(crate) fn pattern(ns: &Namespace, pattern: &str, expiry_db: Option<i64>) -> Target {
        let channel_pattern = format!("{}:{pattern}", crate::escape_glob(ns.event_channel()));
        let mut target = Target {
            channels: vec![ns.event_channel().to_owned()],
            patterns: vec![channel_pattern.clone()],
            keys: KeyFilter::Glob {
                channel_pattern,
                channel_prefix: ns.key_channel_prefix().to_owned(),
            },
        };
        if let Some(db) = expiry_db {
            target.patterns.push(format!(
                "__keyspace@{db}__:{}{pattern}",
                crate::escape_glob(ns.entry_prefix())
            ));
        }
        target
    }

    /// Events of the given keys (one channel each), and namespace-wide ones.
    pub(crate) fn keys<'k>(
        ns: &Namespace,
        keys: impl IntoIterator<Item = &'k str>,
        expiry_db: Option<i64>,
    ) -> Target {
        let mut target = Target {
            channels: vec![ns.event_channel().to_owned()],
            patterns: Vec::new(),
            keys: KeyFilter::Keys(std::collections::HashSet::new()),
        };
        for key in keys {
            target.channels.push(ns.key_channel(key));
            if let Some(db) = expiry_db {
                target
                    .channels
                    .push(format!("__keyspace@{db}__:{}", ns.entry_key(key)));
            }
            if let KeyFilter::Keys(set) = &mut target.keys {
                set.insert(key.to_owned());
            }
        }
        target
    }

    /// Events of one key, and namespace-wide ones.
    pub(crate) fn key(ns: &Namespace, key: &str, expiry_db: Option<i64>) -> Target {
        Target::keys(ns, [key], expiry_db)
    }
}

/// Whether expired-key notifications reach subscribers. Only when the store
/// asked for them ([`crate::StoreBuilder::enable_expiry_events`]): then asks
/// the server (`CONFIG GET notify-keyspace-events`) and switches them on
/// where they are off (`CONFIG SET`, adding `Kx`). Returns the database
/// number to listen on, or `None` when the store did not ask. A store that
/// did not ask sends no command (no `CONFIG` in a restricted user's ACL log).
///
/// Never silent when expiries cannot be reported: if the server lacks them
/// and `CONFIG SET` is refused, [`Error::ExpiryEventsOff`] says what is
/// missing and what to do. If even `CONFIG GET` is refused (a user without
/// `+config|get`, a managed server that hides `CONFIG`), nothing can be
/// verified: the subscription listens for expiries anyway (they arrive if an
/// operator configured the server) and a `tracing` warning says so.
pub(crate) async fn expiry_db(store: &Store) -> Result<Option<i64>> {
    if !store.settings().enable_expiry_events {
        return Ok(None);
    }
    let fail = |source| Error::Redis {
        operation: "subscribe",
        namespace: String::new(),
        source,
    };
    let mut conn = store.connection();
    let current: redis::RedisResult<std::collections::HashMap<String, String>> =
        redis::cmd("CONFIG")
            .arg("GET")
            .arg("notify-keyspace-events")
            .query_async(&mut conn)
            .await;
    let flags = match current {
        Ok(current) => current
            .get("notify-keyspace-events")
            .cloned()
            .unwrap_or_default(),
        // Refused (NOPERM, CONFIG renamed away): cannot verify.
        Err(e) if e.code().is_some() => {
            crate::observe::expiry_events_unverified(&e);
            return Ok(Some(store.db()));
        }
        Err(e) => return Err(fail(e)),
    };
    let Some(missing) = missing_expiry_flags(&flags) else {
        return Ok(Some(store.db()));
    };
    let mut wanted = flags.clone();
    for flag in ['K', 'x'] {
        if !wanted.contains(flag) {
            wanted.push(flag);
        }
    }
    let set: redis::RedisResult<()> = redis::cmd("CONFIG")
        .arg("SET")
        .arg("notify-keyspace-events")
        .arg(&wanted)
        .query_async(&mut conn)
        .await;
    match set {
        Ok(()) => Ok(Some(store.db())),
        Err(source) if source.code().is_some() => Err(Error::ExpiryEventsOff {
            current: flags,
            missing,
            wanted,
            source,
        }),
        Err(e) => Err(fail(e)),
    }
}

/// What `notify-keyspace-events` `flags` lack for expired keys to be
/// reported on keyspace channels (`K`, and `x` or `A`), or `None`.
fn missing_expiry_flags(flags: &str) -> Option<&'static str> {
    let keyspace = flags.contains('K');
    let expired = flags.contains('x') || flags.contains('A');
    match (keyspace, expired) {
        (true, true) => None,
        (true, false) => Some("x (expired events)"),
        (false, true) => Some("K (keyspace channels)"),
        (false, false) => Some("K (keyspace channels) and x (expired events)"),
    }
}

/// The buffer limit of the store's subscriptions.
pub(crate) fn limit(store: &Store) -> BufferLimit {
    let settings = store.settings();
    BufferLimit {
        events: settings.subscription_buffer_events.max(1),
        bytes: settings.subscription_buffer_bytes.max(1),
    }
}

/// True for errors that retrying can cure (the connection dropped, was
/// refused or timed out; the server is loading, busy, or failing over).
/// Anything else (NOPERM, WRONGTYPE, bad credentials, unknown command) is
/// reported to the subscriber instead of being retried forever.
pub(crate) fn is_transient(e: &redis::RedisError) -> bool {
    use redis::{ErrorKind, ServerErrorKind};
    if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() || e.is_timeout() {
        return true;
    }
    // Refused at connection time while the server is full: it frees up.
    if e.detail()
        .is_some_and(|d| d.contains("max number of clients"))
    {
        return true;
    }
    match e.kind() {
        ErrorKind::Server(kind) => matches!(
            kind,
            ServerErrorKind::BusyLoading
                | ServerErrorKind::TryAgain
                | ServerErrorKind::ClusterDown
                | ServerErrorKind::MasterDown
                | ServerErrorKind::ReadOnly
                | ServerErrorKind::Moved
                | ServerErrorKind::Ask
        ),
        ErrorKind::ClusterConnectionNotFound => true,
        ErrorKind::Extension => matches!(e.code(), Some("BUSY") | Some("NOREPLICAS")),
        _ => false,
    }
}

/// The item a subscription yields where events may have been lost.
pub(crate) fn gap_event() -> RawEvent {
    RawEvent {
        key: None,
        origin: None,
        kind: RawKind::Gap,
        seq: None,
        prev: None,
    }
}

/// Starts a subscription: connects and subscribes before returning (so every
/// event published after this returns is seen), then reads in a task of its
/// own. `decode` turns raw events into items; `None` filters one out.
pub(crate) async fn start<T, F>(
    store: &Store,
    ns: &Namespace,
    target: Target,
    decode: F,
) -> Result<Subscription<T>>
where
    T: Send + 'static,
    F: FnMut(RawEvent) -> Option<Result<T>> + Send + 'static,
{
    let (feed, buffer) = self::buffer(limit(store));
    let (ready_tx, ready_rx) = oneshot::channel();
    let connection = Connection {
        store: store.clone(),
        target,
        node_key: ns.index_key().to_owned(),
        sharded_channel: ns.event_channel().to_owned(),
    };
    let task = tokio::spawn(run(connection, ns.clone(), decode, feed, ready_tx));
    let fail = |source| Error::Redis {
        operation: "subscribe",
        namespace: ns.name().to_owned(),
        source,
    };
    match ready_rx.await {
        Ok(Ok(())) => Ok(Subscription::from_parts(buffer, task.abort_handle())),
        Ok(Err(e)) => Err(fail(e)),
        Err(_) => Err(fail(redis::RedisError::from(std::io::Error::other(
            "the subscription task ended before subscribing",
        )))),
    }
}

/// How to (re)connect a subscription.
struct Connection {
    store: Store,
    target: Target,
    /// A key of the namespace: on a cluster, the subscription connects to the
    /// master of its slot (where keyspace notifications of the namespace arise).
    node_key: String,
    /// The namespace's sharded channel (on a cluster).
    sharded_channel: String,
}

/// Where a subscription's messages go: decoded, filtered and queued in its
/// bounded buffer. Shared by the reading task and, on a cluster, by the
/// connection's push sender, which hands each message over as redis-rs
/// reads it (no task in between: one wake-up less per event).
struct Deliver<T, F> {
    ns: Namespace,
    keys: KeyFilter,
    decode: std::sync::Mutex<F>,
    feed: Feed<T>,
}

impl<T, F> Deliver<T, F>
where
    F: FnMut(RawEvent) -> Option<Result<T>>,
{
    fn decode(&self, raw: RawEvent) -> Option<Result<T>> {
        // Decoding does not panic; a poisoned lock is still usable.
        let mut decode = self
            .decode
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        (*decode)(raw)
    }

    /// Queues the events of one message (whether it came from the sharded
    /// channel): its own, or a batch's one by one. False once the consumer
    /// is gone.
    fn message(&self, msg: &redis::Msg, sharded: bool) -> bool {
        let events = to_raw(&self.ns, msg);
        // A batch's events share its weight.
        let weight =
            (msg.get_channel_name().len() + msg.get_payload_bytes().len()) / events.len().max(1);
        // The sharded channel carries the whole namespace, and so may the
        // classic namespace channel (meant for `clear`, but a batch that
        // another writer PUBLISHes there would carry any keys): their
        // events are kept by key. A key's own channel carries its events.
        let whole_namespace = sharded || msg.get_channel_name() == self.ns.event_channel();
        for raw in events {
            let item = match raw {
                Ok(RawEvent { key: Some(key), .. })
                    if whole_namespace && !self.keys.keeps(&key) =>
                {
                    None
                }
                Ok(raw) => self.decode(raw),
                Err(e) => Some(Err(e)),
            };
            let open = match item {
                Some(item) => self
                    .feed
                    .push_or_gap(item, weight, || self.decode(gap_event())),
                None => !self.feed.is_closed(),
            };
            if !open {
                return false;
            }
        }
        !self.feed.is_closed()
    }

    /// Queues a `Gap`. False once the consumer is gone.
    fn gap(&self) -> bool {
        match self.decode(gap_event()) {
            Some(gap) => self.feed.push_or_gap(gap, 0, || None),
            None => !self.feed.is_closed(),
        }
    }
}

/// The reading task of a subscription. It takes every message as soon as
/// redis-rs has it (redis-rs queues them without bound, so the bound must
/// be ours) into the subscription's bounded buffer.
async fn run<T, F>(
    connection: Connection,
    ns: Namespace,
    decode: F,
    feed: Feed<T>,
    ready: oneshot::Sender<redis::RedisResult<()>>,
) where
    T: Send + 'static,
    F: FnMut(RawEvent) -> Option<Result<T>> + Send + 'static,
{
    let deliver = Arc::new(Deliver {
        ns,
        keys: connection.target.keys.clone(),
        decode: std::sync::Mutex::new(decode),
        feed,
    });
    let mut messages = match connection.connect(&deliver).await {
        Ok(messages) => {
            let _ = ready.send(Ok(()));
            messages
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    loop {
        // Until the connection ends (on a cluster the messages went to
        // `deliver` meanwhile); false once the consumer is gone.
        let open = match &mut messages {
            Messages::Classic(stream) => loop {
                match stream.next().await {
                    Some(msg) if deliver.message(&msg, false) => {}
                    Some(_) => break false,
                    None => break true,
                }
            },
            Messages::Pushed { ended, .. } => {
                let _ = ended.changed().await;
                !deliver.feed.is_closed()
            }
        };
        if !open {
            return;
        }
        // The connection is gone: reconnect, resubscribe, report the gap.
        crate::observe::reconnecting(crate::observe::Source::Live, &deliver.ns, None);
        match connection.reconnect(&deliver).await {
            Ok(fresh) => messages = fresh,
            Err(Some(e)) => {
                // Retrying cannot cure it: say so, and end the stream.
                let e = Error::Redis {
                    operation: "subscribe",
                    namespace: deliver.ns.name().to_owned(),
                    source: e,
                };
                deliver.feed.push_or_gap(Err(e), 0, || None);
                return;
            }
            Err(None) => return,
        }
        crate::observe::gap(crate::observe::Source::Live, Some(&deliver.ns), "reconnect");
        if !deliver.gap() {
            return;
        }
    }
}

impl Connection {
    async fn connect<T, F>(&self, deliver: &Arc<Deliver<T, F>>) -> redis::RedisResult<Messages>
    where
        T: Send + 'static,
        F: FnMut(RawEvent) -> Option<Result<T>> + Send + 'static,
    {
        let timeout = self
            .store
            .settings()
            .connection_timeout
            .unwrap_or(Duration::from_secs(3600));
        let timed_out = |_| {
            redis::RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "connecting for pub/sub timed out",
            ))
        };
        let client = self.store.node_client(&self.node_key).await?;
        if self.store.is_cluster() {
            return self.connect_cluster(client, timeout, deliver).await;
        }
        let connecting = client.get_async_pubsub();
        let mut pubsub = tokio::time::timeout(timeout, connecting)
            .await
            .map_err(timed_out)??;
        if !self.target.channels.is_empty() {
            pubsub.subscribe(&self.target.channels).await?;
        }
        if !self.target.patterns.is_empty() {
            pubsub.psubscribe(&self.target.patterns).await?;
        }
        Ok(Messages::Classic(pubsub.into_on_message()))
    }

    /// On a cluster: a RESP3 connection to the master of the namespace's
    /// slot that listens both ways, so that no writer's events are missed
    /// whichever way it publishes (see `scripts::PRELUDE`): SSUBSCRIBE to the
    /// namespace channel (where Redis >= 7.0 writers SPUBLISH every event;
    /// skipped on an older server, which has no sharded pub/sub), and the
    /// classic channels and patterns (where older servers, and writers built
    /// with `sharded_events(false)`, PUBLISH). Messages arrive as pushes,
    /// handed to `deliver` by the connection as it reads them; the
    /// connection's loss, or the server unsubscribing the sharded channel
    /// (its slot moved to another master), ends it: from then on its
    /// messages are ignored (the subscription reconnects to the slot's
    /// current master and reports a gap, and must not get the same event
    /// from two connections).
    async fn connect_cluster<T, F>(
        &self,
        client: redis::Client,
        timeout: Duration,
        deliver: &Arc<Deliver<T, F>>,
    ) -> redis::RedisResult<Messages>
    where
        T: Send + 'static,
        F: FnMut(RawEvent) -> Option<Result<T>> + Send + 'static,
    {
        use redis::PushKind;
        let (end, ended) = tokio::sync::watch::channel(());
        let live = std::sync::atomic::AtomicBool::new(true);
        let to = Arc::clone(deliver);
        let sender = move |push: redis::PushInfo| -> std::result::Result<(), ()> {
            use std::sync::atomic::Ordering;
            if !live.load(Ordering::Acquire) {
                return Ok(());
            }
            match push.kind {
                PushKind::Disconnection | PushKind::SUnsubscribe => {
                    live.store(false, Ordering::Release);
                    end.send_replace(());
                    Ok(())
                }
                PushKind::Message | PushKind::PMessage | PushKind::SMessage => {
                    let sharded = push.kind == PushKind::SMessage;
                    match redis::Msg::from_push_info(push) {
                        Some(msg) if !to.message(&msg, sharded) => Err(()),
                        _ => Ok(()),
                    }
                }
                _ => Ok(()),
            }
        };
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_push_sender(sender);
        let mut conn = client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        match redis::cmd("SSUBSCRIBE")
            .arg(&self.sharded_channel)
            .query_async::<()>(&mut conn)
            .await
        {
            Err(e) if e.code() == Some("ERR") && e.to_string().contains("unknown command") => {}
            done => done?,
        }
        if !self.target.channels.is_empty() {
            conn.subscribe(&self.target.channels).await?;
        }
        if !self.target.patterns.is_empty() {
            conn.psubscribe(&self.target.patterns).await?;
        }
        Ok(Messages::Pushed { ended, _conn: conn })
    }

    /// Retries with backoff until connected again. `Err(None)` if the
    /// subscriber went away meanwhile, `Err(Some(e))` on an error that
    /// retrying cannot cure.
    async fn reconnect<T, F>(
        &self,
        deliver: &Arc<Deliver<T, F>>,
    ) -> std::result::Result<Messages, Option<redis::RedisError>>
    where
        T: Send + 'static,
        F: FnMut(RawEvent) -> Option<Result<T>> + Send + 'static,
    {
        let settings = self.store.settings();
        let mut delay = settings.min_retry_delay;
        loop {
            if deliver.feed.is_closed() {
                return Err(None);
            }
            match self.connect(deliver).await {
                Ok(messages) => return Ok(messages),
                Err(e) if !is_transient(&e) => return Err(Some(e)),
                Err(_) => {}
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(settings.max_retry_delay);
        }
    }
}

/// The messages of a subscription's connection.
enum Messages {
    /// A classic pub/sub connection (one server), read by the task.
    Classic(PubSubStream),
    /// A RESP3 connection (cluster) whose pushes go straight to the
    /// subscription's buffer; `ended` changes when it is lost (or the
    /// sharded channel was unsubscribed). The connection lives as long as
    /// the subscription reads it.
    Pushed {
        ended: tokio::sync::watch::Receiver<()>,
        _conn: redis::aio::MultiplexedConnection,
    },
}

/// A pub/sub message as raw events: one, those of a batch (WIRE.md §6.2),
/// or none for a message to ignore.
pub(crate) fn to_raw(ns: &Namespace, msg: &redis::Msg) -> Vec<Result<RawEvent>> {
    let channel = msg.get_channel_name();
    if let Some(rest) = channel.strip_prefix("__keyspace@") {
        let expired = rest
            .split_once("__:")
            .and_then(|(_, entry_key)| ns.member_of(entry_key))
            .filter(|_| msg.get_payload_bytes() == b"expired");
        return expired
            .map(|key| {
                Ok(RawEvent {
                    key: Some(key.to_owned()),
                    origin: None,
                    kind: RawKind::Expired,
                    seq: None,
                    prev: None,
                })
            })
            .into_iter()
            .collect();
    }
    event::parse_message(msg.get_payload_bytes())
        .into_iter()
        .map(|parsed| {
            parsed.map_err(|reason| Error::Decode {
                namespace: ns.name().to_owned(),
                key: channel
                    .strip_prefix(ns.event_channel())
                    .and_then(|rest| rest.strip_prefix(':'))
                    .unwrap_or_default()
                    .to_owned(),
                expected: "a change event (wire format v1)",
                reason,
            })
        })
        .collect()
}

/// Types a raw event for a dict of `K` and `V`, naming the key on failure.
pub(crate) fn typed<K, V>(namespace: &str, raw: RawEvent) -> Result<Event<K, V>>
where
    K: crate::DictKey,
    V: serde::de::DeserializeOwned,
{
    let key = match raw.key {
        Some(text) => Some(crate::key::parse_key::<K>(namespace, text)?),
        None => None,
    };
    // A parsed key's text is the text it was parsed from (one canonical form).
    let fail = |reason: String| Error::Decode {
        namespace: namespace.to_owned(),
        key: key
            .as_ref()
            .map(|k| k.key_text().into_owned())
            .unwrap_or_default(),
        expected: std::any::type_name::<V>(),
        reason,
    };
    let change = raw.kind.typed(fail)?;
    let previous = match raw.prev {
        None => Previous::Unknown,
        Some(None) => Previous::Absent,
        Some(Some(bytes)) => Previous::Value(
            crate::codec::decode_value(&bytes)
                .map_err(|reason| fail(format!("the previous value: {reason}")))?,
        ),
    };
    Ok(Event {
        key,
        origin: raw.origin,
        change,
        seq: raw.seq,
        previous,
    })
}

impl RawKind {
    /// The change, its value typed as `V`; a value that does not decode is
    /// the error `fail` builds from the decoder's message.
    pub(crate) fn typed<V: serde::de::DeserializeOwned>(
        self,
        fail: impl FnOnce(String) -> Error,
    ) -> Result<Change<V>> {
        Ok(match self {
            RawKind::Set(value) => Change::Set(crate::codec::decode_value(&value).map_err(fail)?),
            RawKind::Del => Change::Deleted,
            RawKind::Clear => Change::Cleared,
            RawKind::Expire(ms) => Change::TtlChanged(ms.map(Duration::from_millis)),
            RawKind::Expired => Change::Expired,
            RawKind::Gap => Change::Gap,
        })
    }
}

#[cfg(test)]
mod buffer_tests {
    use super::*;

    fn item(n: u32) -> Result<u32> {
        Ok(n)
    }

    const GAP: u32 = u32::MAX;

    /// A subscription over a buffer of `events`/`bytes`, and its feed.
    fn pair(
        runtime: &tokio::runtime::Runtime,
        events: usize,
        bytes: usize,
    ) -> (Feed<u32>, Subscription<u32>) {
        let (feed, buffer) = buffer(BufferLimit { events, bytes });
        let task = runtime.spawn(futures::future::pending::<()>());
        (feed, Subscription::from_parts(buffer, task.abort_handle()))
    }

    fn drain(sub: &mut Subscription<u32>) -> Vec<u32> {
        std::iter::from_fn(|| sub.try_recv().map(|r| r.unwrap())).collect()
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn overflow_drops_what_is_buffered_and_leaves_a_gap() {
        let rt = runtime();
        let (feed, mut sub) = pair(&rt, 3, 1000);
        for n in 0..3 {
            assert!(feed.push_or_gap(item(n), 1, || Some(item(GAP))));
        }
        assert_eq!(drain(&mut sub), [0, 1, 2], "within the bound, all kept");
        for n in 0..5 {
            feed.push_or_gap(item(n), 1, || Some(item(GAP)));
        }
        assert_eq!(drain(&mut sub), [GAP, 3, 4], "the fourth overflows");
        // By bytes: 400 + 400 fit in 1000, a third 400 does not.
        for n in 0..3 {
            feed.push_or_gap(item(n), 400, || Some(item(GAP)));
        }
        assert_eq!(drain(&mut sub), [GAP, 2]);
        // One item over the byte bound still fits an empty buffer.
        feed.push_or_gap(item(7), 5000, || Some(item(GAP)));
        assert_eq!(drain(&mut sub), [7]);
    }

    #[test]
    fn the_stream_ends_after_the_feed_is_dropped_and_drained() {
        let rt = runtime();
        let (feed, mut sub) = pair(&rt, 10, 1000);
        feed.push_or_gap(Err(Error::Config("last words".into())), 0, || None);
        drop(feed);
        rt.block_on(async {
            assert!(matches!(sub.recv().await, Some(Err(Error::Config(_)))));
            assert!(sub.recv().await.is_none());
        });
    }

    #[test]
    fn push_all_wait_keeps_order_within_the_bound_and_stops_when_the_consumer_leaves() {
        let rt = runtime();
        let (feed, mut sub) = pair(&rt, 3, 1000);
        rt.block_on(async {
            let writer = tokio::spawn(async move {
                let items = (0..10).map(|n| (item(n), 100)).collect();
                assert!(feed.push_all_wait(items).await);
                feed
            });
            let mut got = Vec::new();
            while got.len() < 10 {
                got.push(sub.recv().await.unwrap().unwrap());
                let queue = sub.buffer.lock();
                assert!(queue.items.len() <= 3 && queue.bytes <= 1000);
            }
            assert_eq!(
                got,
                (0..10).collect::<Vec<_>>(),
                "nothing dropped, in order"
            );
            let feed = writer.await.unwrap();
            let blocked = tokio::spawn(async move {
                feed.push_all_wait((0..5).map(|n| (item(n), 1)).collect())
                    .await
            });
            tokio::task::yield_now().await;
            drop(sub);
            assert!(!blocked.await.unwrap(), "a gone consumer releases the feed");
        });
    }

    #[test]
    fn push_wait_waits_for_room_and_stops_when_the_consumer_leaves() {
        let rt = runtime();
        let (feed, mut sub) = pair(&rt, 2, 1000);
        rt.block_on(async {
            let writer = tokio::spawn(async move {
                for n in 0..5 {
                    assert!(feed.push_wait(item(n), 1).await);
                }
                feed
            });
            let mut got = Vec::new();
            while got.len() < 5 {
                got.push(sub.recv().await.unwrap().unwrap());
                let pending = sub.buffer.lock().items.len();
                assert!(pending <= 2, "never more than the bound: {pending}");
            }
            assert_eq!(got, [0, 1, 2, 3, 4], "nothing dropped");
            let feed = writer.await.unwrap();
            assert!(feed.push_wait(item(5), 1).await);
            assert!(feed.push_wait(item(6), 1).await);
            let blocked = tokio::spawn(async move { feed.push_wait(item(7), 1).await });
            tokio::task::yield_now().await;
            drop(sub);
            assert!(!blocked.await.unwrap(), "a gone consumer releases the feed");
        });
    }
}

#[cfg(test)]
mod retry_tests {
    use super::is_transient;

    /// The error a server reply `-<line>` becomes.
    fn server(line: &str) -> redis::RedisError {
        let reply = redis::parse_redis_value(format!("-{line}\r\n").as_bytes()).unwrap();
        reply.extract_error().unwrap_err()
    }

    #[test]
    fn connection_trouble_is_retried_and_the_rest_is_reported() {
        let io = |kind| redis::RedisError::from(std::io::Error::new(kind, "x"));
        for e in [
            io(std::io::ErrorKind::ConnectionReset),
            io(std::io::ErrorKind::ConnectionRefused),
            io(std::io::ErrorKind::TimedOut),
            io(std::io::ErrorKind::UnexpectedEof),
            server("LOADING Redis is loading the dataset in memory"),
            server("BUSY Redis is busy running a script"),
            server("MASTERDOWN Link with MASTER is down"),
            server("TRYAGAIN Multiple keys request during rehashing of slot"),
            server("CLUSTERDOWN The cluster is down"),
            server("ERR max number of clients reached"),
        ] {
            assert!(is_transient(&e), "retried: {e}");
        }
        for e in [
            server("NOPERM this user has no permissions to run the 'xrange' command"),
            server("WRONGTYPE Operation against a key holding the wrong kind of value"),
            server("ERR unknown command 'XRANGE', with args beginning with:"),
            server("WRONGPASS invalid username-password pair or user is disabled."),
            server("NOSCRIPT No matching script."),
        ] {
            assert!(!is_transient(&e), "reported: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equality_ignores_the_sequence_number_but_not_the_change() {
        let built = Event::new(Some("k".to_string()), None, Change::Set(1u8));
        let mut received = built.clone();
        received.seq = Some(42);
        assert_eq!(built, received);
        let other = Event::new(Some("k".to_string()), None, Change::Set(2u8));
        assert_ne!(built, other);
        let mut elsewhere = received.clone();
        elsewhere.origin = Some("w".into());
        assert_ne!(received, elsewhere);
    }
}
