//! Semantic checks of a parsed input: what parses but cannot be stored.

use std::collections::HashMap;

use syn::visit::{self, Visit};
use syn::{GenericParam, Lifetime, Type, TypeReference};

use crate::ast::{Field, Input};
use crate::ctxt::Ctxt;

/// Name of the generated view's private field holding the whole-struct core.
pub(crate) const CORE_FIELD: &str = "__redis_dict_core";

/// The variants of the generated event enum that are not fields.
pub(crate) const CLEARED_VARIANT: &str = "Cleared";
pub(crate) const GAP_VARIANT: &str = "Gap";
/// The hidden variant that uses type parameters no stored field mentions.
pub(crate) const UNUSED_VARIANT: &str = "__RedisDictUnused";

pub(crate) fn check(cx: &Ctxt, input: &Input<'_>) {
    // With lifetime parameters, their error says it all; without, look for
    // borrowed field types (`&'static str`, `Cow<'static, str>`).
    if !check_lifetime_params(cx, input) {
        for field in input.stored() {
            check_borrows(cx, field);
        }
    }
    check_skip_conflicts(cx, input);
    check_duplicate_keys(cx, input);
    check_variants(cx, input);
    check_reserved_names(cx, input);
    if input.stored().next().is_none() {
        cx.error_spanned_by(
            input.ident,
            "RedisDict needs at least one stored field (one that is not #[redis_dict(skip)])",
        );
    }
}

/// Values are decoded into owned data, so the struct cannot borrow.
/// Returns whether there were any.
fn check_lifetime_params(cx: &Ctxt, input: &Input<'_>) -> bool {
    let mut any = false;
    for param in &input.original.generics.params {
        if let GenericParam::Lifetime(def) = param {
            any = true;
            cx.error_spanned_by(
                &def.lifetime,
                format!(
                    "RedisDict structs cannot have lifetime parameters (`{}`): fields are decoded \
                     from Redis into owned values; use owned types such as String instead of &str",
                    def.lifetime
                ),
            );
        }
    }
    any
}

/// A stored field whose type borrows (`&T`, `Cow<'a, str>`, `&'static str`).
fn check_borrows(cx: &Ctxt, field: &Field<'_>) {
    struct Borrows<'t> {
        found: Option<&'t dyn quote::ToTokens>,
    }
    impl<'t> Visit<'t> for Borrows<'t> {
        fn visit_type_reference(&mut self, reference: &'t TypeReference) {
            if self.found.is_none() {
                self.found = Some(reference);
            }
        }
        fn visit_lifetime(&mut self, lifetime: &'t Lifetime) {
            if self.found.is_none() {
                self.found = Some(lifetime);
            }
        }
        fn visit_type(&mut self, ty: &'t Type) {
            if self.found.is_none() {
                visit::visit_type(self, ty);
            }
        }
    }
    let mut borrows = Borrows { found: None };
    borrows.visit_type(field.ty);
    if let Some(tokens) = borrows.found {
        cx.error_spanned_by(
            tokens,
            format!(
                "field `{}` borrows: RedisDict fields are decoded from Redis into owned values; \
                 use an owned type (String instead of &str, Vec<T> instead of &[T])",
                field.ident
            ),
        );
    }
}

fn check_skip_conflicts(cx: &Ctxt, input: &Input<'_>) {
    for field in input.skipped() {
        if let Some(rename) = &field.attrs.rename {
            cx.error_spanned_by(
                rename,
                format!(
                    "field `{}` is `skip`, so it is not stored and `rename` cannot apply",
                    field.ident
                ),
            );
        }
        if let Some(ttl) = &field.attrs.ttl {
            cx.error_spanned_by(
                &ttl.lit,
                format!(
                    "field `{}` is `skip`, so it is not stored and `ttl` cannot apply",
                    field.ident
                ),
            );
        }
        if let Some(variant) = &field.attrs.variant {
            cx.error_spanned_by(
                variant,
                format!(
                    "field `{}` is `skip`, so it has no changes and no event variant to name",
                    field.ident
                ),
            );
        }
    }
}

/// Two fields stored under one key would overwrite each other.
fn check_duplicate_keys(cx: &Ctxt, input: &Input<'_>) {
    let mut seen: HashMap<&str, &Field<'_>> = HashMap::new();
    for field in input.stored() {
        match seen.get(field.key.as_str()) {
            Some(first) => {
                let at: &dyn quote::ToTokens = match &field.attrs.rename {
                    Some(lit) => lit,
                    None => field.ident,
                };
                cx.error_spanned_by(
                    at,
                    format!(
                        "duplicate stored name {:?}: field `{}` and field `{}` would share one Redis key; \
                         give one of them another #[redis_dict(rename = \"...\")]",
                        field.key, first.ident, field.ident
                    ),
                );
            }
            None => {
                seen.insert(&field.key, field);
            }
        }
    }
}

/// Each stored field is a variant of the generated `<Struct>Event`: its name
/// must be an identifier, unique, and not one of the enum's own variants.
fn check_variants(cx: &Ctxt, input: &Input<'_>) {
    let event = format!("{}Event", input.ident);
    let mut seen: HashMap<&str, &Field<'_>> = HashMap::new();
    for field in input.stored() {
        let at: &dyn quote::ToTokens = match &field.attrs.variant {
            Some(lit) => lit,
            None => field.ident,
        };
        let name = field.variant.as_str();
        if syn::parse_str::<syn::Ident>(name).is_err() {
            let msg = match &field.attrs.variant {
                Some(_) => {
                    format!("`variant` must be an identifier such as \"Threshold\", not {name:?}")
                }
                None => format!(
                    "field `{}` would be the variant `{name}` of `{event}`, which is not an \
                     identifier; name it with #[redis_dict(variant = \"...\")]",
                    field.ident
                ),
            };
            cx.error_spanned_by(at, msg);
        } else if [CLEARED_VARIANT, GAP_VARIANT, UNUSED_VARIANT].contains(&name) {
            cx.error_spanned_by(
                at,
                format!(
                    "field `{}` would be the variant `{name}` of `{event}`, which is taken by the \
                     enum's own `{name}`; name the field's variant with \
                     #[redis_dict(variant = \"...\")]",
                    field.ident
                ),
            );
        } else if let Some(first) = seen.get(name) {
            cx.error_spanned_by(
                at,
                format!(
                    "fields `{}` and `{}` would both be the variant `{name}` of `{event}`; name \
                     one of them with #[redis_dict(variant = \"...\")]",
                    first.ident, field.ident
                ),
            );
        } else {
            seen.insert(name, field);
        }
    }
}

fn check_reserved_names(cx: &Ctxt, input: &Input<'_>) {
    for field in &input.fields {
        if field.ident == CORE_FIELD {
            cx.error_spanned_by(
                field.ident,
                format!("the field name `{CORE_FIELD}` is reserved by the RedisDict derive"),
            );
        }
    }
}
