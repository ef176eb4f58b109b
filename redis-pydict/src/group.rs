//! Consumer groups on the durable log: the changes of `{ns}#log` shared out
//! among the consumers of a named group (a Redis Stream consumer group), each
//! change handled by one of them, acknowledged once handled, and handed to
//! another consumer if its consumer dies before acknowledging it.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use redis::aio::MultiplexedConnection;
use tokio::sync::{mpsc, oneshot};

use crate::durable::{self, LogId, StartFrom};
use crate::error::{Error, Result};
use crate::event::{self, RawEvent};
use crate::namespace::Namespace;
use crate::space::Space;
use crate::store::Store;
use crate::subscription::{self, Feed, Subscription};

/// How long a change may stay delivered and unacknowledged before another
/// consumer of the group may claim it (see [`GroupOptions::claim_idle`]).
pub const DEFAULT_CLAIM_IDLE: Duration = Duration::from_secs(30);
/// How many times a change is delivered before it is parked (see
/// [`GroupOptions::max_deliveries`]).
pub const DEFAULT_MAX_DELIVERIES: u64 = 5;
/// The approximate cap of the dead-letter stream `{ns}#dead` (see
/// [`GroupOptions::dead_letter_cap`]).
pub const DEFAULT_DEAD_LETTER_CAP: u64 = 10_000;

/// Entries read or claimed per round trip (fewer when the subscription
/// buffer holds fewer).
const BATCH: usize = 500;
/// The longest blocking wait for new entries before it is renewed.
const BLOCK: Duration = Duration::from_secs(2);
/// Acknowledgements sent per `XACK`.
const ACK_BATCH: usize = 1000;
/// Attempts at an `XACK` that fails on connection trouble once nothing can
/// ask for more acknowledgements (the entries stay pending and are claimed).
const ACK_ATTEMPTS_AFTER_CLOSE: u32 = 10;

/// How a consumer group subscription behaves: where a new group starts, when
/// the changes of a dead consumer are claimed, when a change is poison.
///
/// ```
/// use std::time::Duration;
/// use redis_pydict::{GroupOptions, StartFrom};
/// let options = GroupOptions::new()
///     .start(StartFrom::Beginning) // a group created now starts at the oldest change
///     .claim_idle(Duration::from_secs(60)) // handling never takes longer than this
///     .max_deliveries(3);
/// # let _ = options;
/// ```
#[derive(Debug, Clone)]
pub struct GroupOptions {
    start: StartFrom,
    claim_idle: Duration,
    max_deliveries: u64,
    dead_letter_cap: u64,
}

impl Default for GroupOptions {
    fn default() -> Self {
        GroupOptions {
            start: StartFrom::Now,
            claim_idle: DEFAULT_CLAIM_IDLE,
            max_deliveries: DEFAULT_MAX_DELIVERIES,
            dead_letter_cap: DEFAULT_DEAD_LETTER_CAP,
        }
    }
}

impl GroupOptions {
    /// The defaults: a new group starts now, claims after
    /// [`DEFAULT_CLAIM_IDLE`], parks after [`DEFAULT_MAX_DELIVERIES`].
    pub fn new() -> Self {
        GroupOptions::default()
    }

    /// Where the group starts if it does not exist yet (`XGROUP CREATE`):
    /// `Now` (the default: changes made from now on), `Beginning` (every
    /// change still in the log) or `After(id)`. A group that exists goes on
    /// from where it is, whatever this says.
    pub fn start(mut self, from: StartFrom) -> Self {
        self.start = from;
        self
    }

    /// How long a change may stay delivered and unacknowledged before a
    /// consumer of the group claims it for itself (its consumer is presumed
    /// dead). Make it longer than the longest handling of a change: a change
    /// still being handled when it passes is handled again elsewhere. Claims
    /// are looked for every half of it (at least every 50 ms, at most every
    /// 10 s). Default [`DEFAULT_CLAIM_IDLE`].
    pub fn claim_idle(mut self, idle: Duration) -> Self {
        self.claim_idle = idle.max(Duration::from_millis(1));
        self
    }

    /// How many times a change is delivered at most. A change delivered that
    /// many times and still unacknowledged is not delivered again when it
    /// is next claimed: it is parked (copied to `{ns}#dead`, then
    /// acknowledged) and reported as an [`Error::Parked`] item. At least 1;
    /// default [`DEFAULT_MAX_DELIVERIES`].
    pub fn max_deliveries(mut self, max: u64) -> Self {
        self.max_deliveries = max.max(1);
        self
    }

    /// The approximate cap (`XADD MAXLEN ~`) of the dead-letter stream
    /// `{ns}#dead`, shared by every group of the namespace. Default
    /// [`DEFAULT_DEAD_LETTER_CAP`].
    pub fn dead_letter_cap(mut self, cap: u64) -> Self {
        self.dead_letter_cap = cap;
        self
    }

    /// How often idle pending changes are looked for.
    fn claim_every(&self) -> Duration {
        (self.claim_idle / 2).clamp(Duration::from_millis(50), Duration::from_secs(10))
    }
}

/// What the acknowledging task is asked to do.
enum AckRequest {
    /// Acknowledge this change (`XACK`), with others in a batch.
    Ack(LogId),
    /// Answer once every acknowledgement asked for before is on the server.
    Flush(oneshot::Sender<Result<()>>),
}

/// One change handed to one consumer of a group, with its log id and how
/// many times it has been delivered.
///
/// Acknowledge it once handled: `delivery.ack().await` sends the `XACK` and
/// returns once the server has it; dropping the delivery acknowledges it too,
/// in the background (a task of the subscription sends the acknowledgements
/// of dropped deliveries in batches, as soon as the previous batch is done;
/// [`GroupSubscription::flush_acks`] waits for them). A delivery dropped by
/// a panic (while the thread unwinds) is not acknowledged, nor one given up
/// with [`Delivery::release`]: it stays pending and is delivered again,
/// possibly to another consumer, once [`GroupOptions::claim_idle`] passes.
/// An acknowledgement is as durable as the server's persistence makes it.
///
/// The change itself is reached through `Deref` or [`Delivery::event`].
#[must_use = "dropping a delivery acknowledges it"]
pub struct Delivery<T> {
    id: LogId,
    deliveries: u64,
    event: T,
    /// Set once handed to the consumer; taken by an ack or a release. A
    /// delivery dropped before it reached the consumer acknowledges nothing.
    acker: Option<mpsc::UnboundedSender<AckRequest>>,
}

impl<T: std::fmt::Debug> std::fmt::Debug for Delivery<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("id", &self.id)
            .field("deliveries", &self.deliveries)
            .field("event", &self.event)
            .finish()
    }
}

impl<T> std::ops::Deref for Delivery<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.event
    }
}

impl<T> Drop for Delivery<T> {
    fn drop(&mut self) {
        if let Some(acker) = self.acker.take() {
            if !std::thread::panicking() {
                // Fails only when the acknowledging task is gone (its runtime
                // shut down): the change then stays pending and is claimed.
                let _ = acker.send(AckRequest::Ack(self.id));
            }
        }
    }
}

impl<T> Delivery<T> {
    /// The change's id in the durable log (`LogId::ZERO` for a `Gap`).
    pub fn id(&self) -> LogId {
        self.id
    }

    /// How many times the change has been delivered to the group: 1 the
    /// first time, more after its consumer died (or released it) and it was
    /// claimed (0 for a `Gap`).
    pub fn deliveries(&self) -> u64 {
        self.deliveries
    }

    /// The change.
    pub fn event(&self) -> &T {
        &self.event
    }

    /// Acknowledges the change and waits until the server has the `XACK`
    /// (with every acknowledgement queued before it): from then on it is
    /// delivered to no consumer of the group again. An `Err` (connection
    /// trouble that outlasted the retries, a permission missing) means it
    /// may not be acknowledged: it may be delivered again.
    pub async fn ack(mut self) -> Result<()> {
        match self.ack_request() {
            Some(done) => ack_outcome(done.await),
            None => Ok(()),
        }
    }

    /// Leaves the change unacknowledged: it is delivered again (to this
    /// consumer or another) once [`GroupOptions::claim_idle`] passes, and
    /// parked after [`GroupOptions::max_deliveries`] deliveries. For a
    /// handler that failed and wants the change retried.
    pub fn release(mut self) {
        self.acker = None;
    }

    /// Queues the acknowledgement and a request to be told when it is on
    /// the server; `None` when there is nothing to acknowledge.
    pub(crate) fn ack_request(&mut self) -> Option<oneshot::Receiver<Result<()>>> {
        let acker = self.acker.take()?;
        let (done, wait) = oneshot::channel();
        let _ = acker.send(AckRequest::Ack(self.id));
        let _ = acker.send(AckRequest::Flush(done));
        Some(wait)
    }
}

/// The outcome of an awaited acknowledgement.
pub(crate) fn ack_outcome(
    answer: std::result::Result<Result<()>, oneshot::error::RecvError>,
) -> Result<()> {
    answer.unwrap_or_else(|_| {
        Err(Error::Redis {
            operation: "ack",
            namespace: String::new(),
            source: std::io::Error::other("the acknowledging task ended (its runtime shut down)")
                .into(),
        })
    })
}

/// Removes a consumer from a group, atomically: when it holds pending
/// (delivered, unacknowledged) changes, either refuses (no heir: replies
/// `{1, pending}`) or first moves them to the heir, marked idle for
/// `ARGV[4]` ms so that the group's next claim pass takes them, without
/// counting a delivery (`XCLAIM ... IDLE ... JUSTID`). Replies `{0, 0}` when
/// there is no such consumer, `{2, moved}` once it is removed.
/// KEYS[1]: the log; ARGV: group, consumer, heir (`""`: none), idle ms.
const REMOVE_CONSUMER: &str = r#"
local log, group, consumer, heir = KEYS[1], ARGV[1], ARGV[2], ARGV[3]
local pending
for _, listed in ipairs(redis.call('XINFO', 'CONSUMERS', log, group)) do
  local name, count
  for i = 1, #listed, 2 do
    if listed[i] == 'name' then name = listed[i + 1] end
    if listed[i] == 'pending' then count = listed[i + 1] end
  end
  if name == consumer then pending = count end
end
if pending == nil then return {0, 0} end
if pending > 0 and heir == '' then return {1, pending} end
local moved, from = 0, '-'
while true do
  local entries = redis.call('XPENDING', log, group, from, '+', 1000, consumer)
  if #entries == 0 then break end
  local claim = {'XCLAIM', log, group, heir, 0}
  for _, entry in ipairs(entries) do claim[#claim + 1] = entry[1] end
  from = '(' .. entries[#entries][1]
  claim[#claim + 1] = 'IDLE'
  claim[#claim + 1] = ARGV[4]
  claim[#claim + 1] = 'JUSTID'
  moved = moved + #redis.call(unpack(claim))
end
redis.call('XGROUP', 'DELCONSUMER', log, group, consumer)
return {2, moved}
"#;

static REMOVE_CONSUMER_SCRIPT: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(REMOVE_CONSUMER));

/// Removes `member.consumer` from `member.group` (`XGROUP DELCONSUMER`),
/// never losing its pending changes: with no `heir`, a consumer holding
/// some is left alone ([`Error::ConsumerHasPending`]); with one, they are
/// first handed to the heir, idle for `idle` (see [`REMOVE_CONSUMER`]).
/// Returns whether the consumer existed and how many changes were handed.
pub(crate) async fn remove_consumer(
    store: &Store,
    ns: &Namespace,
    member: Member<'_>,
    heir: Option<&str>,
    idle: Duration,
) -> Result<(bool, u64)> {
    if member.consumer.is_empty() || member.group.is_empty() {
        return Err(Error::Config(format!(
            "the group or consumer name given to remove a consumer of namespace {:?} is empty",
            ns.name()
        )));
    }
    let (outcome, count): (u8, u64) = REMOVE_CONSUMER_SCRIPT
        .key(ns.log_key())
        .arg(member.group)
        .arg(member.consumer)
        .arg(heir.unwrap_or(""))
        .arg(idle.as_millis().max(1) as u64)
        .invoke_async(&mut store.connection())
        .await
        .map_err(|source| Error::Redis {
            operation: "remove_group_consumer",
            namespace: ns.name().to_owned(),
            source,
        })?;
    match outcome {
        0 => Ok((false, 0)),
        1 => Err(Error::ConsumerHasPending {
            namespace: ns.name().to_owned(),
            group: member.group.to_owned(),
            consumer: member.consumer.to_owned(),
            pending: count,
        }),
        _ => Ok((true, count)),
    }
}

/// Removes `member.consumer` from `member.group` if it holds no pending
/// changes (see [`crate::Dict::remove_group_consumer`]). Traced as an
/// operation, for dicts and views alike.
pub(crate) async fn remove_idle_consumer(
    store: &Store,
    ns: &Namespace,
    member: Member<'_>,
) -> Result<bool> {
    crate::observe::op("remove_group_consumer", ns, 0, async {
        let (existed, _) = remove_consumer(store, ns, member, None, Duration::ZERO).await?;
        Ok(existed)
    })
    .await
}

/// Deletes consumer group `group` of the namespace's durable log
/// (`XGROUP DESTROY`; see [`crate::Dict::destroy_group`]). `Ok(false)`: there
/// was no such group (or no log). Traced as an operation, for dicts and
/// views alike.
pub(crate) async fn destroy(space: &Space, group: &str) -> Result<bool> {
    crate::observe::op("destroy_group", space.namespace(), 0, async {
        let log = space.namespace().log_key();
        if group.is_empty() {
            return Err(Error::Config(format!(
                "the group name given to destroy a group of namespace {:?} is empty",
                space.namespace().name()
            )));
        }
        let destroyed: redis::RedisResult<u8> = redis::cmd("XGROUP")
            .arg("DESTROY")
            .arg(log)
            .arg(group)
            .query_async(&mut space.conn())
            .await;
        match destroyed {
            Ok(n) => Ok(n == 1),
            // No log at all: no group either.
            Err(e) if e.to_string().contains("requires the key to exist") => Ok(false),
            Err(e) if e.code() == Some("WRONGTYPE") => {
                Err(space.foreign(log, "destroy_group").await)
            }
            Err(e) => Err(space.fail("destroy_group")(e)),
        }
    })
    .await
}

/// A consumer's share of a group's changes: a stream of [`Delivery`] items
/// (see [`crate::Dict::subscribe_group`]). Dropping it stops reading; the
/// changes it had read and not yet handed on stay pending and are claimed by
/// the group's other consumers (or by this consumer when it subscribes
/// again under the same name).
///
/// Items are `Result`s, as in [`Subscription`]: an `Err` for a change that
/// was parked ([`Error::Parked`]: it did not decode, or was delivered
/// [`GroupOptions::max_deliveries`] times), or for an acknowledgement that
/// failed, and the stream goes on; an `Err` for an error that retrying
/// cannot cure (a permission missing, the log holding the wrong type), after
/// which the stream ends. A `Gap` item (with `LogId::ZERO`; not to be
/// acknowledged) says changes may have been lost, and delivery goes on:
/// - the group was lost (the log deleted, flushed, or lost in a restart
///   without persistence): it was created again at the start of the log as
///   it now is;
/// - the group fell behind the log's cap: changes it had not been delivered
///   were trimmed. Each read of new changes checks, in the same transaction
///   as the `XREADGROUP` (no extra round trip), that the group's last
///   delivered change is still in the log; if not, the consumer whose read
///   passes the hole gets one `Gap` before the changes after it (the other
///   consumers of the group get none). Like durable subscriptions, it may
///   also fire when only the last delivered change itself was trimmed
///   (the group was a whole cap behind). Blind spots: changes removed by
///   `XDEL` after others that are still there, and a group whose position
///   was never a change of the log (`XGROUP SETID`, or a group created by
///   `StartFrom::Now` on a log emptied by `XTRIM MAXLEN 0`); a group
///   at `0-0` (that has delivered nothing since it was created on an empty
///   log or at `StartFrom::Beginning`) reports nothing.
///
/// Memory is bounded as for other subscriptions
/// ([`crate::StoreBuilder::subscription_buffer`]).
///
/// ```
/// use std::time::Duration;
/// use futures::StreamExt;
/// use redis_pydict::{Error, GroupOptions, StartFrom, Store};
///
/// # #[tokio::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let server = redis_pydict_test::RedisServer::start();
/// # let url = server.url();
/// let store = Store::connect(&url).await?;
/// let orders = store.dict::<String, u32>("orders")?.with_durable_log(100_000);
/// let options = GroupOptions::new()
///     .start(StartFrom::Beginning) // a new group starts at the oldest change
///     .claim_idle(Duration::from_secs(60)) // unacknowledged this long: another worker gets it
///     .max_deliveries(5); // then it is parked in {orders}#dead
/// // In each worker process, under a name of its own:
/// let mut work = orders.subscribe_group_with("billing", "worker-1", &options).await?;
/// orders.set("a", &1).await?;
/// while let Some(item) = work.next().await {
///     match item {
///         Ok(delivery) => {
///             println!("{:?}: {:?} (delivery {})", delivery.key, delivery.change, delivery.deliveries());
///             delivery.ack().await?; // or drop it: acknowledged in the background
///             # break;
///         }
///         Err(Error::Parked { id, reason, .. }) => eprintln!("parked {id}: {reason}"),
///         Err(e) => return Err(e.into()),
///     }
/// }
/// # Ok(()) }
/// ```
#[must_use = "dropping a subscription stops reading"]
pub struct GroupSubscription<T> {
    inner: Subscription<Delivery<T>>,
    acks: mpsc::UnboundedSender<AckRequest>,
    /// For [`GroupSubscription::retire_consumer`].
    store: Store,
    ns: Namespace,
    group: String,
    consumer: String,
    claim_idle: Duration,
}

impl<T> std::fmt::Debug for GroupSubscription<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupSubscription")
            .field("inner", &self.inner)
            .finish()
    }
}

impl<T> GroupSubscription<T> {
    /// Arms a delivery taken from the buffer: from now on, dropping it
    /// acknowledges it.
    fn arm(&self, item: Result<Delivery<T>>) -> Result<Delivery<T>> {
        item.map(|mut delivery| {
            if delivery.id != LogId::ZERO {
                delivery.acker = Some(self.acks.clone());
            }
            delivery
        })
    }

    /// The next delivery, waiting for it.
    pub async fn recv(&mut self) -> Option<Result<Delivery<T>>> {
        futures::future::poll_fn(|cx| self.poll_next_unpin(cx)).await
    }

    /// The next delivery if one is already waiting.
    pub fn try_recv(&mut self) -> Option<Result<Delivery<T>>> {
        let item = self.inner.try_recv()?;
        Some(self.arm(item))
    }

    /// Waits until every acknowledgement asked for so far (by
    /// [`Delivery::ack`] or by dropping deliveries) is on the server.
    pub async fn flush_acks(&self) -> Result<()> {
        ack_outcome(self.flush_request().await)
    }

    /// Retires `consumer` of this subscription's group for good (a worker
    /// that will not come back): hands the changes it holds unacknowledged
    /// to this subscription's consumer, marked idle for this
    /// subscription's [`GroupOptions::claim_idle`] so that the group's next
    /// claim pass (this consumer's within half of it, at most 10 s; or
    /// another's) delivers them again, their delivery count unchanged; then
    /// removes it from the group (`XGROUP DELCONSUMER`). One atomic
    /// script: nothing happens between the hand-over and the removal, so no
    /// change it holds is lost (a consumer that is in fact still running
    /// joins again at its next read, under the same name, with nothing).
    /// If the script is denied `XGROUP DELCONSUMER` (ACL), the changes are
    /// already handed over and the consumer stays. Returns how many changes
    /// were handed over (0 also when there was no such consumer; changes
    /// trimmed from the log meanwhile are not counted: they are dropped
    /// from the group as a claim meets them). Retiring this subscription's own
    /// consumer is an [`Error::Config`]: drop the subscription instead, and
    /// call [`crate::Dict::remove_group_consumer`] once its changes are
    /// claimed. Needs `+xinfo|consumers +xgroup|delconsumer` (ACL).
    ///
    /// ```
    /// use redis_pydict::Store;
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = redis_pydict_test::RedisServer::start();
    /// let store = Store::connect(&server.url()).await?;
    /// let orders = store.dict::<String, u32>("orders")?.with_durable_log(100_000);
    /// let work = orders.subscribe_group("billing", "worker-2").await?;
    /// // worker-1 was decommissioned: its unfinished changes come to worker-2.
    /// let handed = work.retire_consumer("worker-1").await?;
    /// assert_eq!(handed, 0); // it had none (nor ever joined, here)
    /// # Ok(()) }
    /// ```
    pub async fn retire_consumer(&self, consumer: &str) -> Result<u64> {
        if consumer == self.consumer {
            return Err(Error::Config(format!(
                "consumer {consumer:?} of group {:?} of namespace {:?} cannot retire itself: drop its subscription, then remove it once its changes are claimed",
                self.group,
                self.ns.name()
            )));
        }
        let member = Member {
            group: &self.group,
            consumer,
        };
        let heir = Some(self.consumer.as_str());
        let (_, handed) =
            remove_consumer(&self.store, &self.ns, member, heir, self.claim_idle).await?;
        Ok(handed)
    }

    /// Asks the acknowledging task to say when what is queued is done.
    pub(crate) fn flush_request(&self) -> oneshot::Receiver<Result<()>> {
        let (done, wait) = oneshot::channel();
        let _ = self.acks.send(AckRequest::Flush(done));
        wait
    }
}

impl<T> Stream for GroupSubscription<T> {
    type Item = Result<Delivery<T>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.inner.poll_next_unpin(cx) {
            Poll::Ready(Some(item)) => Poll::Ready(Some(self.arm(item))),
            other => other,
        }
    }
}

/// A group of the durable log and one of its consumers.
pub(crate) struct Member<'a> {
    pub group: &'a str,
    pub consumer: &'a str,
}

/// Joins `member.group` (creating it if need be) as `member.consumer` and
/// starts delivering. `decode` types raw events (`None` filters one out: it
/// is acknowledged at once).
pub(crate) async fn start<T, F>(
    store: &Store,
    ns: &Namespace,
    member: Member<'_>,
    options: &GroupOptions,
    decode: F,
) -> Result<GroupSubscription<T>>
where
    T: Send + 'static,
    F: FnMut(RawEvent) -> Option<Result<T>> + Send + 'static,
{
    for (what, name) in [("group", member.group), ("consumer", member.consumer)] {
        if name.is_empty() {
            return Err(Error::Config(format!(
                "the {what} name of a consumer group subscription of namespace {:?} is empty",
                ns.name()
            )));
        }
    }
    let (acks, ack_queue) = mpsc::unbounded_channel();
    let (ack_errors, ack_failures) = mpsc::unbounded_channel();
    let limit = subscription::limit(store);
    let mut reader = Reader {
        store: store.clone(),
        ns: ns.clone(),
        group: member.group.to_owned(),
        consumer: member.consumer.to_owned(),
        options: options.clone(),
        decode,
        conn: None,
        batch: BATCH.min(limit.events),
        acks: acks.clone(),
        ack_failures,
        recovering: Some(LogId::ZERO),
        next_claim: Instant::now(),
        caught_up: false,
        position: LogId::ZERO,
    };
    reader
        .create_group(options.start)
        .await
        .map_err(|e| reader.fail("subscribe_group", e))?;
    let acker = Acker {
        store: store.clone(),
        ns: ns.clone(),
        group: member.group.to_owned(),
        errors: ack_errors,
    };
    tokio::spawn(acker.run(ack_queue));
    let (feed, buffer) = subscription::buffer(limit);
    let task = tokio::spawn(reader.run(feed));
    Ok(GroupSubscription {
        inner: Subscription::from_parts(buffer, task.abort_handle()),
        acks,
        store: store.clone(),
        ns: ns.clone(),
        group: member.group.to_owned(),
        consumer: member.consumer.to_owned(),
        claim_idle: options.claim_idle,
    })
}

/// The task that sends acknowledgements, in batches. It ends once the
/// subscription and every delivery that could still ask for one are gone.
struct Acker {
    store: Store,
    ns: Namespace,
    group: String,
    /// Failures to report on the subscription's stream.
    errors: mpsc::UnboundedSender<redis::RedisError>,
}

impl Acker {
    async fn run(self, mut queue: mpsc::UnboundedReceiver<AckRequest>) {
        let mut ids: Vec<LogId> = Vec::new();
        let mut waiting = Vec::new();
        while let Some(first) = queue.recv().await {
            let mut next = Some(first);
            while let Some(request) = next {
                match request {
                    AckRequest::Ack(id) => ids.push(id),
                    AckRequest::Flush(done) => waiting.push(done),
                }
                next = if ids.len() < ACK_BATCH {
                    queue.try_recv().ok()
                } else {
                    None
                };
            }
            let outcome = self.xack(&ids, &queue).await;
            if let Err(e) = &outcome {
                let _ = self.errors.send(e.clone());
            }
            ids.clear();
            for done in waiting.drain(..) {
                let answer = outcome.clone().map_err(|source| Error::Redis {
                    operation: "ack",
                    namespace: self.ns.name().to_owned(),
                    source,
                });
                let _ = done.send(answer);
            }
        }
    }

    /// `XACK`s `ids`, retrying connection trouble with backoff (a bounded
    /// number of times once nobody can ask for more).
    async fn xack(
        &self,
        ids: &[LogId],
        queue: &mpsc::UnboundedReceiver<AckRequest>,
    ) -> redis::RedisResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let settings = self.store.settings();
        let mut delay = settings.min_retry_delay;
        let mut attempts_after_close = 0;
        loop {
            let mut conn = self.store.connection();
            let sent: redis::RedisResult<u64> = redis::cmd("XACK")
                .arg(self.ns.log_key())
                .arg(&self.group)
                .arg(ids.iter().map(LogId::to_string).collect::<Vec<_>>())
                .query_async(&mut conn)
                .await;
            match sent {
                Ok(_) => return Ok(()),
                Err(e) if subscription::is_transient(&e) => {
                    if queue.is_closed() {
                        attempts_after_close += 1;
                        if attempts_after_close >= ACK_ATTEMPTS_AFTER_CLOSE {
                            return Err(e);
                        }
                    }
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(settings.max_retry_delay);
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// An entry of the log as read or claimed by a consumer.
struct Entry {
    id: LogId,
    /// How many times it has been delivered, this delivery included.
    deliveries: u64,
    fields: Vec<(Vec<u8>, Vec<u8>)>,
}

/// `XREADGROUP` reply: per stream, its entries (fields kept as bytes so
/// that a foreign entry cannot fail the whole read).
type GroupRead = Option<Vec<(String, Vec<(String, Vec<(Vec<u8>, Vec<u8>)>)>)>>;
/// `XCLAIM` reply (an entry deleted from the log is nil or left out).
type Claimed = Vec<Option<(String, Vec<(Vec<u8>, Vec<u8>)>)>>;
/// `XPENDING` extended reply: (id, consumer, idle ms, deliveries).
type Pending = Vec<(String, String, u64, u64)>;

/// What one step of the reader found.
struct Batch {
    /// The group lost changes before these entries (see [`Reader::lost`]):
    /// a `Gap` goes first.
    gap: bool,
    entries: Vec<Entry>,
}

/// Whether the group may have lost changes it was never delivered, given
/// its position (`last-delivered-id`) just before a read and the oldest
/// entry of the log: the entry at the position is no longer in the log (the
/// oldest is past it), so the log was trimmed past the group, or replaced.
/// The same test as durable subscriptions make (`durable.rs`): it also
/// fires, once, when only the entry at the position was trimmed and the
/// one after it is still there (the group was a whole cap behind).
/// Redis's own counters cannot do better: `max-deleted-entry-id` grows with
/// `XDEL` only, not with trimming, and a group's `entries-read` (so `lag`)
/// goes wrong once the log was trimmed past it.
fn lost(position: LogId, oldest: Option<LogId>) -> bool {
    position != LogId::ZERO && oldest.is_some_and(|oldest| oldest > position)
}

/// The error of a reply that does not have the expected shape.
fn unexpected(command: &str, what: &str) -> redis::RedisError {
    (
        redis::ErrorKind::UnexpectedReturnType,
        "unexpected reply",
        format!("{command}: {what}"),
    )
        .into()
}

/// The fields of an `XINFO` reply (a map, or a flat array of pairs).
fn info_fields(
    command: &str,
    reply: redis::Value,
) -> redis::RedisResult<std::collections::HashMap<String, redis::Value>> {
    redis::from_redis_value(reply).map_err(|_| unexpected(command, "not a map of fields"))
}

/// A stream id in a reply, `None` for nil.
fn reply_id(command: &str, value: redis::Value) -> redis::RedisResult<Option<LogId>> {
    let text: Option<String> =
        redis::from_redis_value(value).map_err(|_| unexpected(command, "an id is not text"))?;
    text.map(|t| {
        t.parse()
            .map_err(|_| unexpected(command, "an id is not <ms>-<seq>"))
    })
    .transpose()
}

/// The `last-delivered-id` of `group` in an `XINFO GROUPS` reply.
fn group_position(reply: redis::Value, group: &str) -> redis::RedisResult<LogId> {
    let groups: Vec<redis::Value> =
        redis::from_redis_value(reply).map_err(|_| unexpected("XINFO GROUPS", "not a list"))?;
    for listed in groups {
        let mut fields = info_fields("XINFO GROUPS", listed)?;
        let name: Option<String> = fields
            .remove("name")
            .and_then(|n| redis::from_redis_value(n).ok());
        if name.as_deref() == Some(group) {
            let id = fields
                .remove("last-delivered-id")
                .unwrap_or(redis::Value::Nil);
            return reply_id("XINFO GROUPS", id)?
                .ok_or_else(|| unexpected("XINFO GROUPS", "no last-delivered-id"));
        }
    }
    Err(unexpected("XINFO GROUPS", "the group is not listed"))
}

/// The id of the oldest entry of the log in an `XINFO STREAM` reply
/// (`first-entry`), `None` when the log is empty.
fn oldest_entry(reply: redis::Value) -> redis::RedisResult<Option<LogId>> {
    let mut fields = info_fields("XINFO STREAM", reply)?;
    match fields.remove("first-entry") {
        Some(redis::Value::Array(entry)) => match entry.into_iter().next() {
            Some(id) => reply_id("XINFO STREAM", id),
            None => Ok(None),
        },
        _ => Ok(None),
    }
}

/// The reading task of a group subscription.
struct Reader<F> {
    store: Store,
    ns: Namespace,
    group: String,
    consumer: String,
    options: GroupOptions,
    decode: F,
    conn: Option<MultiplexedConnection>,
    batch: usize,
    acks: mpsc::UnboundedSender<AckRequest>,
    ack_failures: mpsc::UnboundedReceiver<redis::RedisError>,
    /// While this consumer's own pending changes (from an earlier life under
    /// the same name) are being taken back: the last one taken.
    recovering: Option<LogId>,
    /// When to look for idle pending changes next.
    next_claim: Instant,
    /// The last read returned less than a batch: the next one first waits
    /// for an entry after `position`.
    caught_up: bool,
    /// The group's position (`last-delivered-id`) as last seen.
    position: LogId,
}

/// True for the error of a read or claim on a group that does not exist
/// (`NOGROUP`), or of a blocked read whose log was deleted (`UNBLOCKED`).
fn is_no_group(e: &redis::RedisError) -> bool {
    matches!(e.code(), Some("NOGROUP" | "UNBLOCKED"))
}

impl<F, T> Reader<F>
where
    F: FnMut(RawEvent) -> Option<Result<T>> + Send + 'static,
    T: Send + 'static,
{
    fn fail(&self, operation: &'static str, source: redis::RedisError) -> Error {
        Error::Redis {
            operation,
            namespace: self.ns.name().to_owned(),
            source,
        }
    }

    async fn run(mut self, feed: Feed<Delivery<T>>) {
        let mut delay = self.store.settings().min_retry_delay;
        loop {
            if feed.is_closed() {
                return;
            }
            while let Ok(e) = self.ack_failures.try_recv() {
                if !feed.push_wait(Err(self.fail("ack", e)), 0).await {
                    return;
                }
            }
            let step = match self.step().await {
                Ok(batch) => {
                    if batch.gap && !self.push_gap(&feed, "group behind the log's cap").await {
                        return;
                    }
                    self.hand_on(batch.entries, &feed).await
                }
                Err(e) => Err(e),
            };
            match step {
                Ok(true) => delay = self.store.settings().min_retry_delay,
                Ok(false) => return,
                Err(e) if is_no_group(&e) => {
                    // The group is gone with its log (deleted, flushed, lost
                    // in a restart without persistence): make it again over
                    // the log as it now is, and say that changes may be lost.
                    if let Err(e) = self.create_group(StartFrom::Beginning).await {
                        if !subscription::is_transient(&e) {
                            let _ = feed
                                .push_wait(Err(self.fail("subscribe_group", e)), 0)
                                .await;
                            return;
                        }
                        self.conn = None;
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                    self.recovering = None;
                    self.caught_up = false;
                    if !self.push_gap(&feed, "log lost").await {
                        return;
                    }
                }
                Err(e) if subscription::is_transient(&e) => {
                    // Nothing is lost: what was read and not handed on stays
                    // pending, and is claimed once idle.
                    self.conn = None;
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(self.store.settings().max_retry_delay);
                }
                Err(e) => {
                    let _ = feed
                        .push_wait(Err(self.fail("subscribe_group", e)), 0)
                        .await;
                    return;
                }
            }
        }
    }

    /// Hands on a `Gap` (changes may have been lost). False once the
    /// consumer is gone.
    async fn push_gap(&mut self, feed: &Feed<Delivery<T>>, reason: &'static str) -> bool {
        crate::observe::gap(crate::observe::Source::Durable, Some(&self.ns), reason);
        match (self.decode)(subscription::gap_event()) {
            Some(item) => {
                let item = item.map(|event| Delivery {
                    id: LogId::ZERO,
                    deliveries: 0,
                    event,
                    acker: None,
                });
                feed.push_wait(item, 0).await
            }
            None => true,
        }
    }

    async fn connection(&mut self) -> redis::RedisResult<&mut MultiplexedConnection> {
        if self.conn.is_none() {
            self.conn = Some(durable::log_connection(&self.store, &self.ns, BLOCK).await?);
        }
        self.conn
            .as_mut()
            .ok_or_else(|| std::io::Error::other("no log connection").into())
    }

    /// `XGROUP CREATE ... MKSTREAM`; a group that exists already is fine.
    async fn create_group(&mut self, from: StartFrom) -> redis::RedisResult<()> {
        let start = match from {
            StartFrom::Beginning => "0".to_owned(),
            StartFrom::Now => "$".to_owned(),
            StartFrom::After(id) => id.to_string(),
        };
        let log_key = self.ns.log_key().to_owned();
        let group = self.group.clone();
        let conn = self.connection().await?;
        let created: redis::RedisResult<()> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(log_key)
            .arg(group)
            .arg(start)
            .arg("MKSTREAM")
            .query_async(conn)
            .await;
        match created {
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            other => other,
        }
    }

    /// The next entries to hand on: first this consumer's own pending ones
    /// (left by an earlier life), then by turns idle pending ones of any
    /// consumer and new ones.
    async fn step(&mut self) -> redis::RedisResult<Batch> {
        if let Some(after) = self.recovering {
            let (listed, last, entries) = self.claim(Some(after)).await?;
            self.recovering = (listed >= self.batch).then_some(last);
            return Ok(Batch {
                gap: false,
                entries,
            });
        }
        if Instant::now() >= self.next_claim {
            let (listed, _, entries) = self.claim(None).await?;
            if listed < self.batch {
                self.next_claim = Instant::now() + self.options.claim_every();
            }
            return Ok(Batch {
                gap: false,
                entries,
            });
        }
        self.read_new().await
    }

    /// Claims pending entries for this consumer: its own after `own`, or
    /// (`None`) any consumer's idle for `claim_idle`. Returns how many were
    /// listed, the last listed id, and the entries claimed (an entry another
    /// consumer claimed first, or deleted from the log, is not).
    async fn claim(
        &mut self,
        own: Option<LogId>,
    ) -> redis::RedisResult<(usize, LogId, Vec<Entry>)> {
        let log_key = self.ns.log_key().to_owned();
        let group = self.group.clone();
        let consumer = self.consumer.clone();
        let batch = self.batch;
        let idle_ms = self.options.claim_idle.as_millis().max(1) as u64;
        let conn = self.connection().await?;
        let mut list = redis::cmd("XPENDING");
        list.arg(&log_key).arg(&group);
        match own {
            Some(after) => {
                let from = if after == LogId::ZERO {
                    "-".to_owned()
                } else {
                    format!("({after}")
                };
                list.arg(from).arg("+").arg(batch).arg(&consumer);
            }
            None => {
                list.arg("IDLE").arg(idle_ms).arg("-").arg("+").arg(batch);
            }
        }
        let pending: Pending = list.query_async(&mut *conn).await?;
        let listed: Vec<(LogId, u64)> = pending
            .iter()
            .filter_map(|(id, _, _, count)| Some((id.parse().ok()?, *count)))
            .collect();
        let Some(&(last, _)) = listed.last() else {
            return Ok((0, LogId::ZERO, Vec::new()));
        };
        // The same minimum idle time as the listing: of two consumers
        // claiming one entry, only the first gets it.
        let min_idle = if own.is_some() { 0 } else { idle_ms };
        let claimed: Claimed = redis::cmd("XCLAIM")
            .arg(&log_key)
            .arg(&group)
            .arg(&consumer)
            .arg(min_idle)
            .arg(
                listed
                    .iter()
                    .map(|(id, _)| id.to_string())
                    .collect::<Vec<_>>(),
            )
            .query_async(&mut *conn)
            .await?;
        let entries = claimed
            .into_iter()
            .flatten()
            .filter_map(|(id, fields)| {
                let id: LogId = id.parse().ok()?;
                let before = listed.iter().find(|(l, _)| *l == id).map_or(0, |l| l.1);
                Some(Entry {
                    id,
                    deliveries: before + 1,
                    fields,
                })
            })
            .collect();
        Ok((pending.len(), last, entries))
    }

    /// New entries (`XREADGROUP ... >`), waiting a while for them when the
    /// last read found the log caught up, and whether the group lost changes
    /// (see [`Reader::lost`]).
    ///
    /// One round trip: when waiting, `XREAD BLOCK` for an entry after the
    /// group's position (it consumes nothing), then a transaction of
    /// `XINFO GROUPS`, `XINFO STREAM` and a non-blocking `XREADGROUP`. The
    /// transaction makes the check exact: nothing runs between the look at
    /// the group's position and the read that moves it.
    async fn read_new(&mut self) -> redis::RedisResult<Batch> {
        let log_key = self.ns.log_key().to_owned();
        let group = self.group.clone();
        let consumer = self.consumer.clone();
        let batch = self.batch;
        let block = BLOCK.min(self.options.claim_every());
        let wait_after = self.caught_up.then(|| self.position.to_string());
        let conn = self.connection().await?;
        let mut pipe = redis::pipe();
        if let Some(after) = wait_after {
            pipe.cmd("XREAD")
                .arg("COUNT")
                .arg(1)
                .arg("BLOCK")
                .arg(block.as_millis().max(1) as u64)
                .arg("STREAMS")
                .arg(&log_key)
                .arg(after)
                .ignore();
        }
        pipe.cmd("MULTI")
            .ignore()
            .cmd("XINFO")
            .arg("GROUPS")
            .arg(&log_key)
            .ignore()
            .cmd("XINFO")
            .arg("STREAM")
            .arg(&log_key)
            .ignore()
            .cmd("XREADGROUP")
            .arg("GROUP")
            .arg(&group)
            .arg(&consumer)
            .arg("COUNT")
            .arg(batch)
            .arg("STREAMS")
            .arg(&log_key)
            .arg(">")
            .ignore()
            .cmd("EXEC");
        let (replies,): (Vec<redis::Value>,) = pipe.query_async(conn).await?;
        let [groups, stream, read]: [redis::Value; 3] = replies
            .try_into()
            .map_err(|_| unexpected("EXEC", "not three replies"))?;
        // The read's error first: on a log that is gone it is NOGROUP (the
        // group is made again), where the XINFOs only say "no such key".
        let read: GroupRead = redis::from_redis_value(read.extract_error()?)?;
        let position = group_position(groups.extract_error()?, &group)?;
        let oldest = oldest_entry(stream.extract_error()?)?;
        let entries: Vec<Entry> = read
            .into_iter()
            .flatten()
            .flat_map(|(_, entries)| entries)
            .filter_map(|(id, fields)| {
                Some(Entry {
                    id: id.parse().ok()?,
                    deliveries: 1,
                    fields,
                })
            })
            .collect();
        let gap = lost(position, oldest);
        self.caught_up = entries.len() < batch;
        self.position = entries.last().map_or(position, |e| e.id.max(position));
        Ok(Batch { gap, entries })
    }

    /// Hands the entries on: each one as a delivery, or parked when it is
    /// poison, or acknowledged at once when the decoder filters it out.
    /// False once the consumer is gone.
    async fn hand_on(
        &mut self,
        entries: Vec<Entry>,
        feed: &Feed<Delivery<T>>,
    ) -> redis::RedisResult<bool> {
        for entry in entries {
            let payload = entry
                .fields
                .iter()
                .find(|(name, _)| name == b"e")
                .map(|(_, value)| value.as_slice());
            let weight = payload.map_or(0, <[u8]>::len);
            // A change past its deliveries is parked, not delivered again.
            let poison = entry.deliveries > self.options.max_deliveries;
            let delivered = entry.deliveries - u64::from(poison);
            let item = if poison {
                Some(Err(format!(
                    "delivered {delivered} times without being acknowledged"
                )))
            } else {
                let decode_error = |reason: String| Error::Decode {
                    namespace: self.ns.name().to_owned(),
                    key: format!("log entry {}", entry.id),
                    expected: "a change event (wire format v1)",
                    reason,
                };
                let raw = match payload.map(event::parse) {
                    Some(Ok(raw)) => Ok(raw),
                    Some(Err(reason)) => Err(decode_error(reason)),
                    None => Err(decode_error(
                        "the entry has no \"e\" field (the event payload)".into(),
                    )),
                };
                match raw {
                    Ok(raw) => (self.decode)(raw).map(|item| item.map_err(|e| e.to_string())),
                    Err(e) => Some(Err(e.to_string())),
                }
            };
            let pushed = match item {
                None => {
                    // Not for this subscriber's decoder (e.g. its own writes,
                    // when it skips them): handled.
                    let _ = self.acks.send(AckRequest::Ack(entry.id));
                    true
                }
                Some(Ok(event)) => {
                    let delivery = Delivery {
                        id: entry.id,
                        deliveries: entry.deliveries,
                        event,
                        acker: None,
                    };
                    feed.push_wait(Ok(delivery), weight).await
                }
                Some(Err(reason)) => {
                    self.park(&entry, delivered, &reason).await?;
                    let parked = Error::Parked {
                        namespace: self.ns.name().to_owned(),
                        group: self.group.clone(),
                        id: entry.id,
                        deliveries: delivered,
                        dead_key: self.ns.dead_key(),
                        reason,
                    };
                    feed.push_wait(Err(parked), 0).await
                }
            };
            if !pushed {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Copies a poison entry to `{ns}#dead` and acknowledges it, atomically.
    async fn park(
        &mut self,
        entry: &Entry,
        deliveries: u64,
        reason: &str,
    ) -> redis::RedisResult<()> {
        let log_key = self.ns.log_key().to_owned();
        let dead_key = self.ns.dead_key();
        let group = self.group.clone();
        let consumer = self.consumer.clone();
        let cap = self.options.dead_letter_cap;
        let conn = self.connection().await?;
        let mut add = redis::cmd("XADD");
        add.arg(&dead_key).arg("MAXLEN").arg("~").arg(cap).arg("*");
        for (name, value) in &entry.fields {
            add.arg(name).arg(value);
        }
        add.arg("log_id")
            .arg(entry.id.to_string())
            .arg("group")
            .arg(&group)
            .arg("consumer")
            .arg(&consumer)
            .arg("deliveries")
            .arg(deliveries)
            .arg("reason")
            .arg(reason);
        redis::pipe()
            .atomic()
            .add_command(add)
            .ignore()
            .cmd("XACK")
            .arg(&log_key)
            .arg(&group)
            .arg(entry.id.to_string())
            .ignore()
            .query_async::<()>(conn)
            .await
    }
}
