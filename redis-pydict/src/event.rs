//! Change-event payloads (wire format v1).
//!
//! Every mutation publishes, in the same atomic unit as the write, a CBOR map
//! `{"v": 1, "op": ..., "key": text|null, "origin": text|null, ...}` where a
//! `set` carries `"value"` (the new value's CBOR item, byte for byte as stored)
//! and an `expire` carries `"ttl_ms"` (the new time-to-live, `null` after persist).

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
    let extra = usize::from(op == Op::Set || op == Op::Expire);
    let mut out = Vec::with_capacity(48 + key.map_or(0, str::len) + value.map_or(0, <[u8]>::len));
    write_head(&mut out, 5, 4 + extra as u64);
    write_text(&mut out, "v");
    out.push(0x01);
    write_text(&mut out, "op");
    write_text(&mut out, op.as_str());
    write_text(&mut out, "key");
    write_opt_text(&mut out, key);
    write_text(&mut out, "origin");
    write_opt_text(&mut out, origin);
    match op {
        Op::Set => {
            write_text(&mut out, "value");
            match value {
                Some(bytes) => out.extend_from_slice(bytes),
                None => out.push(NULL),
            }
        }
        Op::Expire => {
            write_text(&mut out, "ttl_ms");
            match ttl_ms {
                Some(ms) => write_head(&mut out, 0, ms),
                None => out.push(NULL),
            }
        }
        Op::Del | Op::Clear => {}
    }
    out
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
