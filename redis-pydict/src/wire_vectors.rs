//! The golden vectors of the wire format (`wire/vectors/*.json`, described in
//! WIRE.md), checked against the library's own encoder and decoders in both
//! directions: what the library writes is byte for byte the vector, and
//! every vector reads back as its Rust meaning (or is refused, for the
//! vectors that say so).
//!
//! Event payloads of mode `both` carry `"seq"`, as the write scripts append
//! it to what `event::payload` builds (`event::with_seq`).
//!
//! The cases below are the Rust meaning of each vector; the files hold the
//! bytes. To add a vector, add a case, run
//! `WIRE_VECTORS_WRITE=1 cargo test -p redis-pydict wire_vectors`, review the
//! diff of `wire/vectors/` (the bytes of existing vectors must not change:
//! that would be a wire-format change) and commit both.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::path::PathBuf;

use ciborium::Value;
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::codec;
use crate::event::{self, Op, RawEvent, RawKind};
use crate::namespace::Namespace;

// ----- the Rust types the value vectors use ------------------------------------

#[derive(Debug, Serialize, Deserialize)]
struct Point {
    x: i32,
    y: i32,
}

#[derive(Debug, Serialize, Deserialize)]
struct UnitStruct;

#[derive(Debug, Serialize, Deserialize)]
struct Meters(f64);

#[derive(Debug, Serialize, Deserialize)]
struct Pair(u8, String);

#[derive(Debug, Serialize, Deserialize)]
enum Shape {
    Unit,
    Newtype(u8),
    Tuple(u8, String),
    Struct { a: i32, b: Option<String> },
}

/// The design's example struct, as one value.
#[derive(Debug, Serialize, Deserialize)]
struct Config {
    threshold: f64,
    workers: Vec<String>,
    #[serde(rename = "max-conn")]
    max_conn: u32,
    verbose: bool,
    label: Option<String>,
}

/// `Point` after a field with a default was added (schema evolution).
#[derive(Debug, Serialize, Deserialize)]
struct PointV2 {
    x: i32,
    y: i32,
    #[serde(default)]
    z: i32,
}

// ----- value cases ---------------------------------------------------------------

/// How a vector is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Mode {
    /// The library encodes the value to exactly these bytes, and reads them back as it.
    Both,
    /// Another encoder's bytes (not what the library writes): they read as the value.
    Read,
    /// Bytes the library refuses to read as the type (an error, never a panic).
    Reject,
}

struct ValueCase {
    name: &'static str,
    mode: Mode,
    rust_type: &'static str,
    rust: &'static str,
    /// `Both`: the encoder; others: the given bytes.
    bytes: fn() -> Vec<u8>,
    /// Decodes bytes as the type and compares with the value (`Reject`: expects failure).
    check: fn(&[u8]) -> Result<(), String>,
}

fn encoded<T: Serialize>(value: &T) -> Vec<u8> {
    codec::encode(value, "vectors", "value").expect("every case encodes")
}

/// Decodes `bytes` as `T` (the library's decoder) and compares with `want`
/// by `Debug` (so `NaN` equals itself and `-0.0` differs from `0.0`).
fn reads_as<T: DeserializeOwned + Debug>(bytes: &[u8], want: T) -> Result<(), String> {
    let got: T = codec::decode_value(bytes)?;
    let (got, want) = (format!("{got:?}"), format!("{want:?}"));
    if got == want {
        Ok(())
    } else {
        Err(format!("read {got}, expected {want}"))
    }
}

fn refused<T: DeserializeOwned + Debug>(bytes: &[u8]) -> Result<(), String> {
    match codec::decode_value::<T>(bytes) {
        Ok(got) => Err(format!("read {got:?}, expected an error")),
        Err(_) => Ok(()),
    }
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A vector the library writes and reads.
macro_rules! both {
    ($name:expr, $ty:ty, $value:expr) => {
        ValueCase {
            name: $name,
            mode: Mode::Both,
            rust_type: stringify!($ty),
            rust: stringify!($value),
            bytes: || encoded::<$ty>(&$value),
            check: |bytes| reads_as::<$ty>(bytes, $value),
        }
    };
}

/// Bytes another encoder may write, which read as the value.
macro_rules! read {
    ($name:expr, $hex:expr, $ty:ty, $value:expr) => {
        ValueCase {
            name: $name,
            mode: Mode::Read,
            rust_type: stringify!($ty),
            rust: stringify!($value),
            bytes: || hex($hex),
            check: |bytes| reads_as::<$ty>(bytes, $value),
        }
    };
}

/// Bytes that do not read as the type.
macro_rules! reject {
    ($name:expr, $hex:expr, $ty:ty) => {
        ValueCase {
            name: $name,
            mode: Mode::Reject,
            rust_type: stringify!($ty),
            rust: "(error)",
            bytes: || hex($hex),
            check: |bytes| refused::<$ty>(bytes),
        }
    };
}

fn value_cases() -> Vec<ValueCase> {
    vec![
        both!("bool false", bool, false),
        both!("bool true", bool, true),
        both!("u8 0", u8, 0),
        both!("u8 23 (last one-byte int)", u8, 23),
        both!("u8 24", u8, 24),
        both!("u8 255", u8, 255),
        both!("u16 256", u16, 256),
        both!("u32 65536", u32, 65536),
        both!("u64 2^32", u64, 1 << 32),
        both!("u64 max", u64, u64::MAX),
        both!("i8 -1", i8, -1),
        both!("i32 -24", i32, -24),
        both!("i32 -25", i32, -25),
        both!("i64 500", i64, 500),
        both!("i64 min", i64, i64::MIN),
        both!("u128 5 (fits u64: plain int)", u128, 5),
        both!("u128 2^64 (bignum, tag 2)", u128, 1 << 64),
        both!(
            "i128 -2^64-1 (negative bignum, tag 3)",
            i128,
            -(1i128 << 64) - 1
        ),
        both!("f64 1.5 (exact in f16: written as f16)", f64, 1.5),
        both!("f64 100000 (exact in f32: written as f32)", f64, 100000.0),
        both!("f64 0.1 (written as f64)", f64, 0.1),
        both!("f32 0.1 (written as f32)", f32, 0.1),
        both!("f64 0", f64, 0.0),
        both!("f64 -0", f64, -0.0),
        both!("f64 infinity", f64, f64::INFINITY),
        both!("f64 -infinity", f64, f64::NEG_INFINITY),
        both!("f64 NaN", f64, f64::NAN),
        both!("char", char, 'é'),
        both!("String empty", String, String::new()),
        both!("String unicode", String, "ünï".to_string()),
        both!(
            "String 24 bytes",
            String,
            "abcdefghijklmnopqrstuvwx".to_string()
        ),
        both!("Vec<u8> (an array of ints)", Vec<u8>, vec![1, 2, 3]),
        both!(
            "serde_bytes::ByteBuf (a byte string)",
            serde_bytes::ByteBuf,
            serde_bytes::ByteBuf::from(vec![1, 2, 3])
        ),
        both!("Option None", Option<u32>, None),
        both!("Option Some (the value itself)", Option<u32>, Some(5)),
        both!("unit", (), ()),
        both!("unit struct", UnitStruct, UnitStruct),
        both!("newtype struct (the inner value)", Meters, Meters(2.5)),
        both!("tuple struct (array)", Pair, Pair(1, "a".to_string())),
        both!(
            "tuple (array)",
            (u8, String, bool),
            (1, "a".to_string(), true)
        ),
        both!(
            "struct (map, text keys, declaration order)",
            Point,
            Point { x: 1, y: -2 }
        ),
        both!("enum unit variant (text)", Shape, Shape::Unit),
        both!("enum newtype variant", Shape, Shape::Newtype(3)),
        both!(
            "enum tuple variant",
            Shape,
            Shape::Tuple(1, "y".to_string())
        ),
        both!(
            "enum struct variant",
            Shape,
            Shape::Struct { a: -5, b: None }
        ),
        both!(
            "Vec<String>",
            Vec<String>,
            vec!["a".to_string(), "b".to_string()]
        ),
        both!(
            "BTreeMap<String, u32>",
            BTreeMap<String, u32>,
            BTreeMap::from([("a".to_string(), 1), ("b".to_string(), 2)])
        ),
        both!(
            "BTreeMap<u32, bool> (integer keys)",
            BTreeMap<u32, bool>,
            BTreeMap::from([(1, true), (70000, false)])
        ),
        both!(
            "BTreeMap<(u8, u8), u8> (array keys)",
            BTreeMap<(u8, u8), u8>,
            BTreeMap::from([((1, 2), 3)])
        ),
        both!(
            "BTreeSet<u32> (array)",
            BTreeSet<u32>,
            BTreeSet::from([3, 1])
        ),
        both!(
            "struct with rename and Option",
            Config,
            Config {
                threshold: 0.75,
                workers: vec!["w1".to_string()],
                max_conn: 100,
                verbose: false,
                label: None,
            }
        ),
        read!("u32 from a non-shortest int", "1a00000005", u32, 5),
        read!("u8 from an 8-byte int", "1b0000000000000005", u8, 5),
        read!("f64 from an f64 1.5", "fb3ff8000000000000", f64, 1.5),
        read!("f64 from an f32 1.5", "fa3fc00000", f64, 1.5),
        read!("f32 from an f64 0.5", "fb3fe0000000000000", f32, 0.5),
        read!(
            "f32 from an f64 0.1 (rounded)",
            "fb3fb999999999999a",
            f32,
            0.1
        ),
        reject!(
            "f64 from an integer (floats must be CBOR floats)",
            "02",
            f64
        ),
        read!("i128 from a small bignum", "c24105", i128, 5),
        read!("u64 inside an unknown tag (tag ignored)", "c105", u64, 5),
        read!(
            "String from an indefinite text",
            "7f6261626163ff",
            String,
            "abc".to_string()
        ),
        read!(
            "Vec<u8> from an indefinite array",
            "9f0102ff",
            Vec<u8>,
            vec![1, 2]
        ),
        read!(
            "BTreeMap from an indefinite map",
            "bf616101ff",
            BTreeMap<String, u8>,
            BTreeMap::from([("a".to_string(), 1)])
        ),
        read!(
            "struct with keys in another order",
            "a2617921617801",
            Point,
            Point { x: 1, y: -2 }
        ),
        read!(
            "struct with an unknown field (ignored)",
            "a3617801617921617a09",
            Point,
            Point { x: 1, y: -2 }
        ),
        read!(
            "struct missing a #[serde(default)] field (schema evolution)",
            "a2617801617921",
            PointV2,
            PointV2 { x: 1, y: -2, z: 0 }
        ),
        read!("Option from undefined", "f7", Option<u32>, None),
        read!(
            "serde_bytes::ByteBuf from an array",
            "83010203",
            serde_bytes::ByteBuf,
            serde_bytes::ByteBuf::from(vec![1, 2, 3])
        ),
        read!(
            "Vec<u8> from a byte string",
            "43010203",
            Vec<u8>,
            vec![1, 2, 3]
        ),
        reject!("u8 from 256", "190100", u8),
        reject!("u32 from a negative int", "20", u32),
        reject!("String from a byte string", "43616263", String),
        reject!("String not UTF-8", "62fffe", String),
        reject!("struct missing a field", "a1617801", Point),
        reject!("unknown enum variant", "66537175617265", Shape),
        reject!("trailing bytes after the item", "0102", u8),
        reject!("truncated item", "636162", String),
        reject!("not CBOR (reserved additional info)", "1c", u8),
    ]
}

// ----- event cases ---------------------------------------------------------------

/// The meaning of an event payload, as the JSON file states it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct EventMeaning {
    op: String,
    key: Option<String>,
    origin: Option<String>,
    /// `set`: the hex of the value's CBOR item, as carried.
    value: Option<String>,
    /// `expire`: the new TTL in ms, `None` after persist.
    ttl_ms: Option<u64>,
    /// The namespace's sequence number of the change; `None` from writers
    /// that predate it.
    #[serde(default)]
    seq: Option<u64>,
    /// `"prev"` (writers asked for previous values), as on the wire: `[]`
    /// (there was no entry) or `[hex of the previous value's item]`;
    /// `None` when absent.
    #[serde(default)]
    prev: Option<Vec<String>>,
}

struct EventCase {
    name: &'static str,
    mode: Mode,
    /// The channel it is published on (namespace `orders`).
    channel: &'static str,
    /// `Both`: built by the library; others: given bytes (`Read`, `Reject`).
    bytes: Vec<u8>,
    /// The meaning (`Reject` and batches: none).
    meaning: Option<EventMeaning>,
    /// A batch message's events, in order (else empty).
    batch: Vec<EventMeaning>,
}

fn meaning(
    op: &str,
    key: Option<&str>,
    origin: Option<&str>,
    value: Option<&str>,
    ttl_ms: Option<u64>,
) -> Option<EventMeaning> {
    Some(EventMeaning {
        op: op.to_owned(),
        key: key.map(str::to_owned),
        origin: origin.map(str::to_owned),
        value: value.map(str::to_owned),
        ttl_ms,
        seq: None,
        prev: None,
    })
}

/// A payload with `"prev"` appended as the write scripts append it (after
/// `"seq"`): map count + 1, the text `"prev"`, then `[item]` or `[]`.
fn with_prev(mut payload: Vec<u8>, item: Option<&[u8]>) -> Vec<u8> {
    payload[0] += 1;
    payload.extend_from_slice(b"\x64prev");
    match item {
        Some(bytes) => {
            payload.push(0x81);
            payload.extend_from_slice(bytes);
        }
        None => payload.push(0x80),
    }
    payload
}

/// What the write scripts publish: the payload with its sequence number
/// appended (see `event::with_seq`), and the meaning with it.
fn numbered(
    seq: u64,
    payload: Vec<u8>,
    meaning: Option<EventMeaning>,
) -> (Vec<u8>, Option<EventMeaning>) {
    let meaning = meaning.map(|m| EventMeaning {
        seq: Some(seq),
        ..m
    });
    (event::with_seq(payload, seq), meaning)
}

/// The raw event a meaning stands for.
fn raw_of(m: &EventMeaning) -> RawEvent {
    let kind = match m.op.as_str() {
        "set" => RawKind::Set(hex(m.value.as_deref().unwrap_or("f6"))),
        "del" => RawKind::Del,
        "clear" => RawKind::Clear,
        "expire" => RawKind::Expire(m.ttl_ms),
        "expired" => RawKind::Expired,
        other => panic!("no op {other}"),
    };
    RawEvent {
        key: m.key.clone(),
        origin: m.origin.clone(),
        kind,
        seq: m.seq,
        prev: m.prev.as_ref().map(|p| p.first().map(|h| hex(h))),
    }
}

fn event_cases() -> Vec<EventCase> {
    let value = encoded(&Point { x: 1, y: -2 });
    let value_hex = to_hex(&value);
    let built =
        |op, key, origin, value: Option<&[u8]>, ttl| event::payload(op, key, origin, value, ttl);
    // Numbered as a namespace's first changes are.
    let mut seq = 0;
    let mut both = |name, channel, bytes, meaning| {
        seq += 1;
        let (bytes, meaning) = numbered(seq, bytes, meaning);
        EventCase {
            name,
            mode: Mode::Both,
            channel,
            bytes,
            meaning,
            batch: Vec::new(),
        }
    };
    let read = |name, text: &str, meaning| EventCase {
        name,
        mode: Mode::Read,
        channel: "{orders}#ev:a",
        bytes: hex(text),
        meaning,
        batch: Vec::new(),
    };
    let reject = |name, text: &str| EventCase {
        name,
        mode: Mode::Reject,
        channel: "{orders}#ev:a",
        bytes: hex(text),
        meaning: None,
        batch: Vec::new(),
    };
    vec![
        both(
            "set with origin",
            "{orders}#ev:a",
            built(Op::Set, Some("a"), Some("p1"), Some(&value), None),
            meaning("set", Some("a"), Some("p1"), Some(&value_hex), None),
        ),
        both(
            "set without origin",
            "{orders}#ev:a",
            built(Op::Set, Some("a"), None, Some(&value), None),
            meaning("set", Some("a"), None, Some(&value_hex), None),
        ),
        both(
            "del with origin",
            "{orders}#ev:a",
            built(Op::Del, Some("a"), Some("p1"), None, None),
            meaning("del", Some("a"), Some("p1"), None, None),
        ),
        both(
            "del without origin",
            "{orders}#ev:a",
            built(Op::Del, Some("a"), None, None, None),
            meaning("del", Some("a"), None, None, None),
        ),
        both(
            "expire (TTL set)",
            "{orders}#ev:a",
            built(Op::Expire, Some("a"), Some("p1"), None, Some(30_000)),
            meaning("expire", Some("a"), Some("p1"), None, Some(30_000)),
        ),
        both(
            "expire (persist: ttl_ms null)",
            "{orders}#ev:a",
            built(Op::Expire, Some("a"), None, None, None),
            meaning("expire", Some("a"), None, None, None),
        ),
        both(
            "clear with origin",
            "{orders}#ev",
            built(Op::Clear, None, Some("p1"), None, None),
            meaning("clear", None, Some("p1"), None, None),
        ),
        both(
            "clear without origin",
            "{orders}#ev",
            built(Op::Clear, None, None, None, None),
            meaning("clear", None, None, None, None),
        ),
        // Previous values (a writer with `with_previous_values`), after seq.
        EventCase {
            name: "set with prev: the previous value",
            mode: Mode::Read,
            channel: "{orders}#ev:a",
            bytes: with_prev(
                event::with_seq(built(Op::Set, Some("a"), None, Some(&[0x02]), None), 9),
                Some(&[0x01]),
            ),
            meaning: Some(EventMeaning {
                seq: Some(9),
                prev: Some(vec!["01".into()]),
                ..meaning("set", Some("a"), None, Some("02"), None).expect("a meaning")
            }),
            batch: Vec::new(),
        },
        EventCase {
            name: "set with prev: [] (there was no entry)",
            mode: Mode::Read,
            channel: "{orders}#ev:a",
            bytes: with_prev(
                event::with_seq(built(Op::Set, Some("a"), None, Some(&[0x03]), None), 10),
                None,
            ),
            meaning: Some(EventMeaning {
                seq: Some(10),
                prev: Some(Vec::new()),
                ..meaning("set", Some("a"), None, Some("03"), None).expect("a meaning")
            }),
            batch: Vec::new(),
        },
        // Python's cbor2.dumps({"v": 1, "op": "set", "key": "a", "origin": None, "value": 5}).
        read(
            "set as another encoder writes it (origin null)",
            "a5617601626f7063736574636b65796161666f726967696ef66576616c756505",
            meaning("set", Some("a"), None, Some("05"), None),
        ),
        read(
            "fields in another order, an indefinite map",
            "bf6576616c756505626f7063736574617601636b65796161ff",
            meaning("set", Some("a"), None, Some("05"), None),
        ),
        read(
            "set without value reads as null",
            "a3617601626f7063736574636b65796161",
            meaning("set", Some("a"), None, Some("f6"), None),
        ),
        read(
            "an unknown field is ignored",
            "a4617601626f706364656c636b6579616166667574757265f5",
            meaning("del", Some("a"), None, None, None),
        ),
        read(
            "origin absent reads as null",
            "a3617601626f706364656c636b65796161",
            meaning("del", Some("a"), None, None, None),
        ),
        // A batch (WIRE.md §6.2), as the PLAIN script publishes one on a
        // cluster: {"v": 1, "op": "batch", "key": null, "events": [...]},
        // each event as it would go out alone.
        EventCase {
            name: "a batch of two events",
            mode: Mode::Read,
            channel: "{orders}#ev",
            bytes: [
                hex("a4617601626f70656261746368636b6579f6666576656e747382"),
                event::with_seq(built(Op::Set, Some("a"), None, Some(&value), None), 11),
                event::with_seq(built(Op::Set, Some("b"), None, Some(&value), None), 12),
            ]
            .concat(),
            meaning: None,
            batch: [("a", 11), ("b", 12)]
                .into_iter()
                .map(|(key, seq)| EventMeaning {
                    seq: Some(seq),
                    ..meaning("set", Some(key), None, Some(&value_hex), None).expect("a meaning")
                })
                .collect(),
        },
        reject("a batch without events", "a2617601626f70656261746368"),
        reject("version 2", "a2617602626f706364656c"),
        reject("no version", "a1626f706364656c"),
        reject("unknown op", "a2617601626f706464726f70"),
        reject("not a map", "8101"),
    ]
}

// ----- the files -------------------------------------------------------------------

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct ValueVector {
    name: String,
    mode: Mode,
    rust_type: String,
    rust: String,
    hex: String,
    diag: String,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct EventVector {
    name: String,
    mode: Mode,
    channel: String,
    hex: String,
    diag: String,
    event: Option<EventMeaning>,
    /// A batch message's events (WIRE.md §6.2).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    batch: Vec<EventMeaning>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct File<T> {
    description: String,
    vectors: Vec<T>,
}

fn path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../wire/vectors")
        .join(name)
}

/// CBOR diagnostic notation (RFC 8949 §8) of one item, without encoding
/// indicators; `"(invalid)"` when it does not decode.
fn diag(bytes: &[u8]) -> String {
    let mut rest = bytes;
    match ciborium::from_reader::<Value, _>(&mut rest) {
        Ok(value) if rest.is_empty() => diag_value(&value),
        Ok(value) => format!("{} (then {} more bytes)", diag_value(&value), rest.len()),
        Err(_) => "(invalid)".to_owned(),
    }
}

fn diag_value(value: &Value) -> String {
    match value {
        Value::Integer(i) => i128::from(*i).to_string(),
        Value::Bytes(b) => format!("h'{}'", to_hex(b)),
        Value::Float(f) if f.is_nan() => "NaN".to_owned(),
        Value::Float(f) if f.is_infinite() => {
            if *f > 0.0 { "Infinity" } else { "-Infinity" }.to_owned()
        }
        Value::Float(f) => format!("{f:?}"),
        Value::Text(t) => serde_json::to_string(t).unwrap_or_default(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".to_owned(),
        Value::Tag(tag, inner) => format!("{tag}({})", diag_value(inner)),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(diag_value).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Map(entries) => {
            let entries: Vec<String> = entries
                .iter()
                .map(|(k, v)| format!("{}: {}", diag_value(k), diag_value(v)))
                .collect();
            format!("{{{}}}", entries.join(", "))
        }
        _ => "undefined".to_owned(),
    }
}

fn value_file() -> File<ValueVector> {
    File {
        description: "redis-pydict wire format v1: values (WIRE.md, Values). mode both: the \
                      library writes exactly hex and reads it as rust; read: another \
                      encoder's bytes that read as rust; reject: bytes that do not read as \
                      rust_type (an error)."
            .to_owned(),
        vectors: value_cases()
            .iter()
            .map(|case| {
                let bytes = (case.bytes)();
                ValueVector {
                    name: case.name.to_owned(),
                    mode: case.mode,
                    rust_type: case.rust_type.to_owned(),
                    rust: case.rust.to_owned(),
                    hex: to_hex(&bytes),
                    diag: diag(&bytes),
                }
            })
            .collect(),
    }
}

fn event_file() -> File<EventVector> {
    File {
        description: "redis-pydict wire format v1: event payloads (WIRE.md, Events), in \
                      namespace \"orders\"; the value of set events is {\"x\": 1, \"y\": -2}. \
                      mode both: the library writes exactly hex and reads it as event; read: \
                      another writer's payload that reads as event; reject: a payload \
                      readers refuse."
            .to_owned(),
        vectors: event_cases()
            .into_iter()
            .map(|case| EventVector {
                name: case.name.to_owned(),
                mode: case.mode,
                channel: case.channel.to_owned(),
                hex: to_hex(&case.bytes),
                diag: diag(&case.bytes),
                event: case.meaning,
                batch: case.batch,
            })
            .collect(),
    }
}

fn load<T: DeserializeOwned>(name: &str) -> File<T> {
    let text = std::fs::read_to_string(path(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// With `WIRE_VECTORS_WRITE=1`, writes the file from the cases (review the diff!).
fn write_if_asked<T: Serialize>(name: &str, file: &File<T>) {
    if std::env::var_os("WIRE_VECTORS_WRITE").is_some() {
        let text = serde_json::to_string_pretty(file).expect("json") + "\n";
        std::fs::create_dir_all(path("")).expect("wire/vectors");
        std::fs::write(path(name), text).expect("write vectors");
    }
}

#[test]
fn value_vectors_hold_in_both_directions() {
    let generated = value_file();
    write_if_asked("values.json", &generated);
    let file: File<ValueVector> = load("values.json");
    let cases = value_cases();
    assert_eq!(file.vectors.len(), cases.len(), "one vector per case");
    let mut failures = Vec::new();
    for ((case, vector), fresh) in cases.iter().zip(&file.vectors).zip(&generated.vectors) {
        assert_eq!(vector.name, case.name);
        // Encode: what the library writes now is the file's bytes.
        if vector != fresh {
            failures.push(format!("{}: file {vector:?}, library {fresh:?}", case.name));
        }
        // Decode: the file's bytes read as the case says.
        if let Err(e) = (case.check)(&hex(&vector.hex)) {
            failures.push(format!("{} ({:?}): {e}", case.name, case.mode));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn event_vectors_hold_in_both_directions() {
    let generated = event_file();
    write_if_asked("events.json", &generated);
    let file: File<EventVector> = load("events.json");
    assert_eq!(
        file, generated,
        "wire/vectors/events.json is what the library writes"
    );
    let ns = Namespace::new("orders").expect("namespace");
    for vector in &file.vectors {
        let parsed = event::parse(&hex(&vector.hex));
        match (&vector.event, vector.mode) {
            (Some(want), Mode::Both | Mode::Read) => {
                assert_eq!(parsed, Ok(raw_of(want)), "{}", vector.name);
                let channel = match &want.key {
                    Some(key) => ns.key_channel(key),
                    None => ns.event_channel().to_owned(),
                };
                assert_eq!(vector.channel, channel, "{}", vector.name);
            }
            (None, Mode::Read) if !vector.batch.is_empty() => {
                // One event where a batch came is refused (log entries,
                // events inside a batch); a message delivers its events.
                assert!(parsed.is_err(), "{}: {parsed:?}", vector.name);
                let want: Vec<_> = vector.batch.iter().map(|m| Ok(raw_of(m))).collect();
                assert_eq!(
                    event::parse_message(&hex(&vector.hex)),
                    want,
                    "{}",
                    vector.name
                );
                assert_eq!(vector.channel, ns.event_channel(), "{}", vector.name);
            }
            (None, Mode::Reject) => {
                assert!(parsed.is_err(), "{}: {parsed:?}", vector.name);
                let message = event::parse_message(&hex(&vector.hex));
                assert!(
                    matches!(message[..], [Err(_)]),
                    "{}: {message:?}",
                    vector.name
                );
            }
            other => panic!("{}: inconsistent vector {other:?}", vector.name),
        }
    }
}

/// An expiry is not a payload of ours: it is the server's keyspace
/// notification, which subscriptions turn into `Change::Expired`.
#[test]
fn keyspace_expiry_notification_reads_as_expired() {
    let ns = Namespace::new("orders").expect("namespace");
    let msg = |channel: &str, payload: &str| {
        redis::Msg::from_owned_value(redis::Value::Array(vec![
            redis::Value::BulkString(b"pmessage".to_vec()),
            redis::Value::BulkString(b"__keyspace@0__:{orders}:*".to_vec()),
            redis::Value::BulkString(channel.as_bytes().to_vec()),
            redis::Value::BulkString(payload.as_bytes().to_vec()),
        ]))
        .expect("a pub/sub message")
    };
    let expired = crate::subscription::to_raw(&ns, &msg("__keyspace@0__:{orders}:a", "expired"));
    assert_eq!(
        expired.into_iter().map(|r| r.ok()).collect::<Vec<_>>(),
        vec![Some(raw_of(&EventMeaning {
            op: "expired".into(),
            key: Some("a".into()),
            origin: None,
            value: None,
            ttl_ms: None,
            seq: None,
            prev: None,
        }))]
    );
    // Other keyspace notifications (the write itself: "set", "del") are ignored.
    assert!(crate::subscription::to_raw(&ns, &msg("__keyspace@0__:{orders}:a", "set")).is_empty());
    // Another namespace's keys are not ours.
    assert!(
        crate::subscription::to_raw(&ns, &msg("__keyspace@0__:{orders2}:a", "expired")).is_empty()
    );
}
