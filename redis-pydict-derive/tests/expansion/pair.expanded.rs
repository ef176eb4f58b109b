/// The typed Redis view of `Pair`, made by `Pair::view` (async, the default mode) or `Pair::blocking_view` (mode `Blocking`): one `Field` handle per stored field, and `load`, `try_load`, `save`, `update` and `clear` of the whole struct through `Deref`.
#[allow(dead_code)]
struct PairView<
    A,
    B: Clone,
    M: ::redis_pydict::__private::Mode = ::redis_pydict::__private::Async,
> {
    /// Field `left` (`A`), stored under key `left`.
    left: ::redis_pydict::__private::Field<A, M>,
    /// Field `right` (`Vec<B>`), stored under key `right`.
    right: ::redis_pydict::__private::Field<Vec<B>, M>,
    /// Field `count` (`u32`), stored under key `count`.
    count: ::redis_pydict::__private::Field<u32, M>,
    __redis_dict_core: ::redis_pydict::__private::View<Pair<A, B>, M>,
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
        __core: ::redis_pydict::__private::View<Self, M>,
    ) -> ::redis_pydict::__private::Result<Self::View<M>> {
        ::redis_pydict::__private::Ok(PairView {
            left: __core.__field(0usize)?,
            right: __core.__field(1usize)?,
            count: __core
                .__field_or(2usize, ::redis_pydict::__private::Default::default)?,
            __redis_dict_core: __core,
        })
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
    type Target = ::redis_pydict::__private::View<Pair<A, B>, M>;
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
