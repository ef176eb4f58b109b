//! A typed view of the derive input: the struct, its attributes and its
//! fields with their stored names resolved.

use syn::ext::IdentExt;
use syn::{Data, DeriveInput, Fields, Ident, Type};

use crate::attr;
use crate::case;
use crate::ctxt::Ctxt;

/// A struct with named fields, the only shape the derive accepts.
pub(crate) struct Input<'a> {
    pub(crate) original: &'a DeriveInput,
    pub(crate) ident: &'a Ident,
    pub(crate) attrs: attr::Container,
    pub(crate) fields: Vec<Field<'a>>,
}

/// One named field.
pub(crate) struct Field<'a> {
    pub(crate) original: &'a syn::Field,
    pub(crate) ident: &'a Ident,
    pub(crate) ty: &'a Type,
    pub(crate) attrs: attr::Field,
    /// The key the field is stored under: `rename`, else the field name
    /// (without `r#`) under `rename_all`.
    pub(crate) key: String,
    /// The name of its variant in the generated `<Struct>Event` enum:
    /// `variant`, else the field name (without `r#`) in UpperCamelCase.
    pub(crate) variant: String,
}

impl Field<'_> {
    pub(crate) fn is_stored(&self) -> bool {
        self.attrs.skip.is_none()
    }
}

impl<'a> Input<'a> {
    /// Parses `input`, recording every problem in `cx`. `None` when the input
    /// is not a struct with named fields (also recorded).
    pub(crate) fn from_syn(
        cx: &Ctxt,
        input: &'a DeriveInput,
        attrs: attr::Container,
    ) -> Option<Self> {
        let fields = match &input.data {
            Data::Struct(data) => match &data.fields {
                Fields::Named(named) => named,
                Fields::Unnamed(unnamed) => {
                    cx.error_spanned_by(
                        unnamed,
                        "RedisDict needs named fields: each field is stored under its name; \
                         write `struct Name { field: Type, ... }`",
                    );
                    return None;
                }
                Fields::Unit => {
                    cx.error_spanned_by(
                        &input.ident,
                        "RedisDict needs named fields, and a unit struct has none to store",
                    );
                    return None;
                }
            },
            Data::Enum(data) => {
                cx.error_spanned_by(
                    data.enum_token,
                    "RedisDict can only be derived for structs with named fields, not enums; \
                     store an enum as a field of such a struct",
                );
                return None;
            }
            Data::Union(data) => {
                cx.error_spanned_by(
                    data.union_token,
                    "RedisDict can only be derived for structs with named fields, not unions",
                );
                return None;
            }
        };
        let fields = fields
            .named
            .iter()
            .filter_map(|field| {
                let ident = field.ident.as_ref()?;
                let field_attrs = attr::Field::from_attrs(cx, &field.attrs);
                let key = match (&field_attrs.rename, attrs.rename_all) {
                    (Some(lit), _) => lit.value(),
                    (None, Some(rule)) => rule.apply(&ident.unraw().to_string()),
                    (None, None) => ident.unraw().to_string(),
                };
                let variant = match &field_attrs.variant {
                    Some(lit) => lit.value(),
                    None => case::upper_camel(&ident.unraw().to_string()),
                };
                Some(Field {
                    original: field,
                    ident,
                    ty: &field.ty,
                    attrs: field_attrs,
                    key,
                    variant,
                })
            })
            .collect();
        Some(Input {
            original: input,
            ident: &input.ident,
            attrs,
            fields,
        })
    }

    pub(crate) fn stored(&self) -> impl Iterator<Item = &Field<'a>> {
        self.fields.iter().filter(|f| f.is_stored())
    }

    pub(crate) fn skipped(&self) -> impl Iterator<Item = &Field<'a>> {
        self.fields.iter().filter(|f| !f.is_stored())
    }
}
