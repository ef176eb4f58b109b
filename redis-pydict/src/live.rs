//! Live views: a local snapshot of a derived struct, kept current from the
//! view's change events, read without I/O ([`Live`]).
//!
//! Ordering: every write script numbers its changes with the namespace's
//! sequence number (`{ns}#seq`, carried in each event as `"seq"`), and a
//! (re)load reads the fields and that number in one atomic unit. The
//! snapshot remembers the number of the state it shows and applies only
//! events numbered above it, so an event published before a load but
//! delivered after it is ignored: the snapshot never goes backwards.
//!
//! What cannot be ordered that way makes the handle reload: a `Gap`
//! (reconnect, buffer overflow, failover), an event without a `"seq"`
//! (a writer older than the field), an expired-key notification, a payload
//! that is not an event; and so does a jump in the numbers (a change that
//! published nothing the handle received: a write with events off, or to a
//! key of the namespace that is not a field).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use crate::error::{Error, Result};
use crate::event::{RawEvent, RawKind};
use crate::subscription::{self, Subscription, Target};
use crate::view::internals::FieldReader;
use crate::view::{Field, RedisDict, View};

/// Whether a live view's snapshot is known to follow every change.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum LiveStatus {
    /// The snapshot was (re)loaded at `synced_at` and every change since has
    /// been applied as its event arrived.
    Fresh {
        /// When the last (re)load completed.
        synced_at: SystemTime,
    },
    /// Changes may have been missed since `since` (the subscription lost its
    /// connection, or fell behind, or a change arrived that cannot be ordered):
    /// the handle is reloading. The snapshot is the one it had; reads go on.
    Reloading {
        /// When the possible loss was seen.
        since: SystemTime,
        /// When the last (re)load completed (the snapshot's base).
        synced_at: SystemTime,
    },
    /// Redis holds a value the snapshot cannot take: a field that does not
    /// decode as its type, or a required field that is missing (see
    /// [`View::load`]), or the reload itself fails (`error` says which). The
    /// snapshot keeps the last good value of that field and still follows
    /// the other fields; the status clears when a good value arrives.
    Invalid {
        /// When it was seen.
        since: SystemTime,
        /// When the last (re)load completed.
        synced_at: SystemTime,
        /// What is wrong, naming the key and the field.
        error: Arc<Error>,
    },
}

impl LiveStatus {
    /// True for [`LiveStatus::Fresh`].
    pub fn is_fresh(&self) -> bool {
        matches!(self, LiveStatus::Fresh { .. })
    }

    /// When the last (re)load completed: the last time the snapshot was
    /// confirmed equal to what Redis holds.
    pub fn synced_at(&self) -> SystemTime {
        match self {
            LiveStatus::Fresh { synced_at }
            | LiveStatus::Reloading { synced_at, .. }
            | LiveStatus::Invalid { synced_at, .. } => *synced_at,
        }
    }
}

/// What readers see: the snapshot, its sequence number and the status.
struct Published<T> {
    value: Arc<T>,
    seq: u64,
    status: LiveStatus,
}

/// What only the applying side touches (under a mutex, never held across I/O).
struct Applied {
    /// The sequence number of the state the snapshot shows.
    seq: u64,
    /// Incremented at every gap: loads started before it are void.
    epoch: u64,
    /// No load has completed in this epoch yet: the next one is installed
    /// whatever its number (the counter may have been reset with the data).
    after_gap: bool,
    synced_at: SystemTime,
    /// Since when changes may have been missed (a gap not yet reloaded).
    reloading: Option<SystemTime>,
    /// Per field, why its last stored value could not be taken.
    bad: Vec<Option<Arc<Error>>>,
    /// The reload itself failed (Redis error), and since when.
    load_error: Option<(SystemTime, Arc<Error>)>,
    bad_since: SystemTime,
}

impl Applied {
    fn status(&self) -> LiveStatus {
        let synced_at = self.synced_at;
        if let Some(error) = self.bad.iter().flatten().next() {
            return LiveStatus::Invalid {
                since: self.bad_since,
                synced_at,
                error: error.clone(),
            };
        }
        if let Some((since, error)) = &self.load_error {
            return LiveStatus::Invalid {
                since: *since,
                synced_at,
                error: error.clone(),
            };
        }
        match self.reloading {
            Some(since) => LiveStatus::Reloading { since, synced_at },
            None => LiveStatus::Fresh { synced_at },
        }
    }
}

struct Shared<T> {
    view: View<T>,
    applied: Mutex<Applied>,
    published: watch::Sender<Published<T>>,
}

/// A loaded state: its sequence number, the field values, and the epoch in
/// which the load started.
struct Loaded {
    seq: u64,
    values: Vec<Option<Vec<u8>>>,
    epoch: u64,
}

impl<T: RedisDict> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, Applied> {
        // Each critical section leaves `Applied` consistent before anything
        // that could panic (decoding does not panic): go on with it.
        self.applied
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn decode(&self, values: &[Option<Vec<u8>>]) -> Result<T> {
        T::__read(&mut FieldReader {
            schema: T::SCHEMA,
            namespace: self.view.namespace().name(),
            values,
        })
    }

    /// The stored form of each field of the snapshot, in schema order.
    fn snapshot_bytes(&self) -> Result<Vec<Option<Vec<u8>>>> {
        let current = self.published.borrow().value.clone();
        let mut raw = vec![None; T::SCHEMA.fields.len()];
        for (i, _, bytes) in self.view.write(&current)? {
            if let Some(slot) = raw.get_mut(i) {
                *slot = Some(bytes);
            }
        }
        Ok(raw)
    }

    async fn load(&self) -> Result<Loaded> {
        let epoch = self.lock().epoch;
        let keys: Vec<&str> = T::SCHEMA.keys().collect();
        let (seq, values) = self.view.space().get_many_with_seq(&keys).await?;
        Ok(Loaded { seq, values, epoch })
    }

    /// Applies `updates` (field index, new stored value) to the snapshot,
    /// now numbered `seq`. All at once when the result decodes; otherwise
    /// one by one, keeping the ones that decode and marking the others bad
    /// (their last good value stays). Publishes the result.
    fn apply(&self, applied: &mut Applied, seq: u64, updates: Vec<(usize, Option<Vec<u8>>)>) {
        if updates.is_empty() {
            // A change that leaves the fields as they are (a TTL change).
            applied.seq = seq;
            self.published.send_if_modified(|published| {
                published.seq = seq;
                false
            });
            return;
        }
        let now = SystemTime::now();
        // The fields' bytes: the snapshot's values encoded again. The handle
        // keeps only the decoded struct, so that a live view costs about the
        // size of its values once, not twice (bytes and values); a change
        // costs an encoding of the struct instead.
        let mut raw = match self.snapshot_bytes() {
            Ok(raw) => raw,
            Err(e) => {
                // Not applied (a value that decoded and does not encode
                // again): said in the status, the snapshot stays.
                applied.load_error = Some((now, Arc::new(e)));
                let status = applied.status();
                self.published
                    .send_modify(|published| published.status = status);
                return;
            }
        };
        // The updates go into those bytes in place, the values they replace
        // kept aside, so that nothing is copied when the result decodes (the
        // common case).
        let mut replaced = Vec::with_capacity(updates.len());
        for (i, value) in updates {
            if let Some(slot) = raw.get_mut(i) {
                replaced.push((i, std::mem::replace(slot, value)));
            }
        }
        let value = match self.decode(&raw) {
            Ok(value) => {
                for (i, _) in &replaced {
                    if let Some(bad) = applied.bad.get_mut(*i) {
                        *bad = None;
                    }
                }
                Some(value)
            }
            Err(_) => {
                // Back to the last good bytes, then the updates one by one:
                // those that decode stay, the others are marked bad.
                let mut updates = Vec::with_capacity(replaced.len());
                for (i, old) in replaced {
                    if let Some(slot) = raw.get_mut(i) {
                        updates.push((i, std::mem::replace(slot, old)));
                    }
                }
                let mut last = None;
                for (i, update) in updates {
                    let Some(slot) = raw.get_mut(i) else {
                        continue;
                    };
                    let old = std::mem::replace(slot, update);
                    match self.decode(&raw) {
                        Ok(value) => {
                            if let Some(bad) = applied.bad.get_mut(i) {
                                *bad = None;
                            }
                            last = Some(value);
                        }
                        Err(e) => {
                            if let Some(slot) = raw.get_mut(i) {
                                *slot = old;
                            }
                            if applied.bad.iter().all(Option::is_none) {
                                applied.bad_since = now;
                            }
                            if let Some(bad) = applied.bad.get_mut(i) {
                                *bad = Some(Arc::new(e));
                            }
                        }
                    }
                }
                last
            }
        };
        applied.seq = seq;
        let status = applied.status();
        self.published.send_modify(|published| {
            if let Some(value) = value {
                published.value = Arc::new(value);
            }
            published.seq = seq;
            published.status = status;
        });
    }

    /// Installs a load if it is not older than the snapshot (or is the first
    /// of its epoch); `confirms` (a gap's reload) also marks the snapshot fresh.
    fn install(&self, loaded: Loaded, confirms: bool) {
        let mut applied = self.lock();
        if loaded.epoch != applied.epoch {
            return; // started before a gap: void
        }
        let newer = applied.after_gap || loaded.seq >= applied.seq;
        applied.after_gap = false;
        if confirms || newer {
            applied.synced_at = SystemTime::now();
            applied.reloading = None;
            applied.load_error = None;
        }
        if newer {
            let updates = loaded.values.into_iter().enumerate().collect();
            self.apply(&mut applied, loaded.seq, updates);
        } else {
            let status = applied.status();
            self.published
                .send_modify(|published| published.status = status);
        }
    }

    /// Applies the events at the front of `pending` (number, key, change),
    /// in order, as one change of the snapshot: one encoding and decoding of
    /// the struct for all of them (a batch message's events, or a burst,
    /// arrive together). An event numbered at or below the snapshot's is
    /// skipped. Returns false at the first event whose number skips some,
    /// having applied those before it and taken it from `pending`: a change
    /// the handle did not receive (written with events off, or to a key of
    /// the namespace that is not a field) came first, and only a reload can
    /// show it (applying this event would show a state Redis never had).
    /// Right after a gap (no load yet in this epoch) every event is taken.
    fn events(&self, pending: &mut VecDeque<(u64, Option<String>, RawKind)>) -> bool {
        let mut applied = self.lock();
        let field = |key: Option<&str>| {
            key.and_then(|key| T::SCHEMA.fields.iter().position(|f| f.key == key))
        };
        // Per field, its newest stored value among the events taken.
        let mut latest: Vec<Option<Option<Vec<u8>>>> = vec![None; T::SCHEMA.fields.len()];
        let mut seq = None;
        let mut in_order = true;
        while let Some((number, key, kind)) = pending.pop_front() {
            let after = seq.unwrap_or(applied.seq);
            if !applied.after_gap {
                if number <= after {
                    continue;
                }
                if number > after + 1 {
                    in_order = false;
                    break;
                }
            }
            seq = Some(number);
            let update = match kind {
                RawKind::Set(bytes) => field(key.as_deref()).map(|i| (i, Some(bytes))),
                RawKind::Del => field(key.as_deref()).map(|i| (i, None)),
                RawKind::Clear => {
                    latest.fill(Some(None));
                    None
                }
                RawKind::Expire(_) | RawKind::Expired | RawKind::Gap => None,
            };
            if let Some((i, value)) = update {
                if let Some(slot) = latest.get_mut(i) {
                    *slot = Some(value);
                }
            }
        }
        if let Some(seq) = seq {
            let updates = latest
                .into_iter()
                .enumerate()
                .filter_map(|(i, value)| value.map(|value| (i, value)))
                .collect();
            self.apply(&mut applied, seq, updates);
        }
        in_order
    }

    /// Marks the snapshot as possibly stale; with `gap`, starts a new epoch.
    fn suspect(&self, gap: bool) {
        let mut applied = self.lock();
        if gap {
            applied.epoch += 1;
            applied.after_gap = true;
        }
        applied.reloading.get_or_insert_with(SystemTime::now);
        let status = applied.status();
        self.published
            .send_modify(|published| published.status = status);
    }

    fn load_failed(&self, error: Error) {
        let mut applied = self.lock();
        applied.load_error = Some((SystemTime::now(), Arc::new(error)));
        let status = applied.status();
        self.published
            .send_modify(|published| published.status = status);
    }

    /// Reloads until it succeeds or every handle is gone (backoff between
    /// attempts; failures that are not connection trouble are reported in
    /// the status as `Invalid`).
    async fn reload(&self) {
        let settings = self.view.space().store().settings();
        let mut delay = settings.min_retry_delay;
        loop {
            match self.load().await {
                Ok(loaded) => return self.install(loaded, true),
                // Connection trouble: still `Reloading`, try again.
                Err(Error::Redis { source, .. }) if subscription::is_transient(&source) => {}
                // Retrying will not cure it soon (a foreign `{ns}#seq`, a
                // missing permission): say so, and keep trying, slowly.
                Err(e) => self.load_failed(e),
            }
            tokio::select! {
                _ = self.published.closed() => return,
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(settings.max_retry_delay);
        }
    }
}

/// The events a live view listens to, untyped (it keeps stored values).
type Events = Subscription<RawEvent>;

/// An event that the sequence number cannot order: the handle reloads.
fn needs_reload(item: &Result<RawEvent>) -> bool {
    match item {
        Ok(raw) => raw.seq.is_none() || raw.kind == RawKind::Gap,
        Err(_) => true,
    }
}

/// The task that keeps a live view current. Ends when every handle is gone
/// (or the subscription ends for good, which the status reports).
async fn follow<T: RedisDict>(shared: Arc<Shared<T>>, mut events: Events) {
    let mut batch = Vec::new();
    loop {
        let first = tokio::select! {
            _ = shared.published.closed() => return,
            item = events.recv() => item,
        };
        let Some(first) = first else {
            shared.load_failed(Error::Config(format!(
                "the live view of namespace {:?} lost its subscription for good; \
                 the snapshot no longer follows changes",
                shared.view.namespace().name()
            )));
            return;
        };
        // Take what is already waiting, so that one reload covers them all.
        batch.push(first);
        while batch.len() < 1024 {
            match events.try_recv() {
                Some(item) => batch.push(item),
                None => break,
            }
        }
        // Everything up to the last unordered item is superseded by the reload.
        if let Some(last) = batch.iter().rposition(needs_reload) {
            let gap = batch[..=last]
                .iter()
                .any(|item| matches!(item, Ok(raw) if raw.kind == RawKind::Gap));
            shared.suspect(gap);
            shared.reload().await;
            batch.drain(..=last);
        }
        let mut pending: VecDeque<_> = batch
            .drain(..)
            .filter_map(|item| match item {
                Ok(RawEvent {
                    key,
                    kind,
                    seq: Some(seq),
                    ..
                }) => Some((seq, key, kind)),
                _ => None,
            })
            .collect();
        while !shared.events(&mut pending) {
            // Numbers skipped: the reload shows this change and the missed
            // ones; the events after it are filtered against it.
            shared.suspect(false);
            shared.reload().await;
        }
    }
}

/// A live view of a derived struct: a local snapshot loaded once and then
/// kept current from the view's change events, read without I/O
/// ([`View::live`]).
///
/// * **Reads are local**: [`Live::get`] clones an `Arc` (nanoseconds); the
///   snapshot is swapped as a whole by the handle's task, never half-applied;
///   events that arrive together (a cluster's batch message, a burst) are
///   applied as one swap, with one decoding of the struct.
/// * **Never backwards**: a reader never sees a state older than one it
///   already saw. Each event carries the namespace's sequence number
///   (`"seq"`, see [`crate::Namespace::seq_key`]), each (re)load reads the
///   number with the fields in one atomic unit, and only events numbered
///   above the snapshot's are applied.
/// * **Never silently stale**: on a `Gap` (reconnect, buffer overflow,
///   failover, server restart) the handle reloads and reports it:
///   [`Live::status`] is [`LiveStatus::Reloading`] until the reload lands,
///   [`Live::fresh`] waits for it, [`LiveStatus::synced_at`] dates the last
///   confirmed sync. An event without a `"seq"` (a writer older than wire
///   field `seq`) or an expired-key notification cannot be ordered: it
///   makes the handle reload too (one reload for all that are waiting), and
///   so does an event whose number skips some: a change the handle did not
///   receive (written with events off, or to a key of the namespace that is
///   not a field of the struct) happened in between.
/// * **Read-your-writes**: [`Live::save`], [`Live::update`] and
///   [`Live::set`] write as the view does, then reload (one more round
///   trip), so when they return the snapshot shows the write or a later state.
/// * **Bad data is reported**: a field whose stored value does not decode,
///   or a required field that is deleted, puts the handle in
///   [`LiveStatus::Invalid`] naming it; the snapshot keeps that field's
///   last good value and goes on following the others.
/// * **TTL**: an expiring field is dropped from the snapshot when it expires
///   only where the store reports expired keys
///   ([`crate::StoreBuilder::enable_expiry_events`]); otherwise the snapshot
///   keeps the value past its expiry, until the next write or reload.
///
/// Clones share the snapshot and the task; the task stops when the last
/// clone is dropped.
///
/// ```
/// use redis_pydict::{RedisDict, Store};
///
/// #[derive(RedisDict, Debug, Clone, PartialEq)]
/// struct Config {
///     threshold: f64,
///     #[redis_dict(default)]
///     verbose: bool,
/// }
///
/// # #[tokio::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let server = redis_pydict_test::RedisServer::start();
/// let store = Store::connect(&server.url()).await?;
/// let cfg = Config::view(&store, "prod")?;
/// cfg.threshold.set(&0.5).await?;
///
/// let mut live = cfg.live().await?; // one load, then follows the events
/// assert_eq!(live.get().threshold, 0.5); // no I/O
///
/// live.set(&cfg.threshold, &0.75).await?; // read-your-writes
/// assert_eq!(live.get().threshold, 0.75);
///
/// cfg.verbose.set(&true).await?; // any writer, any process
/// while !live.get().verbose {
///     live.changed().await?;
/// }
/// assert!(live.status().is_fresh());
/// # Ok(()) }
/// ```
pub struct Live<T> {
    shared: Arc<Shared<T>>,
    seen: watch::Receiver<Published<T>>,
}

impl<T> Clone for Live<T> {
    fn clone(&self) -> Self {
        Live {
            shared: self.shared.clone(),
            seen: self.seen.clone(),
        }
    }
}

impl<T> std::fmt::Debug for Live<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let published = self.seen.borrow();
        f.debug_struct("Live")
            .field("struct", &std::any::type_name::<T>())
            .field("namespace", &self.shared.view.namespace().name())
            .field("seq", &published.seq)
            .field("status", &published.status)
            .finish()
    }
}

impl<T: RedisDict + Send + Sync + 'static> Live<T> {
    /// Subscribes to the view's fields, then loads them (fields and sequence
    /// number in one atomic unit), then starts following. Fails as
    /// [`View::load`] does (a missing required field, an undecodable value),
    /// or with [`Error::WrongType`] for a foreign `{ns}#seq`.
    pub(crate) async fn start(view: View<T>) -> Result<Live<T>> {
        let store = view.space().store().clone();
        let expiry = subscription::expiry_db(&store).await?;
        let target = Target::keys(view.namespace(), T::SCHEMA.keys(), expiry);
        // Subscribed before loading: no change falls between the two.
        let events: Events =
            subscription::start(&store, view.namespace(), target, |raw| Some(Ok(raw))).await?;
        let keys: Vec<&str> = T::SCHEMA.keys().collect();
        let (seq, raw) = view.space().get_many_with_seq(&keys).await?;
        let value = T::__read(&mut FieldReader {
            schema: T::SCHEMA,
            namespace: view.namespace().name(),
            values: &raw,
        })?;
        let now = SystemTime::now();
        let fields = T::SCHEMA.fields.len();
        let applied = Applied {
            seq,
            epoch: 0,
            after_gap: false,
            synced_at: now,
            reloading: None,
            bad: vec![None; fields],
            load_error: None,
            bad_since: now,
        };
        let (published, seen) = watch::channel(Published {
            value: Arc::new(value),
            seq,
            status: applied.status(),
        });
        let shared = Arc::new(Shared {
            view,
            applied: Mutex::new(applied),
            published,
        });
        tokio::spawn(follow(shared.clone(), events));
        Ok(Live { shared, seen })
    }
}

impl<T: RedisDict> Live<T> {
    /// The current snapshot. No I/O: an `Arc` clone.
    pub fn get(&self) -> Arc<T> {
        self.seen.borrow().value.clone()
    }

    /// The namespace's sequence number of the state the snapshot shows: the
    /// snapshot reflects every change numbered up to it. (It restarts from
    /// zero if the server loses its data, which the handle sees as a gap.)
    pub fn seq(&self) -> u64 {
        self.seen.borrow().seq
    }

    /// Whether the snapshot is known to follow every change (see [`LiveStatus`]).
    pub fn status(&self) -> LiveStatus {
        self.seen.borrow().status.clone()
    }

    /// The view the handle follows.
    pub fn view(&self) -> &View<T> {
        &self.shared.view
    }

    /// Waits until the snapshot or the status changes after the last call
    /// (or since this handle was made), then marks it seen. Every applied
    /// change wakes it; several changes applied while the caller was busy
    /// wake it once (read [`Live::get`] for the latest). An error only when
    /// the handle's task is gone, which cannot happen while the handle lives.
    pub async fn changed(&mut self) -> Result<()> {
        self.seen.changed().await.map_err(|_| self.gone())
    }

    /// Waits until the status is [`LiveStatus::Fresh`] (at once if it is).
    pub async fn fresh(&self) -> Result<()> {
        let mut seen = self.seen.clone();
        seen.wait_for(|published| published.status.is_fresh())
            .await
            .map(drop)
            .map_err(|_| self.gone())
    }

    fn gone(&self) -> Error {
        Error::Config(format!(
            "the live view of namespace {:?} has stopped",
            self.shared.view.namespace().name()
        ))
    }

    /// Reloads now (fields and sequence number in one round trip) and installs
    /// the result unless the snapshot already shows a later state. After a
    /// write made elsewhere (another handle, a [`crate::Dict`]) returns,
    /// `sync` makes the snapshot show it.
    pub async fn sync(&self) -> Result<()> {
        let loaded = self.shared.load().await?;
        self.shared.install(loaded, false);
        Ok(())
    }

    /// Writes every field ([`View::save`]), then [`Live::sync`]: when it
    /// returns, the snapshot shows `value` or a later state.
    pub async fn save(&self, value: &T) -> Result<()> {
        self.shared.view.save(value).await?;
        self.sync().await
    }

    /// [`View::update`], then [`Live::sync`]: when it returns, the snapshot
    /// shows the update or a later state.
    pub async fn update<R>(&self, f: impl FnMut(&mut T) -> R) -> Result<R> {
        let result = self.shared.view.update(f).await?;
        self.sync().await?;
        Ok(result)
    }

    /// Sets one field through its handle (`cfg.threshold`), then
    /// [`Live::sync`]. A field of another namespace is refused with
    /// [`Error::Config`] before anything is written.
    pub async fn set<F: serde::Serialize + serde::de::DeserializeOwned>(
        &self,
        field: &Field<F>,
        value: &F,
    ) -> Result<()> {
        if field.namespace() != self.shared.view.namespace() {
            return Err(Error::Config(format!(
                "field `{}` belongs to namespace {:?}, not to this live view's {:?}",
                field.name(),
                field.namespace().name(),
                self.shared.view.namespace().name()
            )));
        }
        field.set(value).await?;
        self.sync().await
    }

    /// Waits until the status is fresh, for at most `timeout`: true if it is.
    pub async fn fresh_within(&self, timeout: Duration) -> bool {
        matches!(
            tokio::time::timeout(timeout, self.fresh()).await,
            Ok(Ok(()))
        )
    }
}
