//! Code generation of the change enum `<Struct>Event`: one variant per stored
//! field carrying its typed `Change`, plus `Cleared` and `Gap`, its `Debug`,
//! `Clone` and `PartialEq` impls (bounded on the field types), and the
//! dispatch that types a change event by field index. Receiving, filtering
//! and decoding events is the runtime's (`View::subscribe`).

use std::collections::{BTreeSet, HashSet};

use proc_macro2::TokenStream;
use quote::{format_ident, quote, ToTokens};
use syn::{parse_quote, Ident, WherePredicate};

use crate::ast::{Field, Input};
use crate::expand::type_params_in;
use crate::valid::{CLEARED_VARIANT, GAP_VARIANT, UNUSED_VARIANT};

/// The name of the generated change enum: `<Struct>Event`.
pub(crate) fn event_ident(ident: &Ident) -> Ident {
    format_ident!("{}Event", ident)
}

/// What the event enum adds to the expansion.
pub(crate) struct Expanded {
    /// The enum and its trait impls, emitted next to the view.
    pub(crate) items: TokenStream,
    /// The body of `RedisDict::__event` (inside the trait impl).
    pub(crate) dispatch: TokenStream,
}

pub(crate) fn expand(input: &Input<'_>, p: &TokenStream) -> Expanded {
    let original = input.original;
    let vis = &original.vis;
    let ident = input.ident;
    let event = event_ident(ident);
    let generics = &original.generics;
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();

    let stored: Vec<&Field<'_>> = input.stored().collect();
    // Checked in `valid`: identifiers, unique, none of the enum's own.
    let variants: Vec<Ident> = stored
        .iter()
        .map(|f| Ident::new(&f.variant, f.ident.span()))
        .collect();
    let names: Vec<&str> = stored.iter().map(|f| f.variant.as_str()).collect();
    let types: Vec<&syn::Type> = stored.iter().map(|f| f.ty).collect();
    let indices = 0..stored.len();
    let cleared = format_ident!("{}", CLEARED_VARIANT);
    let gap = format_ident!("{}", GAP_VARIANT);

    // Type parameters that no stored field mentions are used by a hidden,
    // uninhabited variant (an enum must use all its type parameters).
    let params: BTreeSet<Ident> = generics.type_params().map(|t| t.ident.clone()).collect();
    let used: BTreeSet<Ident> = types
        .iter()
        .flat_map(|ty| type_params_in(ty, &params))
        .collect();
    let unused: Vec<&Ident> = params.difference(&used).collect();
    let (unused_variant, unused_arm) = if unused.is_empty() {
        (TokenStream::new(), TokenStream::new())
    } else {
        let name = format_ident!("{}", UNUSED_VARIANT);
        (
            quote!(#[doc(hidden)] #name(#p::Infallible, #p::PhantomData<fn() -> (#(#unused,)*)>),),
            quote!(Self::#name(__never, _) => match *__never {},),
        )
    };

    let enum_doc = format!(
        " A change of a stored field of `{ident}`, as seen by `{ident}View::subscribe`: one \
         variant per field, carrying the field's typed `Change`, plus `Cleared` and `Gap`. \
         `Debug`, `Clone` and `PartialEq` where every field type is."
    );
    let variant_docs = stored.iter().map(|f| {
        format!(
            " Field `{}` (key `{}`) was set (`Change::Set` with its new value), deleted, \
             expired or given a new time-to-live.",
            f.ident, f.key
        )
    });

    // `for<'__r>` keeps each bound from being a trivial one: an impl whose
    // field type lacks the trait is then simply not usable, not an error.
    let bounded = |tr: TokenStream| -> syn::WhereClause {
        let mut clause = where_clause.cloned().unwrap_or_else(|| parse_quote!(where));
        let mut seen = HashSet::new();
        for ty in &types {
            if seen.insert(ty.to_token_stream().to_string()) {
                let bound: WherePredicate = parse_quote!(for<'__r> #ty: #tr);
                clause.predicates.push(bound);
            }
        }
        clause
    };
    let debug_where = bounded(quote!(#p::Debug));
    let clone_where = bounded(quote!(#p::Clone));
    let eq_where = bounded(quote!(#p::PartialEq));

    let items = quote! {
        #[doc = #enum_doc]
        #vis enum #event #generics #where_clause {
            #(#[doc = #variant_docs] #variants(#p::Change<#types>),)*
            /// The whole namespace was cleared (`Dict::clear`), fields included.
            #cleared,
            /// The subscription lost its connection and resubscribed (or, durable,
            /// changes were trimmed from the log unread): changes may have been
            /// missed. Re-read what you depend on; events go on after it.
            #gap,
            #unused_variant
        }

        #[automatically_derived]
        impl #impl_generics #p::Debug for #event #ty_generics #debug_where {
            fn fmt(&self, __f: &mut #p::Formatter<'_>) -> #p::FmtResult {
                match self {
                    #(Self::#variants(__v) => __f.debug_tuple(#names).field(__v).finish(),)*
                    Self::#cleared => __f.write_str(#CLEARED_VARIANT),
                    Self::#gap => __f.write_str(#GAP_VARIANT),
                    #unused_arm
                }
            }
        }

        #[automatically_derived]
        impl #impl_generics #p::Clone for #event #ty_generics #clone_where {
            fn clone(&self) -> Self {
                match self {
                    #(Self::#variants(__v) => Self::#variants(#p::Clone::clone(__v)),)*
                    Self::#cleared => Self::#cleared,
                    Self::#gap => Self::#gap,
                    #unused_arm
                }
            }
        }

        #[automatically_derived]
        impl #impl_generics #p::PartialEq for #event #ty_generics #eq_where {
            fn eq(&self, __other: &Self) -> bool {
                match (self, __other) {
                    #((Self::#variants(__a), Self::#variants(__b)) => __a == __b,)*
                    (Self::#cleared, Self::#cleared) | (Self::#gap, Self::#gap) => true,
                    _ => false,
                }
            }
        }
    };

    let dispatch = quote! {
        use #p::EventInput as __E;
        #p::Ok(match __input {
            #(__E::Field(#indices, __c) => #event::#variants(__c.decode()?),)*
            __E::Field(_, __c) => return __c.unknown(),
            __E::Cleared => #event::#cleared,
            __E::Gap => #event::#gap,
        })
    };

    Expanded { items, dispatch }
}
