//! CBOR diagnostic notation (RFC 8949 section 8, with the encoding
//! indicators of RFC 8610 appendix G), written from the bytes themselves, so
//! that it is exact: tags, byte strings, non-text map keys, indefinite
//! lengths, and any integer, length or float not in its preferred (shortest)
//! encoding carries its indicator (`_0`..`_3` for 1-, 2-, 4-, 8-byte
//! arguments; `_1`, `_2`, `_3` for half, single, double floats).

use std::fmt::Write as _;

/// The diagnostic notation of the one CBOR item in `bytes` (which the caller
/// has checked is one well-formed item; malformed input gives an error text).
pub fn diag(bytes: &[u8]) -> Result<String, String> {
    let mut reader = Reader { bytes, at: 0 };
    let mut out = String::new();
    reader.item(&mut out, 0)?;
    if reader.at != bytes.len() {
        return Err(format!("{} bytes after the item", bytes.len() - reader.at));
    }
    Ok(out)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

/// An item's head: major type, argument, and the indicator when the argument
/// is not in its shortest form (or "_" for indefinite length).
struct Head {
    major: u8,
    info: u8,
    arg: u64,
}

impl Head {
    /// The encoding indicator, empty for the preferred encoding.
    fn indicator(&self) -> &'static str {
        let shortest = match self.arg {
            0..=23 => 23,
            24..=0xff => 24,
            0x100..=0xffff => 25,
            0x1_0000..=0xffff_ffff => 26,
            _ => 27,
        };
        if self.info == shortest || (self.info < 24 && shortest == 23) {
            return "";
        }
        match self.info {
            24 => "_0",
            25 => "_1",
            26 => "_2",
            _ => "_3",
        }
    }
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| format!("cut short at byte {}", self.at))?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn head(&mut self) -> Result<Head, String> {
        let first = self.take(1)?[0];
        let (major, info) = (first >> 5, first & 0x1f);
        let arg = match info {
            0..=23 => u64::from(info),
            24..=27 => {
                let n = 1usize << (info - 24);
                self.take(n)?
                    .iter()
                    .fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
            }
            31 => 0,
            _ => {
                return Err(format!(
                    "reserved additional information {info} at byte {}",
                    self.at - 1
                ))
            }
        };
        Ok(Head { major, info, arg })
    }

    fn item(&mut self, out: &mut String, depth: usize) -> Result<(), String> {
        if depth > 512 {
            return Err("nested too deeply".into());
        }
        let head = self.head()?;
        let indefinite = head.info == 31;
        match head.major {
            0 => write!(out, "{}{}", head.arg, head.indicator()).map_err(|e| e.to_string())?,
            1 => write!(out, "{}{}", -1 - i128::from(head.arg), head.indicator())
                .map_err(|e| e.to_string())?,
            2 | 3 if indefinite => {
                out.push_str("(_ ");
                let mut first = true;
                while !self.at_break()? {
                    if !first {
                        out.push_str(", ");
                    }
                    first = false;
                    self.item(out, depth + 1)?;
                }
                out.push(')');
            }
            2 => {
                let len = usize::try_from(head.arg).map_err(|e| e.to_string())?;
                let bytes = self.take(len)?;
                out.push_str("h'");
                for b in bytes {
                    write!(out, "{b:02x}").map_err(|e| e.to_string())?;
                }
                out.push('\'');
                out.push_str(head.indicator());
            }
            3 => {
                let len = usize::try_from(head.arg).map_err(|e| e.to_string())?;
                let at = self.at;
                let text = std::str::from_utf8(self.take(len)?)
                    .map_err(|_| format!("text string at byte {at} is not UTF-8"))?;
                out.push_str(&serde_json::Value::String(text.to_owned()).to_string());
                out.push_str(head.indicator());
            }
            4 | 5 => {
                let (open, close) = if head.major == 4 {
                    ('[', ']')
                } else {
                    ('{', '}')
                };
                out.push(open);
                if indefinite {
                    out.push_str("_ ");
                } else if !head.indicator().is_empty() {
                    out.push_str(head.indicator());
                    out.push(' ');
                }
                let mut n = 0u64;
                loop {
                    if indefinite {
                        if self.at_break()? {
                            break;
                        }
                    } else if n == head.arg {
                        break;
                    }
                    if n > 0 {
                        out.push_str(", ");
                    }
                    self.item(out, depth + 1)?;
                    if head.major == 5 {
                        out.push_str(": ");
                        self.item(out, depth + 1)?;
                    }
                    n += 1;
                }
                out.push(close);
            }
            6 => {
                write!(out, "{}{}(", head.arg, head.indicator()).map_err(|e| e.to_string())?;
                self.item(out, depth + 1)?;
                out.push(')');
            }
            _ => self.simple(out, &head)?,
        }
        Ok(())
    }

    /// Consumes a break (0xff) if one is next.
    fn at_break(&mut self) -> Result<bool, String> {
        match self.bytes.get(self.at) {
            Some(0xff) => {
                self.at += 1;
                Ok(true)
            }
            Some(_) => Ok(false),
            None => Err("indefinite-length item without its break".into()),
        }
    }

    fn simple(&mut self, out: &mut String, head: &Head) -> Result<(), String> {
        let text = match (head.info, head.arg) {
            (20, _) => "false".to_owned(),
            (21, _) => "true".to_owned(),
            (22, _) => "null".to_owned(),
            (23, _) => "undefined".to_owned(),
            (0..=19, n) | (24, n) => format!("simple({n})"),
            (25, bits) => float(half(bits as u16), false, "_1"),
            (26, bits) => {
                let f = f64::from(f32::from_bits(bits as u32));
                float(f, fits_shorter(f, 26), "_2")
            }
            (27, bits) => {
                let f = f64::from_bits(bits);
                float(f, fits_shorter(f, 27), "_3")
            }
            _ => return Err("a break outside an indefinite-length item".into()),
        };
        out.push_str(&text);
        Ok(())
    }
}

/// Whether `f`, read from a float of width `info`, would fit a shorter float
/// exactly (then its width is not the preferred one and is shown).
fn fits_shorter(f: f64, info: u8) -> bool {
    let as_half = to_half(f).map(half) == Some(f) || (f.is_nan() && info > 25);
    let as_single = f64::from(f as f32) == f || f.is_nan();
    match info {
        26 => as_half,
        _ => as_half || as_single,
    }
}

fn float(f: f64, show_width: bool, indicator: &str) -> String {
    let mut text = if f.is_nan() {
        "NaN".to_owned()
    } else if f.is_infinite() {
        if f > 0.0 { "Infinity" } else { "-Infinity" }.to_owned()
    } else {
        let t = format!("{f:?}");
        if t.contains('.') || t.contains('e') {
            t
        } else {
            format!("{t}.0")
        }
    };
    if show_width {
        text.push_str(indicator);
    }
    text
}

/// An IEEE 754 half-precision float.
fn half(bits: u16) -> f64 {
    let sign = if bits & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((bits >> 10) & 0x1f);
    let mant = f64::from(bits & 0x3ff);
    sign * match exp {
        0 => mant * 2f64.powi(-24),
        31 if mant == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        e => (1.0 + mant / 1024.0) * 2f64.powi(e - 15),
    }
}

/// The half-precision bits of `f` if it has an exact half form.
fn to_half(f: f64) -> Option<u16> {
    // Few enough candidates to search: compare against every finite half.
    if f.is_nan() || f.is_infinite() {
        return None;
    }
    let sign: u16 = if f.is_sign_negative() { 0x8000 } else { 0 };
    let magnitude = f.abs();
    if magnitude > 65504.0 {
        return None;
    }
    (0u16..0x7c00)
        .find(|&b| half(b) == magnitude)
        .map(|b| b | sign)
}

#[cfg(test)]
mod tests {
    use super::diag;

    #[test]
    fn notation() {
        let d = |b: &[u8]| diag(b).unwrap();
        assert_eq!(d(&[0x01]), "1");
        assert_eq!(d(&[0x18, 0x01]), "1_0");
        assert_eq!(d(&[0x20]), "-1");
        assert_eq!(d(&[0x42, 0x01, 0x02]), "h'0102'");
        assert_eq!(d(&[0x62, b'h', b'i']), "\"hi\"");
        assert_eq!(d(&[0x82, 0x01, 0x61, b'a']), "[1, \"a\"]");
        assert_eq!(d(&[0x9f, 0x01, 0xff]), "[_ 1]");
        assert_eq!(d(&[0xa1, 0x01, 0xf5]), "{1: true}");
        assert_eq!(d(&[0xc1, 0x01]), "1(1)");
        assert_eq!(d(&[0xf9, 0x3e, 0x00]), "1.5");
        assert_eq!(d(&[0xfb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0]), "1.5_3");
        assert_eq!(
            d(&[0xfb, 0x3f, 0xb9, 0x99, 0x99, 0x99, 0x99, 0x99, 0x9a]),
            "0.1"
        );
        assert_eq!(d(&[0xf9, 0x7e, 0x00]), "NaN");
        assert_eq!(d(&[0xf9, 0x7c, 0x00]), "Infinity");
        assert_eq!(d(&[0xf7]), "undefined");
        assert_eq!(d(&[0x5f, 0x41, 0x01, 0xff]), "(_ h'01')");
        assert!(diag(&[0x82, 0x01]).is_err());
        assert!(diag(&[0x01, 0x01]).is_err());
    }
}
