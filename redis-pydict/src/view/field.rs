//! [`Field`]: the typed handle on one field of a derived view, a thin layer
//! over [`Dict`]: it holds the view's dict (same namespace, same settings),
//! its key and its schema entry, and every operation is the dict's, on that
//! key. There is one write path, the dict's, by construction.

use std::fmt;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::dict::Dict;
use crate::error::Result;
use crate::namespace::Namespace;
use crate::space::Ttl;
use crate::subscription::{Event, Subscription};

use super::internals::missing;
use super::schema::{FieldSpec, Schema};

/// The typed handle on one field of a derived view: one Redis key holding
/// the field's CBOR value, read and written through the namespace's
/// [`Dict`] (entry, index and change event in one atomic unit).
pub struct Field<T> {
    dict: Dict<String, T>,
    schema: &'static Schema,
    spec: &'static FieldSpec,
    default: Option<fn() -> T>,
}

impl<T> Clone for Field<T> {
    fn clone(&self) -> Self {
        Field {
            dict: self.dict.clone(),
            schema: self.schema,
            spec: self.spec,
            default: self.default,
        }
    }
}

impl<T> fmt::Debug for Field<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Field")
            .field("struct", &self.schema.type_name)
            .field("field", &self.spec.name)
            .field("namespace", &self.dict.namespace().name())
            .field("key", &self.spec.key)
            .finish()
    }
}

impl<T> Field<T> {
    pub(crate) fn new(
        dict: Dict<String, T>,
        schema: &'static Schema,
        spec: &'static FieldSpec,
        default: Option<fn() -> T>,
    ) -> Self {
        Field {
            dict,
            schema,
            spec,
            default,
        }
    }

    /// The field's Rust name.
    pub fn name(&self) -> &'static str {
        self.spec.name
    }

    /// The key the field is stored under, inside the view's namespace.
    pub fn key(&self) -> &'static str {
        self.spec.key
    }

    /// The field's schema entry.
    pub fn spec(&self) -> &'static FieldSpec {
        self.spec
    }

    /// The namespace of the view.
    pub fn namespace(&self) -> &Namespace {
        self.dict.namespace()
    }
}

impl<T: Serialize + DeserializeOwned> Field<T> {
    /// The stored value, or `None` when the field has none (whatever its type).
    pub async fn get(&self) -> Result<Option<T>> {
        self.dict.get(self.spec.key).await
    }

    /// Writes the field (entry, index and change event in one atomic unit).
    /// A field declared with `#[redis_dict(ttl = "...")]` gets that TTL afresh;
    /// any other ends without one.
    pub async fn set(&self, value: &T) -> Result<()> {
        match self.spec.ttl() {
            Some(ttl) => self.dict.set_with_ttl(self.spec.key, value, ttl).await,
            None => self.dict.set(self.spec.key, value).await,
        }
    }

    /// Writes the field expiring after `ttl` (at least 1 ms), whatever it declares.
    pub async fn set_with_ttl(&self, value: &T, ttl: Duration) -> Result<()> {
        self.dict.set_with_ttl(self.spec.key, value, ttl).await
    }

    /// Writes the field only if it holds nothing (with its declared TTL, if
    /// any); true if written.
    pub async fn set_if_absent(&self, value: &T) -> Result<bool> {
        self.dict
            .insert_if_absent(self.spec.key, value, self.spec.ttl())
            .await
    }

    /// Deletes the field's key; true if it existed.
    pub async fn delete(&self) -> Result<bool> {
        self.dict.delete(self.spec.key).await
    }

    /// Deletes the field's key and returns its value, atomically (the dict's
    /// [`Dict::remove`]). If the old value does not decode, the key is
    /// removed all the same and the error is [`crate::Error::Removed`].
    pub async fn take(&self) -> Result<Option<T>> {
        self.dict.take("take", self.spec.key).await
    }

    /// Whether the field holds a value (the dict's [`Dict::contains`]).
    pub async fn exists(&self) -> Result<bool> {
        self.dict.contains(self.spec.key).await
    }

    /// The field's time-to-live state.
    pub async fn ttl(&self) -> Result<Ttl> {
        self.dict.ttl(self.spec.key).await
    }

    /// Sets a time-to-live on the field; false if it holds nothing.
    pub async fn expire(&self, ttl: Duration) -> Result<bool> {
        self.dict.expire(self.spec.key, ttl).await
    }

    /// Removes the field's time-to-live; false if it holds nothing.
    pub async fn persist(&self) -> Result<bool> {
        self.dict.persist(self.spec.key).await
    }

    /// Read-modify-write that never loses an update: `f` changes the current
    /// value in place and the result is written only if nobody wrote the field
    /// meanwhile, else `f` runs again on the fresh value (optimistic
    /// WATCH/MULTI). A missing value starts as `None` for an `Option`, as its
    /// default for a `default` field, and is [`crate::Error::MissingField`]
    /// otherwise. The field keeps its TTL. Nothing is written (and no event
    /// published) when `f` leaves the value as it was, compared in CBOR's
    /// deterministic encoding, so a `HashMap` in another order, a `NaN` or a
    /// value written by another program is not a change (`-0.0` after `0.0`
    /// is). Returns what `f` returned on the attempt that won.
    pub async fn update<R>(&self, f: impl FnMut(&mut T) -> R) -> Result<R> {
        let (schema, spec, default) = (self.schema, self.spec, self.default);
        let namespace = self.dict.namespace().name();
        self.dict
            .modify(
                spec.key,
                |old| match old {
                    Some(value) => Ok(value),
                    None => missing(schema, spec, namespace, default),
                },
                f,
            )
            .await
    }

    /// Read-modify-write like [`Dict::update_with`]: `f` gets the current value
    /// (`None` when missing) and returns the new one, which is written and returned.
    pub async fn update_with(&self, f: impl FnMut(Option<T>) -> T) -> Result<T> {
        self.dict.update_with(self.spec.key, f).await
    }

    /// Subscribes to the changes of this field, made by any process: a typed
    /// stream of [`Event`]s whose `change` carries the new value (see
    /// [`Dict::subscribe_key`]). The view's settings apply: with
    /// [`View::with_skip_own_events`](super::View::with_skip_own_events), the
    /// view's own writes are not received.
    pub async fn subscribe(&self) -> Result<Subscription<Event<String, T>>>
    where
        T: Send + 'static,
    {
        self.dict.subscribe_key(self.spec.key).await
    }
}
