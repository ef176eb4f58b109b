//! Workload 6: change events, plain pub/sub and the durable log: set → event
//! latency and events per second.

use std::hint::black_box;
use std::time::{Duration, Instant};

use futures::StreamExt;
use redis::AsyncConnectionConfig;
use redis_pydict::{Change, Dict, Event, LogId, StartFrom, Subscription};

use crate::args::Plan;
use crate::measure::{group, interleaved_timed, median_of};
use crate::raw::{
    event_payload, event_payload_seq, raw_event_channel, raw_log_reader, raw_log_until, RAW,
    RAW_CHANNEL, RAW_SEQ,
};
use crate::table::Table;
use crate::workloads::{cbor, key, progress, session, Ctx, Session, LOG_CAP};
use crate::BoxResult;

/// Checks that the raw side's payloads are byte for byte what `set`
/// publishes; a note for the table if not.
pub async fn check_payload(
    ctx: &mut Ctx,
    dict: &Dict<String, Session>,
    key: &str,
    value: &Session,
) -> BoxResult<Option<String>> {
    let ns = dict.namespace();
    let mut messages = if ctx.deployment.cluster {
        RawListener::sharded(ctx, ns.event_channel()).await?
    } else {
        RawListener::classic(ctx, ns.index_key(), &ns.key_channel(key), false).await?
    };
    let (set, msg) = futures::join!(
        dict.set(key, value),
        tokio::time::timeout(Duration::from_secs(5), messages.next())
    );
    set?;
    let msg = msg
        .map_err(|_| "no change event within 5 s of a set")?
        .ok_or("the pub/sub connection closed")?;
    let got = msg.get_payload_bytes();
    // The received event's own sequence number, to build the same bytes.
    let seq = ciborium::from_reader::<ciborium::Value, _>(got)
        .ok()
        .and_then(|event| {
            event.as_map()?.iter().find_map(|(k, v)| {
                (k.as_text() == Some("seq"))
                    .then(|| v.as_integer().and_then(|n| u64::try_from(n).ok()))?
            })
        })
        .unwrap_or(RAW_SEQ);
    let want = event_payload_seq(key, &cbor(value), seq);
    Ok((got != want.as_slice()).then(|| {
        format!(
            "note: the raw side's event payload ({} bytes) differs from what `set` publishes ({} bytes); \
             update `event_payload` to the wire format",
            want.len(),
            got.len()
        )
    }))
}

/// Waits for `n` `Set` events; the instant the last arrived.
pub async fn receive_events(
    sub: &mut Subscription<Event<String, Session>>,
    n: usize,
) -> BoxResult<Instant> {
    let mut seen = 0;
    while seen < n {
        let event = sub.recv().await.ok_or("the subscription ended")??;
        match event.change {
            Change::Set(value) => {
                black_box(value);
                seen += 1;
            }
            Change::Gap => return Err("the subscriber lost events (gap)".into()),
            _ => {}
        }
    }
    Ok(Instant::now())
}

/// The raw side's subscriber: on one server a classic pub/sub connection,
/// on a cluster a RESP3 connection to the channel's master with SSUBSCRIBE,
/// where the library publishes with SPUBLISH (sharded pub/sub).
pub enum RawListener {
    Classic(redis::aio::PubSubStream),
    Sharded {
        pushes: tokio::sync::mpsc::UnboundedReceiver<redis::PushInfo>,
        /// Kept open while the listener lives.
        _conn: redis::aio::MultiplexedConnection,
    },
}

impl RawListener {
    /// SUBSCRIBE (PSUBSCRIBE with `pattern`) to `channel` on the node of `key`.
    pub async fn classic(ctx: &Ctx, key: &str, channel: &str, pattern: bool) -> BoxResult<Self> {
        let mut pubsub = ctx.node_client(key).await?.get_async_pubsub().await?;
        if pattern {
            pubsub.psubscribe(channel).await?;
        } else {
            pubsub.subscribe(channel).await?;
        }
        Ok(RawListener::Classic(pubsub.into_on_message()))
    }

    /// SSUBSCRIBE to `channel` on its master.
    pub async fn sharded(ctx: &Ctx, channel: &str) -> BoxResult<Self> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let config = AsyncConnectionConfig::new().set_push_sender(tx);
        let mut conn = ctx
            .node_client(channel)
            .await?
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        redis::cmd("SSUBSCRIBE")
            .arg(channel)
            .query_async::<()>(&mut conn)
            .await?;
        Ok(RawListener::Sharded {
            pushes: rx,
            _conn: conn,
        })
    }

    /// The next message; `None` once the connection closed.
    pub async fn next(&mut self) -> Option<redis::Msg> {
        match self {
            RawListener::Classic(stream) => stream.next().await,
            RawListener::Sharded { pushes, .. } => loop {
                let push = pushes.recv().await?;
                match push.kind {
                    redis::PushKind::SMessage => return redis::Msg::from_push_info(push),
                    redis::PushKind::Disconnection => return None,
                    _ => {}
                }
            },
        }
    }
}

/// Waits for `n` messages; the instant the last arrived.
pub async fn receive_messages(messages: &mut RawListener, n: usize) -> BoxResult<Instant> {
    for _ in 0..n {
        let msg = messages
            .next()
            .await
            .ok_or("the raw pub/sub connection closed")?;
        black_box(msg.get_payload_bytes());
    }
    Ok(Instant::now())
}

/// How long a throughput run may take before the benchmark gives up on it.
pub const RUN_LIMIT: Duration = Duration::from_secs(120);

/// Set → subscriber event latency beside raw PUBLISH → PubSub message, and
/// events per second through one subscriber beside raw PUBLISH throughput.
pub async fn events(plan: &Plan, ctx: &mut Ctx, table: &mut Table) -> BoxResult<()> {
    progress(&format!(
        "set → event latency, {} sequential ops per series; {} events per throughput run, {} runs",
        plan.event_ops, plan.event_entries, plan.event_runs
    ));
    const KEYS: usize = 1000;
    let dict: Dict<String, Session> = ctx.store.dict("bench-events")?;
    let keys: Vec<String> = (0..KEYS).map(key).collect();
    let values: Vec<Session> = (0..KEYS).map(session).collect();
    // On a cluster the raw side uses sharded pub/sub, as the library does
    // there: SPUBLISH to one channel, SSUBSCRIBE.
    let cluster = ctx.deployment.cluster;
    let publish = raw_event_channel(cluster, "").0;
    let raw_channel = |k: &str| raw_event_channel(cluster, k).1;
    let channels: Vec<String> = keys.iter().map(|k| raw_channel(k)).collect();
    let payloads: Vec<Vec<u8>> = keys
        .iter()
        .zip(&values)
        .map(|(k, v)| event_payload(k, &cbor(v)))
        .collect();
    if let Some(note) = check_payload(ctx, &dict, &keys[0], &values[0]).await? {
        table.notes.push(note);
    }

    // Both subscribers listen on the node where the writes happen:
    // `subscribe("*")` and a raw PSUBSCRIBE `{bench-raw}#ev:*` (on a
    // cluster, a raw SSUBSCRIBE `{bench-raw}#ev`).
    let mut sub = dict.subscribe("*").await?;
    let mut messages = if cluster {
        RawListener::sharded(ctx, RAW_CHANNEL).await?
    } else {
        RawListener::classic(ctx, RAW_CHANNEL, &format!("{RAW_CHANNEL}:*"), true).await?
    };

    let (ours, theirs) = {
        let mut r = ctx.raw.clone();
        interleaved_timed(
            plan.event_ops,
            async |i| {
                let k = &keys[i % KEYS];
                let t = Instant::now();
                let (set, arrived) = futures::join!(dict.set(k, &values[i % KEYS]), async {
                    (sub.recv().await, Instant::now())
                });
                set?;
                let (event, at) = arrived;
                let event = event.ok_or("the subscription ended")??;
                match (&event.key, &event.change) {
                    (Some(got), Change::Set(v)) if got == k => black_box(v),
                    _ => return Err(format!("unexpected event {event:?}").into()),
                };
                Ok(at - t)
            },
            async |i| {
                let mut publish = redis::cmd(publish);
                publish.arg(&channels[i % KEYS]).arg(&payloads[i % KEYS]);
                let t = Instant::now();
                let (published, arrived) =
                    futures::join!(publish.query_async::<u64>(&mut r), async {
                        (messages.next().await, Instant::now())
                    });
                if published? == 0 {
                    return Err("raw (S)PUBLISH reached no subscriber".into());
                }
                let (msg, at) = arrived;
                let msg = msg.ok_or("the raw pub/sub connection closed")?;
                if msg.get_channel_name() != channels[i % KEYS] {
                    return Err("unexpected raw message".into());
                }
                black_box(msg.get_payload_bytes());
                Ok(at - t)
            },
        )
        .await?
    };
    table.latency(
        if cluster {
            "set → event on `subscribe(\"*\")` (vs SPUBLISH → sharded message)"
        } else {
            "set → event on `subscribe(\"*\")` (vs PUBLISH → PubSub message)"
        },
        &ours,
        &theirs,
        // The design's 2x raw PUBLISH on one server; on a cluster, issue
        // 13's 1.5x raw SPUBLISH (sharded pub/sub makes it reachable).
        if cluster { 1.5 } else { 2.0 },
    );

    // Events per second through one subscriber: a bulk update (one event per
    // entry) beside one pipeline of PUBLISHes of the same bytes, each
    // received while it is sent (the server's pub/sub output-buffer limit
    // would disconnect a subscriber that does not keep up).
    let n = plan.event_entries;
    let entries: Vec<(String, Session)> = (0..n).map(|i| (key(i), session(i))).collect();
    let raw_events: Vec<(String, Vec<u8>)> = entries
        .iter()
        .map(|(k, v)| (raw_channel(k), event_payload(k, &cbor(v))))
        .collect();
    let (mut t_ours, mut t_raw) = (vec![], vec![]);
    for run in 0..plan.event_runs + 1 {
        for step in 0..2 {
            let t = Instant::now();
            let at = if (run + step) % 2 == 0 {
                let (written, received) = tokio::time::timeout(RUN_LIMIT, async {
                    futures::join!(
                        dict.set_many(entries.iter().map(|(k, v)| (k, v))),
                        receive_events(&mut sub, n)
                    )
                })
                .await
                .map_err(|_| "events of a bulk update: timed out")?;
                written?;
                let at = received?;
                t_ours.push(at - t);
                at
            } else {
                let mut pipe = redis::pipe();
                for (channel, payload) in &raw_events {
                    pipe.cmd(publish).arg(channel).arg(payload).ignore();
                }
                let mut r = ctx.raw.clone();
                let (published, received) = tokio::time::timeout(RUN_LIMIT, async {
                    futures::join!(
                        pipe.query_async::<()>(&mut r),
                        receive_messages(&mut messages, n)
                    )
                })
                .await
                .map_err(|_| "raw PUBLISH throughput: timed out")?;
                published?;
                let at = received?;
                t_raw.push(at - t);
                at
            };
            black_box(at);
        }
    }
    // The first run of each is a warm-up.
    t_ours.remove(0);
    t_raw.remove(0);
    table.rate(
        &format!(
            "events through one subscriber (`set_many` of {}) (extra)",
            group(n as u64)
        ),
        n,
        "events",
        median_of(t_ours),
        median_of(t_raw),
        0.50,
    );
    Ok(())
}

/// Waits for `n` durable `Set` events; the instant the last arrived.
pub async fn receive_durable(
    sub: &mut Subscription<(LogId, Event<String, Session>)>,
    n: usize,
) -> BoxResult<Instant> {
    let mut seen = 0;
    while seen < n {
        let (id, event) = sub.recv().await.ok_or("the durable subscription ended")??;
        match event.change {
            Change::Set(value) => {
                black_box((id, value));
                seen += 1;
            }
            Change::Gap => return Err("the durable subscriber lost events (gap)".into()),
            _ => {}
        }
    }
    Ok(Instant::now())
}

/// The durable mode: set → `subscribe_durable` event beside raw XADD →
/// XREAD BLOCK, and events per second (extra rows).
pub async fn durable_events(plan: &Plan, ctx: &mut Ctx, table: &mut Table) -> BoxResult<()> {
    progress("durable log: set → event latency and events per second");
    const KEYS: usize = 1000;
    // Events off: the log is the only event path, as on the raw side.
    let dict: Dict<String, Session> = ctx
        .store
        .dict::<String, Session>("bench-durable")?
        .with_notifications(false)
        .with_durable_log(LOG_CAP);
    let keys: Vec<String> = (0..KEYS).map(key).collect();
    let values: Vec<Session> = (0..KEYS).map(session).collect();
    let payloads: Vec<Vec<u8>> = keys
        .iter()
        .zip(&values)
        .map(|(k, v)| event_payload(k, &cbor(v)))
        .collect();
    let log = format!("{RAW}log");
    let xadd = |payload: &[u8]| {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(&log)
            .arg("MAXLEN")
            .arg("~")
            .arg(LOG_CAP)
            .arg("*")
            .arg("e")
            .arg(payload);
        cmd
    };

    let mut sub = dict.subscribe_durable(StartFrom::Now).await?;
    let config = AsyncConnectionConfig::new()
        .set_response_timeout(Some(Duration::from_secs(10)))
        .set_connection_timeout(Some(redis_pydict::DEFAULT_CONNECTION_TIMEOUT));
    let reader_conn = ctx
        .node_client(&log)
        .await?
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    let (reader, mut arrivals) = raw_log_reader(reader_conn, log.clone());
    let mut appended = 0usize;

    let result = async {
        let (ours, theirs) = {
            let mut r = ctx.raw.clone();
            interleaved_timed(
                plan.event_ops,
                async |i| {
                    let t = Instant::now();
                    let (set, arrived) =
                        futures::join!(dict.set(&keys[i % KEYS], &values[i % KEYS]), async {
                            (sub.recv().await, Instant::now())
                        });
                    set?;
                    let (item, at) = arrived;
                    let (_, event) = item.ok_or("the durable subscription ended")??;
                    if event.key.as_deref() != Some(keys[i % KEYS].as_str()) {
                        return Err(format!("unexpected durable event {event:?}").into());
                    }
                    Ok(at - t)
                },
                async |i| {
                    let cmd = xadd(&payloads[i % KEYS]);
                    appended += 1;
                    let t = Instant::now();
                    let (added, at) = futures::join!(
                        cmd.query_async::<String>(&mut r),
                        raw_log_until(&mut arrivals, appended)
                    );
                    added?;
                    Ok(at? - t)
                },
            )
            .await?
        };
        table.latency(
            "set → event, durable log (vs XADD → XREAD BLOCK) (extra)",
            &ours,
            &theirs,
            2.0,
        );

        let n = plan.event_entries;
        let entries: Vec<(String, Session)> = (0..n).map(|i| (key(i), session(i))).collect();
        let raw_payloads: Vec<Vec<u8>> = entries
            .iter()
            .map(|(k, v)| event_payload(k, &cbor(v)))
            .collect();
        let (mut t_ours, mut t_raw) = (vec![], vec![]);
        for run in 0..plan.event_runs + 1 {
            for step in 0..2 {
                let t = Instant::now();
                if (run + step) % 2 == 0 {
                    let (written, received) = tokio::time::timeout(RUN_LIMIT, async {
                        futures::join!(
                            dict.set_many(entries.iter().map(|(k, v)| (k, v))),
                            receive_durable(&mut sub, n)
                        )
                    })
                    .await
                    .map_err(|_| "durable events of a bulk update: timed out")?;
                    written?;
                    t_ours.push(received? - t);
                } else {
                    let mut pipe = redis::pipe();
                    for payload in &raw_payloads {
                        pipe.add_command(xadd(payload)).ignore();
                    }
                    appended += n;
                    let mut r = ctx.raw.clone();
                    let (added, received) = tokio::time::timeout(RUN_LIMIT, async {
                        futures::join!(
                            pipe.query_async::<()>(&mut r),
                            raw_log_until(&mut arrivals, appended)
                        )
                    })
                    .await
                    .map_err(|_| "raw XADD throughput: timed out")?;
                    added?;
                    t_raw.push(received? - t);
                }
            }
        }
        t_ours.remove(0);
        t_raw.remove(0);
        table.rate(
            &format!(
                "events through a durable subscriber (`set_many` of {}) (extra)",
                group(n as u64)
            ),
            n,
            "events",
            median_of(t_ours),
            median_of(t_raw),
            0.50,
        );

        // The reader alone: the same n changes, already in our log, read by
        // a durable subscriber (typed events) and by raw XREAD COUNT 500
        // (payload bytes), from the same id.
        let our_log = dict.namespace().log_key().to_owned();
        let mut r = ctx.raw.clone();
        let newest: Vec<(String, redis::Value)> = redis::cmd("XREVRANGE")
            .arg(&our_log)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut r)
            .await?;
        let before = newest
            .first()
            .map_or("0-0".to_owned(), |(id, _)| id.clone());
        dict.set_many(entries.iter().map(|(k, v)| (k, v))).await?;
        let (mut t_ours, mut t_raw) = (vec![], vec![]);
        for run in 0..plan.event_runs + 1 {
            for step in 0..2 {
                let t = Instant::now();
                if (run + step) % 2 == 0 {
                    let mut reader = dict
                        .subscribe_durable(StartFrom::After(before.parse()?))
                        .await?;
                    let done = tokio::time::timeout(RUN_LIMIT, receive_durable(&mut reader, n))
                        .await
                        .map_err(|_| "durable subscriber reading the log: timed out")??;
                    t_ours.push(done - t);
                } else {
                    let done =
                        tokio::time::timeout(RUN_LIMIT, raw_log_read(&mut r, &our_log, &before, n))
                            .await
                            .map_err(|_| "raw XREAD of the log: timed out")??;
                    t_raw.push(done - t);
                }
            }
        }
        t_ours.remove(0);
        t_raw.remove(0);
        table.rate(
            &format!(
                "durable subscriber reading {} logged changes (vs raw XREAD of the same entries)",
                group(n as u64)
            ),
            n,
            "events",
            median_of(t_ours),
            median_of(t_raw),
            0.60,
        );
        BoxResult::Ok(())
    }
    .await;
    reader.abort();
    result
}

/// Reads `n` entries of `log` after `after` the raw way (XREAD COUNT 500,
/// the payload's bytes kept); the instant the last arrived.
async fn raw_log_read(
    conn: &mut (impl redis::aio::ConnectionLike + Send),
    log: &str,
    after: &str,
    n: usize,
) -> BoxResult<Instant> {
    let mut last = after.to_owned();
    let mut seen = 0;
    while seen < n {
        let reply: Option<redis::streams::StreamReadReply> = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(500)
            .arg("STREAMS")
            .arg(log)
            .arg(&last)
            .query_async(conn)
            .await?;
        let Some(reply) = reply else {
            return Err("raw XREAD: the log ended early".into());
        };
        for stream in reply.keys {
            for entry in stream.ids {
                black_box(entry.map.get("e"));
                last = entry.id;
                seen += 1;
            }
        }
    }
    Ok(Instant::now())
}
