//! Modes: whether a generated view is used from async code ([`Async`], the
//! default) or from plain threads (`blocking::Blocking`, defined by the
//! blocking mirror), and the stores views are opened on.
//!
//! The runtime types have no mode parameter: [`View`] and [`Field`] are
//! async, and the blocking mirror wraps them. Only the *generated* view
//! struct (`<Struct>View<M>`) is generic over the mode, so that one
//! generated struct, with one public handle per field, serves both APIs:
//! [`Mode::Field`] and [`Mode::View`] pick the handle types.

use std::fmt;

use crate::error::Result;
use crate::store::Store;

use super::field::Field;
use super::{RedisDict, View};

pub(crate) mod sealed {
    /// Keeps [`super::Mode`] and [`super::ViewStore`] to this crate's types.
    pub trait Sealed {}
}

/// How a generated view is used: [`Async`] (the default) or
/// [`crate::blocking::Blocking`]. Sealed: implemented by those two only.
pub trait Mode: sealed::Sealed + Sized + 'static {
    /// The handle on one field: [`Field<T>`] or `blocking::Field<T>`.
    type Field<T>: Clone + fmt::Debug;
    /// The whole-struct operations: [`View<T>`] or `blocking::View<T>`.
    type View<T>: Clone + fmt::Debug;
    /// What the mode adds to the async handles it wraps. Not a public API.
    #[doc(hidden)]
    type Context: Clone;
    /// Wraps an async field handle. Not a public API.
    #[doc(hidden)]
    fn __field<T>(field: Field<T>, cx: &Self::Context) -> Self::Field<T>;
    /// Wraps an async view. Not a public API.
    #[doc(hidden)]
    fn __view<T>(view: View<T>, cx: Self::Context) -> Self::View<T>;
}

/// The async mode: the view's methods are `async fn`s to await on a tokio runtime.
#[derive(Debug, Clone, Copy)]
pub enum Async {}

impl sealed::Sealed for Async {}

impl Mode for Async {
    type Field<T> = Field<T>;
    type View<T> = View<T>;
    type Context = ();

    fn __field<T>(field: Field<T>, _: &()) -> Field<T> {
        field
    }

    fn __view<T>(view: View<T>, _: ()) -> View<T> {
        view
    }
}

/// A store that views are opened on ([`RedisDict::view`]): [`Store`] gives
/// async views, [`crate::blocking::Store`] blocking ones. Sealed.
pub trait ViewStore: sealed::Sealed {
    /// The mode of the views opened on this store.
    type Mode: Mode;

    /// Opens the view of `T`'s instance `instance`. Not a public API: call
    /// [`RedisDict::view`].
    #[doc(hidden)]
    fn __open<T: RedisDict>(&self, instance: &str) -> Result<T::View<Self::Mode>>;
}

impl sealed::Sealed for Store {}

impl ViewStore for Store {
    type Mode = Async;

    fn __open<T: RedisDict>(&self, instance: &str) -> Result<T::View<Async>> {
        let space = self.space(&T::SCHEMA.namespace_name(instance)?)?;
        Ok(View::<T>::from_space(space).open::<Async>(()))
    }
}
