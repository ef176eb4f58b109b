//! Namespace metadata (`{ns}#meta`, a Redis hash): what every writer of a
//! namespace must know about it, readable by programs in any language.
//!
//! Today it holds one field, `log_maxlen`: the namespace keeps a durable log
//! (`{ns}#log`) capped at about that many entries. A dict or view with a
//! durable log declares it there the first time one of its writes appends to
//! the log (inside that write's script: no extra round trip). Every write
//! script reads it (one HGET, inside the script), so a dict without a log of
//! its own still appends to the namespace's log: a namespace either keeps a
//! complete log or none, whichever program writes. The field stays until
//! someone deletes it (`clear` leaves it, like the log).

use crate::error::{Error, Result};
use crate::space::Space;

/// The field of `{ns}#meta` that declares a durable log: its approximate cap,
/// a positive decimal integer.
pub const LOG_MAXLEN_FIELD: &str = "log_maxlen";

/// The durable-log cap the namespace declares, if any (see the module docs).
/// A metadata key of another type than hash is [`Error::WrongType`]; a cap
/// that is not a positive integer is [`Error::InvalidMetadata`].
pub(crate) async fn declared_log(space: &Space) -> Result<Option<u64>> {
    let ns = space.namespace();
    let got: redis::RedisResult<Option<String>> = redis::cmd("HGET")
        .arg(ns.meta_key())
        .arg(LOG_MAXLEN_FIELD)
        .query_async(&mut space.conn())
        .await;
    let text = match got {
        Ok(None) => return Ok(None),
        Ok(Some(text)) => text,
        Err(e) if e.code() == Some("WRONGTYPE") => {
            return Err(space.foreign(ns.meta_key(), "durable_log_declared").await);
        }
        Err(e) => return Err(space.fail("durable_log_declared")(e)),
    };
    parse_cap(&text)
        .map(Some)
        .ok_or_else(|| Error::InvalidMetadata {
            namespace: ns.name().to_owned(),
            key: ns.meta_key().to_owned(),
            field: LOG_MAXLEN_FIELD,
            value: text,
        })
}

/// A declared cap: a positive decimal integer without sign or leading zero
/// (what the write scripts accept).
fn parse_cap(text: &str) -> Option<u64> {
    let canonical = !text.starts_with('0') && text.bytes().all(|b| b.is_ascii_digit());
    canonical.then(|| text.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::parse_cap;

    #[test]
    fn caps_are_positive_decimal_integers() {
        assert_eq!(parse_cap("100000"), Some(100_000));
        for bad in [
            "",
            "0",
            "007",
            "+5",
            "-5",
            "1.5",
            "x",
            "99999999999999999999999",
        ] {
            assert_eq!(parse_cap(bad), None, "{bad:?}");
        }
    }
}
