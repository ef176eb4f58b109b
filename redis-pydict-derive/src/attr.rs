//! Parsing of `#[redis_dict(...)]` attributes. Unknown keys, repeated keys and
//! malformed values are spanned errors, all collected in the [`Ctxt`].

use proc_macro2::Span;
use syn::meta::ParseNestedMeta;
use syn::parse::ParseStream;
use syn::spanned::Spanned;
use syn::{Attribute, ExprPath, LitStr, Token};

use crate::case::RenameRule;
use crate::ctxt::Ctxt;

const ATTR: &str = "redis_dict";
const CONTAINER_KEYS: &str = "`prefix`, `rename_all`, `crate`";
const FIELD_KEYS: &str = "`rename`, `default`, `skip`, `ttl`, `variant`";

/// Longest prefix allowed: a namespace is at most 256 bytes, and the prefix
/// is followed by `:` and an instance name of at least one byte.
const MAX_PREFIX_LEN: usize = 254;

/// Container attributes: `#[redis_dict(prefix = "...", rename_all = "...", crate = "...")]`.
#[derive(Default)]
pub(crate) struct Container {
    pub(crate) prefix: Option<LitStr>,
    pub(crate) rename_all: Option<RenameRule>,
    pub(crate) krate: Option<syn::Path>,
}

/// How a field is filled when nothing is stored for it.
pub(crate) enum FieldDefault {
    /// Not given: `None` for an `Option`, an error for anything else.
    None,
    /// `#[redis_dict(default)]`: `Default::default()`.
    Trait(Span),
    /// `#[redis_dict(default = "path")]`: a call of `path()`.
    Path(ExprPath),
}

/// A `ttl = "..."` literal and its value in whole milliseconds (a placeholder
/// 1 when the literal is invalid, which has been reported).
pub(crate) struct Ttl {
    pub(crate) lit: LitStr,
    pub(crate) millis: u64,
}

/// Field attributes: `#[redis_dict(rename = "...", default, skip, ttl = "...", variant = "...")]`.
pub(crate) struct Field {
    pub(crate) rename: Option<LitStr>,
    pub(crate) default: FieldDefault,
    pub(crate) skip: Option<Span>,
    pub(crate) ttl: Option<Ttl>,
    /// The field's variant name in the generated event enum (checked in `valid`).
    pub(crate) variant: Option<LitStr>,
}

impl Container {
    pub(crate) fn from_attrs(cx: &Ctxt, attrs: &[Attribute]) -> Container {
        let mut out = Container::default();
        for attr in attrs.iter().filter(|a| a.path().is_ident(ATTR)) {
            let parsed = attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("prefix") {
                    let lit = string(&meta, "prefix = \"config\"")?;
                    check_prefix(cx, &lit);
                    set_once(cx, &meta, &mut out.prefix, lit);
                } else if meta.path.is_ident("rename_all") {
                    let lit = string(&meta, "rename_all = \"camelCase\"")?;
                    match RenameRule::from_str(&lit.value()) {
                        Ok(rule) => set_once(cx, &meta, &mut out.rename_all, rule),
                        Err(unknown) => cx.error_spanned_by(&lit, unknown),
                    }
                } else if meta.path.is_ident("crate") {
                    let lit = string(&meta, "crate = \"::redis_pydict\"")?;
                    match lit.parse::<syn::Path>() {
                        Ok(path) => set_once(cx, &meta, &mut out.krate, path),
                        Err(_) => cx.error_spanned_by(
                            &lit,
                            format!(
                                "`crate` must be a path such as \"::redis_pydict\", not {:?}",
                                lit.value()
                            ),
                        ),
                    }
                } else {
                    unknown_key(cx, &meta, "container", CONTAINER_KEYS, FIELD_KEYS)?;
                }
                Ok(())
            });
            if let Err(err) = parsed {
                cx.syn_error(err);
            }
        }
        out
    }
}

impl Field {
    pub(crate) fn from_attrs(cx: &Ctxt, attrs: &[Attribute]) -> Field {
        let mut out = Field {
            rename: None,
            default: FieldDefault::None,
            skip: None,
            ttl: None,
            variant: None,
        };
        for attr in attrs.iter().filter(|a| a.path().is_ident(ATTR)) {
            let parsed = attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("rename") {
                    let lit = string(&meta, "rename = \"key\"")?;
                    if lit.value().is_empty() {
                        cx.error_spanned_by(&lit, "`rename` needs a non-empty key");
                    }
                    set_once(cx, &meta, &mut out.rename, lit);
                } else if meta.path.is_ident("default") {
                    let value = if meta.input.peek(Token![=]) {
                        let lit = string(&meta, "default = \"path::to::function\"")?;
                        match lit.parse::<ExprPath>() {
                            Ok(path) => FieldDefault::Path(path),
                            Err(_) => {
                                cx.error_spanned_by(
                                    &lit,
                                    format!("`default = \"...\"` must name a function, such as \"Vec::new\", not {:?}", lit.value()),
                                );
                                FieldDefault::Trait(meta.path.span())
                            }
                        }
                    } else {
                        FieldDefault::Trait(meta.path.span())
                    };
                    if matches!(out.default, FieldDefault::None) {
                        out.default = value;
                    } else {
                        duplicate(cx, &meta);
                    }
                } else if meta.path.is_ident("skip") {
                    if !meta.input.is_empty() && !meta.input.peek(Token![,]) {
                        skip_value(meta.input)?;
                        cx.error_spanned_by(&meta.path, "`skip` takes no value: write `#[redis_dict(skip)]`");
                    }
                    set_once(cx, &meta, &mut out.skip, meta.path.span());
                } else if meta.path.is_ident("ttl") {
                    let lit = string(&meta, "ttl = \"30s\"")?;
                    let ttl = parse_ttl(cx, lit);
                    set_once(cx, &meta, &mut out.ttl, ttl);
                } else if meta.path.is_ident("variant") {
                    let lit = string(&meta, "variant = \"Threshold\"")?;
                    set_once(cx, &meta, &mut out.variant, lit);
                } else {
                    unknown_key(cx, &meta, "field", FIELD_KEYS, CONTAINER_KEYS)?;
                }
                Ok(())
            });
            if let Err(err) = parsed {
                cx.syn_error(err);
            }
        }
        out
    }
}

/// The string value of `key = "..."`; anything else is an error showing `example`.
fn string(meta: &ParseNestedMeta<'_>, example: &str) -> syn::Result<LitStr> {
    let value = meta.value()?;
    let expr: syn::Expr = value.parse()?;
    match expr {
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(lit),
            ..
        }) => Ok(lit),
        other => Err(syn::Error::new_spanned(
            other,
            format!("expected a string literal: #[redis_dict({example})]"),
        )),
    }
}

fn set_once<T>(cx: &Ctxt, meta: &ParseNestedMeta<'_>, slot: &mut Option<T>, value: T) {
    if slot.is_some() {
        duplicate(cx, meta);
    } else {
        *slot = Some(value);
    }
}

fn duplicate(cx: &Ctxt, meta: &ParseNestedMeta<'_>) {
    cx.error_spanned_by(
        &meta.path,
        format!("duplicate redis_dict attribute `{}`", path_text(&meta.path)),
    );
}

/// Records an unknown key (saying so if it belongs on the other kind of item)
/// and skips its value so that the keys after it are still checked.
fn unknown_key(
    cx: &Ctxt,
    meta: &ParseNestedMeta<'_>,
    kind: &str,
    expected: &str,
    other: &str,
) -> syn::Result<()> {
    let name = path_text(&meta.path);
    let hint = if other.contains(&format!("`{name}`")) {
        format!(
            "; `{name}` is a {} attribute",
            if kind == "field" {
                "container"
            } else {
                "field"
            }
        )
    } else {
        String::new()
    };
    cx.error_spanned_by(
        &meta.path,
        format!("unknown redis_dict {kind} attribute `{name}`; expected one of {expected}{hint}"),
    );
    skip_value(meta.input)
}

/// Skips `= <expr>` or `(...)` after an attribute key.
fn skip_value(input: ParseStream<'_>) -> syn::Result<()> {
    if input.peek(Token![=]) {
        input.parse::<Token![=]>()?;
        input.parse::<syn::Expr>()?;
    } else if input.peek(syn::token::Paren) {
        let content;
        syn::parenthesized!(content in input);
        content.parse::<proc_macro2::TokenStream>()?;
    }
    Ok(())
}

fn path_text(path: &syn::Path) -> String {
    let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
    segments.join("::")
}

fn check_prefix(cx: &Ctxt, lit: &LitStr) {
    let prefix = lit.value();
    if prefix.is_empty() {
        cx.error_spanned_by(lit, "`prefix` must not be empty");
    } else if prefix.contains(['{', '}']) {
        cx.error_spanned_by(
            lit,
            "`prefix` must not contain '{' or '}': they are reserved for the cluster hash tag of the namespace",
        );
    } else if prefix.len() > MAX_PREFIX_LEN {
        cx.error_spanned_by(
            lit,
            format!("`prefix` is {} bytes; a namespace is at most 256 bytes, so the prefix must be at most {MAX_PREFIX_LEN}", prefix.len()),
        );
    }
}

/// Parses a humantime-style duration (`"30s"`, `"5m"`, `"1h 30m"`, `"250ms"`)
/// into whole milliseconds, reporting anything Redis cannot use.
fn parse_ttl(cx: &Ctxt, lit: LitStr) -> Ttl {
    let text = lit.value();
    let millis = match humantime::parse_duration(&text) {
        Err(err) => Err(format!(
            "invalid ttl {text:?}: {err}; write a duration such as \"30s\", \"5m\", \"1h 30m\" or \"250ms\""
        )),
        Ok(d) if d.subsec_nanos() % 1_000_000 != 0 => Err(format!(
            "invalid ttl {text:?}: Redis expiry has millisecond precision; use a whole number of milliseconds"
        )),
        Ok(d) if d.as_millis() == 0 => {
            Err(format!("invalid ttl {text:?}: a time-to-live must be at least 1ms"))
        }
        Ok(d) if d.as_millis() > (i64::MAX / 2) as u128 => {
            Err(format!("invalid ttl {text:?}: too long for Redis"))
        }
        Ok(d) => Ok(d.as_millis() as u64),
    };
    match millis {
        Ok(millis) => Ttl { lit, millis },
        Err(msg) => {
            cx.error_spanned_by(&lit, msg);
            Ttl { lit, millis: 1 }
        }
    }
}
