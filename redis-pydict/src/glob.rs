//! Redis glob matching on the client: the same rules as the server's
//! `stringmatchlen` (PSUBSCRIBE, SCAN MATCH, KEYS), for sharded pub/sub,
//! which has no patterns: a glob subscription on a cluster receives every
//! event of its namespace and keeps those whose key matches.

/// Whether `text` matches the Redis glob `pattern`: `*` (any run of bytes),
/// `?` (one byte), `[abc]`, `[^abc]`, `[a-z]` (bounds in either order),
/// and `\` escaping the next byte, inside brackets too. Byte for byte what
/// the server does (case-sensitive; a `[` left open runs to the end of the
/// pattern, as in Redis).
pub(crate) fn matches(pattern: &str, text: &str) -> bool {
    let mut longer_fail = false;
    match_from(pattern.as_bytes(), text.as_bytes(), &mut longer_fail, 0)
}

/// Redis compares bytes as C `char`, which is signed on the platforms it
/// runs on: the order of range bounds above 0x7f follows that.
fn signed(b: u8) -> i32 {
    b as i8 as i32
}

fn match_from(pattern: &[u8], text: &[u8], longer_fail: &mut bool, nesting: u32) -> bool {
    // Protection against abusive patterns, as in Redis.
    if nesting > 1000 {
        return false;
    }
    // The byte at `i`, or 0 past the end (C reads the terminating NUL).
    let at = |i: usize| pattern.get(i).copied().unwrap_or(0);
    let (mut p, mut s) = (0usize, 0usize);
    while p < pattern.len() && s < text.len() {
        match pattern[p] {
            b'*' => {
                while p + 1 < pattern.len() && pattern[p + 1] == b'*' {
                    p += 1;
                }
                if p + 1 == pattern.len() {
                    return true;
                }
                while s < text.len() {
                    if match_from(&pattern[p + 1..], &text[s..], longer_fail, nesting + 1) {
                        return true;
                    }
                    if *longer_fail {
                        return false;
                    }
                    s += 1;
                }
                *longer_fail = true;
                return false;
            }
            b'?' => s += 1,
            b'[' => {
                p += 1;
                let negate = at(p) == b'^';
                if negate {
                    p += 1;
                }
                let c = text[s];
                let mut found = false;
                loop {
                    if at(p) == b'\\' && pattern.len().saturating_sub(p) >= 2 {
                        p += 1;
                        found |= pattern[p] == c;
                    } else if at(p) == b']' {
                        break;
                    } else if p >= pattern.len() {
                        p -= 1;
                        break;
                    } else if pattern.len() - p >= 3 && pattern[p + 1] == b'-' {
                        let (mut start, mut end) = (signed(pattern[p]), signed(pattern[p + 2]));
                        if start > end {
                            std::mem::swap(&mut start, &mut end);
                        }
                        p += 2;
                        found |= (start..=end).contains(&signed(c));
                    } else {
                        found |= pattern[p] == c;
                    }
                    p += 1;
                }
                if found == negate {
                    return false;
                }
                s += 1;
            }
            b'\\' => {
                if pattern.len() - p >= 2 {
                    p += 1;
                }
                if pattern[p] != text[s] {
                    return false;
                }
                s += 1;
            }
            other => {
                if other != text[s] {
                    return false;
                }
                s += 1;
            }
        }
        p += 1;
        if s == text.len() {
            while p < pattern.len() && pattern[p] == b'*' {
                p += 1;
            }
            break;
        }
    }
    p == pattern.len() && s == text.len()
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn follows_the_server_rules() {
        let yes = [
            ("*", "abc"),
            ("ns:*", "ns:"),
            ("a*", "a"),
            ("a*c", "abbbc"),
            ("a?c", "abc"),
            ("[abc]x", "bx"),
            ("[^abc]x", "dx"),
            ("[a-c]", "b"),
            ("[c-a]", "b"),
            (r"\*", "*"),
            (r"a\?", "a?"),
            (r"[\]]", "]"),
            ("job:*", "job:1"),
            ("**a", "xa"),
            ("[a", "a"),
            ("k:[0-9]*", "k:7abc"),
        ];
        for (pattern, text) in yes {
            assert!(matches(pattern, text), "{pattern:?} matches {text:?}");
        }
        let no = [
            // As in Redis: an empty text matches only the empty pattern.
            ("*", ""),
            ("", "a"),
            ("a", ""),
            ("?", ""),
            ("a*c", "abcd"),
            ("[abc]", "d"),
            ("[^abc]", "a"),
            (r"\*", "a"),
            ("job:*", "jobs:1"),
            ("[a-c]", "d"),
            ("a", "ab"),
        ];
        for (pattern, text) in no {
            assert!(
                !matches(pattern, text),
                "{pattern:?} does not match {text:?}"
            );
        }
        // An abusive pattern ends quickly instead of backtracking for ever.
        let long = "a".repeat(60);
        assert!(!matches(&"*a".repeat(40).to_string(), &(long + "b")));
    }
}
