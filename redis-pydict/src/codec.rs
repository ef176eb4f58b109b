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
    let mut out = Vec::with_capacity(64);
    ciborium::into_writer(value, &mut out).map_err(|e| Error::Encode {
        namespace: namespace.to_owned(),
        key: key.to_owned(),
        reason: e.to_string(),
    })?;
    Ok(out)
}

/// Decodes exactly one CBOR item of type `V` from `bytes`; trailing bytes are an error.
pub(crate) fn decode<V: DeserializeOwned>(bytes: &[u8], namespace: &str, key: &str) -> Result<V> {
    let fail = |reason: String| Error::Decode {
        namespace: namespace.to_owned(),
        key: key.to_owned(),
        expected: std::any::type_name::<V>(),
        reason,
    };
    let mut rest = bytes;
    let value = ciborium::from_reader(&mut rest).map_err(|e| fail(e.to_string()))?;
    if !rest.is_empty() {
        return Err(fail(format!(
            "{} unexpected bytes after the CBOR item",
            rest.len()
        )));
    }
    Ok(value)
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
}
