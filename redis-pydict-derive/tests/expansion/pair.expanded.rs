/// The typed Redis view of `Pair`, made by `Pair::view`: async (mode `Async`, the default) on a `Store`, blocking (mode `Blocking`) on a `blocking::Store`. One field handle per stored field, and `load`, `try_load`, `save`, `update`, `clear` and `subscribe` of the whole struct through `Deref`.
#[allow(dead_code)]
struct PairView<
    A,
    B: Clone,
    M: ::redis_pydict::__private::Mode = ::redis_pydict::__private::Async,
> {
    /// Field `left` (`A`), stored under key `left`.
    left: <M as ::redis_pydict::__private::Mode>::Field<A>,
    /// Field `right` (`Vec<B>`), stored under key `right`.
    right: <M as ::redis_pydict::__private::Mode>::Field<Vec<B>>,
    /// Field `count` (`u32`), stored under key `count`.
    count: <M as ::redis_pydict::__private::Mode>::Field<u32>,
    __redis_dict_core: <M as ::redis_pydict::__private::Mode>::View<Pair<A, B>>,
}
#[automatically_derived]
impl<A, B: Clone> ::redis_pydict::__private::RedisDict for Pair<A, B>
where
    A: ::redis_pydict::__private::Serialize
        + ::redis_pydict::__private::DeserializeOwned,
    B: ::redis_pydict::__private::Serialize
        + ::redis_pydict::__private::DeserializeOwned,
{
    type View<M: ::redis_pydict::__private::Mode> = PairView<A, B, M>;
    type Event = PairEvent<A, B>;
    const SCHEMA: &'static ::redis_pydict::__private::Schema = &::redis_pydict::__private::Schema::__new(
        "Pair",
        ::redis_pydict::__private::Option::None,
        &[
            ::redis_pydict::__private::FieldSpec::__new(
                "left",
                "left",
                "A",
                0u64,
                false,
            ),
            ::redis_pydict::__private::FieldSpec::__new(
                "right",
                "right",
                "Vec<B>",
                0u64,
                false,
            ),
            ::redis_pydict::__private::FieldSpec::__new(
                "count",
                "count",
                "u32",
                0u64,
                true,
            ),
        ],
        &[],
    );
    fn __make_view<M: ::redis_pydict::__private::Mode>(
        __core: ::redis_pydict::__private::Core<Self, M>,
    ) -> Self::View<M> {
        PairView {
            left: __core.field::<A, 0usize>(),
            right: __core.field::<Vec<B>, 1usize>(),
            count: __core
                .field_or::<u32, 2usize>(::redis_pydict::__private::Default::default),
            __redis_dict_core: __core.finish(),
        }
    }
    fn __write(
        &self,
        __out: &mut ::redis_pydict::__private::FieldWriter<'_>,
    ) -> ::redis_pydict::__private::Result<()> {
        __out.field(0usize, &self.left)?;
        __out.field(1usize, &self.right)?;
        __out.field(2usize, &self.count)?;
        ::redis_pydict::__private::Ok(())
    }
    fn __read(
        __input: &mut ::redis_pydict::__private::FieldReader<'_>,
    ) -> ::redis_pydict::__private::Result<Self> {
        ::redis_pydict::__private::Ok(Self {
            left: __input.field(0usize)?,
            right: __input.field(1usize)?,
            count: __input.field_or(2usize, ::redis_pydict::__private::Default::default)?,
        })
    }
    fn __event(
        __input: ::redis_pydict::__private::EventInput<'_>,
    ) -> ::redis_pydict::__private::Result<Self::Event> {
        use ::redis_pydict::__private::EventInput as __E;
        ::redis_pydict::__private::Ok(
            match __input {
                __E::Field(0usize, __c) => PairEvent::Left(__c.decode()?),
                __E::Field(1usize, __c) => PairEvent::Right(__c.decode()?),
                __E::Field(2usize, __c) => PairEvent::Count(__c.decode()?),
                __E::Field(_, __c) => return __c.unknown(),
                __E::Cleared => PairEvent::Cleared,
                __E::Gap => PairEvent::Gap,
            },
        )
    }
}
/// A change of a stored field of `Pair`, as seen by `PairView::subscribe`: one variant per field, carrying the field's typed `Change`, plus `Cleared` and `Gap`. `Debug`, `Clone` and `PartialEq` where every field type is.
enum PairEvent<A, B: Clone> {
    /// Field `left` (key `left`) was set (`Change::Set` with its new value), deleted, expired or given a new time-to-live.
    Left(::redis_pydict::__private::Change<A>),
    /// Field `right` (key `right`) was set (`Change::Set` with its new value), deleted, expired or given a new time-to-live.
    Right(::redis_pydict::__private::Change<Vec<B>>),
    /// Field `count` (key `count`) was set (`Change::Set` with its new value), deleted, expired or given a new time-to-live.
    Count(::redis_pydict::__private::Change<u32>),
    /// The whole namespace was cleared (`Dict::clear`), fields included.
    Cleared,
    /// The subscription lost its connection and resubscribed (or, durable,
    /// changes were trimmed from the log unread): changes may have been
    /// missed. Re-read what you depend on; events go on after it.
    Gap,
}
#[automatically_derived]
impl<A, B: Clone> ::redis_pydict::__private::Debug for PairEvent<A, B>
where
    for<'__r> A: ::redis_pydict::__private::Debug,
    for<'__r> Vec<B>: ::redis_pydict::__private::Debug,
    for<'__r> u32: ::redis_pydict::__private::Debug,
{
    fn fmt(
        &self,
        __f: &mut ::redis_pydict::__private::Formatter<'_>,
    ) -> ::redis_pydict::__private::FmtResult {
        match self {
            Self::Left(__v) => __f.debug_tuple("Left").field(__v).finish(),
            Self::Right(__v) => __f.debug_tuple("Right").field(__v).finish(),
            Self::Count(__v) => __f.debug_tuple("Count").field(__v).finish(),
            Self::Cleared => __f.write_str("Cleared"),
            Self::Gap => __f.write_str("Gap"),
        }
    }
}
#[automatically_derived]
impl<A, B: Clone> ::redis_pydict::__private::Clone for PairEvent<A, B>
where
    for<'__r> A: ::redis_pydict::__private::Clone,
    for<'__r> Vec<B>: ::redis_pydict::__private::Clone,
    for<'__r> u32: ::redis_pydict::__private::Clone,
{
    fn clone(&self) -> Self {
        match self {
            Self::Left(__v) => Self::Left(::redis_pydict::__private::Clone::clone(__v)),
            Self::Right(__v) => Self::Right(::redis_pydict::__private::Clone::clone(__v)),
            Self::Count(__v) => Self::Count(::redis_pydict::__private::Clone::clone(__v)),
            Self::Cleared => Self::Cleared,
            Self::Gap => Self::Gap,
        }
    }
}
#[automatically_derived]
impl<A, B: Clone> ::redis_pydict::__private::PartialEq for PairEvent<A, B>
where
    for<'__r> A: ::redis_pydict::__private::PartialEq,
    for<'__r> Vec<B>: ::redis_pydict::__private::PartialEq,
    for<'__r> u32: ::redis_pydict::__private::PartialEq,
{
    fn eq(&self, __other: &Self) -> bool {
        match (self, __other) {
            (Self::Left(__a), Self::Left(__b)) => __a == __b,
            (Self::Right(__a), Self::Right(__b)) => __a == __b,
            (Self::Count(__a), Self::Count(__b)) => __a == __b,
            (Self::Cleared, Self::Cleared) | (Self::Gap, Self::Gap) => true,
            _ => false,
        }
    }
}
#[automatically_derived]
impl<A, B: Clone, M: ::redis_pydict::__private::Mode> ::redis_pydict::__private::Clone
for PairView<A, B, M> {
    fn clone(&self) -> Self {
        PairView {
            left: ::redis_pydict::__private::Clone::clone(&self.left),
            right: ::redis_pydict::__private::Clone::clone(&self.right),
            count: ::redis_pydict::__private::Clone::clone(&self.count),
            __redis_dict_core: ::redis_pydict::__private::Clone::clone(
                &self.__redis_dict_core,
            ),
        }
    }
}
#[automatically_derived]
impl<A, B: Clone, M: ::redis_pydict::__private::Mode> ::redis_pydict::__private::Deref
for PairView<A, B, M> {
    type Target = <M as ::redis_pydict::__private::Mode>::View<Pair<A, B>>;
    fn deref(&self) -> &Self::Target {
        &self.__redis_dict_core
    }
}
#[automatically_derived]
impl<A, B: Clone, M: ::redis_pydict::__private::Mode> ::redis_pydict::__private::Debug
for PairView<A, B, M> {
    fn fmt(
        &self,
        f: &mut ::redis_pydict::__private::Formatter<'_>,
    ) -> ::redis_pydict::__private::FmtResult {
        ::redis_pydict::__private::Debug::fmt(&self.__redis_dict_core, f)
    }
}
