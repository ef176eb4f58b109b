//! CBOR encoding and decoding of values (wire format v1), with errors that
//! name the namespace, the key and the expected type.

use serde::{de::DeserializeOwned, Serialize};

use crate::error::{Error, Result};

/// Encodes `value` as one CBOR item.
pub(crate) fn encode<V: Serialize + ?Sized>(
    value: &V,
    namespace: &str,
    key: &str,
) -> Result<Vec<u8>> {
    // Room for a typical record without growing.
    let mut out = Vec::with_capacity(128);
    ciborium::into_writer(value, &mut out).map_err(|e| Error::Encode {
        namespace: namespace.to_owned(),
        key: key.to_owned(),
        reason: e.to_string(),
    })?;
    Ok(out)
}

/// Decodes exactly one CBOR item of type `V` from `bytes`; trailing bytes are an error.
///
/// Two decoders, one result: cbor4ii's slice decoder first (about 3.5× faster
/// than ciborium on a typical record, and it borrows strings straight from
/// `bytes`), and ciborium, the reference, for anything cbor4ii does not take:
/// tags, half-width floats (ciborium writes `1.5_f64` as an f16), a float of
/// another width than asked for, undecodable input. Where cbor4ii accepts an
/// item it hands serde the same values ciborium would (checked item by item in
/// the tests below), so the fallback changes only the speed, never the result,
/// and every error message is ciborium's.
pub(crate) fn decode<V: DeserializeOwned>(bytes: &[u8], namespace: &str, key: &str) -> Result<V> {
    decode_value(bytes).map_err(|reason| Error::Decode {
        namespace: namespace.to_owned(),
        key: key.to_owned(),
        expected: short_type_name(std::any::type_name::<V>()),
        reason,
    })
}

/// A type name without its module paths: `HashMap<String, u32>` for
/// `std::collections::hash::map::HashMap<alloc::string::String, u32>`.
fn short_type_name(full: &'static str) -> &'static str {
    if !full.contains("::") {
        return full;
    }
    // Type names are few and fixed: keep one shortened copy of each.
    static NAMES: std::sync::Mutex<Vec<(&'static str, &'static str)>> =
        std::sync::Mutex::new(Vec::new());
    let Ok(mut names) = NAMES.lock() else {
        return full;
    };
    if let Some((_, short)) = names.iter().find(|(long, _)| *long == full) {
        return short;
    }
    let mut short = String::with_capacity(full.len());
    let mut segment = String::new();
    for c in full.chars() {
        if c.is_alphanumeric() || c == '_' || c == ':' {
            segment.push(c);
        } else {
            short.push_str(segment.rsplit("::").next().unwrap_or(&segment));
            segment.clear();
            short.push(c);
        }
    }
    short.push_str(segment.rsplit("::").next().unwrap_or(&segment));
    let short: &'static str = Box::leak(short.into_boxed_str());
    names.push((full, short));
    short
}

/// ciborium's error as a sentence (its `Display` is its `Debug` form, e.g.
/// `Semantic(None, "invalid type: …")`).
fn describe<T: std::fmt::Debug>(error: ciborium::de::Error<T>) -> String {
    use ciborium::de::Error as E;
    match error {
        E::Semantic(_, message) => message,
        E::Syntax(offset) => format!("it is not valid CBOR (malformed item at byte {offset})"),
        E::Io(e) => format!("the CBOR item is cut short ({e:?})"),
        E::RecursionLimitExceeded => "it nests deeper than the decoder allows".to_owned(),
    }
}

/// [`decode`], with the decoder's message as the error.
pub(crate) fn decode_value<V: DeserializeOwned>(bytes: &[u8]) -> std::result::Result<V, String> {
    if let Some(value) = decode_fast(bytes) {
        return Ok(value);
    }
    let mut rest = bytes;
    let value = ciborium::from_reader(&mut rest).map_err(describe)?;
    if !rest.is_empty() {
        return Err(format!(
            "{} unexpected bytes after the CBOR item",
            rest.len()
        ));
    }
    Ok(value)
}

/// The fast path of [`decode`]: `None` unless cbor4ii decodes all of `bytes`
/// as exactly one `V`.
fn decode_fast<V: DeserializeOwned>(bytes: &[u8]) -> Option<V> {
    use cbor4ii::core::dec::{Read, Reference};
    let mut de = cbor4ii::serde::Deserializer::new(cbor4ii::core::utils::SliceReader::new(bytes));
    let value = V::deserialize(&mut de).ok()?;
    let trailing = match de.into_inner().fill(1) {
        Ok(Reference::Long(rest)) => !rest.is_empty(),
        Ok(Reference::Short(rest)) => !rest.is_empty(),
        Err(never) => match never {},
    };
    (!trailing).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_names_key_on_failure() {
        let bytes = encode(&(1u8, "x".to_string()), "ns", "k").unwrap();
        let back: (u8, String) = decode(&bytes, "ns", "k").unwrap();
        assert_eq!(back, (1, "x".into()));
        let err = decode::<u32>(&bytes, "ns", "k").unwrap_err().to_string();
        assert!(err.contains("\"k\"") && err.contains("u32"), "{err}");
        let err = decode::<u32>(b"\xff\xfe garbage", "ns", "k").unwrap_err();
        assert!(matches!(err, Error::Decode { .. }));
        let err = decode::<u8>(&[1, 2], "ns", "k").unwrap_err().to_string();
        assert!(err.contains("unexpected bytes"), "{err}");
    }

    #[test]
    fn decode_errors_are_plain_sentences() {
        let bytes = encode("x", "ns", "k").unwrap();
        let err = decode::<HashMap<String, u32>>(&bytes, "cfg", "limits")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "value of key \"limits\" in namespace \"cfg\" does not decode as HashMap<String, u32>: \
             invalid type: string, expected map"
        );
        let err = decode::<u32>(&[0x1c], "ns", "k").unwrap_err().to_string();
        assert!(
            err.ends_with("it is not valid CBOR (malformed item at byte 0)"),
            "{err}"
        );
        let err = decode::<String>(&[0x63, b'a'], "ns", "k")
            .unwrap_err()
            .to_string();
        assert!(err.contains("cut short"), "{err}");
        let err = decode::<u32>(&encode("x", "ns", "k").unwrap(), "ns", "k")
            .unwrap_err()
            .to_string();
        assert!(
            !err.contains("Semantic(") && !err.contains("Syntax("),
            "{err}"
        );
        assert_eq!(short_type_name("u8"), "u8");
        assert_eq!(
            short_type_name(std::any::type_name::<Option<Vec<String>>>()),
            "Option<Vec<String>>"
        );
    }

    use serde::Deserialize;
    use std::collections::{BTreeMap, HashMap};
    use std::fmt::Debug;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Shape {
        Unit,
        Newtype(u8),
        Tuple(u8, String),
        Struct { a: i32, b: Option<String> },
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Unit;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Record {
        id: u64,
        name: String,
        tags: Vec<String>,
        shapes: Vec<Shape>,
        by_id: BTreeMap<u32, bool>,
        pair: (i8, char),
        big: i128,
        ratio: f64,
        small: f32,
        nothing: Option<u8>,
        unit: Unit,
    }

    fn record(ratio: f64) -> Record {
        Record {
            id: 7,
            name: "ünï".into(),
            tags: vec!["a".into(), String::new()],
            shapes: vec![
                Shape::Unit,
                Shape::Newtype(3),
                Shape::Tuple(1, "y".into()),
                Shape::Struct { a: -5, b: None },
            ],
            by_id: [(1, true), (70_000, false)].into(),
            pair: (-3, 'é'),
            big: -(1i128 << 100),
            ratio,
            small: 0.1,
            nothing: None,
            unit: Unit,
        }
    }

    fn cbor<T: Serialize>(value: &T) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::into_writer(value, &mut out).unwrap();
        out
    }

    /// `decode` gives exactly what ciborium alone gives: the same value, or
    /// an error where ciborium fails.
    fn same_as_ciborium<T: DeserializeOwned + Debug + PartialEq>(bytes: &[u8]) {
        let ours = decode::<T>(bytes, "ns", "k");
        let reference: std::result::Result<T, _> = ciborium::from_reader(bytes);
        match (ours, reference) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{bytes:02x?}"),
            (Err(_), Err(_)) => {}
            (a, b) => panic!("{bytes:02x?}: ours {a:?}, ciborium {b:?}"),
        }
    }

    #[test]
    fn fast_path_gives_what_ciborium_gives() {
        // Floats: ciborium writes the shortest exact width (1.5 as an f16,
        // 0.1 as an f64); either way the result must not change.
        for ratio in [0.1, 1.5, 0.0, -0.0, f64::INFINITY, 1e300] {
            same_as_ciborium::<Record>(&cbor(&record(ratio)));
            same_as_ciborium::<ciborium::Value>(&cbor(&record(ratio)));
            same_as_ciborium::<f64>(&cbor(&ratio));
            same_as_ciborium::<f32>(&cbor(&ratio));
        }
        same_as_ciborium::<i128>(&cbor(&(1i128 << 100)));
        same_as_ciborium::<u128>(&cbor(&u128::MAX));
        same_as_ciborium::<i64>(&[0xc2, 0x41, 0x05]); // small bignum
        let tagged = ciborium::Value::Tag(1, Box::new(ciborium::Value::Integer(5.into())));
        same_as_ciborium::<ciborium::Value>(&cbor(&tagged));
        same_as_ciborium::<u8>(&cbor(&tagged));
        same_as_ciborium::<serde_json::Value>(&cbor(&tagged));
        same_as_ciborium::<serde_json::Value>(&cbor(&BTreeMap::from([("a", vec![1.5, 0.1])])));
        same_as_ciborium::<Vec<u8>>(&[0x42, 1, 2]); // byte string
        same_as_ciborium::<Vec<u8>>(&[0x82, 1, 2]); // array
        same_as_ciborium::<Shape>(&cbor(&Shape::Unit));
        same_as_ciborium::<Shape>(&cbor(&Shape::Tuple(2, "z".into())));
        same_as_ciborium::<Option<u8>>(&[0xf6]); // null
        same_as_ciborium::<Option<u8>>(&[0xf7]); // undefined
        same_as_ciborium::<()>(&[0xf6]);
        same_as_ciborium::<char>(&cbor(&'x'));
        same_as_ciborium::<u32>(&cbor(&(1u64 << 40))); // out of range
        same_as_ciborium::<String>(&[0x62, 0xff, 0xfe]); // not UTF-8
        same_as_ciborium::<(u8, u8)>(&cbor(&vec![1u8]));
        same_as_ciborium::<HashMap<u64, String>>(&cbor(&BTreeMap::from([(5u64, "a")])));
        same_as_ciborium::<BTreeMap<String, u8>>(&cbor(&BTreeMap::from([(5u64, 1u8)])));
        // Indefinite lengths, as other languages' encoders may write them.
        same_as_ciborium::<String>(&[0x7f, 0x62, b'a', b'b', 0x61, b'c', 0xff]);
        same_as_ciborium::<Vec<u8>>(&[0x9f, 1, 2, 0xff]);
        same_as_ciborium::<BTreeMap<String, u8>>(&[0xbf, 0x61, b'a', 1, 0xff]);
        // Truncated input and trailing bytes are errors on both paths.
        let whole = cbor(&record(0.1));
        same_as_ciborium::<Record>(&whole[..whole.len() - 1]);
        assert!(decode::<u8>(&[1, 2], "ns", "k").is_err());
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Session {
        user_id: u64,
        name: String,
        roles: Vec<String>,
        score: f64,
        big: i128,
        shape: Shape,
        seen: Option<u64>,
    }

    #[test]
    fn typical_records_take_the_fast_path() {
        // The point of the fast path: it must not quietly stop applying.
        let mut session = Session {
            user_id: 1,
            name: "user-1".into(),
            roles: vec!["ops".into()],
            score: 0.1,
            big: -(1i128 << 100),
            shape: Shape::Struct { a: 1, b: None },
            seen: None,
        };
        assert_eq!(
            decode_fast::<Session>(&cbor(&session)).as_ref(),
            Some(&session)
        );
        assert!(decode_fast::<serde_json::Value>(&cbor(&vec!["a", "b"])).is_some());
        // A half-width float (ciborium writes 1.5 as an f16) is left to
        // ciborium, and still decodes.
        session.score = 1.5;
        assert!(decode_fast::<Session>(&cbor(&session)).is_none());
        assert_eq!(
            decode::<Session>(&cbor(&session), "ns", "k").unwrap(),
            session
        );
    }
}
