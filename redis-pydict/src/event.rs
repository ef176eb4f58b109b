//! Change-event payloads (wire format v1).
//!
//! Every mutation publishes, in the same atomic unit as the write, a CBOR map
//! `{"v": 1, "op": ..., "key": text|null, "origin": text|null, ...}` where a
//! `set` carries `"value"` (the new value's CBOR item, byte for byte as stored)
//! and an `expire` carries `"ttl_ms"` (the new time-to-live, `null` after persist).
//! The write scripts append `"seq"` (the namespace's sequence number of the
//! change, an unsigned integer: see `Namespace::seq_key`) to every payload
//! they publish; events of older writers lack it.
//! A writer asked for previous values adds `"prev"` to `set`, `del` and
//! `expire` events: `[item]` (the entry's value before the change, the CBOR
//! item byte for byte as it was stored) or `[]` (there was no entry).

/// What a change event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// An entry was written; the payload carries its new value.
    Set,
    /// An entry was removed.
    Del,
    /// The whole namespace was cleared (published on `{ns}#ev`).
    Clear,
    /// An entry's time-to-live was set or removed.
    Expire,
}

impl Op {
    /// The wire name of the operation.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Set => "set",
            Op::Del => "del",
            Op::Clear => "clear",
            Op::Expire => "expire",
        }
    }
}

/// Builds an event payload. `value` is an already-encoded CBOR item (for `Set`);
/// `ttl_ms` is written for `Expire` (`None` = persisted).
pub(crate) fn payload(
    op: Op,
    key: Option<&str>,
    origin: Option<&str>,
    value: Option<&[u8]>,
    ttl_ms: Option<u64>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(48 + key.map_or(0, str::len) + value.map_or(0, <[u8]>::len));
    write_payload(&mut out, op, key, origin, value, ttl_ms);
    out
}

/// Appends an event payload (see [`payload`]) to `out`.
pub(crate) fn write_payload(
    out: &mut Vec<u8>,
    op: Op,
    key: Option<&str>,
    origin: Option<&str>,
    value: Option<&[u8]>,
    ttl_ms: Option<u64>,
) {
    let extra = usize::from(op == Op::Set || op == Op::Expire);
    write_head(out, 5, 4 + extra as u64);
    write_text(out, "v");
    out.push(0x01);
    write_text(out, "op");
    write_text(out, op.as_str());
    write_text(out, "key");
    write_opt_text(out, key);
    write_text(out, "origin");
    write_opt_text(out, origin);
    match op {
        Op::Set => {
            write_text(out, "value");
            match value {
                Some(bytes) => out.extend_from_slice(bytes),
                None => out.push(NULL),
            }
        }
        Op::Expire => {
            write_text(out, "ttl_ms");
            match ttl_ms {
                Some(ms) => write_head(out, 0, ms),
                None => out.push(NULL),
            }
        }
        Op::Del | Op::Clear => {}
    }
}

/// The two constant parts of a `del` event payload from `origin`: the head
/// (up to the key's CBOR text item) and the rest after the key. The CLEAR
/// script assembles each entry's `del` event (when previous values are
/// asked) as head, the key's text item, rest: what [`write_payload`] builds.
pub(crate) fn del_payload_frame(origin: Option<&str>) -> (Vec<u8>, Vec<u8>) {
    let mut head = Vec::with_capacity(16);
    write_head(&mut head, 5, 4);
    write_text(&mut head, "v");
    head.push(0x01);
    write_text(&mut head, "op");
    write_text(&mut head, Op::Del.as_str());
    write_text(&mut head, "key");
    let mut rest = Vec::with_capacity(8 + origin.map_or(0, str::len));
    write_text(&mut rest, "origin");
    write_opt_text(&mut rest, origin);
    (head, rest)
}

/// The two constant parts of a `set` event payload from `origin`: the head
/// (up to the key's CBOR text item) and the middle (between the key and the
/// value). The PLAIN write script assembles each payload as head, the key's
/// text item, middle, value: byte for byte what [`write_payload`] builds.
pub(crate) fn set_payload_frame(origin: Option<&str>) -> (Vec<u8>, Vec<u8>) {
    let mut head = Vec::with_capacity(16);
    write_head(&mut head, 5, 5);
    write_text(&mut head, "v");
    head.push(0x01);
    write_text(&mut head, "op");
    write_text(&mut head, Op::Set.as_str());
    write_text(&mut head, "key");
    let mut middle = Vec::with_capacity(16 + origin.map_or(0, str::len));
    write_text(&mut middle, "origin");
    write_opt_text(&mut middle, origin);
    write_text(&mut middle, "value");
    (head, middle)
}

/// A `set` event payload up to its value, for the single-entry write script
/// (`scripts::PLAIN_ONE_BODY`): [`set_payload_frame`]'s head, the key's text
/// item and the middle, with the map header counting `extra` more fields,
/// the ones the script appends after the value (`"seq"`, and `"prev"` when
/// previous values are asked). The script then adds the value and those
/// fields: byte for byte what the PLAIN script builds.
pub(crate) fn set_payload_prefix(origin: Option<&str>, key: &str, extra: u64) -> Vec<u8> {
    let (head, middle) = set_payload_frame(origin);
    let mut out = Vec::with_capacity(head.len() + key.len() + 9 + middle.len());
    write_head(&mut out, 5, 5 + extra);
    out.extend_from_slice(&head[1..]);
    write_text(&mut out, key);
    out.extend_from_slice(&middle);
    out
}

/// A payload built by [`write_payload`] with the `"seq"` field appended as
/// the write scripts do it (map header one larger, then the text `"seq"` and
/// the number): what subscribers receive from a library writer.
#[cfg(test)]
pub(crate) fn with_seq(mut payload: Vec<u8>, seq: u64) -> Vec<u8> {
    if let Some(first) = payload.first_mut() {
        *first += 1;
    }
    write_text(&mut payload, "seq");
    write_head(&mut payload, 0, seq);
    payload
}

const NULL: u8 = 0xf6;

/// Writes a CBOR major type with its argument (RFC 8949 §3).
fn write_head(out: &mut Vec<u8>, major: u8, arg: u64) {
    let m = major << 5;
    if arg < 24 {
        out.push(m | arg as u8);
    } else if arg <= u8::MAX as u64 {
        out.extend_from_slice(&[m | 24, arg as u8]);
    } else if arg <= u16::MAX as u64 {
        out.push(m | 25);
        out.extend_from_slice(&(arg as u16).to_be_bytes());
    } else if arg <= u32::MAX as u64 {
        out.push(m | 26);
        out.extend_from_slice(&(arg as u32).to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend_from_slice(&arg.to_be_bytes());
    }
}

fn write_text(out: &mut Vec<u8>, text: &str) {
    write_head(out, 3, text.len() as u64);
    out.extend_from_slice(text.as_bytes());
}

fn write_opt_text(out: &mut Vec<u8>, text: Option<&str>) {
    match text {
        Some(t) => write_text(out, t),
        None => out.push(NULL),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ciborium::Value;

    fn decode(bytes: &[u8]) -> Vec<(String, Value)> {
        let v: Value = ciborium::from_reader(bytes).unwrap();
        v.into_map()
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k.into_text().unwrap(), v))
            .collect()
    }

    #[test]
    fn set_payload_embeds_value_item() {
        let mut value = Vec::new();
        ciborium::into_writer(&vec![1, 2, 3], &mut value).unwrap();
        let long_key = "k".repeat(300);
        let map = decode(&payload(
            Op::Set,
            Some(&long_key),
            Some("p1"),
            Some(&value),
            None,
        ));
        assert_eq!(map[0], ("v".into(), Value::Integer(1.into())));
        assert_eq!(map[1], ("op".into(), Value::Text("set".into())));
        assert_eq!(map[2], ("key".into(), Value::Text(long_key)));
        assert_eq!(map[3], ("origin".into(), Value::Text("p1".into())));
        assert_eq!(
            map[4].1,
            Value::Array(vec![
                Value::Integer(1.into()),
                Value::Integer(2.into()),
                Value::Integer(3.into())
            ])
        );
    }

    #[test]
    fn other_payloads() {
        let map = decode(&payload(Op::Clear, None, None, None, None));
        assert_eq!(map.len(), 4);
        assert_eq!(map[2].1, Value::Null);
        let map = decode(&payload(Op::Expire, Some("k"), None, None, Some(70_000)));
        assert_eq!(map[4], ("ttl_ms".into(), Value::Integer(70_000.into())));
        let map = decode(&payload(Op::Expire, Some("k"), None, None, Some(u64::MAX)));
        assert_eq!(map[4].1, Value::Integer(u64::MAX.into()));
    }
}

/// An event as read from a channel or the log, its value still untyped.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RawEvent {
    pub key: Option<String>,
    pub origin: Option<String>,
    pub kind: RawKind,
    /// The namespace's sequence number of the change (`"seq"`); `None` from
    /// writers that predate it, in keyspace notifications and in gaps.
    pub seq: Option<u64>,
    /// The `"prev"` field: `None` when the payload has none; `Some(None)`
    /// when there was no entry; else the previous value's CBOR item.
    pub prev: Option<Option<Vec<u8>>>,
}

/// The change an event reports, value still untyped.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RawKind {
    /// The new value's CBOR item, byte for byte as the payload carries it.
    Set(Vec<u8>),
    Del,
    Clear,
    Expire(Option<u64>),
    /// From a keyspace notification: the entry's TTL ran out.
    Expired,
    /// Events may have been missed (reconnected, buffer overflow, lost log).
    Gap,
}

/// Parses an event payload (wire format v1): a CBOR map, keys in any order,
/// definite or indefinite length. Unknown extra fields are ignored, so later
/// versions may add some. The value of a `set` is kept as its CBOR bytes,
/// to be decoded once, straight into the subscriber's type.
pub(crate) fn parse(payload: &[u8]) -> Result<RawEvent, String> {
    parse_one(payload)?.copied_event(payload)
}

/// [`parse`] of a payload the caller owns: the value of a `set` is the
/// payload's own buffer, cut down to the value (no new allocation).
pub(crate) fn parse_owned(mut payload: Vec<u8>) -> Result<RawEvent, String> {
    let parts = parse_one(&payload)?;
    let prev = parts.prev_bytes(&payload);
    let value = parts.value.clone().map(|range| {
        payload.truncate(range.end);
        payload.drain(..range.start);
        payload
    });
    parts.into_event(value, prev)
}

/// The events of one pub/sub message: the message's own event, or, for a
/// batch (`"op": "batch"`, WIRE.md §6.2), each of the events it carries, in
/// order, each parsed on its own (one that does not parse is an `Err` among
/// the others). A message that is neither is one `Err`.
pub(crate) fn parse_message(payload: &[u8]) -> Vec<Result<RawEvent, String>> {
    match parse_parts(payload) {
        Ok(Parsed::One(parts)) => vec![parts.copied_event(payload)],
        Ok(Parsed::Batch(events)) => events
            .into_iter()
            .map(|range| parse(&payload[range]))
            .collect(),
        Err(e) => vec![Err(e)],
    }
}

/// What a payload holds: one event, or a batch of them (their places).
enum Parsed {
    One(Parts),
    Batch(Vec<std::ops::Range<usize>>),
}

/// The fields of a payload, the value as its place in the payload.
struct Parts {
    op: Op,
    key: Option<String>,
    origin: Option<String>,
    value: Option<std::ops::Range<usize>>,
    ttl_ms: Option<u64>,
    seq: Option<u64>,
    /// `Some(None)`: `"prev": []`; `Some(Some(range))`: `"prev": [item]`.
    prev: Option<Option<std::ops::Range<usize>>>,
}

impl Parts {
    /// The previous value's bytes (copied out of `payload`).
    fn prev_bytes(&self, payload: &[u8]) -> Option<Option<Vec<u8>>> {
        self.prev
            .clone()
            .map(|range| range.map(|range| payload[range].to_vec()))
    }

    /// The event, its value and previous value copied out of `payload`.
    fn copied_event(self, payload: &[u8]) -> Result<RawEvent, String> {
        let value = self.value.clone().map(|range| payload[range].to_vec());
        let prev = self.prev_bytes(payload);
        self.into_event(value, prev)
    }

    /// The event, given the value's bytes (those of `self.value`) and the
    /// previous value's.
    fn into_event(
        self,
        value: Option<Vec<u8>>,
        prev: Option<Option<Vec<u8>>>,
    ) -> Result<RawEvent, String> {
        let kind = match self.op {
            Op::Set => RawKind::Set(value.unwrap_or_else(|| vec![NULL])),
            Op::Del => RawKind::Del,
            Op::Clear => RawKind::Clear,
            Op::Expire => RawKind::Expire(self.ttl_ms),
        };
        Ok(RawEvent {
            key: self.key,
            origin: self.origin,
            kind,
            seq: self.seq,
            prev,
        })
    }
}

/// The fields of a payload that must be one event (a log entry, or an event
/// inside a batch), not a batch.
fn parse_one(payload: &[u8]) -> Result<Parts, String> {
    match parse_parts(payload)? {
        Parsed::One(parts) => Ok(parts),
        Parsed::Batch(_) => Err("a batch of events where one event belongs".into()),
    }
}

fn parse_parts(payload: &[u8]) -> Result<Parsed, String> {
    use cbor4ii::core::dec::{self, Decode, IgnoredAny, Read, Reference};
    use cbor4ii::core::{types, utils::SliceReader, RawValue};

    let bad = |e: dec::Error<_>| format!("not an event payload: {e}");
    let reader = &mut SliceReader::new(payload);
    // The offset in `payload` of what the reader has not read yet.
    let offset = |reader: &mut SliceReader<'_>| match reader.fill(usize::MAX) {
        Ok(Reference::Long(rest) | Reference::Short(rest)) => payload.len() - rest.len(),
        Err(never) => match never {},
    };
    let len = types::Map::len(reader).map_err(bad)?;
    let (mut version, mut op) = (None, None);
    let (mut key, mut origin, mut value, mut ttl_ms) = (None, None, None, None);
    let mut seq = None;
    let mut prev = None;
    let mut events = None;
    let mut read = 0;
    while match len {
        Some(len) => read < len,
        None => !dec::is_break(reader).map_err(bad)?,
    } {
        read += 1;
        match <&str>::decode(reader).map_err(bad)? {
            "v" => version = Some(u64::decode(reader).map_err(bad)?),
            "op" => op = Some(<&str>::decode(reader).map_err(bad)?),
            "key" => key = Option::<String>::decode(reader).map_err(bad)?,
            "origin" => origin = Option::<String>::decode(reader).map_err(bad)?,
            "value" => {
                let start = offset(reader);
                let item = RawValue::decode(reader).map_err(bad)?;
                value = Some(start..start + item.as_bytes().len());
            }
            "ttl_ms" => ttl_ms = Option::<u64>::decode(reader).map_err(bad)?,
            "seq" => seq = Some(u64::decode(reader).map_err(bad)?),
            "prev" => {
                prev = match types::Array::len(reader).map_err(bad)? {
                    Some(0) => Some(None),
                    Some(1) => {
                        let start = offset(reader);
                        let item = RawValue::decode(reader).map_err(bad)?;
                        Some(Some(start..start + item.as_bytes().len()))
                    }
                    _ => return Err("not an event payload: \"prev\" is not [] or [item]".into()),
                };
            }
            "events" => {
                let len = types::Array::len(reader).map_err(bad)?;
                let mut places = Vec::with_capacity(len.unwrap_or(0).min(1024));
                while match len {
                    Some(len) => places.len() < len,
                    None => !dec::is_break(reader).map_err(bad)?,
                } {
                    let start = offset(reader);
                    let item = RawValue::decode(reader).map_err(bad)?;
                    places.push(start..start + item.as_bytes().len());
                }
                events = Some(places);
            }
            _ => {
                IgnoredAny::decode(reader).map_err(bad)?;
            }
        }
    }
    match version {
        Some(1) => {}
        Some(v) => return Err(format!("unsupported event format version {v}")),
        None => return Err("not an event payload: no \"v\" field".into()),
    }
    let op = match op {
        Some("set") => Op::Set,
        Some("del") => Op::Del,
        Some("clear") => Op::Clear,
        Some("expire") => Op::Expire,
        Some("batch") => {
            return match events {
                Some(events) => Ok(Parsed::Batch(events)),
                None => Err("not an event payload: a batch without \"events\"".into()),
            }
        }
        Some(other) => return Err(format!("unknown event op {other:?}")),
        None => return Err("not an event payload: no \"op\" field".into()),
    };
    Ok(Parsed::One(Parts {
        op,
        key,
        origin,
        value,
        ttl_ms,
        seq,
        prev,
    }))
}

#[cfg(test)]
mod parse_tests {
    use super::*;

    #[test]
    fn parses_what_payload_builds() {
        let mut value = Vec::new();
        ciborium::into_writer(&(1, "x"), &mut value).unwrap();
        let raw = parse(&payload(Op::Set, Some("k"), Some("o"), Some(&value), None)).unwrap();
        for built in [
            payload(Op::Set, Some("k"), Some("o"), Some(&value), None),
            payload(Op::Del, Some("k"), None, None, None),
            payload(Op::Expire, Some("k"), None, None, Some(5)),
        ] {
            assert_eq!(parse_owned(built.clone()), parse(&built));
        }
        assert_eq!(raw.key.as_deref(), Some("k"));
        assert_eq!(raw.origin.as_deref(), Some("o"));
        assert_eq!(raw.kind, RawKind::Set(value.clone()));
        let null = parse(&payload(Op::Set, Some("k"), None, Some(&[0xf6]), None)).unwrap();
        assert_eq!(null.kind, RawKind::Set(vec![0xf6]));
        let clear = parse(&payload(Op::Clear, None, None, None, None)).unwrap();
        assert_eq!((clear.key, clear.kind), (None, RawKind::Clear));
        let persist = parse(&payload(Op::Expire, Some("k"), None, None, None)).unwrap();
        assert_eq!(persist.kind, RawKind::Expire(None));
        assert!(parse(b"\xff").is_err());
    }

    #[test]
    fn parses_seq_and_payloads_without_it() {
        let plain = payload(Op::Del, Some("k"), None, None, None);
        assert_eq!(parse(&plain).unwrap().seq, None);
        for seq in [
            0,
            1,
            23,
            24,
            255,
            256,
            65_536,
            u32::MAX as u64 + 1,
            u64::MAX,
        ] {
            let raw = parse(&with_seq(plain.clone(), seq)).unwrap();
            assert_eq!((raw.seq, raw.kind), (Some(seq), RawKind::Del));
        }
    }

    #[test]
    fn parses_previous_values() {
        // As the write scripts add it: map count + 1, then "prev" and
        // [item] or [] (after "seq", or without it).
        let with_prev = |mut payload: Vec<u8>, item: Option<&[u8]>| {
            payload[0] += 1;
            write_text(&mut payload, "prev");
            match item {
                Some(bytes) => {
                    payload.push(0x81);
                    payload.extend_from_slice(bytes);
                }
                None => payload.push(0x80),
            }
            payload
        };
        let set = payload(Op::Set, Some("k"), None, Some(&[0x02]), None);
        let none = parse(&with_prev(set.clone(), None)).unwrap();
        assert_eq!(
            (none.kind, none.prev),
            (RawKind::Set(vec![0x02]), Some(None))
        );
        let old = [0x82, 0x01, 0xf6];
        let seq_then_prev = with_prev(with_seq(set.clone(), 7), Some(&old));
        for raw in [parse(&seq_then_prev), parse_owned(seq_then_prev.clone())] {
            let raw = raw.unwrap();
            assert_eq!(raw.kind, RawKind::Set(vec![0x02]));
            assert_eq!((raw.seq, raw.prev), (Some(7), Some(Some(old.to_vec()))));
        }
        let del = parse(&with_prev(
            payload(Op::Del, Some("k"), None, None, None),
            Some(&[0x05]),
        ));
        assert_eq!(del.unwrap().prev, Some(Some(vec![0x05])));
        assert_eq!(parse(&set).unwrap().prev, None, "absent when not asked");
        // Anything but [] or [item] is an error, not a guess.
        let mut two = set.clone();
        two[0] += 1;
        write_text(&mut two, "prev");
        two.extend_from_slice(&[0x82, 0x01, 0x02]);
        assert!(parse(&two).unwrap_err().contains("\"prev\""));
    }

    #[test]
    fn parses_payloads_written_by_other_encoders() {
        // Keys in another order, an indefinite-length map, an unknown field
        // (with a nested, tagged item) and a tagged value: the value's bytes
        // are kept exactly.
        let tagged_value = [0xc1, 0x1a, 0x65, 0x53, 0xf1, 0x00]; // tag 1 (epoch), u32
        let mut bytes = vec![0xbf]; // indefinite map
        let text = |out: &mut Vec<u8>, t: &str| {
            out.push(0x60 | t.len() as u8);
            out.extend_from_slice(t.as_bytes());
        };
        text(&mut bytes, "value");
        bytes.extend_from_slice(&tagged_value);
        text(&mut bytes, "future");
        bytes.extend_from_slice(&[0x82, 0xc0, 0x61, b'x', 0xf5]); // [tag(0) "x", true]
        text(&mut bytes, "op");
        text(&mut bytes, "set");
        text(&mut bytes, "key");
        text(&mut bytes, "k");
        text(&mut bytes, "v");
        bytes.push(0x01);
        bytes.push(0xff); // break
        let raw = parse(&bytes).unwrap();
        assert_eq!(parse_owned(bytes.clone()).unwrap(), raw);
        assert_eq!(raw.kind, RawKind::Set(tagged_value.to_vec()));
        assert_eq!((raw.key.as_deref(), raw.origin), (Some("k"), None));

        let mut no_version = vec![0xa1];
        text(&mut no_version, "op");
        text(&mut no_version, "del");
        assert!(parse(&no_version).unwrap_err().contains("\"v\""));
        let mut v2 = vec![0xa2];
        text(&mut v2, "v");
        v2.push(0x02);
        text(&mut v2, "op");
        text(&mut v2, "del");
        assert!(parse(&v2).unwrap_err().contains("version 2"));
        // Truncated: an error, not a panic.
        let whole = payload(Op::Set, Some("k"), None, Some(&[0x01]), None);
        for cut in 0..whole.len() {
            assert!(parse(&whole[..cut]).is_err(), "cut at {cut}");
        }
    }

    /// A batch message (WIRE.md §6.2) reads as its events in order, with a
    /// definite or an indefinite array; an event inside that does not read
    /// (here: a batch nested in it, a version 2 event) is an error in its
    /// place, the others still read; a batch where one event belongs (a log
    /// entry) is refused, as readers that predate batches refuse it.
    #[test]
    fn batch_messages_read_as_their_events() {
        let set =
            |key: &str, seq| with_seq(payload(Op::Set, Some(key), None, Some(&[0x01]), None), seq);
        let del = with_seq(payload(Op::Del, Some("b"), Some("o"), None, None), 2);
        let head = b"\xa4\x61v\x01\x62op\x65batch\x63key\xf6\x66events".to_vec();
        let batch = |array_head: &[u8], events: &[&[u8]], end: &[u8]| {
            [head.as_slice(), array_head, &events.concat(), end].concat()
        };
        let want = [parse(&set("a", 1)).unwrap(), parse(&del).unwrap()];
        for message in [
            batch(&[0x82], &[&set("a", 1), &del], &[]),
            batch(&[0x9f], &[&set("a", 1), &del], &[0xff]),
        ] {
            let read: Vec<_> = parse_message(&message)
                .into_iter()
                .map(Result::unwrap)
                .collect();
            assert_eq!(read, want);
            assert_eq!(
                parse(&message),
                Err("a batch of events where one event belongs".into())
            );
        }
        let nested = batch(&[0x81], &[&set("x", 9)], &[]);
        let v2 = [
            0xa2, 0x61, b'v', 0x02, 0x62, b'o', b'p', 0x63, b'd', b'e', b'l',
        ];
        let read = parse_message(&batch(&[0x84], &[&set("a", 1), &nested, &v2, &del], &[]));
        assert_eq!(read.len(), 4);
        assert_eq!(read[0], Ok(want[0].clone()));
        assert_eq!(
            read[1],
            Err("a batch of events where one event belongs".into())
        );
        assert_eq!(read[2], Err("unsupported event format version 2".into()));
        assert_eq!(read[3], Ok(want[1].clone()));
        // A plain event is one; what is not a message at all, one error.
        assert_eq!(parse_message(&del), vec![Ok(want[1].clone())]);
        assert!(matches!(parse_message(&[0x81, 0x01])[..], [Err(_)]));
        let truncated = batch(&[0x82], &[&set("a", 1)], &[]);
        assert!(matches!(parse_message(&truncated)[..], [Err(_)]));
    }
}
