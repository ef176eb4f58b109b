/// The typed Redis view of `Config`, made by `Config::view`: async (mode `Async`, the default) on a `Store`, blocking (mode `Blocking`) on a `blocking::Store`. One field handle per stored field, and `load`, `try_load`, `save`, `update`, `clear` and `subscribe` of the whole struct through `Deref`.
#[allow(dead_code)]
pub struct ConfigView<
    M: ::redis_pydict::__private::Mode = ::redis_pydict::__private::Async,
> {
    /// Field `threshold` (`f64`), stored under key `threshold`.
    pub threshold: <M as ::redis_pydict::__private::Mode>::Field<f64>,
    /// Field `max_conn` (`u32`), stored under key `max-conn`.
    pub max_conn: <M as ::redis_pydict::__private::Mode>::Field<u32>,
    /// Field `label` (`Option<String>`), stored under key `label`.
    pub label: <M as ::redis_pydict::__private::Mode>::Field<Option<String>>,
    __redis_dict_core: <M as ::redis_pydict::__private::Mode>::View<Config>,
}
#[automatically_derived]
impl ::redis_pydict::__private::RedisDict for Config {
    type View<M: ::redis_pydict::__private::Mode> = ConfigView<M>;
    type Event = ConfigEvent;
    const SCHEMA: &'static ::redis_pydict::__private::Schema = &::redis_pydict::__private::Schema::__new(
        "Config",
        ::redis_pydict::__private::Option::Some("config"),
        &[
            ::redis_pydict::__private::FieldSpec::__new(
                "threshold",
                "threshold",
                "f64",
                0u64,
                false,
            ),
            ::redis_pydict::__private::FieldSpec::__new(
                "max_conn",
                "max-conn",
                "u32",
                0u64,
                true,
            ),
            ::redis_pydict::__private::FieldSpec::__new(
                "label",
                "label",
                "Option<String>",
                30000u64,
                false,
            ),
        ],
        &["cache"],
    );
    fn __make_view<M: ::redis_pydict::__private::Mode>(
        __core: ::redis_pydict::__private::Core<Self, M>,
    ) -> Self::View<M> {
        ConfigView {
            threshold: __core.field::<f64, 0usize>(),
            max_conn: __core
                .field_or::<u32, 1usize>(::redis_pydict::__private::Default::default),
            label: __core.field::<Option<String>, 2usize>(),
            __redis_dict_core: __core.finish(),
        }
    }
    fn __write(
        &self,
        __out: &mut ::redis_pydict::__private::FieldWriter<'_>,
    ) -> ::redis_pydict::__private::Result<()> {
        __out.field(0usize, &self.threshold)?;
        __out.field(1usize, &self.max_conn)?;
        __out.field(2usize, &self.label)?;
        ::redis_pydict::__private::Ok(())
    }
    fn __read(
        __input: &mut ::redis_pydict::__private::FieldReader<'_>,
    ) -> ::redis_pydict::__private::Result<Self> {
        ::redis_pydict::__private::Ok(Self {
            threshold: __input.field(0usize)?,
            max_conn: __input
                .field_or(1usize, ::redis_pydict::__private::Default::default)?,
            label: __input.field(2usize)?,
            cache: ::redis_pydict::__private::Default::default(),
        })
    }
    fn __event(
        __input: ::redis_pydict::__private::EventInput<'_>,
    ) -> ::redis_pydict::__private::Result<Self::Event> {
        use ::redis_pydict::__private::EventInput as __E;
        ::redis_pydict::__private::Ok(
            match __input {
                __E::Field(0usize, __c) => ConfigEvent::Threshold(__c.decode()?),
                __E::Field(1usize, __c) => ConfigEvent::MaxConn(__c.decode()?),
                __E::Field(2usize, __c) => ConfigEvent::Label(__c.decode()?),
                __E::Field(_, __c) => return __c.unknown(),
                __E::Cleared => ConfigEvent::Cleared,
                __E::Gap => ConfigEvent::Gap,
            },
        )
    }
}
/// A change of a stored field of `Config`, as seen by `ConfigView::subscribe`: one variant per field, carrying the field's typed `Change`, plus `Cleared` and `Gap`. `Debug`, `Clone` and `PartialEq` where every field type is.
pub enum ConfigEvent {
    /// Field `threshold` (key `threshold`) was set (`Change::Set` with its new value), deleted, expired or given a new time-to-live.
    Threshold(::redis_pydict::__private::Change<f64>),
    /// Field `max_conn` (key `max-conn`) was set (`Change::Set` with its new value), deleted, expired or given a new time-to-live.
    MaxConn(::redis_pydict::__private::Change<u32>),
    /// Field `label` (key `label`) was set (`Change::Set` with its new value), deleted, expired or given a new time-to-live.
    Label(::redis_pydict::__private::Change<Option<String>>),
    /// The whole namespace was cleared (`Dict::clear`), fields included.
    Cleared,
    /// The subscription lost its connection and resubscribed (or, durable,
    /// changes were trimmed from the log unread): changes may have been
    /// missed. Re-read what you depend on; events go on after it.
    Gap,
}
#[automatically_derived]
impl ::redis_pydict::__private::Debug for ConfigEvent
where
    for<'__r> f64: ::redis_pydict::__private::Debug,
    for<'__r> u32: ::redis_pydict::__private::Debug,
    for<'__r> Option<String>: ::redis_pydict::__private::Debug,
{
    fn fmt(
        &self,
        __f: &mut ::redis_pydict::__private::Formatter<'_>,
    ) -> ::redis_pydict::__private::FmtResult {
        match self {
            Self::Threshold(__v) => __f.debug_tuple("Threshold").field(__v).finish(),
            Self::MaxConn(__v) => __f.debug_tuple("MaxConn").field(__v).finish(),
            Self::Label(__v) => __f.debug_tuple("Label").field(__v).finish(),
            Self::Cleared => __f.write_str("Cleared"),
            Self::Gap => __f.write_str("Gap"),
        }
    }
}
#[automatically_derived]
impl ::redis_pydict::__private::Clone for ConfigEvent
where
    for<'__r> f64: ::redis_pydict::__private::Clone,
    for<'__r> u32: ::redis_pydict::__private::Clone,
    for<'__r> Option<String>: ::redis_pydict::__private::Clone,
{
    fn clone(&self) -> Self {
        match self {
            Self::Threshold(__v) => {
                Self::Threshold(::redis_pydict::__private::Clone::clone(__v))
            }
            Self::MaxConn(__v) => {
                Self::MaxConn(::redis_pydict::__private::Clone::clone(__v))
            }
            Self::Label(__v) => Self::Label(::redis_pydict::__private::Clone::clone(__v)),
            Self::Cleared => Self::Cleared,
            Self::Gap => Self::Gap,
        }
    }
}
#[automatically_derived]
impl ::redis_pydict::__private::PartialEq for ConfigEvent
where
    for<'__r> f64: ::redis_pydict::__private::PartialEq,
    for<'__r> u32: ::redis_pydict::__private::PartialEq,
    for<'__r> Option<String>: ::redis_pydict::__private::PartialEq,
{
    fn eq(&self, __other: &Self) -> bool {
        match (self, __other) {
            (Self::Threshold(__a), Self::Threshold(__b)) => __a == __b,
            (Self::MaxConn(__a), Self::MaxConn(__b)) => __a == __b,
            (Self::Label(__a), Self::Label(__b)) => __a == __b,
            (Self::Cleared, Self::Cleared) | (Self::Gap, Self::Gap) => true,
            _ => false,
        }
    }
}
#[automatically_derived]
impl<M: ::redis_pydict::__private::Mode> ::redis_pydict::__private::Clone
for ConfigView<M> {
    fn clone(&self) -> Self {
        ConfigView {
            threshold: ::redis_pydict::__private::Clone::clone(&self.threshold),
            max_conn: ::redis_pydict::__private::Clone::clone(&self.max_conn),
            label: ::redis_pydict::__private::Clone::clone(&self.label),
            __redis_dict_core: ::redis_pydict::__private::Clone::clone(
                &self.__redis_dict_core,
            ),
        }
    }
}
#[automatically_derived]
impl<M: ::redis_pydict::__private::Mode> ::redis_pydict::__private::Deref
for ConfigView<M> {
    type Target = <M as ::redis_pydict::__private::Mode>::View<Config>;
    fn deref(&self) -> &Self::Target {
        &self.__redis_dict_core
    }
}
#[automatically_derived]
impl<M: ::redis_pydict::__private::Mode> ::redis_pydict::__private::Debug
for ConfigView<M> {
    fn fmt(
        &self,
        f: &mut ::redis_pydict::__private::Formatter<'_>,
    ) -> ::redis_pydict::__private::FmtResult {
        ::redis_pydict::__private::Debug::fmt(&self.__redis_dict_core, f)
    }
}
