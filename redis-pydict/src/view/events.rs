//! Change events of a view: the [`ViewEvent`] items of `View::subscribe`,
//! and the typing of raw events by field, which generated code finishes.

use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::event::{RawEvent, RawKind};
use crate::subscription::{Change, Previous};

use super::schema::{FieldSpec, Schema};
use super::RedisDict;

/// One change seen by a view subscription ([`View::subscribe`](super::View::subscribe)): what changed,
/// as a variant of the generated `<Struct>Event` enum, and who changed it.
///
/// Generic over the enum so that one runtime type serves every derived
/// struct; it is `Debug`, `Clone` and `PartialEq` when the enum is.
/// Equality compares `origin`, `event` and `previous`, not `seq` (as for
/// [`Event`](crate::Event)), so an event built with [`ViewEvent::new`] in a
/// test equals the one a subscription yields.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ViewEvent<E> {
    /// The writer's origin id, if it set one (the store's
    /// [`origin`](crate::StoreBuilder::origin), or [`View::with_origin`](super::View::with_origin)).
    pub origin: Option<String>,
    /// What changed: a field's [`Change`] (`ConfigEvent::Threshold(Change::Set(0.5))`),
    /// or the namespace-wide `Cleared` and `Gap`.
    pub event: E,
    /// The namespace's sequence number of this change (see
    /// [`Namespace::seq_key`](crate::Namespace::seq_key)): larger is later.
    /// `None` for events of writers older than the field, for `Expired` and
    /// for `Gap`.
    pub seq: Option<u64>,
    /// The field's value before the change, when the writer carries previous
    /// values ([`View::with_previous_values`](super::View::with_previous_values)):
    /// the same variant as `event`, holding `Change::Set(previous value)`
    /// (`ConfigEvent::Threshold(Change::Set(0.25))`), or [`Previous::Absent`]
    /// when the field was not stored. Otherwise [`Previous::Unknown`], as for
    /// `Cleared`, `Expired` and `Gap`.
    pub previous: Previous<E>,
}

impl<E: PartialEq> PartialEq for ViewEvent<E> {
    fn eq(&self, other: &Self) -> bool {
        self.origin == other.origin && self.event == other.event && self.previous == other.previous
    }
}

impl<E> ViewEvent<E> {
    /// An event as a view subscription would yield it, for tests of code
    /// that consumes them (the struct is `#[non_exhaustive]`: it may gain fields).
    pub fn new(origin: Option<String>, event: E) -> Self {
        ViewEvent {
            origin,
            event,
            seq: None,
            previous: Previous::Unknown,
        }
    }

    /// The same event carrying `previous` (for tests of code that consumes events).
    pub fn with_previous(mut self, previous: Previous<E>) -> Self {
        self.previous = previous;
        self
    }
}

/// A change event for generated code to type: a change of the stored field
/// number `.0`, or a namespace-wide event. Used by generated code.
#[doc(hidden)]
pub enum EventInput<'a> {
    /// A change of stored field number `.0` (schema order).
    Field(usize, FieldChange<'a>),
    /// The whole namespace was cleared.
    Cleared,
    /// Events may have been missed (see [`Change::Gap`]).
    Gap,
}

/// The still untyped change of one field. Used by generated code.
#[doc(hidden)]
pub struct FieldChange<'a> {
    schema: &'static Schema,
    spec: &'static FieldSpec,
    namespace: &'a str,
    kind: RawKind,
    /// Whether `kind` is the `Set` of the field's previous value (for the
    /// wording of a decode error).
    previous: bool,
}

impl FieldChange<'_> {
    /// The change typed as the field's type `F`; a value that does not
    /// decode as `F` is [`Error::Decode`] naming the key and the field.
    pub fn decode<F: DeserializeOwned>(self) -> Result<Change<F>> {
        let (schema, spec, namespace) = (self.schema, self.spec, self.namespace);
        let what = if self.previous {
            "the previous value "
        } else {
            ""
        };
        self.kind.typed(|e| Error::Decode {
            namespace: namespace.to_owned(),
            key: spec.key.to_owned(),
            expected: std::any::type_name::<F>(),
            reason: format!(
                "{what}in a change event of field `{}` of {}: {e}",
                spec.name, schema.type_name
            ),
        })
    }

    /// The error for a field number the generated code does not know (a
    /// redis-pydict derive bug, never the data's fault).
    pub fn unknown<E>(self) -> Result<E> {
        Err(Error::Config(format!(
            "{} has no variant for stored field `{}` (a redis-pydict derive bug)",
            self.schema.type_name, self.spec.name
        )))
    }
}

/// Types a raw event of a view's namespace as a [`ViewEvent`]: `None` for
/// events of keys that are not stored fields of `T`, and for events written
/// with the `skipped` origin.
pub(crate) fn view_event<T: RedisDict>(
    namespace: &str,
    skipped: Option<&str>,
    raw: RawEvent,
) -> Option<Result<ViewEvent<T::Event>>> {
    if skipped.is_some() && raw.origin.as_deref() == skipped {
        return None;
    }
    let whole = match raw.kind {
        RawKind::Clear => Some(EventInput::Cleared),
        RawKind::Gap => Some(EventInput::Gap),
        _ => None,
    };
    if let Some(input) = whole {
        return Some(T::__event(input).map(|event| ViewEvent {
            origin: raw.origin,
            event,
            seq: raw.seq,
            previous: Previous::Unknown,
        }));
    }
    let key = raw.key.as_deref()?;
    let (index, spec) = T::SCHEMA
        .fields
        .iter()
        .enumerate()
        .find(|(_, spec)| spec.key == key)?;
    let typed = |kind: RawKind, previous: bool| {
        T::__event(EventInput::Field(
            index,
            FieldChange {
                schema: T::SCHEMA,
                spec,
                namespace,
                kind,
                previous,
            },
        ))
    };
    let previous = match raw.prev {
        None => Ok(Previous::Unknown),
        Some(None) => Ok(Previous::Absent),
        Some(Some(bytes)) => typed(RawKind::Set(bytes), true).map(Previous::Value),
    };
    Some(previous.and_then(|previous| {
        Ok(ViewEvent {
            event: typed(raw.kind, false)?,
            origin: raw.origin,
            seq: raw.seq,
            previous,
        })
    }))
}

/// The typing and filtering of view events, on a hand-written impl (what the
/// derive generates for `struct Test { count: u32, #[redis_dict(rename =
/// "the-name")] name: Option<String> }`), without a server or the macro.
#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::event::RawKind;
    use crate::view::internals::{Core, FieldReader, FieldWriter, Unavailable};
    use crate::view::{FieldSpec, Mode, RedisDict, Schema};

    #[derive(Debug, Clone, PartialEq)]
    enum TestEvent {
        Count(Change<u32>),
        Name(Change<Option<String>>),
        Cleared,
        Gap,
    }

    struct Test;

    impl RedisDict for Test {
        type View<M: Mode> = Unavailable<Self, M>;
        type Event = TestEvent;
        const SCHEMA: &'static Schema = &Schema::__new(
            "Test",
            None,
            &[
                FieldSpec::__new("count", "count", "u32", 0, false),
                FieldSpec::__new("name", "the-name", "Option<String>", 0, false),
            ],
            &[],
        );
        fn __make_view<M: Mode>(_: Core<Self, M>) -> Self::View<M> {
            unreachable!("no views in this test")
        }
        fn __write(&self, _: &mut FieldWriter<'_>) -> Result<()> {
            Ok(())
        }
        fn __read(_: &mut FieldReader<'_>) -> Result<Self> {
            Ok(Test)
        }
        fn __event(input: EventInput<'_>) -> Result<TestEvent> {
            Ok(match input {
                EventInput::Field(0, c) => TestEvent::Count(c.decode()?),
                EventInput::Field(1, c) => TestEvent::Name(c.decode()?),
                EventInput::Field(_, c) => return c.unknown(),
                EventInput::Cleared => TestEvent::Cleared,
                EventInput::Gap => TestEvent::Gap,
            })
        }
    }

    fn raw(key: Option<&str>, origin: Option<&str>, kind: RawKind) -> RawEvent {
        RawEvent {
            key: key.map(str::to_owned),
            origin: origin.map(str::to_owned),
            kind,
            seq: None,
            prev: None,
        }
    }

    fn typed(skipped: Option<&str>, raw: RawEvent) -> Option<Result<ViewEvent<TestEvent>>> {
        view_event::<Test>("cfg:prod", skipped, raw)
    }

    fn ok(origin: Option<&str>, event: TestEvent) -> ViewEvent<TestEvent> {
        ViewEvent {
            origin: origin.map(str::to_owned),
            event,
            seq: None,
            previous: Previous::Unknown,
        }
    }

    #[test]
    fn field_changes_are_typed_by_key() {
        let seven = RawKind::Set(vec![0x07]);
        let got = typed(None, raw(Some("count"), Some("p1"), seven)).unwrap();
        assert_eq!(
            got.unwrap(),
            ok(Some("p1"), TestEvent::Count(Change::Set(7)))
        );
        // The stored name, not the Rust one; null is `None` for an Option.
        let null = RawKind::Set(vec![0xf6]);
        let got = typed(None, raw(Some("the-name"), None, null)).unwrap();
        assert_eq!(got.unwrap(), ok(None, TestEvent::Name(Change::Set(None))));
        for (kind, change) in [
            (RawKind::Del, Change::Deleted),
            (RawKind::Expired, Change::Expired),
            (
                RawKind::Expire(Some(1500)),
                Change::TtlChanged(Some(Duration::from_millis(1500))),
            ),
            (RawKind::Expire(None), Change::TtlChanged(None)),
        ] {
            let got = typed(None, raw(Some("count"), None, kind)).unwrap();
            assert_eq!(got.unwrap(), ok(None, TestEvent::Count(change)));
        }
    }

    #[test]
    fn namespace_events_and_gaps() {
        let got = typed(None, raw(None, Some("p2"), RawKind::Clear)).unwrap();
        assert_eq!(got.unwrap(), ok(Some("p2"), TestEvent::Cleared));
        let got = typed(None, raw(None, None, RawKind::Gap)).unwrap();
        assert_eq!(got.unwrap(), ok(None, TestEvent::Gap));
    }

    #[test]
    fn previous_values_are_typed_as_the_fields_variant() {
        let with_prev = |kind, prev| RawEvent {
            prev,
            ..raw(Some("count"), None, kind)
        };
        let got = typed(None, with_prev(RawKind::Del, Some(Some(vec![0x07]))));
        assert_eq!(
            got.unwrap().unwrap(),
            ok(None, TestEvent::Count(Change::Deleted))
                .with_previous(Previous::Value(TestEvent::Count(Change::Set(7))))
        );
        let got = typed(None, with_prev(RawKind::Set(vec![0x01]), Some(None)));
        assert_eq!(
            got.unwrap().unwrap().previous,
            Previous::<TestEvent>::Absent
        );
        let got = typed(None, with_prev(RawKind::Set(vec![0x01]), None));
        assert_eq!(
            got.unwrap().unwrap().previous,
            Previous::<TestEvent>::Unknown
        );
        // Equality includes the previous value.
        assert_ne!(
            ok(None, TestEvent::Gap),
            ok(None, TestEvent::Gap).with_previous(Previous::Absent)
        );
        // An undecodable previous value is an error naming key and field.
        let text = Some(Some(b"\x64many".to_vec()));
        let err = typed(None, with_prev(RawKind::Del, text))
            .unwrap()
            .unwrap_err();
        assert!(matches!(&err, Error::Decode { key, .. } if key == "count"));
        let message = err.to_string();
        assert!(
            message.contains("the previous value in a change event of field `count` of Test"),
            "{message}"
        );
    }

    #[test]
    fn other_keys_are_ignored() {
        let one = || RawKind::Set(vec![0x01]);
        assert!(typed(None, raw(Some("name"), None, one())).is_none());
        assert!(typed(None, raw(Some("counter"), None, one())).is_none());
        assert!(typed(None, raw(Some("count "), None, RawKind::Del)).is_none());
        assert!(typed(None, raw(None, None, one())).is_none());
    }

    #[test]
    fn undecodable_values_name_key_and_field() {
        let text = RawKind::Set(b"\x64many".to_vec());
        let err = typed(None, raw(Some("count"), None, text))
            .unwrap()
            .unwrap_err();
        let Error::Decode {
            namespace,
            key,
            expected,
            ..
        } = &err
        else {
            panic!("not a decode error: {err:?}")
        };
        assert_eq!(
            (namespace.as_str(), key.as_str(), *expected),
            ("cfg:prod", "count", "u32")
        );
        let message = err.to_string();
        assert!(message.contains("field `count` of Test"), "{message}");
    }

    #[test]
    fn own_events_are_skipped_when_asked() {
        let mine = || raw(Some("count"), Some("me"), RawKind::Del);
        assert!(typed(Some("me"), mine()).is_none());
        assert!(typed(Some("me"), raw(None, Some("me"), RawKind::Clear)).is_none());
        assert!(typed(Some("you"), mine()).is_some());
        assert!(typed(None, mine()).is_some());
        // Gaps have no origin: never skipped.
        assert!(typed(Some("me"), raw(None, None, RawKind::Gap)).is_some());
    }

    #[test]
    fn an_unknown_index_is_an_error_not_a_panic() {
        let change = FieldChange {
            schema: Test::SCHEMA,
            spec: &Test::SCHEMA.fields[1],
            namespace: "cfg:prod",
            kind: RawKind::Del,
            previous: false,
        };
        let err = change.unknown::<TestEvent>().unwrap_err().to_string();
        assert!(
            err.contains("derive bug") && err.contains("`name`"),
            "{err}"
        );
    }
}
