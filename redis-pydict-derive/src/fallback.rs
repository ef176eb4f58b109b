//! What is emitted next to the errors when the input cannot be derived: a stub
//! impl and view name, so that the derive's error is the only one the user
//! sees (no "RedisDict is not implemented" or "ConfigView not found" after it).

use proc_macro2::TokenStream;
use quote::quote;
use syn::{DeriveInput, GenericParam, Path};

use crate::event::event_ident;
use crate::expand::{mode_ident, view_ident};

pub(crate) fn expand(input: &DeriveInput, krate: &Path, error: syn::Error) -> TokenStream {
    let p = quote!(#krate::__private);
    let error = error.to_compile_error();
    let ident = &input.ident;
    let vis = &input.vis;
    let view = view_ident(ident);
    let event = event_ident(ident);
    let mode = mode_ident(input);
    let type_name = ident.to_string();
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    // The alias takes the struct's parameters without bounds or defaults.
    let alias_params: Vec<_> = input
        .generics
        .params
        .iter()
        .map(|param| match param {
            GenericParam::Lifetime(def) => {
                let lifetime = &def.lifetime;
                quote!(#lifetime)
            }
            GenericParam::Type(def) => {
                let ident = &def.ident;
                quote!(#ident)
            }
            GenericParam::Const(def) => {
                let ident = &def.ident;
                let ty = &def.ty;
                quote!(const #ident: #ty)
            }
        })
        .collect();
    quote! {
        #error

        #[automatically_derived]
        #[allow(unused_qualifications)]
        impl #impl_generics #p::RedisDict for #ident #ty_generics #where_clause {
            type View<#mode: #p::Mode> = #p::Unavailable<Self, #mode>;
            type Event = #p::Unavailable<Self, #p::Async>;

            const SCHEMA: &'static #p::Schema = &#p::Schema::__new(#type_name, #p::Option::None, &[], &[]);

            fn __make_view<#mode: #p::Mode>(_: #p::Core<Self, #mode>) -> Self::View<#mode> {
                ::core::unreachable!()
            }

            fn __write(&self, _: &mut #p::FieldWriter<'_>) -> #p::Result<()> {
                ::core::unreachable!()
            }

            fn __read(_: &mut #p::FieldReader<'_>) -> #p::Result<Self> {
                ::core::unreachable!()
            }

            fn __event(_: #p::EventInput<'_>) -> #p::Result<Self::Event> {
                ::core::unreachable!()
            }
        }

        #[allow(dead_code, type_alias_bounds)]
        #vis type #view<#(#alias_params,)* #mode = #p::Async> = #p::Unavailable<#ident #ty_generics, #mode>;

        #[allow(dead_code, type_alias_bounds)]
        #vis type #event<#(#alias_params,)*> = #p::Unavailable<#ident #ty_generics, #p::Async>;
    }
}
