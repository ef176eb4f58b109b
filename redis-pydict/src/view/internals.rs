//! The private surface of generated code (reached through
//! `::redis_pydict::__private`, in the style of serde_derive's internals):
//! building a view's handles, writing and reading a struct field by field
//! in schema order, and the missing-field rules.

use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;

use serde::de::{self, DeserializeOwned, Visitor};
use serde::Serialize;

use crate::codec;
use crate::error::{Error, Result};

use super::mode::Mode;
use super::schema::{FieldSpec, Schema};
use super::{RedisDict, View};

/// What `RedisDict::__make_view` builds the generated view from: the async
/// view and what its mode adds. Used by generated code.
#[doc(hidden)]
pub struct Core<T, M: Mode> {
    view: View<T>,
    cx: M::Context,
}

impl<T: RedisDict, M: Mode> Core<T, M> {
    pub(crate) fn new(view: View<T>, cx: M::Context) -> Self {
        Core { view, cx }
    }

    /// The handle of stored field number `I`. An `I` out of the schema is
    /// a compile error (the spec is looked up in a constant), never a panic.
    pub fn field<F, const I: usize>(&self) -> M::Field<F> {
        let spec: &'static FieldSpec = const { &T::SCHEMA.fields[I] };
        M::__field(self.view.field(spec, None), &self.cx)
    }

    /// The handle of stored field number `I`, which takes `default()` when missing.
    pub fn field_or<F, const I: usize>(&self, default: fn() -> F) -> M::Field<F> {
        let spec: &'static FieldSpec = const { &T::SCHEMA.fields[I] };
        M::__field(self.view.field(spec, Some(default)), &self.cx)
    }

    /// The whole-struct view, in the mode.
    pub fn finish(self) -> M::View<T> {
        M::__view(self.view, self.cx)
    }
}

/// Collects the encoded fields of a struct being saved. Used by generated code.
#[doc(hidden)]
pub struct FieldWriter<'a> {
    pub(crate) schema: &'static Schema,
    pub(crate) namespace: &'a str,
    pub(crate) entries: Vec<(usize, &'static FieldSpec, Vec<u8>)>,
}

impl FieldWriter<'_> {
    /// Encodes stored field number `index`.
    pub fn field<F: Serialize + ?Sized>(&mut self, index: usize, value: &F) -> Result<()> {
        let spec = spec_at(self.schema, index)?;
        let bytes = codec::encode(value, self.namespace, spec.key)?;
        self.entries.push((index, spec, bytes));
        Ok(())
    }
}

/// Hands the stored values of a struct being loaded to generated code.
#[doc(hidden)]
pub struct FieldReader<'a> {
    pub(crate) schema: &'static Schema,
    pub(crate) namespace: &'a str,
    /// Per stored field, its bytes (`None`: nothing stored); borrowed, so
    /// that a live view decodes its snapshot without copying it.
    pub(crate) values: &'a [Option<Vec<u8>>],
}

impl FieldReader<'_> {
    /// Decodes stored field number `index`: missing is `None` for an `Option`
    /// and [`Error::MissingField`] for anything else.
    pub fn field<F: DeserializeOwned>(&mut self, index: usize) -> Result<F> {
        self.decode(index, None)
    }

    /// Decodes stored field number `index`, taking `default()` when missing.
    pub fn field_or<F: DeserializeOwned>(&mut self, index: usize, default: fn() -> F) -> Result<F> {
        self.decode(index, Some(default))
    }

    fn decode<F: DeserializeOwned>(
        &mut self,
        index: usize,
        default: Option<fn() -> F>,
    ) -> Result<F> {
        let spec = spec_at(self.schema, index)?;
        match self.values.get(index).and_then(Option::as_ref) {
            Some(bytes) => codec::decode(bytes, self.namespace, spec.key),
            None => missing(self.schema, spec, self.namespace, default),
        }
    }
}

pub(crate) fn spec_at(schema: &'static Schema, index: usize) -> Result<&'static FieldSpec> {
    schema.fields.get(index).ok_or_else(|| {
        Error::Config(format!(
            "the schema of {} has no stored field #{index} (a redis-pydict derive bug)",
            schema.type_name
        ))
    })
}

/// The value of a field with nothing stored: its default if it has one, else
/// `None` for an `Option`, else [`Error::MissingField`] naming it.
pub(crate) fn missing<F: DeserializeOwned>(
    schema: &'static Schema,
    spec: &'static FieldSpec,
    namespace: &str,
    default: Option<fn() -> F>,
) -> Result<F> {
    if let Some(default) = default {
        return Ok(default());
    }
    F::deserialize(Missing).map_err(|e| match e {
        MissingError::Missing => Error::MissingField {
            namespace: namespace.to_owned(),
            type_name: schema.type_name,
            field: spec.name,
            key: spec.key.to_owned(),
        },
        MissingError::Other(reason) => Error::Decode {
            namespace: namespace.to_owned(),
            key: spec.key.to_owned(),
            expected: std::any::type_name::<F>(),
            reason,
        },
    })
}

/// A deserializer for a value that is not there: an `Option` reads it as
/// `None`, every other type fails (serde's own rule for missing fields).
struct Missing;

#[derive(Debug)]
enum MissingError {
    Missing,
    Other(String),
}

impl fmt::Display for MissingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MissingError::Missing => f.write_str("missing value"),
            MissingError::Other(reason) => f.write_str(reason),
        }
    }
}

impl std::error::Error for MissingError {}

impl de::Error for MissingError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        MissingError::Other(msg.to_string())
    }
}

impl<'de> de::Deserializer<'de> for Missing {
    type Error = MissingError;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, MissingError> {
        Err(MissingError::Missing)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, MissingError> {
        visitor.visit_none()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct newtype_struct seq tuple tuple_struct
        map struct enum identifier ignored_any
    }
}

/// The view type of a struct whose derive failed to compile: it exists only
/// so that the derive's error is the only one reported.
#[doc(hidden)]
pub enum Unavailable<T, M> {
    #[doc(hidden)]
    __Never(std::convert::Infallible, PhantomData<fn() -> (T, M)>),
}

impl<T, M: Mode> Deref for Unavailable<T, M> {
    type Target = M::View<T>;

    fn deref(&self) -> &M::View<T> {
        match self {
            Unavailable::__Never(never, _) => match *never {},
        }
    }
}

impl<T, M> fmt::Debug for Unavailable<T, M> {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unavailable::__Never(never, _) => match *never {},
        }
    }
}

/// What generated code reaches through `::redis_pydict::__private`.
pub mod private {
    pub use super::super::events::EventInput;
    pub use super::super::field::Field;
    pub use super::super::mode::{Async, Mode};
    pub use super::super::schema::{FieldSpec, Schema};
    pub use super::super::{RedisDict, View};
    pub use super::{Core, FieldReader, FieldWriter, Unavailable};
    pub use crate::error::Result;
    pub use crate::subscription::Change;
    pub use core::clone::Clone;
    pub use core::cmp::PartialEq;
    pub use core::convert::Infallible;
    pub use core::default::Default;
    pub use core::fmt::{Debug, Formatter, Result as FmtResult};
    pub use core::marker::PhantomData;
    pub use core::ops::Deref;
    pub use core::option::Option;
    pub use core::result::Result::Ok;
    pub use serde::de::DeserializeOwned;
    pub use serde::Serialize;
}
