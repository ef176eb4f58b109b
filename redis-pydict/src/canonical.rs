//! Whether two stored values are the same value: the change check of
//! read-modify-write (`Field::update`, `View::update`), which writes only
//! what changed.
//!
//! Comparing the encoded bytes is not enough: a `HashMap` or `HashSet`
//! encodes its entries in iteration order, which differs between two maps
//! holding the same entries, and a value written by another program may use
//! other (equally valid) encodings: indefinite lengths, a wider float, map
//! keys in another order. Both sides are therefore compared in the
//! deterministic encoding of RFC 8949 §4.2: decoded to a [`ciborium::Value`]
//! (which forgets lengths and float widths), map entries sorted by the
//! bytes of their encoded keys, recursively, and encoded again with the
//! shortest forms. Floats are compared bit for bit, never with `==`: `NaN`
//! equals itself (no spurious write) and `-0.0` differs from `0.0` (no
//! change lost).
//!
//! A set (or any collection in hash order) encodes as an array, whose order
//! is significant for a `Vec` and so is never sorted; callers compare the
//! encodings of the *same* value before and after the change, which iterate
//! alike when nothing changed.

use ciborium::Value;

/// True when `a` and `b` encode the same CBOR value (see the module docs).
/// Bytes that do not decode are only the same when they are identical.
pub(crate) fn same_value(a: &[u8], b: &[u8]) -> bool {
    if a == b {
        return true;
    }
    match (deterministic(a), deterministic(b)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// The deterministic encoding of the one CBOR item in `bytes`, if it decodes.
fn deterministic(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut rest = bytes;
    let value: Value = ciborium::from_reader(&mut rest).ok()?;
    if !rest.is_empty() {
        return None;
    }
    encode(&sorted(value)?)
}

/// `value` with the entries of every map, at every depth, in the order of
/// their encoded keys.
fn sorted(value: Value) -> Option<Value> {
    Some(match value {
        Value::Map(entries) => {
            let mut keyed = entries
                .into_iter()
                .map(|(k, v)| {
                    let k = sorted(k)?;
                    Some((encode(&k)?, k, sorted(v)?))
                })
                .collect::<Option<Vec<_>>>()?;
            keyed.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Map(keyed.into_iter().map(|(_, k, v)| (k, v)).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect::<Option<_>>()?),
        Value::Tag(tag, inner) => Value::Tag(tag, Box::new(sorted(*inner)?)),
        other => other,
    })
}

fn encode(value: &Value) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    ciborium::into_writer(value, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use super::*;

    fn cbor<T: serde::Serialize + ?Sized>(value: &T) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::into_writer(value, &mut out).unwrap();
        out
    }

    /// Two maps with the same entries, encoded in different orders.
    fn reordered<K, V>(entries: Vec<(K, V)>) -> (Vec<u8>, Vec<u8>)
    where
        K: serde::Serialize,
        V: serde::Serialize,
    {
        let forward: Vec<(&K, &V)> = entries.iter().map(|(k, v)| (k, v)).collect();
        let backward: Vec<(&K, &V)> = forward.iter().rev().copied().collect();
        let as_map = |pairs: &[(&K, &V)]| {
            let mut out = Vec::new();
            ciborium::into_writer(&Pairs(pairs), &mut out).unwrap();
            out
        };
        (as_map(&forward), as_map(&backward))
    }

    /// Serializes pairs as a CBOR map in the given order.
    struct Pairs<'a, K, V>(&'a [(&'a K, &'a V)]);

    impl<K: serde::Serialize, V: serde::Serialize> serde::Serialize for Pairs<'_, K, V> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeMap;
            let mut map = s.serialize_map(Some(self.0.len()))?;
            for (k, v) in self.0 {
                map.serialize_entry(k, v)?;
            }
            map.end()
        }
    }

    #[test]
    fn map_order_does_not_matter() {
        let (a, b) = reordered((0..8).map(|i| (format!("k{i}"), i)).collect());
        assert_ne!(a, b);
        assert!(same_value(&a, &b));
        let (a, b) = reordered(vec![(1u32, "x"), (300, "y"), (-2i64 as u32, "z")]);
        assert!(same_value(&a, &b));
    }

    #[test]
    fn hash_maps_with_the_same_entries_are_the_same() {
        let entries: Vec<(String, u32)> = (0..64).map(|i| (format!("key-{i}"), i)).collect();
        let one: HashMap<String, u32> = entries.iter().cloned().collect();
        let two: HashMap<String, u32> = entries.iter().rev().cloned().collect();
        assert!(same_value(&cbor(&one), &cbor(&two)));
    }

    #[test]
    fn nested_maps_are_sorted_at_every_depth() {
        let (inner_a, inner_b) = reordered(vec![("a", 1), ("b", 2), ("c", 3)]);
        let outer = |inner: &[u8]| {
            let inner: Value = ciborium::from_reader(inner).unwrap();
            let mut out = Vec::new();
            let value = Value::Array(vec![
                Value::Map(vec![(Value::Text("m".into()), inner.clone())]),
                Value::Tag(42, Box::new(inner)),
            ]);
            ciborium::into_writer(&value, &mut out).unwrap();
            out
        };
        assert!(same_value(&outer(&inner_a), &outer(&inner_b)));
        let changed = BTreeMap::from([("a", 1), ("b", 2), ("c", 4)]);
        assert!(!same_value(&outer(&inner_a), &outer(&cbor(&changed))));
    }

    #[test]
    fn floats_compare_bit_for_bit() {
        assert!(same_value(&cbor(&f64::NAN), &cbor(&f64::NAN)));
        assert!(!same_value(&cbor(&0.0f64), &cbor(&-0.0f64)));
        assert!(!same_value(&cbor(&1.0f64), &cbor(&1u8)));
        assert!(!same_value(&cbor(&0.1f64), &cbor(&0.1f32)));
        // The same number in a wider encoding than needed (f64 bytes for 1.5).
        let wide = [&[0xfb][..], &1.5f64.to_be_bytes()].concat();
        assert!(same_value(&wide, &cbor(&1.5f64)));
        let maps = |x: f64| cbor(&BTreeMap::from([("x", x)]));
        assert!(same_value(&maps(f64::NAN), &maps(f64::NAN)));
        assert!(!same_value(&maps(0.0), &maps(-0.0)));
    }

    #[test]
    fn other_encodings_of_the_same_value_are_the_same() {
        // An indefinite-length array and text, as another program may write them.
        let indefinite = [0x9f, 0x01, 0x7f, 0x61, b'a', 0x61, b'b', 0xff, 0xff];
        assert!(same_value(&indefinite, &cbor(&(1, "ab"))));
        // A non-shortest integer (0x18 0x05 is 5 on two bytes).
        assert!(same_value(&[0x18, 0x05], &cbor(&5u8)));
    }

    #[test]
    fn different_values_differ() {
        assert!(!same_value(&cbor(&vec![1, 2]), &cbor(&vec![2, 1])));
        assert!(!same_value(&cbor(&"a"), &cbor(&b"a".as_slice())));
        assert!(!same_value(&cbor(&Some(1)), &cbor(&None::<u8>)));
        let (a, _) = reordered(vec![("a", 1), ("b", 2)]);
        let (c, _) = reordered(vec![("a", 1), ("b", 3)]);
        assert!(!same_value(&a, &c));
    }

    #[test]
    fn undecodable_bytes_are_only_equal_to_themselves() {
        assert!(same_value(&[0xff, 0x00], &[0xff, 0x00]));
        assert!(!same_value(&[0xff, 0x00], &[0xff, 0x01]));
        assert!(!same_value(&[0x01, 0x02], &cbor(&1u8)));
    }
}
