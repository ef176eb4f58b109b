//! CBOR -> JSON for display (`get`, `items`, `watch`), following RFC 8949
//! section 6.1 where it gives advice. Lossy by nature; `dump` and
//! `get --diag` are the exact forms.
//!
//! | CBOR | JSON |
//! |---|---|
//! | unsigned / negative integer within i64 or u64 | number |
//! | integer beyond them (up to -2^64), bignum tags 2 and 3 | string of decimal digits |
//! | float (half, single, double), finite | number |
//! | NaN, Infinity, -Infinity | null |
//! | byte string | string, base64url without padding |
//! | text string | string |
//! | array | array |
//! | map with text keys | object |
//! | map key of another type | its JSON text as a string (`1` -> `"1"`, `[1,2]` -> `"[1,2]"`) |
//! | duplicate keys | the last one wins |
//! | other tag | its content (the tag number is dropped) |
//! | false, true, null | false, true, null |
//! | undefined, other simple values | null |

use base64::Engine as _;
use ciborium::Value as Cbor;
use serde_json::{Map, Number, Value as Json};

/// `value` as JSON (see the module docs for the mapping).
pub fn to_json(value: &Cbor) -> Json {
    match value {
        Cbor::Integer(i) => integer(i128::from(*i)),
        Cbor::Float(f) => Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Cbor::Bytes(b) => Json::String(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)),
        Cbor::Text(s) => Json::String(s.clone()),
        Cbor::Bool(b) => Json::Bool(*b),
        Cbor::Null => Json::Null,
        Cbor::Tag(tag @ (2 | 3), inner) => match inner.as_ref() {
            Cbor::Bytes(b) => bignum(*tag, b),
            other => to_json(other),
        },
        Cbor::Tag(_, inner) => to_json(inner),
        Cbor::Array(items) => Json::Array(items.iter().map(to_json).collect()),
        Cbor::Map(pairs) => {
            let mut map = Map::with_capacity(pairs.len());
            for (k, v) in pairs {
                let key = match k {
                    Cbor::Text(s) => s.clone(),
                    other => to_json(other).to_string(),
                };
                map.insert(key, to_json(v));
            }
            Json::Object(map)
        }
        _ => Json::Null,
    }
}

fn integer(i: i128) -> Json {
    if let Ok(n) = i64::try_from(i) {
        Json::Number(n.into())
    } else if let Ok(n) = u64::try_from(i) {
        Json::Number(n.into())
    } else {
        Json::String(i.to_string())
    }
}

/// A bignum (tag 2: n, tag 3: -1 - n) as decimal digits.
fn bignum(tag: u64, bytes: &[u8]) -> Json {
    let digits = decimal(bytes);
    if tag == 3 {
        // -1 - n: add one to the magnitude.
        let plus_one = add_one(&digits);
        Json::String(format!("-{plus_one}"))
    } else {
        Json::String(digits)
    }
}

/// The big-endian unsigned integer `bytes` in decimal.
fn decimal(bytes: &[u8]) -> String {
    // Base 10^9 limbs, least significant first.
    let mut limbs: Vec<u32> = vec![0];
    for &byte in bytes {
        let mut carry = u64::from(byte);
        for limb in limbs.iter_mut() {
            let v = u64::from(*limb) * 256 + carry;
            *limb = (v % 1_000_000_000) as u32;
            carry = v / 1_000_000_000;
        }
        while carry > 0 {
            limbs.push((carry % 1_000_000_000) as u32);
            carry /= 1_000_000_000;
        }
    }
    let mut out = String::new();
    for (i, limb) in limbs.iter().rev().enumerate() {
        if i == 0 {
            out.push_str(&limb.to_string());
        } else {
            out.push_str(&format!("{limb:09}"));
        }
    }
    out
}

fn add_one(digits: &str) -> String {
    let mut out: Vec<u8> = digits.bytes().collect();
    for d in out.iter_mut().rev() {
        if *d == b'9' {
            *d = b'0';
        } else {
            *d += 1;
            return String::from_utf8_lossy(&out).into_owned();
        }
    }
    format!("1{}", String::from_utf8_lossy(&out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cbor(bytes: &[u8]) -> Json {
        to_json(&ciborium::from_reader(bytes).unwrap())
    }

    #[test]
    fn mapping() {
        assert_eq!(cbor(&[0x01]), Json::from(1));
        assert_eq!(
            cbor(&[0x3b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            Json::String("-18446744073709551616".into())
        );
        assert_eq!(
            cbor(&[0x1b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            Json::from(u64::MAX)
        );
        assert_eq!(cbor(&[0xf9, 0x7e, 0x00]), Json::Null); // NaN
        assert_eq!(cbor(&[0xf9, 0x3e, 0x00]), Json::from(1.5));
        assert_eq!(cbor(&[0x42, 0xfb, 0xff]), Json::String("-_8".into()));
        assert_eq!(
            cbor(&[0xa1, 0x01, 0x61, b'a']),
            serde_json::json!({"1": "a"})
        );
        assert_eq!(cbor(&[0xc1, 0x01]), Json::from(1));
        // 2^64 as a bignum, and -1 - 2^64.
        let big = [0xc2, 0x49, 1, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(cbor(&big), Json::String("18446744073709551616".into()));
        let neg = [0xc3, 0x49, 1, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(cbor(&neg), Json::String("-18446744073709551617".into()));
        assert_eq!(decimal(&[]), "0");
        assert_eq!(add_one("999"), "1000");
    }
}
