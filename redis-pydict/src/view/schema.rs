//! The stored layout of a derived struct: [`Schema`] and its [`FieldSpec`]s,
//! constants emitted by the derive.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::namespace::Namespace;

/// The stored layout of a derived struct, as a constant: [`RedisDict::SCHEMA`](super::RedisDict::SCHEMA).
///
/// ```
/// use redis_pydict::RedisDict;
///
/// #[derive(RedisDict)]
/// #[redis_dict(prefix = "jobs", rename_all = "camelCase")]
/// struct Job {
///     retry_count: u32,
///     #[redis_dict(ttl = "5m", default)]
///     lease: Option<String>,
///     #[redis_dict(skip)]
///     scratch: Vec<u8>,
/// }
///
/// let schema = Job::SCHEMA;
/// assert_eq!(schema.namespace_name("nightly").unwrap(), "jobs:nightly");
/// assert_eq!(schema.keys().collect::<Vec<_>>(), ["retryCount", "lease"]);
/// let lease = schema.field("lease").unwrap();
/// assert_eq!(lease.ttl(), Some(std::time::Duration::from_secs(300)));
/// assert!(lease.has_default());
/// assert_eq!(schema.skipped(), ["scratch"]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schema {
    pub(crate) type_name: &'static str,
    pub(crate) prefix: Option<&'static str>,
    pub(crate) fields: &'static [FieldSpec],
    pub(crate) skipped: &'static [&'static str],
}

impl Schema {
    #[doc(hidden)]
    pub const fn __new(
        type_name: &'static str,
        prefix: Option<&'static str>,
        fields: &'static [FieldSpec],
        skipped: &'static [&'static str],
    ) -> Schema {
        Schema {
            type_name,
            prefix,
            fields,
            skipped,
        }
    }

    /// The struct's name.
    pub const fn type_name(&self) -> &'static str {
        self.type_name
    }

    /// The namespace prefix (`#[redis_dict(prefix = "...")]`), if any.
    pub const fn prefix(&self) -> Option<&'static str> {
        self.prefix
    }

    /// The stored fields, in declaration order.
    pub const fn fields(&self) -> &'static [FieldSpec] {
        self.fields
    }

    /// Names of the `#[redis_dict(skip)]` fields, which are never stored.
    pub const fn skipped(&self) -> &'static [&'static str] {
        self.skipped
    }

    /// The stored field whose Rust name is `name`.
    pub fn field(&self, name: &str) -> Option<&'static FieldSpec> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The stored field kept under key `key`.
    pub fn field_by_key(&self, key: &str) -> Option<&'static FieldSpec> {
        self.fields.iter().find(|f| f.key == key)
    }

    /// The keys of the stored fields, in declaration order.
    pub fn keys(&self) -> impl ExactSizeIterator<Item = &'static str> {
        self.fields.iter().map(|f| f.key)
    }

    /// The namespace of instance `instance`: `<prefix>:<instance>`, or the
    /// instance itself without a prefix. Fails on an empty instance name.
    pub fn namespace_name(&self, instance: &str) -> Result<String> {
        if instance.is_empty() {
            return Err(Error::InvalidNamespace {
                namespace: instance.to_owned(),
                reason: "the instance name is empty",
            });
        }
        Ok(match self.prefix {
            Some(prefix) => format!("{prefix}:{instance}"),
            None => instance.to_owned(),
        })
    }

    /// The validated namespace of instance `instance` (see [`Schema::namespace_name`]).
    pub fn namespace(&self, instance: &str) -> Result<Namespace> {
        Namespace::new(&self.namespace_name(instance)?)
    }
}

/// One stored field of a derived struct.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldSpec {
    pub(crate) name: &'static str,
    pub(crate) key: &'static str,
    pub(crate) rust_type: &'static str,
    pub(crate) ttl_ms: u64,
    pub(crate) default: bool,
}

impl FieldSpec {
    #[doc(hidden)]
    pub const fn __new(
        name: &'static str,
        key: &'static str,
        rust_type: &'static str,
        ttl_ms: u64,
        default: bool,
    ) -> FieldSpec {
        FieldSpec {
            name,
            key,
            rust_type,
            ttl_ms,
            default,
        }
    }

    /// The field's Rust name.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// The key it is stored under (after `rename` / `rename_all`).
    pub const fn key(&self) -> &'static str {
        self.key
    }

    /// The field's type as written in the struct.
    pub const fn rust_type(&self) -> &'static str {
        self.rust_type
    }

    /// The time-to-live declared with `#[redis_dict(ttl = "...")]`.
    pub const fn ttl(&self) -> Option<Duration> {
        if self.ttl_ms == 0 {
            None
        } else {
            Some(Duration::from_millis(self.ttl_ms))
        }
    }

    /// Whether a missing value loads as a default (`#[redis_dict(default)]`).
    pub const fn has_default(&self) -> bool {
        self.default
    }
}
