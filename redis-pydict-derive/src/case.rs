//! serde's `rename_all` case conventions, applied to field names.

use std::fmt;

/// A case convention accepted by `#[redis_dict(rename_all = "...")]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RenameRule {
    Lower,
    Upper,
    Pascal,
    Camel,
    Snake,
    ScreamingSnake,
    Kebab,
    ScreamingKebab,
}

const RULES: &[(&str, RenameRule)] = &[
    ("lowercase", RenameRule::Lower),
    ("UPPERCASE", RenameRule::Upper),
    ("PascalCase", RenameRule::Pascal),
    ("camelCase", RenameRule::Camel),
    ("snake_case", RenameRule::Snake),
    ("SCREAMING_SNAKE_CASE", RenameRule::ScreamingSnake),
    ("kebab-case", RenameRule::Kebab),
    ("SCREAMING-KEBAB-CASE", RenameRule::ScreamingKebab),
];

impl RenameRule {
    pub(crate) fn from_str(name: &str) -> Result<Self, UnknownRule<'_>> {
        RULES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, rule)| *rule)
            .ok_or(UnknownRule(name))
    }

    /// Renames a field written in snake_case (serde's `apply_to_field`).
    pub(crate) fn apply(self, field: &str) -> String {
        match self {
            RenameRule::Lower | RenameRule::Snake => field.to_owned(),
            RenameRule::Upper | RenameRule::ScreamingSnake => field.to_ascii_uppercase(),
            RenameRule::Pascal => {
                let mut pascal = String::with_capacity(field.len());
                let mut capitalize = true;
                for ch in field.chars() {
                    if ch == '_' {
                        capitalize = true;
                    } else if capitalize {
                        pascal.push(ch.to_ascii_uppercase());
                        capitalize = false;
                    } else {
                        pascal.push(ch);
                    }
                }
                pascal
            }
            RenameRule::Camel => {
                let pascal = RenameRule::Pascal.apply(field);
                let mut chars = pascal.chars();
                match chars.next() {
                    Some(first) => first.to_ascii_lowercase().to_string() + chars.as_str(),
                    None => pascal,
                }
            }
            RenameRule::Kebab => field.replace('_', "-"),
            RenameRule::ScreamingKebab => field.to_ascii_uppercase().replace('_', "-"),
        }
    }
}

/// The UpperCamelCase form of a field name, for its event variant: `max_conn`
/// → `MaxConn`, `größe` → `Größe` (underscores dropped, each word capitalized;
/// unlike serde's `PascalCase`, not only ASCII letters).
pub(crate) fn upper_camel(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut capitalize = true;
    for ch in field.chars() {
        if ch == '_' {
            capitalize = true;
        } else if capitalize {
            out.extend(ch.to_uppercase());
            capitalize = false;
        } else {
            out.push(ch);
        }
    }
    out
}

/// A `rename_all` value that is not one of serde's conventions.
pub(crate) struct UnknownRule<'a>(&'a str);

impl fmt::Display for UnknownRule<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown rename_all rule {:?}; expected one of ", self.0)?;
        for (i, (name, _)) in RULES.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{name:?}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::RenameRule::*;
    use super::*;

    #[test]
    fn field_names_follow_serde() {
        for (rule, expected) in [
            (Lower, "max_conn_count"),
            (Upper, "MAX_CONN_COUNT"),
            (Pascal, "MaxConnCount"),
            (Camel, "maxConnCount"),
            (Snake, "max_conn_count"),
            (ScreamingSnake, "MAX_CONN_COUNT"),
            (Kebab, "max-conn-count"),
            (ScreamingKebab, "MAX-CONN-COUNT"),
        ] {
            assert_eq!(rule.apply("max_conn_count"), expected, "{rule:?}");
        }
        assert!(RenameRule::from_str("Title Case").is_err());
        assert_eq!(upper_camel("max_conn_count"), "MaxConnCount");
        assert_eq!(upper_camel("_private__x1"), "PrivateX1");
        assert_eq!(upper_camel("größe_ök"), "GrößeÖk");
        assert_eq!(upper_camel("fooBar"), "FooBar");
        assert_eq!(upper_camel("_0"), "0");
        assert_eq!(RenameRule::from_str("camelCase").ok(), Some(Camel));
    }
}
