//! Dict key types and their one canonical text form each.

use std::borrow::Cow;

use crate::error::{Error, Result};

/// A value usable to look up an entry: anything with a canonical key text.
///
/// Implemented for `str`, `String` and every primitive integer type (decimal,
/// no leading zeros, `-` for negatives).
pub trait KeyText {
    /// The canonical text of this key, as stored after `{ns}:`.
    fn key_text(&self) -> Cow<'_, str>;
}

/// A dict key type: a [`KeyText`] that can also be read back from the stored text.
pub trait DictKey: KeyText + Sized {
    /// Parses the canonical text back into a key. Non-canonical text (for
    /// integers: `"007"`, `"+1"`, `" 1"`) is an error message.
    fn from_key_text(text: &str) -> Result<Self, String>;

    /// Like [`DictKey::from_key_text`], from an owned text, which `String`
    /// keys take as it is, without a copy. On failure, the text comes back
    /// with the reason.
    fn from_key_string(text: String) -> Result<Self, (String, String)> {
        Self::from_key_text(&text).map_err(|reason| (text, reason))
    }
}

impl KeyText for str {
    fn key_text(&self) -> Cow<'_, str> {
        Cow::Borrowed(self)
    }
}

impl KeyText for String {
    fn key_text(&self) -> Cow<'_, str> {
        Cow::Borrowed(self)
    }
}

impl DictKey for String {
    fn from_key_text(text: &str) -> Result<Self, String> {
        Ok(text.to_owned())
    }

    fn from_key_string(text: String) -> Result<Self, (String, String)> {
        Ok(text)
    }
}

impl<T: KeyText + ?Sized> KeyText for &T {
    fn key_text(&self) -> Cow<'_, str> {
        (**self).key_text()
    }
}

macro_rules! integer_keys {
    ($($t:ty),*) => {$(
        impl KeyText for $t {
            fn key_text(&self) -> Cow<'_, str> {
                Cow::Owned(self.to_string())
            }
        }

        impl DictKey for $t {
            fn from_key_text(text: &str) -> Result<Self, String> {
                let value: $t = text.parse().map_err(|e| format!("{e}"))?;
                if value.to_string() == text {
                    Ok(value)
                } else {
                    Err(format!("not the canonical form {value:?} of the number"))
                }
            }
        }
    )*};
}

integer_keys!(i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize);

/// Parses a stored key text as `K`, naming namespace and key on failure.
pub(crate) fn parse_key<K: DictKey>(namespace: &str, text: String) -> Result<K> {
    K::from_key_string(text).map_err(|(key, reason)| Error::InvalidKey {
        namespace: namespace.to_owned(),
        key,
        expected: std::any::type_name::<K>(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_have_one_text_form() {
        assert_eq!((-42i64).key_text(), "-42");
        assert_eq!(u32::from_key_text("42"), Ok(42));
        assert!(u32::from_key_text("042").is_err());
        assert!(u32::from_key_text("+42").is_err());
        assert!(u32::from_key_text("x").is_err());
        assert!(u8::from_key_text("256").is_err());
        assert_eq!(i8::from_key_text("-128"), Ok(-128));
    }

    #[test]
    fn strings_are_themselves() {
        assert_eq!("a:b&&c*".key_text(), "a:b&&c*");
        assert_eq!(String::from_key_text("ünï"), Ok("ünï".to_owned()));
    }
}
