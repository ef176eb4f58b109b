//! Change subscriptions: typed streams of the events that every write
//! publishes, over a pub/sub connection of their own that reconnects and
//! resubscribes by itself, reporting `Change::Gap` where events may be lost.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{Stream, StreamExt};
use redis::aio::PubSubStream;
use tokio::sync::{mpsc, oneshot};

use crate::error::{Error, Result};
use crate::event::{self, RawEvent, RawKind};
use crate::namespace::Namespace;
use crate::store::Store;

/// Events buffered per subscription before the reader stops reading (and a
/// server-side output-buffer limit may then disconnect it: reported as a gap).
const CAPACITY: usize = 4096;

/// What happened, as reported by one event.
#[derive(Debug, Clone, PartialEq)]
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
    /// The subscription lost its connection and has resubscribed: changes made
    /// meanwhile were not seen. Re-read what you depend on; events go on after it.
    Gap,
}

/// One change to a namespace: which key (none for `Cleared` and `Gap`), who
/// made it (the writer's origin id, if it set one) and what changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Event<K, V> {
    /// The entry concerned; `None` for `Cleared` and `Gap`.
    pub key: Option<K>,
    /// The writer's origin id, if it set one.
    pub origin: Option<String>,
    /// What changed.
    pub change: Change<V>,
}

/// A live stream of changes. Dropping it unsubscribes.
///
/// Items are `Result`s: an event whose payload does not decode as the
/// expected type is an `Err` naming the key, and the stream goes on. The
/// stream never ends by itself; after a dropped connection or a server
/// restart it reconnects, yields a `Change::Gap` and continues.
pub struct Subscription<T> {
    rx: mpsc::Receiver<Result<T>>,
    task: tokio::task::AbortHandle,
}

impl<T> Drop for Subscription<T> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl<T> std::fmt::Debug for Subscription<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("pending", &self.rx.len())
            .finish()
    }
}

impl<T> Stream for Subscription<T> {
    type Item = Result<T>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

impl<T> Subscription<T> {
    /// The next item, waiting for it.
    pub async fn recv(&mut self) -> Option<Result<T>> {
        self.rx.recv().await
    }

    /// The next item if one is already waiting.
    pub fn try_recv(&mut self) -> Option<Result<T>> {
        self.rx.try_recv().ok()
    }

    pub(crate) fn from_parts(
        rx: mpsc::Receiver<Result<T>>,
        task: tokio::task::AbortHandle,
    ) -> Self {
        Subscription { rx, task }
    }

    pub(crate) fn blocking_recv(&mut self) -> Option<Result<T>> {
        self.rx.blocking_recv()
    }
}

/// What to listen to: exact channels and channel patterns.
#[derive(Debug, Clone, Default)]
pub(crate) struct Target {
    pub channels: Vec<String>,
    pub patterns: Vec<String>,
}

impl Target {
    /// Events of keys matching `pattern` (a glob on the key), and namespace-wide
    /// ones; with `expiry`, keyspace notifications of expired entries too.
    pub(crate) fn pattern(ns: &Namespace, pattern: &str, expiry_db: Option<i64>) -> Target {
        let mut target = Target {
            channels: vec![ns.event_channel().to_owned()],
            patterns: vec![format!(
                "{}:{pattern}",
                crate::escape_glob(ns.event_channel())
            )],
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
        };
        for key in keys {
            target.channels.push(ns.key_channel(key));
            if let Some(db) = expiry_db {
                target
                    .channels
                    .push(format!("__keyspace@{db}__:{}", ns.entry_key(key)));
            }
        }
        target
    }

    /// Events of one key, and namespace-wide ones.
    pub(crate) fn key(ns: &Namespace, key: &str, expiry_db: Option<i64>) -> Target {
        let mut target = Target {
            channels: vec![ns.event_channel().to_owned(), ns.key_channel(key)],
            patterns: Vec::new(),
        };
        if let Some(db) = expiry_db {
            target
                .channels
                .push(format!("__keyspace@{db}__:{}", ns.entry_key(key)));
        }
        target
    }
}

/// Whether expired-key notifications reach subscribers: asks the server, and
/// switches them on when the store is allowed to. Returns the database number
/// to listen on, or `None` when expiries will not be reported.
pub(crate) async fn expiry_db(store: &Store) -> Option<i64> {
    let mut conn = store.connection();
    let current: std::collections::HashMap<String, String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("notify-keyspace-events")
        .query_async(&mut conn)
        .await
        .ok()?;
    let flags = current
        .get("notify-keyspace-events")
        .cloned()
        .unwrap_or_default();
    let on = flags.contains('K') && (flags.contains('x') || flags.contains('A'));
    if on {
        return Some(store.db());
    }
    if !store.settings().enable_expiry_events {
        return None;
    }
    let mut wanted = flags;
    for flag in ['K', 'x'] {
        if !wanted.contains(flag) {
            wanted.push(flag);
        }
    }
    let set: redis::RedisResult<()> = redis::cmd("CONFIG")
        .arg("SET")
        .arg("notify-keyspace-events")
        .arg(wanted)
        .query_async(&mut conn)
        .await;
    set.ok().map(|()| store.db())
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
    let (tx, rx) = mpsc::channel(CAPACITY);
    let (ready_tx, ready_rx) = oneshot::channel();
    let connection = Connection {
        store: store.clone(),
        target,
        node_key: ns.index_key().to_owned(),
    };
    let task = tokio::spawn(run(connection, ns.clone(), decode, tx, ready_tx));
    let fail = |source| Error::Redis {
        operation: "subscribe",
        namespace: ns.name().to_owned(),
        source,
    };
    match ready_rx.await {
        Ok(Ok(())) => Ok(Subscription {
            rx,
            task: task.abort_handle(),
        }),
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
}

/// The reading task of a subscription.
async fn run<T, F>(
    connection: Connection,
    ns: Namespace,
    mut decode: F,
    tx: mpsc::Sender<Result<T>>,
    ready: oneshot::Sender<redis::RedisResult<()>>,
) where
    F: FnMut(RawEvent) -> Option<Result<T>>,
{
    let mut messages = match connection.connect().await {
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
        let next = tokio::select! {
            next = messages.next() => next,
            () = tx.closed() => return,
        };
        let item = match next {
            Some(msg) => to_raw(&ns, &msg).and_then(|raw| match raw {
                Ok(raw) => decode(raw),
                Err(e) => Some(Err(e)),
            }),
            None => {
                // The connection is gone: reconnect, resubscribe, report the gap.
                match connection.reconnect(&tx).await {
                    Some(fresh) => messages = fresh,
                    None => return,
                }
                decode(RawEvent {
                    key: None,
                    origin: None,
                    kind: RawKind::Gap,
                })
            }
        };
        if let Some(item) = item {
            if tx.send(item).await.is_err() {
                return;
            }
        }
    }
}

impl Connection {
    async fn connect(&self) -> redis::RedisResult<PubSubStream> {
        let timeout = self
            .store
            .settings()
            .connection_timeout
            .unwrap_or(Duration::from_secs(3600));
        let client = self.store.node_client(&self.node_key).await?;
        let connecting = client.get_async_pubsub();
        let mut pubsub = tokio::time::timeout(timeout, connecting)
            .await
            .map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "connecting for pub/sub timed out",
                )
            })??;
        if !self.target.channels.is_empty() {
            pubsub.subscribe(&self.target.channels).await?;
        }
        if !self.target.patterns.is_empty() {
            pubsub.psubscribe(&self.target.patterns).await?;
        }
        Ok(pubsub.into_on_message())
    }

    /// Retries with backoff until connected again; `None` if the subscriber
    /// went away meanwhile.
    async fn reconnect<T>(&self, tx: &mpsc::Sender<T>) -> Option<PubSubStream> {
        let settings = self.store.settings();
        let mut delay = settings.min_retry_delay;
        loop {
            if tx.is_closed() {
                return None;
            }
            if let Ok(messages) = self.connect().await {
                return Some(messages);
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(settings.max_retry_delay);
        }
    }
}

/// A pub/sub message as a raw event; `None` for messages to ignore.
fn to_raw(ns: &Namespace, msg: &redis::Msg) -> Option<Result<RawEvent>> {
    let channel = msg.get_channel_name();
    if let Some(rest) = channel.strip_prefix("__keyspace@") {
        let entry_key = rest.split_once("__:")?.1;
        let key = ns.member_of(entry_key)?;
        let is_expiry = msg.get_payload_bytes() == b"expired";
        return is_expiry.then(|| {
            Ok(RawEvent {
                key: Some(key.to_owned()),
                origin: None,
                kind: RawKind::Expired,
            })
        });
    }
    Some(event::parse(msg.get_payload_bytes()).map_err(|reason| {
        Error::Decode {
            namespace: ns.name().to_owned(),
            key: channel
                .strip_prefix(ns.event_channel())
                .and_then(|rest| rest.strip_prefix(':'))
                .unwrap_or_default()
                .to_owned(),
            expected: "a change event (wire format v1)",
            reason,
        }
    }))
}

/// Types a raw event for a dict of `K` and `V`, naming the key on failure.
pub(crate) fn typed<K, V>(namespace: &str, raw: RawEvent) -> Result<Event<K, V>>
where
    K: crate::DictKey,
    V: serde::de::DeserializeOwned,
{
    let key = match raw.key {
        Some(text) => Some(crate::dict::parse_key::<K>(namespace, text)?),
        None => None,
    };
    // A parsed key's text is the text it was parsed from (one canonical form).
    let change = raw.kind.typed(|reason| Error::Decode {
        namespace: namespace.to_owned(),
        key: key
            .as_ref()
            .map(|k| k.key_text().into_owned())
            .unwrap_or_default(),
        expected: std::any::type_name::<V>(),
        reason,
    })?;
    Ok(Event {
        key,
        origin: raw.origin,
        change,
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
