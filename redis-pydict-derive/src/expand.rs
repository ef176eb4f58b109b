//! Code generation. Only what needs the struct's names and types is emitted:
//! the view struct with one `Field` handle per stored field, the `Schema`
//! constant, the two functions that write and read the fields in schema
//! order, and the change enum with its dispatch (in `event`). All behaviour
//! lives in the runtime crate, reached through `<crate>::__private`.

use std::collections::BTreeSet;

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::visit::{self, Visit};
use syn::{parse_quote, DeriveInput, GenericParam, Ident, Path, Type, WherePredicate};

use crate::ast::{Field, Input};
use crate::attr::{self, FieldDefault};
use crate::ctxt::Ctxt;
use crate::{event, fallback, valid};

/// Expands `#[derive(RedisDict)]` on `input`.
pub fn derive(input: &DeriveInput) -> TokenStream {
    let cx = Ctxt::new();
    let container = attr::Container::from_attrs(&cx, &input.attrs);
    let krate = container
        .krate
        .clone()
        .unwrap_or_else(|| parse_quote!(::redis_pydict));
    let parsed = Input::from_syn(&cx, input, container);
    if let Some(parsed) = &parsed {
        valid::check(&cx, parsed);
    }
    match (cx.check(), parsed) {
        (Ok(()), Some(parsed)) => expand(&parsed, &krate),
        (Err(err), _) => fallback::expand(input, &krate, err),
        (Ok(()), None) => fallback::expand(
            input,
            &krate,
            syn::Error::new(Span::call_site(), "RedisDict cannot be derived here"),
        ),
    }
}

/// The name of the generated view: `<Struct>View`.
pub(crate) fn view_ident(ident: &Ident) -> Ident {
    format_ident!("{}View", ident)
}

/// The name of the view's mode parameter: `M`, unless the struct uses it.
pub(crate) fn mode_ident(input: &DeriveInput) -> Ident {
    let taken = input.generics.params.iter().any(|p| match p {
        GenericParam::Type(t) => t.ident == "M",
        GenericParam::Const(c) => c.ident == "M",
        GenericParam::Lifetime(_) => false,
    });
    if taken {
        format_ident!("__RedisDictMode")
    } else {
        format_ident!("M")
    }
}

fn expand(input: &Input<'_>, krate: &Path) -> TokenStream {
    let p = quote!(#krate::__private);
    let original = input.original;
    let ident = input.ident;
    let vis = &original.vis;
    let view = view_ident(ident);
    let mode = mode_ident(original);
    let core = format_ident!("{}", valid::CORE_FIELD);

    // The struct's own generics, with the serde / Default bounds its fields need.
    let (impl_generics, ty_generics, where_clause) = original.generics.split_for_impl();
    let bounded = bounded_where_clause(input, &p);

    // The view's generics: the struct's, plus `M: Mode = Async`.
    let mut view_generics = original.generics.clone();
    view_generics
        .params
        .push(parse_quote!(#mode: #p::Mode = #p::Async));
    let mut view_impl_generics = original.generics.clone();
    view_impl_generics
        .params
        .push(parse_quote!(#mode: #p::Mode));
    let (view_impl, view_ty, _) = view_impl_generics.split_for_impl();

    let stored: Vec<&Field<'_>> = input.stored().collect();
    let indices: Vec<usize> = (0..stored.len()).collect();
    let names: Vec<&Ident> = stored.iter().map(|f| f.ident).collect();

    // The schema constant.
    let type_name = ident.to_string();
    let prefix = match &input.attrs.prefix {
        Some(lit) => quote!(#p::Option::Some(#lit)),
        None => quote!(#p::Option::None),
    };
    let specs = stored.iter().map(|f| {
        let name = f.ident.to_string();
        let key = &f.key;
        let rust_type = type_text(f.ty);
        let ttl_ms = f.attrs.ttl.as_ref().map_or(0, |t| t.millis);
        let default = !matches!(f.attrs.default, FieldDefault::None);
        quote!(#p::FieldSpec::__new(#name, #key, #rust_type, #ttl_ms, #default))
    });
    let skipped_names = input.skipped().map(|f| f.ident.to_string());

    // The view struct.
    let view_doc = format!(
        " The typed Redis view of `{ident}`, made by `{ident}::view`: async (mode `Async`, the \
         default) on a `Store`, blocking (mode `Blocking`) on a `blocking::Store`. One field \
         handle per stored field, and `load`, `try_load`, `save`, `update`, `clear` and \
         `subscribe` of the whole struct through `Deref`."
    );
    let handles = stored.iter().map(|f| {
        let fvis = &f.original.vis;
        let name = f.ident;
        let ty = f.ty;
        let docs = field_docs(f);
        quote!(#(#docs)* #fvis #name: <#mode as #p::Mode>::Field<#ty>,)
    });

    // Handle construction, encoding and decoding, one line per field.
    let make_handles = stored.iter().zip(&indices).map(|(f, i)| {
        let name = f.ident;
        let ty = f.ty;
        match default_fn(f, &p) {
            Some(default) => quote!(#name: __core.field_or::<#ty, #i>(#default),),
            None => quote!(#name: __core.field::<#ty, #i>(),),
        }
    });
    let writes = stored.iter().zip(&indices).map(|(f, i)| {
        let name = f.ident;
        quote_spanned!(f.ty.span()=> __out.field(#i, &self.#name)?;)
    });
    let reads = stored.iter().zip(&indices).map(|(f, i)| {
        let name = f.ident;
        match default_fn(f, &p) {
            Some(default) => quote_spanned!(f.ty.span()=> #name: __input.field_or(#i, #default)?,),
            None => quote_spanned!(f.ty.span()=> #name: __input.field(#i)?,),
        }
    });
    let skips = input.skipped().map(|f| {
        let name = f.ident;
        match &f.attrs.default {
            FieldDefault::Path(path) => quote!(#name: #path(),),
            _ => quote!(#name: #p::Default::default(),),
        }
    });

    let event::Expanded {
        items: event_items,
        dispatch: event_dispatch,
    } = event::expand(input, &p);
    let event = event::event_ident(ident);

    quote! {
        #[doc = #view_doc]
        #[allow(dead_code)]
        #vis struct #view #view_generics #where_clause {
            #(#handles)*
            #core: <#mode as #p::Mode>::View<#ident #ty_generics>,
        }

        #[automatically_derived]
        impl #impl_generics #p::RedisDict for #ident #ty_generics #bounded {
            type View<#mode: #p::Mode> = #view #view_ty;
            type Event = #event #ty_generics;

            const SCHEMA: &'static #p::Schema = &#p::Schema::__new(
                #type_name,
                #prefix,
                &[#(#specs),*],
                &[#(#skipped_names),*],
            );

            fn __make_view<#mode: #p::Mode>(__core: #p::Core<Self, #mode>) -> Self::View<#mode> {
                #view { #(#make_handles)* #core: __core.finish() }
            }

            fn __write(&self, __out: &mut #p::FieldWriter<'_>) -> #p::Result<()> {
                #(#writes)*
                #p::Ok(())
            }

            fn __read(__input: &mut #p::FieldReader<'_>) -> #p::Result<Self> {
                #p::Ok(Self { #(#reads)* #(#skips)* })
            }

            fn __event(__input: #p::EventInput<'_>) -> #p::Result<Self::Event> {
                #event_dispatch
            }
        }

        #event_items

        #[automatically_derived]
        impl #view_impl #p::Clone for #view #view_ty #where_clause {
            fn clone(&self) -> Self {
                #view {
                    #(#names: #p::Clone::clone(&self.#names),)*
                    #core: #p::Clone::clone(&self.#core),
                }
            }
        }

        #[automatically_derived]
        impl #view_impl #p::Deref for #view #view_ty #where_clause {
            type Target = <#mode as #p::Mode>::View<#ident #ty_generics>;

            fn deref(&self) -> &Self::Target {
                &self.#core
            }
        }

        #[automatically_derived]
        impl #view_impl #p::Debug for #view #view_ty #where_clause {
            fn fmt(&self, f: &mut #p::Formatter<'_>) -> #p::FmtResult {
                #p::Debug::fmt(&self.#core, f)
            }
        }
    }
}

/// The function giving a field's value when nothing is stored, if it has one.
fn default_fn(field: &Field<'_>, p: &TokenStream) -> Option<TokenStream> {
    match &field.attrs.default {
        FieldDefault::None => None,
        FieldDefault::Trait(span) => Some(quote_spanned!(*span=> #p::Default::default)),
        FieldDefault::Path(path) => Some(path.to_token_stream()),
    }
}

/// The field's own docs, or a generated line, for the view's handle.
fn field_docs(field: &Field<'_>) -> Vec<TokenStream> {
    let own: Vec<TokenStream> = field
        .original
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .map(ToTokens::to_token_stream)
        .collect();
    if !own.is_empty() {
        return own;
    }
    let line = format!(
        " Field `{}` (`{}`), stored under key `{}`.",
        field.ident,
        type_text(field.ty),
        field.key
    );
    vec![quote!(#[doc = #line])]
}

/// The struct's where clause plus serde's kind of bounds: every type
/// parameter used in a stored field must be `Serialize + DeserializeOwned`;
/// the type of a field filled by `Default::default()` (`default`, `skip`)
/// must be `Default` when it mentions a type parameter.
fn bounded_where_clause(input: &Input<'_>, p: &TokenStream) -> syn::WhereClause {
    let generics = &input.original.generics;
    let params: BTreeSet<Ident> = generics.type_params().map(|t| t.ident.clone()).collect();
    let mut serde_params = BTreeSet::new();
    let mut default_types: Vec<&Type> = Vec::new();
    for field in &input.fields {
        let used = type_params_in(field.ty, &params);
        let needs_default = match field.attrs.default {
            FieldDefault::Trait(_) => true,
            FieldDefault::Path(_) => false,
            FieldDefault::None => !field.is_stored(),
        };
        if needs_default && !used.is_empty() {
            default_types.push(field.ty);
        }
        if field.is_stored() {
            serde_params.extend(used);
        }
    }
    let mut clause = generics
        .where_clause
        .clone()
        .unwrap_or_else(|| parse_quote!(where));
    let serde_bounds = serde_params
        .iter()
        .map(|t| -> WherePredicate { parse_quote!(#t: #p::Serialize + #p::DeserializeOwned) });
    let default_bounds = default_types
        .into_iter()
        .map(|ty| -> WherePredicate { parse_quote!(#ty: #p::Default) });
    clause.predicates.extend(serde_bounds.chain(default_bounds));
    clause
}

/// The type parameters among `params` that `ty` mentions.
pub(crate) fn type_params_in(ty: &Type, params: &BTreeSet<Ident>) -> BTreeSet<Ident> {
    struct Finder<'p> {
        params: &'p BTreeSet<Ident>,
        found: BTreeSet<Ident>,
    }
    impl<'ast> Visit<'ast> for Finder<'_> {
        fn visit_path(&mut self, path: &'ast syn::Path) {
            if path.leading_colon.is_none() {
                if let Some(first) = path.segments.first() {
                    if self.params.contains(&first.ident) {
                        self.found.insert(first.ident.clone());
                    }
                }
            }
            visit::visit_path(self, path);
        }
        fn visit_type_macro(&mut self, _: &'ast syn::TypeMacro) {}
    }
    let mut finder = Finder {
        params,
        found: BTreeSet::new(),
    };
    finder.visit_type(ty);
    finder.found
}

/// A type as text, compact: `Vec<Option<String>>`, `[u8; 4]`, `(u8, String)`.
pub(crate) fn type_text(ty: &Type) -> String {
    let raw = ty.to_token_stream().to_string();
    let mut out = raw;
    for (from, to) in [
        (" :: ", "::"),
        (":: ", "::"),
        (" < ", "<"),
        ("< ", "<"),
        (" <", "<"),
        (" >", ">"),
        (" ,", ","),
        (" ;", ";"),
        ("& ", "&"),
        ("( ", "("),
        (" )", ")"),
        ("[ ", "["),
        (" ]", "]"),
    ] {
        out = out.replace(from, to);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_text_is_compact() {
        let cases: [(Type, &str); 4] = [
            (parse_quote!(Vec<Option<String>>), "Vec<Option<String>>"),
            (parse_quote!([u8; 4]), "[u8; 4]"),
            (
                parse_quote!((u8, std::string::String)),
                "(u8, std::string::String)",
            ),
            (
                parse_quote!(HashMap<String, Vec<u32> >),
                "HashMap<String, Vec<u32>>",
            ),
        ];
        for (ty, text) in cases {
            assert_eq!(type_text(&ty), text);
        }
    }
}

/// The expansion of the inputs in `tests/expansion/*.input.rs` must match the
/// checked-in `*.expanded.rs` (run with `REDIS_DICT_BLESS=1` to rewrite them),
/// and reach nothing but `::redis_pydict::__private` and `::core`.
#[cfg(test)]
mod expansion {
    use std::path::Path;

    fn expand_file(name: &str) -> String {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/expansion");
        let input = std::fs::read_to_string(dir.join(format!("{name}.input.rs"))).unwrap();
        let input: syn::DeriveInput = syn::parse_str(&input).unwrap();
        let tokens = super::derive(&input);
        let file: syn::File = syn::parse2(tokens).unwrap();
        let expanded = prettyplease::unparse(&file);
        let path = dir.join(format!("{name}.expanded.rs"));
        if std::env::var_os("REDIS_DICT_BLESS").is_some() {
            std::fs::write(&path, &expanded).unwrap();
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(
            expanded, expected,
            "expansion of {name} changed; rerun with REDIS_DICT_BLESS=1 and review the diff"
        );
        expanded
    }

    /// Every absolute path (`::x`) in `code`.
    fn absolute_paths(code: &str) -> Vec<&str> {
        let bytes = code.as_bytes();
        let mut found = Vec::new();
        for (i, _) in code.match_indices("::") {
            let before = if i == 0 { b' ' } else { bytes[i - 1] };
            if !(before.is_ascii_alphanumeric() || before == b'_' || before == b'>') {
                let end = code[i..]
                    .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                    .map_or(code.len(), |n| i + n);
                found.push(&code[i..end]);
            }
        }
        found
    }

    #[test]
    fn expansions_are_small_and_reach_only_private() {
        for name in ["config", "pair"] {
            let code = expand_file(name);
            let paths = absolute_paths(&code);
            assert!(!paths.is_empty());
            for path in paths {
                assert!(
                    path.starts_with("::redis_pydict::__private::") || path.starts_with("::core::"),
                    "{name}: generated code reaches {path}"
                );
            }
            assert!(code.contains("#[automatically_derived]"));
            // About 100 lines of frame plus 30 per stored field (its handle,
            // schema entry, read, write, and event variant with its dispatch,
            // Debug, Clone and PartialEq arms and bounds): both have 3.
            assert!(
                code.lines().count() < 220,
                "{name} expands to {} lines",
                code.lines().count()
            );
        }
    }

    #[test]
    fn generic_bounds_follow_field_use() {
        let code = expand_file("pair");
        assert!(
            code.contains("A: ::redis_pydict::__private::Serialize"),
            "{code}"
        );
        assert!(
            code.contains("B: ::redis_pydict::__private::Serialize"),
            "{code}"
        );
        assert!(
            !code.contains("A: ::redis_pydict::__private::Default"),
            "{code}"
        );
    }

    #[test]
    fn event_enum_is_bounded_on_field_types() {
        let code = expand_file("pair");
        assert!(code.contains("enum PairEvent<A, B: Clone> {"), "{code}");
        assert!(code.contains("type Event = PairEvent<A, B>;"), "{code}");
        // Higher-ranked, so that a field type without the trait makes the impl
        // unusable instead of the derive fail.
        assert!(
            code.contains("for<'__r> Vec<B>: ::redis_pydict::__private::PartialEq"),
            "{code}"
        );
        assert!(!code.contains("__RedisDictUnused"), "{code}");
    }

    #[test]
    fn unused_type_parameters_get_a_hidden_variant() {
        let input: syn::DeriveInput = syn::parse_quote! {
            struct S<T, U: Default> {
                a: T,
                #[redis_dict(skip)]
                scratch: U,
            }
        };
        let file: syn::File = syn::parse2(super::derive(&input)).unwrap();
        let code = prettyplease::unparse(&file);
        assert!(
            code.contains(
                "__RedisDictUnused(\n        ::redis_pydict::__private::Infallible,\n        ::redis_pydict::__private::PhantomData<fn() -> (U,)>,"
            ),
            "{code}"
        );
        assert!(code.contains("Self::__RedisDictUnused(__never, _) => match *__never {}"));
    }

    #[test]
    fn variant_names() {
        let input: syn::DeriveInput = syn::parse_quote! {
            struct S {
                max_conn: u32,
                r#type: u8,
                #[redis_dict(variant = "Lapse")]
                gap: u64,
            }
        };
        let code = super::derive(&input).to_string();
        for variant in ["MaxConn (", "Type (", "Lapse ("] {
            assert!(code.contains(variant), "{variant}: {code}");
        }
    }

    #[test]
    fn crate_attribute_moves_every_path() {
        let input: syn::DeriveInput = syn::parse_quote! {
            #[redis_dict(crate = "my::reexport")]
            struct S { a: u8 }
        };
        let code = super::derive(&input).to_string();
        assert!(!code.contains("redis_pydict"), "{code}");
        assert!(code.contains("my :: reexport :: __private"), "{code}");
    }
}
