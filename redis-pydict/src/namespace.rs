//! Namespace validation and the Redis names derived from it (wire format v1).

use crate::error::{Error, Result};

/// Longest namespace allowed, in bytes.
pub const MAX_NAMESPACE_LEN: usize = 256;

/// A validated namespace and the Redis names it owns.
///
/// Given namespace `ns`, entries live at `{ns}:<key>`, the index at `{ns}#keys`,
/// per-key events on `{ns}#ev:<key>` and namespace-wide events on `{ns}#ev`.
/// The braces are a Redis Cluster hash tag: one namespace, one slot.
///
/// ```
/// use redis_pydict::Namespace;
/// let ns = Namespace::new("prod").unwrap();
/// assert_eq!(ns.entry_key("a:b"), "{prod}:a:b");
/// assert_eq!(ns.index_key(), "{prod}#keys");
/// assert_eq!(ns.meta_key(), "{prod}#meta");
/// assert_eq!(ns.member_of("{prod}:a:b"), Some("a:b"));
/// assert!(Namespace::new("a{b").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Namespace {
    name: String,
    entry_prefix: String,
    index_key: String,
    event_channel: String,
    key_channel_prefix: String,
    log_key: String,
    seq_key: String,
    meta_key: String,
}

impl Namespace {
    /// Validates `name`: non-empty UTF-8, at most 256 bytes, without `{` or `}`.
    pub fn new(name: &str) -> Result<Self> {
        let reason = if name.is_empty() {
            Some("it is empty")
        } else if name.len() > MAX_NAMESPACE_LEN {
            Some("it is longer than 256 bytes")
        } else if name.contains(['{', '}']) {
            Some("it contains '{' or '}', which are reserved for the cluster hash tag")
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(Error::InvalidNamespace {
                namespace: name.to_owned(),
                reason,
            });
        }
        Ok(Namespace {
            name: name.to_owned(),
            entry_prefix: format!("{{{name}}}:"),
            index_key: format!("{{{name}}}#keys"),
            event_channel: format!("{{{name}}}#ev"),
            key_channel_prefix: format!("{{{name}}}#ev:"),
            log_key: format!("{{{name}}}#log"),
            seq_key: format!("{{{name}}}#seq"),
            meta_key: format!("{{{name}}}#meta"),
        })
    }

    /// The namespace as given.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The Redis key of entry `key`: `{ns}:<key>`.
    pub fn entry_key(&self, key: &str) -> String {
        let mut out = String::with_capacity(self.entry_prefix.len() + key.len());
        out.push_str(&self.entry_prefix);
        out.push_str(key);
        out
    }

    /// The prefix shared by all entry keys: `{ns}:`.
    pub fn entry_prefix(&self) -> &str {
        &self.entry_prefix
    }

    /// The sorted set indexing the namespace: `{ns}#keys`.
    pub fn index_key(&self) -> &str {
        &self.index_key
    }

    /// The channel of namespace-wide events such as `clear`: `{ns}#ev`.
    pub fn event_channel(&self) -> &str {
        &self.event_channel
    }

    /// The durable change log (a Redis Stream): `{ns}#log`.
    pub fn log_key(&self) -> &str {
        &self.log_key
    }

    /// The namespace's sequence number: `{ns}#seq`, a string holding a
    /// decimal counter that every write through the library advances by one
    /// per change, in the same atomic unit, and that never goes down (not
    /// even on `clear`). Each change event carries its number as `"seq"`.
    pub fn seq_key(&self) -> &str {
        &self.seq_key
    }

    /// Where consumer groups of the durable log park its poison entries (a
    /// Redis Stream): `{ns}#dead`.
    pub fn dead_key(&self) -> String {
        format!("{{{}}}#dead", self.name)
    }

    /// The namespace metadata (a Redis hash): `{ns}#meta`. Its field
    /// `log_maxlen` declares that the namespace keeps a durable log.
    pub fn meta_key(&self) -> &str {
        &self.meta_key
    }

    /// The channel of events about entry `key`: `{ns}#ev:<key>`.
    pub fn key_channel(&self, key: &str) -> String {
        let mut out = String::with_capacity(self.key_channel_prefix.len() + key.len());
        out.push_str(&self.key_channel_prefix);
        out.push_str(key);
        out
    }

    /// The prefix shared by all entry event channels: `{ns}#ev:`.
    pub fn key_channel_prefix(&self) -> &str {
        &self.key_channel_prefix
    }

    /// A SCAN pattern matching every entry key of the namespace: `{ns}:*`, with
    /// glob characters of the namespace escaped.
    pub fn scan_pattern(&self) -> String {
        format!("{{{}}}:*", escape_glob(&self.name))
    }

    /// The key part of a Redis entry key of this namespace, or `None` if the
    /// Redis key belongs elsewhere.
    pub fn member_of<'a>(&self, redis_key: &'a str) -> Option<&'a str> {
        redis_key.strip_prefix(self.entry_prefix.as_str())
    }
}

/// Escapes the Redis glob metacharacters `* ? [ ] \` so that `text` matches
/// only itself inside a pattern.
///
/// ```
/// assert_eq!(redis_pydict::escape_glob("f*[x]"), r"f\*\[x\]");
/// ```
pub fn escape_glob(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_namespaces_with_reason() {
        for bad in ["", "a{b", "a}b", "{x}"] {
            let err = Namespace::new(bad).unwrap_err().to_string();
            assert!(err.contains("invalid namespace"), "{err}");
        }
        let long = "x".repeat(257);
        assert!(Namespace::new(&long).is_err());
        assert!(Namespace::new(&"x".repeat(256)).is_ok());
    }

    #[test]
    fn names_follow_wire_format() {
        let ns = Namespace::new("f*").unwrap();
        assert_eq!(ns.entry_key("k"), "{f*}:k");
        assert_eq!(ns.key_channel("k"), "{f*}#ev:k");
        assert_eq!(ns.scan_pattern(), r"{f\*}:*");
        assert_eq!(ns.member_of("{f*}:a}:b"), Some("a}:b"));
        assert_eq!(ns.member_of("{f*x}:a"), None);
    }
}
